"""The only code that touches file descriptors: claiming the frame fds at start-up
(:mod:`._fds`), and frame input, frame output and EOF over them (:mod:`._stream`,
:class:`FdTransport`). See each module's theory of operation."""

from axon_port._transport._fds import (
    claim_input,
    claim_output,
    set_parent_death_signal,
    shares_one_cpu_with_parent,
)
from axon_port._transport._stream import FEED_CHUNK, READ_SIZE, FdTransport

__all__ = [
    "FEED_CHUNK",
    "READ_SIZE",
    "FdTransport",
    "claim_input",
    "claim_output",
    "set_parent_death_signal",
    "shares_one_cpu_with_parent",
]

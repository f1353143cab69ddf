"""axon_port: run pydantic-ai agents from Elixir through an Erlang Port.

The worker (``python -m axon_port``) reads ``{packet, 4}`` ETF or msgpack
frames and serves protocol v1 (``docs/protocol.md``). User modules loaded with
``--module`` register what the client may reach, with the decorators below.
"""

from importlib.metadata import PackageNotFoundError, version

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.errors import AxonError
from axon_port.registry import REGISTRY, Registry, function, register_agent, tool

try:
    __version__ = version("axon_port")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "REGISTRY",
    "Atom",
    "AxonError",
    "FrozenList",
    "FrozenMap",
    "Registry",
    "__version__",
    "function",
    "register_agent",
    "tool",
]

"""axon_port: run pydantic-ai agents from Elixir through an Erlang Port.

The worker (``python -m axon_port``) reads ``{packet, 4}`` ETF or msgpack
frames and serves protocol v1 (``docs/protocol.md``). User modules loaded with
``--module`` register what the client may reach, with the decorators below.
"""

from typing import Any

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.errors import AxonError
from axon_port.registry import REGISTRY, Registry, function, register_agent, tool


def __getattr__(name: str) -> Any:
    # __version__ comes from the package metadata, read on first use only:
    # importlib.metadata costs ~30 ms, which the worker's start-up does not pay.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("axon_port")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

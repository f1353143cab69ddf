"""What a worker may run: registered Python functions, tools and agents.

Theory of operation: user modules loaded with ``--module NAME`` (or imported by
the host program) decorate callables with :func:`function` and :func:`tool`, and
register agents with :func:`register_agent`. Nothing else is reachable from the
wire: ``call`` looks names up in :attr:`Registry.functions`, agent specs name
tools from :attr:`Registry.tools` only, so no frame can make the worker import
or run arbitrary code. This module imports neither asyncio nor pydantic-ai.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

__all__ = [
    "REGISTRY",
    "FunctionEntry",
    "Registry",
    "ToolEntry",
    "function",
    "register_agent",
    "tool",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class FunctionEntry:
    """A function reachable through ``call``.

    ``inline`` sync functions run on the event loop (use it only for cheap,
    non-blocking code); other sync functions run in a worker thread so they
    never delay other requests. Coroutine functions always run on the loop.
    """

    name: str
    fn: Callable[..., Any]
    description: str
    inline: bool
    is_async: bool


@dataclass(frozen=True)
class ToolEntry:
    """A Python tool an agent spec may name; pydantic-ai derives its schema."""

    name: str
    fn: Callable[..., Any]
    description: str | None
    #: pydantic-ai ``Tool`` options (``retries``, ``timeout``, ``strict``,
    #: ``requires_approval``, ``sequential``, ``defer_loading``, ``prepare``, ``metadata``).
    options: dict[str, Any] = field(default_factory=dict)


#: The ``Tool`` options :func:`tool` accepts (``retries`` is ``Tool(max_retries=)``).
TOOL_OPTIONS = frozenset(
    {
        "retries", "timeout", "strict", "requires_approval", "sequential", "defer_loading",
        "prepare", "metadata",
    }
)  # fmt: skip


@dataclass
class Registry:
    """Name -> entry tables. One process-wide instance is :data:`REGISTRY`."""

    functions: dict[str, FunctionEntry] = field(default_factory=dict)
    tools: dict[str, ToolEntry] = field(default_factory=dict)
    # An agent is a spec map (as sent by ``define_agent``) or a ready-made
    # ``pydantic_ai.Agent``; the agents layer knows how to use either.
    agents: dict[str, Any] = field(default_factory=dict)

    def add_function(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        inline: bool = False,
        description: str | None = None,
    ) -> FunctionEntry:
        """Register ``fn`` for ``call``; a second registration of a name replaces the first."""
        entry = FunctionEntry(
            name=name or fn.__name__,
            fn=fn,
            description=description or inspect.getdoc(fn) or "",
            inline=inline,
            is_async=inspect.iscoroutinefunction(fn),
        )
        self.functions[entry.name] = entry
        return entry

    def add_tool(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        **options: Any,
    ) -> ToolEntry:
        """Register ``fn`` as a tool agents may select by name (``options``: ``TOOL_OPTIONS``)."""
        unknown = sorted(set(options) - TOOL_OPTIONS)
        if unknown:
            raise TypeError(f"unknown tool option(s) {unknown} (allowed: {sorted(TOOL_OPTIONS)})")
        entry = ToolEntry(name=name or fn.__name__, fn=fn, description=description, options=options)
        self.tools[entry.name] = entry
        return entry

    def add_agent(self, name: str, agent: Any) -> None:
        """Register an agent spec map or a ``pydantic_ai.Agent`` under ``name``."""
        self.agents[name] = agent


REGISTRY = Registry()


@overload
def function(fn: F, /) -> F: ...
@overload
def function(
    *, name: str | None = None, inline: bool = False, description: str | None = None
) -> Callable[[F], F]: ...
def function(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    inline: bool = False,
    description: str | None = None,
) -> Any:
    """Decorator: make a function callable from the client with ``call``.

    ``@function`` or ``@function(name="add", inline=True)``. The function is
    returned unchanged.
    """

    def deco(f: F) -> F:
        REGISTRY.add_function(f, name=name, inline=inline, description=description)
        return f

    return deco(fn) if fn is not None else deco


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, **options: Any
) -> Callable[[F], F]: ...
def tool(
    fn: Any = None, /, *, name: str | None = None, description: str | None = None, **options: Any
) -> Any:
    """Decorator: register a Python tool that agent specs can name.

    The function may take a ``pydantic_ai.RunContext`` first (its ``deps`` are the
    run's ``deps``); its other parameters' type hints and docstring become the
    tool's JSON schema and description. ``options`` are pydantic-ai ``Tool`` options:
    ``retries``, ``timeout`` (seconds), ``strict``, ``requires_approval``,
    ``sequential``, ``defer_loading`` (hidden until the ``ToolSearch`` capability
    reveals it), ``prepare``, ``metadata``.
    """

    def deco(f: F) -> F:
        REGISTRY.add_tool(f, name=name, description=description, **options)
        return f

    return deco(fn) if fn is not None else deco


def register_agent(name: str, agent: Any) -> None:
    """Register an agent (a spec map or a ``pydantic_ai.Agent``) under ``name``."""
    REGISTRY.add_agent(name, agent)

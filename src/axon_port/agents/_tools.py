"""The ``tools`` extension of a spec: registered Python tools and remote tool maps.

A binary names a tool registered with ``@axon_port.tool`` (its pydantic-ai
``Tool`` options come from the decorator); a map with ``remote: true`` declares
a tool the client implements (``name``, ``description``, ``parameters`` JSON
Schema, and the ``Tool`` options ``timeout_ms``, ``retries``, ``strict``,
``sequential``, ``defer_loading``). A Python tool whose ``RunContext`` is parametrised with a type
other than a plain map (a pydantic model, dataclass or ``TypedDict``) sees the
run's ``deps`` validated into that type.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_ai import ModelRetry, RunContext, Tool
from pydantic_ai import exceptions as pai
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ToolCallPart
from pydantic_ai.tools import ToolDefinition

from axon_port.agents._errors import RemoteToolError, ToolExecutionError
from axon_port.agents._remote import RemoteToolDef, remote_tool
from axon_port.agents._schema import compile_validator
from axon_port.errors import AxonError, BadRequest
from axon_port.registry import Registry, ToolEntry

__all__ = ["TagToolErrors", "python_tool_schema", "spec_tools"]

# pydantic-ai passes these through unchanged; anything else escaping a tool is tagged.
_TOOL_CONTROL = (ModelRetry, pai.ToolFailed, pai.CallDeferred, pai.ApprovalRequired)
_REMOTE_KEYS = frozenset(
    {
        "name", "description", "parameters", "remote", "timeout_ms", "retries", "strict",
        "sequential", "requires_approval", "defer_loading",
    }
)  # fmt: skip


def spec_tools(
    value: Any, registry: Registry
) -> tuple[list[Tool[Any]], dict[str, RemoteToolDef], list[Any]]:
    """``(tools, remote tool defs by name, normalised list)`` of a spec's ``tools``."""
    if value is None:
        return [], {}, []
    if not isinstance(value, list):
        raise BadRequest("spec.tools must be a list")
    tools: list[Tool[Any]] = []
    remote: dict[str, RemoteToolDef] = {}
    names: list[Any] = []
    for i, item in enumerate(value):
        where = f"spec.tools[{i}]"
        if isinstance(item, str):
            entry = registry.tools.get(item)
            if entry is None:
                known = ", ".join(sorted(registry.tools)) or "none"
                raise BadRequest(f"{where}: no Python tool named {item!r} (registered: {known})")
            tools.append(python_tool(entry))
            names.append(item)
        elif isinstance(item, dict):
            defn = _remote_def(item, where)
            remote[defn.name] = defn
            tools.append(remote_tool(defn))
            names.append(defn.describe())
        else:
            raise BadRequest(f"{where} must be a tool name or a remote tool map")
    seen = [t.name for t in tools]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise BadRequest(f"spec.tools: duplicate tool name(s) {dupes}")
    return tools, remote, names


def _remote_def(item: dict[str, Any], where: str) -> RemoteToolDef:
    unknown = sorted(k for k in item if k not in _REMOTE_KEYS)
    if unknown:
        raise BadRequest(f"{where}: unknown key(s) {unknown} (allowed: {sorted(_REMOTE_KEYS)})")
    if item.get("remote") is not True:
        raise BadRequest(
            f"{where}: a tool map declares a client tool and needs remote: true"
            " (name Python tools by binary)"
        )
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name must be a non-empty binary")
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequest(f"{where}.description must be a binary")
    params = item.get("parameters") or {"type": "object", "properties": {}}
    validator = compile_validator(params, where=f"{where}.parameters")
    if params.get("type") != "object":
        raise BadRequest(f'{where}.parameters must describe an object ("type": "object")')
    timeout_ms = item.get("timeout_ms")
    if timeout_ms is not None and not (_is_number(timeout_ms) and timeout_ms > 0):
        raise BadRequest(f"{where}.timeout_ms must be a positive number")
    retries = item.get("retries")
    if retries is not None and not (type(retries) is int and retries >= 0):
        raise BadRequest(f"{where}.retries must be a non-negative integer")
    for flag in ("strict", "sequential", "requires_approval", "defer_loading"):
        if item.get(flag) is not None and not isinstance(item[flag], bool):
            raise BadRequest(f"{where}.{flag} must be a boolean")
    return RemoteToolDef(
        name,
        description,
        dict(params),
        validator,
        timeout_ms=timeout_ms,
        retries=retries,
        strict=item.get("strict"),
        sequential=bool(item.get("sequential", False)),
        requires_approval=bool(item.get("requires_approval", False)),
        defer_loading=bool(item.get("defer_loading", False)),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def python_tool(entry: ToolEntry) -> Tool[Any]:
    """The registered function as a tool; its failures are tagged ``tool_error``."""
    fn = entry.fn
    typed = _deps_adapter(fn)

    def prepare_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
        if typed is None or not args or not isinstance(args[0], RunContext):
            return args
        ctx = args[0]
        try:
            deps = typed.validate_python(ctx.deps)
        except ValidationError as exc:
            raise ToolExecutionError(entry.name, exc) from exc
        return (dataclasses.replace(ctx, deps=deps), *args[1:])

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            args = prepare_args(args)
            try:
                return await fn(*args, **kwargs)
            except _TOOL_CONTROL:
                raise
            except Exception as exc:
                raise ToolExecutionError(entry.name, exc) from exc

        wrapped: Callable[..., Any] = run_async
    else:

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            args = prepare_args(args)
            try:
                return fn(*args, **kwargs)
            except _TOOL_CONTROL:
                raise
            except Exception as exc:
                raise ToolExecutionError(entry.name, exc) from exc

        wrapped = run_sync
    return Tool(wrapped, name=entry.name, description=entry.description, **_tool_options(entry))


def _tool_options(entry: ToolEntry) -> dict[str, Any]:
    options = dict(entry.options)
    if "retries" in options:
        options["max_retries"] = options.pop("retries")
    return options


def _deps_adapter(fn: Callable[..., Any]) -> TypeAdapter[Any] | None:
    """A validator for the deps type of ``fn``'s ``RunContext[T]`` (None for maps / Any)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
        hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError):
        return None
    if not params or params[0].name not in hints:
        return None
    hint = hints[params[0].name]
    if typing.get_origin(hint) is not RunContext:
        return None
    (deps_type,) = typing.get_args(hint) or (Any,)
    origin = typing.get_origin(deps_type) or deps_type
    if deps_type is Any or origin in (dict, Mapping, object) or deps_type is type(None):
        return None
    return TypeAdapter(deps_type)


def python_tool_schema(entry: ToolEntry) -> dict[str, Any]:
    """A registered tool as ``describe`` lists it (name, description, JSON Schema)."""
    tool_def = Tool(entry.fn, name=entry.name, description=entry.description).tool_def
    return {
        "name": entry.name,
        "description": tool_def.description,
        "parameters": tool_def.parameters_json_schema,
        "remote": False,
    }


class TagToolErrors(AbstractCapability[Any]):
    """Tags an exception escaping any tool with the tool's name (``tool_error``).

    Spec agents' Python tools are wrapped already; this covers the tools of an
    ``Agent`` registered from Python, which are the user's own functions.
    """

    async def on_tool_execute_error(
        self,
        ctx: RunContext[Any],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: Any,
        error: Exception,
    ) -> Any:
        if isinstance(error, (ToolExecutionError, RemoteToolError, AxonError, *_TOOL_CONTROL)):
            raise error
        raise ToolExecutionError(call.tool_name, error) from error

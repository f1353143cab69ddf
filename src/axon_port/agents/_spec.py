"""Agent specs (plain data from the client) → cached pydantic-ai ``Agent``s.

Theory of operation: a spec is pydantic-ai's ``AgentSpec`` in its dict form
plus axon_port's extension keys (:data:`EXTENSION_KEYS`, and a ``model`` that
may be a map: see ``_models``). :func:`build_spec_agent` rejects unknown keys,
validates the ``AgentSpec`` part with ``AgentSpec.model_validate`` (templates
are checked against ``deps_schema``), and builds the agent with
``Agent.from_spec``, giving it the model, output type and tools the extensions
describe, and our :class:`~._mcp.SpecMCP` in place of ``MCP``. Any problem is a
``BadRequest`` naming the path of the bad key. The agent is built once per
distinct spec and shared by all runs, so per-run data lives in
:data:`~axon_port.agents._remote.CURRENT_RUN`, never on the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_ai import Agent, DeferredToolRequests, ModelRetry, RunContext
from pydantic_ai import exceptions as pai
from pydantic_ai.agent.spec import AgentSpec
from pydantic_ai.models.test import TestModel

from axon_port.agents._content import ContentGuard
from axon_port.agents._mcp import SpecMCP
from axon_port.agents._messages import plain
from axon_port.agents._models import build_model
from axon_port.agents._outputs import OutputPlan, plan_output
from axon_port.agents._remote import CURRENT_RUN, RemoteToolDef
from axon_port.agents._schema import (
    SchemaOutput,
    coerce_integers,
    compile_validator,
    errors_text,
    schema_errors,
    shorthand_to_schema,
)
from axon_port.agents._tools import spec_tools
from axon_port.errors import AxonError, BadRequest
from axon_port.registry import Registry

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "AGENT_SPEC_KEYS",
    "EXTENSION_KEYS",
    "BuiltAgent",
    "build_python_agent",
    "build_spec_agent",
    "spec_key",
]

#: The keys of pydantic-ai's ``AgentSpec`` (``$schema`` is its alias of ``json_schema_path``).
AGENT_SPEC_KEYS = frozenset(f.alias or n for n, f in AgentSpec.model_fields.items())
#: axon_port's own keys (``model`` may also be one of the model maps of ``_models``).
EXTENSION_KEYS = frozenset({"tools", "result_type", "system_prompt", "output_mode"})
CUSTOM_CAPABILITIES = (SpecMCP,)


@dataclass
class BuiltAgent:
    """A ready agent and what the worker needs to know about it."""

    name: str
    agent: Agent[Any, Any]
    #: The normalised spec, or ``None`` for an agent registered from Python.
    spec: dict[str, Any] | None
    key: str
    output: SchemaOutput | None = None
    remote_tools: dict[str, RemoteToolDef] = field(default_factory=dict)
    deps_validator: Validator | None = None
    _stack: contextlib.AsyncExitStack | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The output type without the ``DeferredToolRequests`` marker (for ``describe``).
    output_type: Any = None
    #: Whether ``ContentGuard`` is one of the agent's own capabilities (see ``run``).
    guards_content: bool = False
    #: Runs holding the agent (see ``_agent_table``), and whether it was replaced.
    users: int = 0
    retired: bool = False

    def describe(self) -> dict[str, Any]:
        """The agent as ``describe`` lists it."""
        out: dict[str, Any] = {"name": self.name, "source": "spec" if self.spec else "python"}
        if self.spec is not None:
            out["spec"] = self.spec
        try:
            out["output_schema"] = self.agent.output_json_schema(self.output_type)
        except Exception:  # an exotic Python output type: describe the rest
            out["output_schema"] = None
        return out

    def check_deps(self, deps: Any) -> None:
        """``BadRequest`` unless ``deps`` satisfy the spec's ``deps_schema``."""
        if self.deps_validator is None:
            return
        errors = schema_errors(self.deps_validator, deps)
        if errors:
            raise BadRequest(
                f"run.deps do not match the agent's deps_schema:\n{errors_text(errors)}",
                details={"errors": errors},
            )

    async def start(self) -> None:
        """Enter the agent once (starts its MCP servers); ``mcp_error`` if one cannot start."""
        async with self._lock:
            if self._stack is not None:
                return
            stack = contextlib.AsyncExitStack()
            try:
                await stack.enter_async_context(self.agent)
            except Exception as exc:
                await _quiet_close(stack)
                raise AxonError(
                    f"agent {self.name!r}: an MCP server (or the model) failed to start: "
                    f"{type(exc).__name__}: {_root_message(exc)}",
                    kind="mcp_error",
                    details={"agent": self.name, "type": type(exc).__name__},
                ) from None
            self._stack = stack

    async def stop(self) -> None:
        """Leave the agent (stops its MCP servers); safe to call more than once."""
        async with self._lock:
            stack, self._stack = self._stack, None
        if stack is not None:
            await _quiet_close(stack)


async def _quiet_close(stack: contextlib.AsyncExitStack) -> None:
    with contextlib.suppress(Exception):
        await stack.aclose()


def _root_message(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _root_message(exc.exceptions[0])
    return str(exc) or repr(exc)


def spec_key(spec: Any) -> str:
    """Canonical text of a spec, the cache key of the agent built from it."""
    return json.dumps(plain(spec), sort_keys=True, default=repr)


def build_python_agent(name: str, agent: Agent[Any, Any]) -> BuiltAgent:
    """Wrap an ``Agent`` registered from Python (its tools and output type are its own)."""
    return BuiltAgent(name=name, agent=agent, spec=None, key=f"python:{id(agent)}")


def build_spec_agent(name: str, raw: Any, registry: Registry) -> BuiltAgent:
    """Check and normalise ``raw`` and build its agent; ``BadRequest`` on any problem."""
    if not isinstance(raw, Mapping):
        raise BadRequest("spec must be a map")
    spec = plain(raw)
    allowed = AGENT_SPEC_KEYS | EXTENSION_KEYS
    unknown = sorted(str(k) for k in spec if k not in allowed)
    if unknown:
        raise BadRequest(
            f"spec: unknown key(s) {', '.join(unknown)}",
            details={"unknown": unknown, "allowed": sorted(allowed)},
        )
    model = build_model(spec.get("model"), where="spec.model")
    core = {k: v for k, v in spec.items() if k in AGENT_SPEC_KEYS and k != "model"}
    plan = _output(spec)
    output = plan.check if plan is not None else None
    if output is not None:
        core["output_schema"] = output.schema
    validated = _validate(core)
    tools, remote, tool_names = spec_tools(spec.get("tools"), registry)
    system_prompt = _text(spec["system_prompt"]) if spec.get("system_prompt") is not None else ()
    deps_validator = None
    if validated.deps_schema is not None:
        deps_validator = compile_validator(validated.deps_schema, where="spec.deps_schema")
    output_type: Any = plan.output_type if plan is not None else str
    guards_content = bool(tools) or bool(validated.capabilities)
    try:
        agent: Agent[Any, Any] = Agent.from_spec(
            validated,
            model=model,
            # Tools needing approval, or raising CallDeferred/ApprovalRequired, end the
            # run with DeferredToolRequests (the result's ``deferred``), not an error.
            output_type=[output_type, DeferredToolRequests],
            system_prompt=system_prompt,
            name=validated.name or name,
            tools=tools,
            custom_capability_types=CUSTOM_CAPABILITIES,
            # What tools return may hold files the model request downloads.
            capabilities=[ContentGuard()] if guards_content else None,
        )
    except (pai.UserError, ValidationError, TypeError, ValueError) as exc:
        raise _capability_error(validated, exc) from None
    if plan is not None and output is not None:
        agent.output_validator(_output_check(output, plan.wrapped))

    normalised = validated.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    normalised["model"] = spec.get("model", "test")
    if spec.get("system_prompt") is not None:
        normalised["system_prompt"] = spec["system_prompt"]
    if spec.get("result_type") is not None:
        normalised["result_type"] = spec["result_type"]
    if spec.get("output_mode") is not None:
        normalised["output_mode"] = spec["output_mode"]
    if tool_names:
        normalised["tools"] = tool_names
    return BuiltAgent(
        name=name,
        agent=agent,
        spec=normalised,
        key=spec_key(spec),
        output=output,
        remote_tools=remote,
        deps_validator=deps_validator,
        output_type=output_type,
        guards_content=guards_content,
    )


def _validate(core: dict[str, Any]) -> AgentSpec:
    """``AgentSpec.model_validate``, templates checked against ``deps_schema``."""
    retries = core.get("retries")
    if isinstance(retries, dict) and not set(retries) <= {"tools", "output"}:
        extra = sorted(set(retries) - {"tools", "output"})
        raise BadRequest(f"spec.retries: unknown key(s) {extra} (allowed: output, tools)")
    deps_schema = core.get("deps_schema")
    context = {
        "deps_type": None,
        "deps_schema": deps_schema if isinstance(deps_schema, dict) else None,
    }
    try:
        return AgentSpec.model_validate(core, context=context)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    except (pai.UserError, ValueError, TypeError) as exc:  # e.g. a template that does not compile
        raise BadRequest(f"spec: {exc}") from None


def _path(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _validation_error(exc: ValidationError) -> BadRequest:
    """One message for pydantic's errors; the path is the key they share (a union's
    alternatives each add their own tag to the location)."""
    raw = exc.errors()
    errors = [{"path": _path(e["loc"]), "message": e["msg"], "type": e["type"]} for e in raw]
    first_key = raw[0]["loc"][:1]
    locs = [e["loc"] for e in raw if e["loc"][:1] == first_key]
    common: list[int | str] = []
    for parts in zip(*locs, strict=False):
        if any(p != parts[0] for p in parts):
            break
        common.append(parts[0])
    if len(locs) == 1:
        common = list(locs[0])
    messages = "; or ".join(dict.fromkeys(e["msg"] for e in raw if e["loc"][:1] == first_key))
    return BadRequest(f"{_path(tuple(common))}: {messages}", details={"errors": errors})


def _capability_error(validated: AgentSpec, exc: Exception) -> BadRequest:
    """The error of building the agent, naming the capability that failed if one did."""
    message = exc.message if isinstance(exc, pai.UserError) else str(exc)
    for i, cap in enumerate(validated.capabilities):
        one = AgentSpec(capabilities=[cap])
        try:
            Agent.from_spec(one, model=TestModel(), custom_capability_types=CUSTOM_CAPABILITIES)
        except (pai.UserError, ValidationError, TypeError, ValueError) as cap_exc:
            if isinstance(cap_exc, ValidationError):
                message = "; ".join(f"{_path(e['loc'])[5:] or '.'}: {e['msg']}"
                                    for e in cap_exc.errors())  # fmt: skip
            elif isinstance(cap_exc, pai.UserError):
                message = cap_exc.message
            else:
                message = str(cap_exc)
            return BadRequest(
                f"spec.capabilities[{i}] ({cap.name}): {message}",
                details={"path": f"spec.capabilities[{i}]", "capability": cap.name},
            )
    return BadRequest(f"spec: {message}")


def _text(value: Any) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    raise BadRequest("spec.system_prompt must be a binary (or a list of binaries)")


def _output(spec: dict[str, Any]) -> OutputPlan | None:
    if spec.get("output_schema") is not None and spec.get("result_type") is not None:
        raise BadRequest("spec: give output_schema or result_type, not both")
    if spec.get("result_type") is not None:
        schema = shorthand_to_schema(spec["result_type"], where="spec.result_type")
        where = "spec.result_type"
    elif spec.get("output_schema") is not None:
        schema = spec["output_schema"]
        where = "spec.output_schema"
    else:
        if spec.get("output_mode") is not None:
            raise BadRequest("spec.output_mode needs an output_schema or result_type")
        return None
    return plan_output(schema, spec.get("output_mode"), where=where)


def _output_check(output: SchemaOutput, wrapped: bool) -> Callable[[RunContext[Any], Any], Any]:
    def check_output_schema(ctx: RunContext[Any], value: Any) -> Any:
        if wrapped and isinstance(value, dict) and "response" in value:
            value = value["response"]
        if ctx.partial_output:
            return value
        state = CURRENT_RUN.get()
        value = coerce_integers(output.schema, value)
        errors = output.errors(value)
        if state is not None:
            state.validation_errors = errors or None
        if errors:
            raise ModelRetry(f"The output does not match the JSON Schema:\n{errors_text(errors)}")
        return value

    return check_output_schema

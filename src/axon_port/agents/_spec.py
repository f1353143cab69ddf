"""Agent specs (plain data from the client) → cached pydantic-ai ``Agent``s.

Theory of operation: :func:`build_spec_agent` checks every key of a spec
(unknown or mistyped keys are a ``BadRequest`` naming the key), normalises it
(atoms → binaries, ``result_type`` shorthand → ``output_schema``) and builds one
``Agent``. The agent is built once per distinct spec and shared by all runs, so
per-run data (the frame sender, pending remote calls, the last validation
errors) lives in :data:`~axon_port.agents._remote.CURRENT_RUN`, never on the
agent. Python tools are named from the registry only, so the model can call
nothing the spec did not give it.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast, get_args

from pydantic_ai import Agent, DeferredToolRequests, ModelRetry, RunContext, Tool
from pydantic_ai import exceptions as pai
from pydantic_ai._agent_graph import EndStrategy
from pydantic_ai.agent import AgentRetries

from axon_port.agents._errors import ToolExecutionError
from axon_port.agents._messages import plain
from axon_port.agents._models import build_model
from axon_port.agents._outputs import OutputPlan, plan_output
from axon_port.agents._remote import CURRENT_RUN, RemoteToolDef, remote_tool
from axon_port.agents._schema import (
    SchemaOutput,
    coerce_integers,
    compile_validator,
    errors_text,
    shorthand_to_schema,
)
from axon_port.errors import BadRequest
from axon_port.registry import Registry, ToolEntry

__all__ = ["SPEC_KEYS", "BuiltAgent", "build_python_agent", "build_spec_agent", "spec_key"]

SPEC_KEYS = frozenset(
    {
        "model",
        "instructions",
        "system_prompt",
        "tools",
        "output_schema",
        "output_mode",
        "result_type",
        "retries",
        "end_strategy",
        "model_settings",
        "name",
        "description",
    }
)
_END_STRATEGIES = frozenset(get_args(EndStrategy))
# pydantic-ai passes these through unchanged; anything else escaping a tool is tagged.
_TOOL_CONTROL = (ModelRetry, pai.ToolFailed, pai.CallDeferred, pai.ApprovalRequired)


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
    #: The output type without the ``DeferredToolRequests`` marker (for ``describe``).
    output_type: Any = None

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
    unknown = sorted(k for k in spec if k not in SPEC_KEYS)
    if unknown:
        raise BadRequest(
            f"spec: unknown key(s) {', '.join(map(str, unknown))}",
            details={"unknown": unknown, "allowed": sorted(SPEC_KEYS)},
        )
    normalised: dict[str, Any] = {}
    model = build_model(spec.get("model"), where="spec.model")
    normalised["model"] = spec.get("model", "test")

    tools, remote = _tools(spec.get("tools"), registry, normalised)
    kwargs: dict[str, Any] = {}
    for key in ("instructions", "system_prompt", "name", "description"):
        if spec.get(key) is not None:
            kwargs[key] = normalised[key] = _text(spec[key], key)
    if "retries" in spec:
        kwargs["retries"] = normalised["retries"] = _retries(spec["retries"])
    if "end_strategy" in spec:
        if spec["end_strategy"] not in _END_STRATEGIES:
            raise BadRequest(f"spec.end_strategy must be one of {sorted(_END_STRATEGIES)}")
        kwargs["end_strategy"] = normalised["end_strategy"] = spec["end_strategy"]
    if spec.get("model_settings") is not None:
        if not isinstance(spec["model_settings"], dict):
            raise BadRequest("spec.model_settings must be a map")
        kwargs["model_settings"] = normalised["model_settings"] = spec["model_settings"]
    kwargs.setdefault("name", name)

    plan = _output(spec, normalised)
    output = plan.check if plan is not None else None
    output_type: Any = plan.output_type if plan is not None else str
    # Tools needing approval, or raising CallDeferred/ApprovalRequired, end the run
    # with DeferredToolRequests (the result's ``deferred``) instead of failing it.
    try:
        agent: Agent[Any, Any] = Agent(
            model, output_type=[output_type, DeferredToolRequests], tools=tools, **kwargs
        )
    except (pai.UserError, TypeError, ValueError) as exc:
        raise BadRequest(f"spec: {exc}") from None
    if plan is not None and output is not None:
        agent.output_validator(_output_check(output, plan.wrapped))
    return BuiltAgent(
        name=name,
        agent=agent,
        spec=normalised,
        key=spec_key(spec),
        output=output,
        remote_tools=remote,
        output_type=output_type,
    )


def _text(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value)
    raise BadRequest(f"spec.{key} must be a binary (or a list of binaries)")


def _retries(value: Any) -> int | AgentRetries:
    if type(value) is int and value >= 0:
        return value
    if (
        isinstance(value, dict)
        and value
        and set(value) <= {"tools", "output"}
        and all(type(v) is int and v >= 0 for v in value.values())
    ):
        return cast(AgentRetries, dict(value))
    raise BadRequest("spec.retries must be a non-negative integer or %{tools: n, output: m}")


def _output(spec: dict[str, Any], normalised: dict[str, Any]) -> OutputPlan | None:
    if spec.get("output_schema") is not None and spec.get("result_type") is not None:
        raise BadRequest("spec: give output_schema or result_type, not both")
    if spec.get("result_type") is not None:
        schema = shorthand_to_schema(spec["result_type"], where="spec.result_type")
        normalised["result_type"] = spec["result_type"]
        where = "spec.result_type"
    elif spec.get("output_schema") is not None:
        schema = spec["output_schema"]
        where = "spec.output_schema"
    else:
        if spec.get("output_mode") is not None:
            raise BadRequest("spec.output_mode needs an output_schema or result_type")
        return None
    plan = plan_output(schema, spec.get("output_mode"), where=where)
    normalised["output_schema"] = schema
    if spec.get("output_mode") is not None:
        normalised["output_mode"] = spec["output_mode"]
    return plan


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


def _tools(
    value: Any, registry: Registry, normalised: dict[str, Any]
) -> tuple[list[Tool[Any]], dict[str, RemoteToolDef]]:
    if value is None:
        return [], {}
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
            tools.append(_python_tool(entry))
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
    normalised["tools"] = names
    return tools, remote


def _remote_def(item: dict[str, Any], where: str) -> RemoteToolDef:
    allowed = {"name", "description", "parameters", "remote", "requires_approval"}
    unknown = sorted(k for k in item if k not in allowed)
    if unknown:
        raise BadRequest(f"{where}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
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
    approval = item.get("requires_approval", False)
    if not isinstance(approval, bool):
        raise BadRequest(f"{where}.requires_approval must be a boolean")
    return RemoteToolDef(name, description, dict(params), validator, requires_approval=approval)


def _python_tool(entry: ToolEntry) -> Tool[Any]:
    """The registered function as a tool; its failures are tagged ``tool_error``."""
    fn = entry.fn
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
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
            try:
                return fn(*args, **kwargs)
            except _TOOL_CONTROL:
                raise
            except Exception as exc:
                raise ToolExecutionError(entry.name, exc) from exc

        wrapped = run_sync
    return Tool(
        wrapped,
        name=entry.name,
        description=entry.description,
        requires_approval=entry.requires_approval,
    )


def python_tool_schema(entry: ToolEntry) -> dict[str, Any]:
    """A registered tool as ``describe`` lists it (name, description, JSON Schema)."""
    tool_def = Tool(entry.fn, name=entry.name, description=entry.description).tool_def
    return {
        "name": entry.name,
        "description": tool_def.description,
        "parameters": tool_def.parameters_json_schema,
        "remote": False,
    }

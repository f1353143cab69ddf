"""The agent service: ``define_agent``, ``run``, ``complete``, ``tool_result``, ``describe``.

:class:`AgentService` serves ``define_agent``, ``run``, ``complete``,
``tool_result`` and the agents' part of ``describe``. It is created by the worker
on first use (this package is the only one, with ``examples`` and ``demo``, that
imports pydantic-ai). Spec keys, error kinds, stream events and the script
model are documented in ``docs/agents.md`` and in the private modules:
:mod:`._spec` (specs), :mod:`._models` (model forms, the script model),
:mod:`._stream` (chunk events), :mod:`._errors` (error kinds),
:mod:`._remote` (client-side tools).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic_ai import (
    CancellationToken,
    DeferredToolRequests,
    capture_run_messages,
)
from pydantic_ai.agent import Agent, AgentRunResult
from pydantic_ai.exceptions import RunCancelled
from pydantic_ai.messages import ModelMessage
from pydantic_ai.toolsets import FunctionToolset
from pydantic_graph import End

from axon_port.agents._agent_table import AgentTable
from axon_port.agents._complete import complete_request
from axon_port.agents._content import ContentGuard, has_files, user_prompt
from axon_port.agents._deferred import dump_deferred, load_deferred_results
from axon_port.agents._errors import ContentError, to_axon_error
from axon_port.agents._messages import dump_messages, dump_usage, jsonable, load_history, plain
from axon_port.agents._params import instructions, optional_map, run_usage, usage_limits
from axon_port.agents._remote import (
    CURRENT_RUN,
    RunState,
    RunTable,
    track_run_tasks,
)
from axon_port.agents._spec import BuiltAgent
from axon_port.agents._stream import EventForwarder
from axon_port.agents._tools import TagToolErrors, python_tool_schema
from axon_port.dispatcher import interrupted_error
from axon_port.errors import AxonError, BadRequest
from axon_port.registry import Registry

__all__ = ["AgentService", "RequestLike", "cancelled_error"]

_MODEL_CACHE = 256  # built models kept for run.model and complete
T = TypeVar("T")


class RequestLike(Protocol):
    """What the service uses of ``axon_port.dispatcher.RequestContext``."""

    id: int
    params: Mapping[str, Any]
    cancel_reason: str | None

    def send(self, type_: str, fields: dict[str, Any]) -> None: ...
    def chunk(self, event: str, data: Any) -> None: ...
    async def drain(self) -> None: ...


def cancelled_error(reason: str | None, messages: list[ModelMessage]) -> AxonError:
    """The error a cancelled (``cancel``, ``timeout_ms``, ``shutdown``) request answers with."""
    return interrupted_error(reason, {"reason": reason or "cancelled",
                                      "messages": dump_messages(messages)})  # fmt: skip


class AgentService:
    """Agents by name, cached built agents, and the runs in flight."""

    def __init__(self, registry: Registry, *, partial_interval: float = 0.05) -> None:
        self.registry = registry
        #: Minimum seconds between two ``output_partial`` chunks of one part.
        self.partial_interval = partial_interval
        #: Seconds a cancelled run gets to stop cleanly before it is cancelled natively.
        self.cancel_grace = 1.0
        self.runs = RunTable()
        #: Built agents, and when their MCP servers stop (see ``_agent_table``).
        self.agents = AgentTable(registry)
        self._models: OrderedDict[str, Any] = OrderedDict()

    # -- define / lookup -----------------------------------------------------

    async def define_agent(self, ctx: RequestLike) -> dict[str, Any]:
        """Check and build a spec, then register it under ``name`` (replacing any)."""
        name = ctx.params.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("define_agent: name must be a non-empty binary or atom")
        # MCP servers up now (a failure registers nothing); the agent it replaces
        # stops now, or when the last run using it ends.
        await self.agents.define(str(name), plain(ctx.params.get("spec")))
        return {"output": str(name)}

    def agent(self, name: str) -> BuiltAgent:
        """The built agent registered as ``name`` (``unknown_agent`` if none)."""
        return self.agents.get(name)

    def _agent_for(self, params: Mapping[str, Any]) -> BuiltAgent:
        name, spec = params.get("agent"), params.get("spec")
        if (name is None) == (spec is None):
            raise BadRequest("run: give exactly one of agent (a defined name) or spec")
        if spec is not None:
            return self.agents.get_inline(spec)
        if not isinstance(name, str):
            raise BadRequest("run: agent must be a binary or atom")
        return self.agent(str(name))

    # -- run -------------------------------------------------------------------

    async def run(self, ctx: RequestLike) -> dict[str, Any]:
        """Run an agent; the result carries output, usage, new messages, elapsed_ms."""
        started = time.monotonic()
        built = self._agent_for(ctx.params)
        # Held until the run answers: a redefinition meanwhile keeps its MCP servers up.
        self.agents.acquire(built)
        try:
            return await self._run(ctx, built, started)
        finally:
            self.agents.release(built)

    async def _run(self, ctx: RequestLike, built: BuiltAgent, started: float) -> dict[str, Any]:
        params = ctx.params
        prompt = user_prompt(params.get("prompt"))
        history = load_history(params.get("history"))
        stop = CancellationToken()
        stream = params.get("stream") is True
        deps = plain(params.get("deps"))
        built.check_deps(deps)
        kwargs: dict[str, Any] = {
            "message_history": history or None,
            "deps": deps,
            "model_settings": optional_map(params, "model_settings"),
            "usage_limits": usage_limits(params.get("usage_limits")),
            "metadata": optional_map(params, "metadata"),
            "usage": run_usage(params.get("usage")),
            "cancellation_token": stop,
            "deferred_tool_results": load_deferred_results(params.get("deferred_tool_results")),
        }
        if params.get("model") is not None:
            kwargs["model"] = self.model(params["model"], where="run.model")
        if params.get("instructions") is not None:
            kwargs["instructions"] = instructions(params["instructions"])
        await built.start()
        # Run-time capabilities cost ~0.4 ms of CPU a run each (built-in ones ~0) and
        # widen pydantic-ai's start-up, where a cancel can leave a task behind: only
        # when needed. Spec agents with tools have the content guard built in; a
        # Python agent's tools get theirs tagged and their files guarded in one.
        if built.spec is None and _has_tools(built.agent):
            kwargs["capabilities"] = [_PYTHON_TOOLS_GUARD]
        elif not built.guards_content and has_files(prompt, history):
            kwargs["capabilities"] = [_CONTENT_GUARD]
        track_run_tasks(asyncio.get_running_loop())
        state = RunState(ctx.id, ctx.send)
        self.runs.open(state)
        token = CURRENT_RUN.set(state)
        try:
            with capture_run_messages() as captured:
                try:
                    result = await self._supervise(ctx, built, prompt, kwargs, stream, stop, state)
                except _Interrupted as stopped:
                    state.cancel_leftover_tasks()
                    partial = stopped.messages
                    if partial is None:
                        partial = _new_messages(captured, history)
                    raise cancelled_error(ctx.cancel_reason, partial) from None
                except Exception as exc:
                    if isinstance(exc, ContentError):
                        exc.source = state.content_source(exc)
                    partial = _new_messages(captured, history)
                    err = to_axon_error(
                        exc,
                        validation_errors=state.validation_errors,
                        extra={"messages": dump_messages(partial)},
                    )
                    if err is None:
                        raise
                    raise err from exc
        finally:
            CURRENT_RUN.reset(token)
            self.runs.close(state)
        reply = {
            "output": jsonable(result.output),
            "usage": dump_usage(result.usage),
            "messages": dump_messages(result.new_messages()),
            "elapsed_ms": round((time.monotonic() - started) * 1000, 3),
        }
        if isinstance(result.output, DeferredToolRequests):
            reply["output"] = None
            reply["deferred"] = dump_deferred(result.output)
        return reply

    async def _supervise(
        self,
        ctx: RequestLike,
        built: BuiltAgent,
        prompt: Any,
        kwargs: dict[str, Any],
        stream: bool,
        stop: CancellationToken,
        state: RunState,
    ) -> AgentRunResult[Any]:
        """Run in a child task; turn a cancel of this task into pydantic-ai's own cancellation.

        pydantic-ai stops a run cleanly (keeping its messages, closing streams and tool
        calls) through its ``CancellationToken``; a native ``Task.cancel`` landing in
        the middle of its start-up can leave internal tasks behind. So the dispatcher's
        cancel fires the token, and the run gets ``cancel_grace`` seconds to unwind
        before it is cancelled natively. A run that finished meanwhile keeps its result.
        The token is fired only once ``iter()`` is entered (``state.started``), as a
        cancel during pydantic-ai's start-up can leak its tasks; a run whose task has
        not started at all is simply cancelled.
        """
        entered = False

        forwarder = None
        if stream:
            forwarder = EventForwarder(
                ctx.chunk, remote_tools=built.remote_tools, partial_interval=self.partial_interval
            )

        async def execute() -> AgentRunResult[Any]:
            nonlocal entered
            entered = True
            # iter() rather than run(): entering it means start-up is over, which is
            # the signal cancellation waits for (a per-run hook capability would cost
            # ~0.4 ms of CPU per run). Driven node by node with next(), as Agent.run
            # does; a stream reads each model-request and tool-call node's events
            # with node.stream() first, as pydantic-ai documents for iter() (~20 %
            # less CPU per delta than run_stream_events, which runs the agent in a
            # task behind a memory channel).
            async with built.agent.iter(prompt, **kwargs) as agent_run:
                state.started.set()
                node = agent_run.next_node
                while not isinstance(node, End) and agent_run.result is None:
                    if forwarder is not None and (
                        Agent.is_model_request_node(node) or Agent.is_call_tools_node(node)
                    ):
                        async with node.stream(agent_run.ctx) as events:
                            async for event in events:
                                forwarder.handle(event)
                                await ctx.drain()
                    node = await agent_run.next(node)
            if agent_run.result is None:  # pragma: no cover - iter always ends with one
                raise AxonError("the run ended without a result", kind="internal")
            return agent_run.result

        child: _RunTask[AgentRunResult[Any]]
        child = _RunTask(execute(), loop=asyncio.get_running_loop())
        state.tasks.add(child)
        try:
            return await asyncio.shield(child)
        except asyncio.CancelledError:
            if not entered:
                child.cancel()  # never ran: nothing to unwind
            if not child.done():
                started = asyncio.ensure_future(state.started.wait())
                await asyncio.wait(
                    {child, started}, timeout=self.cancel_grace, return_when=asyncio.FIRST_COMPLETED
                )
                started.cancel()
                stop.cancel()
                await asyncio.wait({child}, timeout=self.cancel_grace)
            if not child.done():
                child.cancel()
                await asyncio.wait({child}, timeout=self.cancel_grace)
            if not child.done():
                child.add_done_callback(_retrieve)
                raise _Interrupted(None) from None
            if child.cancelled():
                raise _Interrupted(None) from None
            exc = child.exception()
            if exc is None:
                return child.result()
            cancelled = RunCancelled.from_cancellation(exc)
            if cancelled is not None:
                raise _Interrupted(cancelled.new_messages()) from None
            raise exc from None

    # -- other ops ---------------------------------------------------------------

    async def complete(self, ctx: RequestLike) -> dict[str, Any]:
        """One direct model request (no agent loop); see ``_complete``."""
        return await complete_request(self, ctx)

    def model(self, spec: Any, *, where: str = "model") -> Any:
        """A built model for ``complete`` and ``run``'s ``model``, cached by its spec."""
        from axon_port.agents._models import build_model, model_key

        key = model_key(spec)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = build_model(spec, where=where)
            if len(self._models) > _MODEL_CACHE:
                self._models.popitem(last=False)
        return model

    def tool_result(self, params: Mapping[str, Any]) -> None:
        """Deliver a ``tool_result`` to the remote call waiting for it (or warn and drop it)."""
        self.runs.resolve(params)

    def describe(self) -> dict[str, Any]:
        """Registered agents (spec, output schema) and Python tools (JSON Schema)."""
        agents = []
        for name in sorted(self.registry.agents):
            try:
                agents.append(self.agent(name).describe())
            except AxonError as exc:
                agents.append({"name": name, "error": exc.message})
        tools = [python_tool_schema(e) for _, e in sorted(self.registry.tools.items())]
        return {"agents": agents, "tools": tools}

    async def aclose(self) -> None:
        """Stop every agent's MCP servers (the worker is exiting)."""
        await self.agents.aclose()


class _PythonToolsGuard(TagToolErrors, ContentGuard):
    """Both guards as one run-time capability (each costs as much as both)."""


_PYTHON_TOOLS_GUARD = _PythonToolsGuard()
_CONTENT_GUARD = ContentGuard()


class _Interrupted(Exception):
    """The run was stopped by ``cancel``/``timeout_ms``; ``messages`` is what it completed."""

    def __init__(self, messages: list[ModelMessage] | None) -> None:
        super().__init__("interrupted")
        self.messages = messages


def _new_messages(captured: list[ModelMessage], history: list[ModelMessage]) -> list[ModelMessage]:
    """The messages of ``captured`` that the run made (not the history it was sent)."""
    known = {id(m) for m in history}
    return [m for m in captured if id(m) not in known]


def _has_tools(agent: Any) -> bool:
    """Whether any tool can run: a toolset other than an empty function toolset."""
    return any(not isinstance(ts, FunctionToolset) or ts.tools for ts in agent.toolsets)


class _RunTask(asyncio.Task[T]):
    """The task a run executes in, with a short repr. anyio formats the current task's
    repr into every cancel scope's reason, and pydantic-graph cancels several scopes a
    run; asyncio's repr formats the task's callbacks, the future it waits for (with its
    own repr) and its coroutine's line number (a walk of the code's line table, ~9,000
    instructions for ``execute()`` alone): ~37,000 instructions each, ~150,000 a run,
    most of it code that runs nowhere else. This one names the state and the task."""

    def __repr__(self) -> str:
        if self.done():
            state = "cancelled" if self.cancelled() else "finished"
        else:
            state = "cancelling" if self.cancelling() else "pending"
        return f"<Task {state} name={self.get_name()!r} (an axon_port run)>"


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()

"""Per-run state, and tools the client implements (remote tools).

Theory of operation: every ``run`` opens a :class:`RunState` (registered by run
id in :class:`RunTable`) and publishes it in the :data:`CURRENT_RUN` context
variable. Built agents are cached and shared by concurrent runs, so anything a
tool or output validator needs to know about *its* run is looked up there;
pydantic-ai runs tools and streams in tasks created from the run's context, so
they all see it.

A remote tool is a ``pydantic_ai.Tool`` built from the spec's JSON Schema. When
the model calls it, the arguments are checked against the schema (failures go
back to the model as ``ModelRetry``), a ``tool_call`` frame is sent, and the
tool awaits an ``asyncio.Future`` that :meth:`RunTable.resolve` completes when the
matching ``tool_result`` arrives, so other runs carry on meanwhile. ``ok`` is
returned to the model; ``error`` with ``retry: true`` becomes ``ModelRetry``;
any other ``error`` fails the run with kind ``tool_error``. When a run ends for
any reason, :meth:`RunState.close` cancels whatever is still pending and the
run leaves the table, so a late ``tool_result`` is dropped with a warning.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic_ai import ApprovalRequired, ModelRetry, RunContext, Tool

from axon_port.agents._content import file_urls, tool_output
from axon_port.agents._errors import ContentError, RemoteToolError
from axon_port.agents._messages import plain
from axon_port.agents._schema import errors_text, schema_errors
from axon_port.errors import BadRequest

if TYPE_CHECKING:  # jsonschema is imported when a schema is first compiled
    from jsonschema.protocols import Validator

__all__ = ["CURRENT_RUN", "RemoteToolDef", "RunState", "RunTable", "remote_tool"]

logger = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], None]


@dataclass(eq=False)
class RunState:
    """What a tool or validator needs to know about the run it serves."""

    run_id: int
    send: Send
    pending: dict[str, asyncio.Future[Mapping[str, Any]]] = field(default_factory=dict)
    #: The last JSON Schema errors of the output (``validation_error`` details).
    validation_errors: list[dict[str, Any]] | None = None
    closed: bool = False
    #: Set when pydantic-ai runs the first node: from then on it can be cancelled safely.
    started: asyncio.Event = field(default_factory=asyncio.Event)
    #: The tasks created while serving this run (see :func:`track_run_tasks`), finished
    #: ones pruned as the set grows. A ``WeakSet`` ran ~40 opcodes per task; a done
    #: callback would be formatted into the task's repr, which anyio builds on every
    #: cancel-scope cancel.
    tasks: set[asyncio.Future[Any]] = field(default_factory=set)
    _prune_at: int = 64
    #: URL parts the client's tools answered with: url -> (tool, call_id).
    tool_urls: dict[str, tuple[str, str]] = field(default_factory=dict)

    def prune(self) -> None:
        """Drop the finished tasks from :attr:`tasks` (the factory calls it as it grows)."""
        self.tasks = tasks = {t for t in self.tasks if not t.done()}
        self._prune_at = max(64, 2 * len(tasks))

    def cancel_leftover_tasks(self) -> int:
        """Cancel the run's tasks still pending after it ended; the number cancelled.

        A run cut short mid-way (cancel, timeout) can leave pydantic-ai's internal
        tasks parked forever (a race in its ``wrap_run`` teardown, seen under load);
        nothing else will ever finish them."""
        current = asyncio.current_task()
        left = [t for t in self.tasks if not t.done() and t is not current]
        for task in left:
            task.cancel()
        return len(left)

    async def call_remote(self, tool: str, call_id: str, args: dict[str, Any]) -> Any:
        """Send a ``tool_call`` and wait for its ``tool_result``; interpret the answer."""
        if call_id in self.pending:  # a model reused an id: keep ours unique per run
            n = 2
            while f"{call_id}#{n}" in self.pending:
                n += 1
            call_id = f"{call_id}#{n}"
        fut: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = fut
        try:
            self.send("tool_call", {"call_id": call_id, "tool": tool, "args": args})
            reply = await fut
        finally:
            self.pending.pop(call_id, None)
        error = reply.get("error")
        if error is not None:
            if reply.get("retry") is True:
                raise ModelRetry(error if isinstance(error, str) else repr(error))
            raise RemoteToolError(tool, call_id, error)
        output = remote_output(tool, call_id, reply.get("ok"))
        for url in file_urls(output):
            self.tool_urls.setdefault(url, (tool, call_id))
        return output

    def content_source(self, error: ContentError) -> dict[str, str] | None:
        """The remote tool call whose answer held the content that could not be sent, when
        that is clear: the error names one of its URLs, or every file of the failed request
        is a URL that call answered with. ``None`` otherwise (a prompt part may be the one)."""
        theirs = {u for u in error.files if u is not None and u in self.tool_urls}
        named = {u for u in theirs if u in str(error)}
        if named:
            urls = named
        elif error.files and len(theirs) == len(set(error.files)):
            urls = theirs
        else:
            return None
        calls = {self.tool_urls[u] for u in urls}
        if len(calls) != 1:
            return None
        ((tool, call_id),) = calls
        source = {"tool": tool, "call_id": call_id}
        if len(urls) == 1:
            source["url"] = next(iter(urls))
        return source

    def close(self) -> None:
        """Cancel every pending remote call and forget the run's tasks (the run is over).

        The tasks hold contexts that hold this state: cleared here, the run's objects
        are freed by reference counting instead of waiting for the cycle collector
        (~110 objects a run, ~55 µs of collection when they pile up)."""
        self.closed = True
        for fut in self.pending.values():
            fut.cancel()
        self.pending.clear()
        self.tasks.clear()


#: The state of the run being served in this context.
CURRENT_RUN: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "axon_port_agent_run", default=None
)


class RunTable:
    """Runs in flight, by id, so ``tool_result`` frames find their waiting call."""

    def __init__(self) -> None:
        self.runs: dict[int, RunState] = {}

    def open(self, state: RunState) -> None:
        """Register a run that is starting."""
        self.runs[state.run_id] = state

    def close(self, state: RunState) -> None:
        """Forget a finished run and cancel its pending calls."""
        state.close()
        if self.runs.get(state.run_id) is state:
            del self.runs[state.run_id]

    def pending_count(self) -> int:
        """How many remote calls are waiting across all runs (0 when idle)."""
        return sum(len(s.pending) for s in self.runs.values())

    def resolve(self, params: Mapping[str, Any]) -> None:
        """Complete the call ``(params["id"], params["call_id"])``; warn if nothing waits for it."""
        run_id, call_id = params.get("id"), params.get("call_id")
        state = self.runs.get(run_id) if isinstance(run_id, int) else None
        if state is None:
            logger.warning("tool_result for run %r dropped: no such run in flight", run_id)
            return
        fut = state.pending.get(str(call_id))
        if fut is None or fut.done():
            logger.warning("tool_result for run %r dropped: no pending call %r", run_id, call_id)
            return
        fut.set_result(params)


@dataclass(frozen=True)
class RemoteToolDef:
    """A tool declared in a spec with ``remote: true``."""

    name: str
    description: str | None
    parameters: dict[str, Any]
    validator: Validator
    #: ``requires_approval: true``: a call ends the run in ``deferred.approvals``.
    requires_approval: bool = False
    #: pydantic-ai ``Tool`` options: a call unanswered after ``timeout_ms`` is a
    #: "Timed out" retry, exactly like pydantic-ai's own tool timeouts.
    timeout_ms: float | None = None
    retries: int | None = None
    strict: bool | None = None
    sequential: bool = False
    #: Hidden from the model until the ``ToolSearch`` capability reveals it.
    defer_loading: bool = False

    def describe(self) -> dict[str, Any]:
        """The tool as ``describe`` and the normalised spec show it."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "remote": True,
        }
        if self.requires_approval:
            out["requires_approval"] = True
        for key in ("timeout_ms", "retries", "strict"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for flag in ("sequential", "defer_loading"):
            if getattr(self, flag):
                out[flag] = True
        return out


def track_run_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop`` record every task created while a run is served in its
    :class:`RunState` (keeping any task factory already set). Idempotent."""
    previous = loop.get_task_factory()
    if getattr(previous, "axon_tracks_runs", False):
        return

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        state = CURRENT_RUN.get()
        if state is not None and not state.closed:
            state.tasks.add(task)
            if len(state.tasks) >= state._prune_at:
                state.prune()
        return task

    factory.axon_tracks_runs = True  # type: ignore[attr-defined]
    loop.set_task_factory(factory)


def remote_output(tool: str, call_id: str, ok: Any) -> Any:
    """A remote tool's ``ok`` value for pydantic-ai: content parts and ``ToolReturn`` maps
    become pydantic-ai content (see ``_content.tool_output``); a malformed part fails
    the run as that tool's ``tool_error``."""
    try:
        return tool_output(plain(ok))
    except BadRequest as exc:
        raise RemoteToolError(tool, call_id, exc.message) from None


def remote_tool(defn: RemoteToolDef) -> Tool[Any]:
    """A pydantic-ai tool that forwards calls to the client through the current run."""

    async def call_remote(ctx: RunContext[Any], **args: Any) -> Any:
        if defn.requires_approval and not ctx.tool_call_approved:
            raise ApprovalRequired()
        errors = schema_errors(defn.validator, args)
        if errors:
            raise ModelRetry(f"Invalid arguments for {defn.name}:\n{errors_text(errors)}")
        state = CURRENT_RUN.get()
        if state is None or state.closed:
            raise RuntimeError(f"remote tool {defn.name!r} called outside a worker run")
        return await state.call_remote(defn.name, ctx.tool_call_id or defn.name, args)

    tool = Tool.from_schema(
        call_remote,
        name=defn.name,
        description=defn.description,
        json_schema=defn.parameters,
        takes_ctx=True,
        sequential=defn.sequential,
    )
    # from_schema takes no other options; these are public Tool attributes.
    tool.defer_loading = defn.defer_loading
    tool.max_retries = defn.retries
    tool.strict = defn.strict
    tool.timeout = None if defn.timeout_ms is None else defn.timeout_ms / 1000
    return tool

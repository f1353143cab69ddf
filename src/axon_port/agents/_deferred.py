"""Deferred tool calls on the wire: human approval and calls answered later.

A run whose model calls a tool that needs approval (``requires_approval``, or a
tool raising ``ApprovalRequired``) or that defers itself (``CallDeferred``) ends
with pydantic-ai's ``DeferredToolRequests`` as its output. The ``result`` then
carries ``output: nil`` and ``deferred: %{"approvals" => [...], "calls" => [...]}``,
each entry ``%{"tool_call_id", "tool_name", "args"}`` (plus ``"metadata"`` when a
tool attached some). The client resumes with the run's ``messages`` as ``history``
and ``deferred_tool_results``, the wire form of pydantic-ai's ``DeferredToolResults``:

* ``approvals: %{id => true | false | %{message: why} | %{override_args: map}}``
  (``false`` and ``%{message:}`` deny: ``ToolDenied``; ``%{override_args:}``
  approves with other arguments: ``ToolApproved``);
* ``calls: %{id => value}`` — the result of a deferred call; ``%{error: message}``
  is a ``ModelRetry`` back to the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_ai import (
    DeferredToolRequests,
    DeferredToolResults,
    ModelRetry,
    ToolApproved,
    ToolDenied,
)
from pydantic_ai.messages import ToolCallPart

from axon_port.agents._content import tool_output
from axon_port.agents._messages import jsonable, plain
from axon_port.errors import BadRequest

__all__ = ["dump_deferred", "load_deferred_results"]

_WHERE = "deferred_tool_results"


def dump_deferred(requests: DeferredToolRequests) -> dict[str, Any]:
    """``DeferredToolRequests`` → the result's ``deferred`` map."""

    def entry(call: ToolCallPart) -> dict[str, Any]:
        out = {
            "tool_call_id": call.tool_call_id,
            "tool_name": call.tool_name,
            "args": jsonable(call.args_as_dict()),
        }
        meta = requests.metadata.get(call.tool_call_id)
        if meta:
            out["metadata"] = jsonable(meta)
        return out

    return {
        "approvals": [entry(c) for c in requests.approvals],
        "calls": [entry(c) for c in requests.calls],
    }


def load_deferred_results(value: Any) -> DeferredToolResults | None:
    """The ``deferred_tool_results`` of a ``run`` → ``DeferredToolResults``; ``BadRequest``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest(f"{_WHERE} must be a map with approvals and/or calls")
    data = plain(value)
    unknown = sorted(str(k) for k in data if k not in ("approvals", "calls"))
    if unknown:
        raise BadRequest(f"{_WHERE}: unknown keys {unknown} (allowed: approvals, calls)")
    approvals_in = data.get("approvals") or {}
    calls_in = data.get("calls") or {}
    if not isinstance(approvals_in, dict) or not isinstance(calls_in, dict):
        raise BadRequest(f"{_WHERE}: approvals and calls are maps keyed by tool_call_id")
    approvals: dict[str, Any] = {}
    for call_id, decision in approvals_in.items():
        approvals[str(call_id)] = _approval(str(call_id), decision)
    calls: dict[str, Any] = {}
    for call_id, result in calls_in.items():
        if isinstance(result, dict) and result.keys() == {"error"}:
            calls[str(call_id)] = ModelRetry(str(result["error"]))
        else:
            try:
                calls[str(call_id)] = tool_output(result)
            except BadRequest as exc:
                raise BadRequest(f"{_WHERE}.calls[{call_id!r}]: {exc.message}") from None
    return DeferredToolResults(approvals=approvals, calls=calls)


def _approval(call_id: str, decision: Any) -> bool | ToolApproved | ToolDenied:
    where = f"{_WHERE}.approvals[{call_id!r}]"
    if isinstance(decision, bool):
        return decision
    if isinstance(decision, dict) and decision.keys() == {"message"}:
        if not isinstance(decision["message"], str):
            raise BadRequest(f"{where}.message must be a binary")
        return ToolDenied(decision["message"])
    if isinstance(decision, dict) and decision.keys() == {"override_args"}:
        if not isinstance(decision["override_args"], dict):
            raise BadRequest(f"{where}.override_args must be a map")
        return ToolApproved(override_args=decision["override_args"])
    raise BadRequest(
        f"{where} must be true, false, %{{message: why}} (deny) or "
        f"%{{override_args: map}} (approve with other arguments)"
    )

"""Human approval and deferred tools: a run ends with ``deferred``, the client resumes it."""

from __future__ import annotations

from typing import Any

import pytest
from agents_fixtures import CODECS, define, error_of, outcomes, run, worker
from pydantic_ai import Agent, CallDeferred, DeferredToolRequests, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from axon_port.registry import Registry

SENT: list[tuple[str, int]] = []


def bank() -> Registry:
    reg = Registry()

    def transfer(to: str, amount: int) -> str:
        """Sends money (a person approves every transfer)."""
        SENT.append((to, amount))
        return f"sent {amount} to {to}"

    def statement(month: str) -> str:
        """Statements are produced overnight: the call is deferred."""
        raise CallDeferred(metadata={"eta": "tomorrow"})

    reg.add_tool(transfer, requires_approval=True)
    reg.add_tool(statement)
    return reg


def script(*turns: Any) -> dict[str, Any]:
    return {"provider": "script", "responses": list(turns)}


TWO_TRANSFERS = {
    "tool_calls": [
        {"tool": "transfer", "args": {"to": "alice", "amount": 50}, "id": "t1"},
        {"tool": "transfer", "args": {"to": "mallory", "amount": 5000}, "id": "t2"},
    ]
}


@pytest.mark.parametrize("codec", CODECS)
def test_a_transfer_waits_for_approval_and_the_resumed_run_finishes(codec: str) -> None:
    SENT.clear()

    async def main() -> None:
        async with worker(codec, registry=bank()) as w:
            turns = script(TWO_TRANSFERS, "Sent 50 to alice; the other was denied.")
            await define(w, "teller", {"model": turns, "tools": ["transfer"]})
            first = await w.request(
                {"op": "run", "id": 1, "agent": "teller", "prompt": "Pay alice and mallory"}
            )
            assert first["type"] == "result", first
            assert first["output"] is None
            assert first["deferred"] == {
                "approvals": [
                    {"tool_call_id": "t1", "tool_name": "transfer",
                     "args": {"to": "alice", "amount": 50}},
                    {"tool_call_id": "t2", "tool_name": "transfer",
                     "args": {"to": "mallory", "amount": 5000}},
                ],
                "calls": [],
            }  # fmt: skip
            assert SENT == []
            history = first["messages"]
            resumed = await w.request(
                {
                    "op": "run",
                    "id": 2,
                    "agent": "teller",
                    "prompt": None,
                    "history": history,
                    "deferred_tool_results": {
                        "approvals": {"t1": True, "t2": {"message": "Too much for one day."}}
                    },
                }
            )
            assert resumed["type"] == "result", resumed
            assert "deferred" not in resumed
            assert resumed["output"] == "Sent 50 to alice; the other was denied."
            assert SENT == [("alice", 50)]
            assert outcomes(resumed["messages"]) == [
                ("transfer", "success"),
                ("transfer", "denied"),
            ]
            denied = [
                p for m in resumed["messages"] for p in m["parts"]
                if p.get("tool_call_id") == "t2" and p["part_kind"] == "tool-return"
            ]  # fmt: skip
            assert denied[0]["content"] == "Too much for one day."
            # A third run accepts the whole conversation.
            await define(w, "teller2", {"model": script("You're welcome."), "tools": ["transfer"]})
            third = await w.request(
                {
                    "op": "run",
                    "id": 3,
                    "agent": "teller2",
                    "prompt": "Thanks",
                    "history": history + resumed["messages"],
                }
            )
            assert third["output"] == "You're welcome.", third

    run(main())


def test_override_args_approve_with_other_arguments_and_false_denies() -> None:
    SENT.clear()

    async def main() -> None:
        async with worker(registry=bank()) as w:
            await define(w, "t", {"model": script(TWO_TRANSFERS, "done"), "tools": ["transfer"]})
            first = await w.request({"op": "run", "id": 1, "agent": "t", "prompt": "Pay"})
            results = {"approvals": {"t1": {"override_args": {"to": "alice", "amount": 40}},
                                     "t2": False}}  # fmt: skip
            resumed = await w.request(
                {"op": "run", "id": 2, "agent": "t", "prompt": None,
                 "history": first["messages"], "deferred_tool_results": results}
            )  # fmt: skip
            assert resumed["output"] == "done", resumed
            assert SENT == [("alice", 40)]

    run(main())


def test_remote_tools_with_requires_approval_and_deferred_python_tools() -> None:
    remote = {
        "name": "wire",
        "description": "Wire money (Elixir does it).",
        "parameters": {"type": "object", "properties": {"amount": {"type": "integer"}}},
        "remote": True,
        "requires_approval": True,
    }
    calls = {
        "tool_calls": [
            {"tool": "wire", "args": {"amount": 7}, "id": "w1"},
            {"tool": "statement", "args": {"month": "May"}, "id": "s1"},
        ]
    }

    async def main() -> None:
        async with worker(registry=bank()) as w:
            spec = {"model": script(calls, "All done."), "tools": [remote, "statement"]}
            first = await w.request({"op": "run", "id": 1, "spec": spec, "prompt": "Go"})
            assert first["deferred"]["approvals"] == [
                {"tool_call_id": "w1", "tool_name": "wire", "args": {"amount": 7}}
            ]
            assert first["deferred"]["calls"] == [
                {"tool_call_id": "s1", "tool_name": "statement", "args": {"month": "May"},
                 "metadata": {"eta": "tomorrow"}}
            ]  # fmt: skip
            results = {"approvals": {"w1": True}, "calls": {"s1": "May: +12.00"}}
            await w.send(
                {"op": "run", "id": 2, "spec": spec, "prompt": None,
                 "history": first["messages"], "deferred_tool_results": results}
            )  # fmt: skip
            # Approved, the remote tool is called on the client as usual.
            call = await w.wait_for(lambda f: f["type"] == "tool_call" and f["id"] == 2)
            assert call["tool"] == "wire" and call["args"] == {"amount": 7}
            await w.send({"op": "tool_result", "id": 2, "call_id": call["call_id"], "ok": "wired"})
            resumed = await w.terminal(2)
            assert resumed["output"] == "All done.", resumed
            returns = {
                p["tool_call_id"]: p["content"] for m in resumed["messages"] for p in m["parts"]
                if p["part_kind"] == "tool-return"
            }  # fmt: skip
            assert returns == {"w1": "wired", "s1": "May: +12.00"}

    run(main())


def test_a_python_registered_agent_with_requires_approval_ends_deferred() -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("delete_account", {}, "d1")])
        return ModelResponse(parts=[TextPart("deleted")])

    agent: Agent[None, str | DeferredToolRequests] = Agent(
        FunctionModel(model), output_type=[str, DeferredToolRequests]
    )

    @agent.tool(requires_approval=True)
    def delete_account(ctx: RunContext[None]) -> str:
        return "gone"

    reg = bank()
    reg.add_agent("py", agent)

    async def main() -> None:
        async with worker(registry=reg) as w:
            first = await w.request({"op": "run", "id": 1, "agent": "py", "prompt": "Delete"})
            assert first["deferred"]["approvals"][0]["tool_name"] == "delete_account"
            resumed = await w.request(
                {"op": "run", "id": 2, "agent": "py", "prompt": None,
                 "history": first["messages"],
                 "deferred_tool_results": {"approvals": {"d1": True}}}
            )  # fmt: skip
            assert resumed["output"] == "deleted", resumed

    run(main())


@pytest.mark.parametrize(
    ("results", "said"),
    [
        ("yes", "must be a map"),
        ({"approvals": {"t1": "maybe"}}, "must be true, false"),
        ({"approve": {}}, "unknown keys"),
        ({"approvals": {"t1": {"message": 3}}}, "message must be a binary"),
    ],
)
def test_malformed_deferred_tool_results_are_bad_request(results: Any, said: str) -> None:
    async def main() -> None:
        async with worker(registry=bank()) as w:
            reply = await w.request(
                {"op": "run", "id": 1, "spec": {"model": "test"}, "prompt": None,
                 "deferred_tool_results": results}
            )  # fmt: skip
            err = error_of(reply)
            assert err["kind"] == "bad_request" and said in err["message"], err

    run(main())

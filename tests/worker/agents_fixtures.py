"""Helpers for the agent tests: a tool registry, a worker, and frame inspection.

Every test talks to the real dispatcher through ``InProcessWorker`` (frames go
through the codec both ways). Models are ``TestModel``, ``FunctionModel`` (via
``override_model``) or the wire-level script model; real model requests are
disabled for the whole session except the loopback OpenAI server's.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic_ai import RunContext, models
from pydantic_ai.models import Model
from waiting import run as run  # re-exported for the tests
from waiting import until as until

from axon_port.agents import AgentService
from axon_port.registry import Registry
from axon_port.testing import InProcessWorker

models.ALLOW_MODEL_REQUESTS = False

T = TypeVar("T")
CODECS = ["etf", "msgpack"]
Frame = dict[str, Any]

BALANCES = {1: 123.45, 2: 10.0}


def tool_registry(calls: list[str] | None = None) -> Registry:
    """A registry with a deps-reading tool, a failing tool and a spy tool."""
    reg = Registry()
    seen = calls if calls is not None else []

    def customer_balance(ctx: RunContext[dict[str, Any]], include_pending: bool) -> float:
        """Returns the customer's current account balance."""
        seen.append("customer_balance")
        return BALANCES[ctx.deps["customer_id"]] + (1.0 if include_pending else 0.0)

    async def explode(reason: str) -> str:
        """Always fails."""
        seen.append("explode")
        raise ValueError(f"exploded: {reason}")

    def secret() -> str:
        """A tool no agent in the tests is given."""
        seen.append("secret")
        return "the secret"

    reg.add_tool(customer_balance)
    reg.add_tool(explode)
    reg.add_tool(secret)
    return reg


def worker(codec: str = "etf", registry: Registry | None = None, **config: Any) -> InProcessWorker:
    """An in-process worker on ``registry`` (a fresh tool registry by default)."""
    return InProcessWorker(codec, registry=registry or tool_registry(), **config)


async def service(w: InProcessWorker) -> AgentService:
    """The worker's agent service."""
    assert w.worker is not None
    svc = await w.worker.agent_service()
    assert isinstance(svc, AgentService)
    return svc


_define_ids = itertools.count(10_000_000)


async def define(w: InProcessWorker, name: str, spec: dict[str, Any]) -> None:
    """Define an agent, asserting success (with an id no test uses for its runs)."""
    req_id = next(_define_ids)
    reply = await w.request({"op": "define_agent", "id": req_id, "name": name, "spec": spec})
    assert reply["type"] == "result", reply
    assert reply["output"] == name


@contextlib.contextmanager
def override_model(svc: AgentService, name: str, model: Model) -> Iterator[None]:
    """Run the defined agent ``name`` on ``model`` (a FunctionModel) inside the block.

    Requests must be *sent* inside the block: the run's task copies the context.
    """
    with svc.agent(name).agent.override(model=model):
        yield


def chunks(w: InProcessWorker, req_id: int) -> list[tuple[str, Any]]:
    """``(event, data)`` of every chunk of ``req_id``, checking ``seq`` is 0, 1, 2, ..."""
    frames = [f for f in w.frames(req_id) if f["type"] == "chunk"]
    assert [f["seq"] for f in frames] == list(range(len(frames)))
    return [(str(f["event"]), f["data"]) for f in frames]


def error_of(reply: Frame) -> Frame:
    """The ``error`` map of an error frame (asserting it is one)."""
    assert reply["type"] == "error", reply
    err: Frame = reply["error"]
    return err


def part_kinds(messages: list[Frame]) -> list[str]:
    """The ``part_kind`` of every part of every message, in order."""
    return [p["part_kind"] for msg in messages for p in msg["parts"]]


def outcomes(messages: list[Frame]) -> list[tuple[str, str]]:
    """``(tool_name, outcome)`` of every tool return part, in order."""
    return [
        (p["tool_name"], p.get("outcome", "success"))
        for msg in messages
        for p in msg["parts"]
        if p["part_kind"] in ("tool-return", "retry-prompt")
    ]

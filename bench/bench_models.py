"""Agents and functions the benchmarks load into workers with ``--module bench_models``.

(``bench/`` must be on ``PYTHONPATH``; the bench drivers arrange that.) The same
agents are imported in-process for the baselines, so both sides run identical code.

* ``sleepy``: a ``FunctionModel`` that awaits ``asyncio.sleep(0.1)`` and answers text
  (the 1000-concurrent-runs benchmark: model latency, little CPU);
* ``cpu``: a ``FunctionModel`` that answers at once (CPU-bound runs: all the cost is
  pydantic-ai and the port);
* ``hold``: sleeps ``BENCH_HOLD_S`` seconds (default 5) so runs stay in flight
  (memory per in-flight run);
* ``streamer``: a ``FunctionModel`` whose stream function yields ``STREAM_DELTAS``
  (100) text deltas at once (streaming throughput: deltas/s);
* ``add``: an ``inline`` function, as in ``tests/support/fixture_functions.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from axon_port import registry

HOLD_S = float(os.environ.get("BENCH_HOLD_S", "5"))


async def _sleepy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    await asyncio.sleep(0.1)
    return ModelResponse(parts=[TextPart("done")])


async def _cpu(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    return ModelResponse(parts=[TextPart("done")])


async def _hold(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    await asyncio.sleep(HOLD_S)
    return ModelResponse(parts=[TextPart("done")])


STREAM_DELTAS = 100


async def _stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    for i in range(STREAM_DELTAS):
        yield f"w{i} "


AGENTS: dict[str, Agent[None, str]] = {
    "sleepy": Agent(FunctionModel(_sleepy), name="sleepy"),
    "cpu": Agent(FunctionModel(_cpu), name="cpu"),
    "hold": Agent(FunctionModel(_hold), name="hold"),
    "streamer": Agent(FunctionModel(_cpu, stream_function=_stream), name="streamer"),
}
for _name, _agent in AGENTS.items():
    registry.register_agent(_name, _agent)


@registry.function(inline=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

"""A run through the worker leaves no reference cycles of its own.

Whatever pydantic-ai's own run leaves for the cycle collector (a few graph-step
objects), a run served by the worker must leave no more: the worker's bookkeeping
(the run's state, its tasks, their contexts) is freed by reference counting. A cycle
through it keeps the whole run (messages, tasks, coroutines, ~110 objects) alive
until the next collection, which then costs ~55 µs per run.
"""

from __future__ import annotations

import collections
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from agents_fixtures import run, worker
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel


async def _garbage(fn: Callable[[int], Awaitable[None]], n: int = 20) -> collections.Counter[str]:
    """The cyclic garbage ``n`` calls of ``fn`` leave, by type name (after 3 warm calls)."""
    for i in range(3):
        await fn(i)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in range(n):
            await fn(1000 + i)
        gc.collect()
        found = collections.Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


def _secret() -> str:
    return "s3cret"


@pytest.mark.parametrize(
    ("extra", "tools"),
    [
        ({}, False),
        ({"stream": True}, False),
        ({"spec": {"model": "test", "tools": ["secret"]}}, True),
        (
            {
                "history": [
                    {"kind": "request", "parts": [{"part_kind": "user-prompt", "content": "x"}]}
                ]
            },
            False,
        ),
    ],
    ids=["plain", "stream", "python-tool", "history"],
)
def test_a_run_leaves_no_more_cyclic_garbage_than_pydantic_ai_in_process(
    extra: dict[str, Any], tools: bool
) -> None:
    baseline_agent = Agent(TestModel(), tools=[_secret] if tools else [])

    async def inproc(_i: int) -> None:
        await baseline_agent.run("hi")

    async def main() -> None:
        async with worker("etf") as w:

            async def through_worker(i: int) -> None:
                frame = {"op": "run", "id": 100 + i, "spec": {"model": "test"}, "prompt": "hi"}
                reply = await w.request({**frame, **extra})
                assert reply["type"] == "result", reply

            theirs = await _garbage(inproc)
            ours = await _garbage(through_worker)
        assert sum(theirs.values()) > 0  # the check can see a cycle when there is one
        extra_garbage = ours - theirs
        assert not extra_garbage, f"the worker's runs left cycles: {extra_garbage.most_common(10)}"

    run(main())


def test_the_run_tasks_repr_is_short_and_names_its_state() -> None:
    """anyio puts the current task's repr in every cancel scope's reason: the run's task
    has a short one (no callbacks, no awaited future's repr, no line lookup)."""
    import asyncio

    from axon_port.agents._service import _RunTask

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate: asyncio.Future[None] = loop.create_future()

        async def wait() -> None:
            await gate

        task: _RunTask[None] = _RunTask(wait(), loop=loop)
        await asyncio.sleep(0)
        assert repr(task) == f"<Task pending name={task.get_name()!r} (an axon_port run)>"
        task.cancel()
        assert repr(task).startswith("<Task cancelling ")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert repr(task).startswith("<Task cancelled ")
        done: _RunTask[int] = _RunTask(asyncio.sleep(0, 7), loop=loop)
        assert await done == 7
        assert repr(done).startswith("<Task finished ")

    run(main())

"""Bounded waiting for in-process tests: one loop per test, polls with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a test coroutine on a fresh event loop."""
    return asyncio.run(coro)


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``pred`` on the loop until it holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)

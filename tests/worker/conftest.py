"""Fixtures for in-process worker tests: a fresh registry and a runner."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from axon_port.errors import AxonError
from axon_port.registry import Registry

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a test coroutine on a fresh event loop."""
    return asyncio.run(coro)


@pytest.fixture
def registry() -> Registry:
    """A registry with a few functions, isolated from the process-wide one."""
    reg = Registry()
    release = threading.Event()

    def add(a: int, b: int) -> int:
        return a + b

    def blocking_wait(seconds: float) -> str:
        release.wait(seconds)
        return "released"

    async def sleep_ms(ms: int) -> str:
        await asyncio.sleep(ms / 1000)
        return "slept"

    def boom() -> None:
        raise ValueError("boom")

    def axon_boom() -> None:
        raise AxonError("custom failure", kind="custom_kind", details={"x": 1}, retryable=True)

    def returns_set() -> set[int]:
        return {1, 2}

    async def chatty() -> str:
        import logging

        logging.getLogger("user.chatty").warning("hello from %s", "chatty")
        return "done"

    reg.add_function(add, inline=True)
    reg.add_function(add, name="add_threaded")
    reg.add_function(blocking_wait)
    reg.add_function(sleep_ms)
    reg.add_function(boom)
    reg.add_function(axon_boom)
    reg.add_function(returns_set, inline=True)
    reg.add_function(chatty)
    reg.release = release  # type: ignore[attr-defined]
    return reg


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``pred`` on the loop until it holds, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


__all__ = ["Awaitable", "run", "until"]

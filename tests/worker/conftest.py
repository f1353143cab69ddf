"""Fixtures for in-process worker tests: a fresh registry and a runner."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import TypeVar

import pytest
from openai_loopback import LOOPBACK_KEY_ENV
from pydantic_ai import models
from waiting import run as run  # re-exported for the tests
from waiting import until as until

from axon_port.errors import AxonError
from axon_port.registry import Registry

T = TypeVar("T")


@pytest.fixture
def loopback_requests() -> Iterator[None]:
    """Real model requests, allowed for this test only: they go to 127.0.0.1, with the
    loopback model map's key in the environment."""
    models.ALLOW_MODEL_REQUESTS = True
    os.environ[LOOPBACK_KEY_ENV] = "sk-loopback"
    try:
        yield
    finally:
        models.ALLOW_MODEL_REQUESTS = False


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

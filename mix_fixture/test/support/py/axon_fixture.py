"""Functions and tools the ExUnit suite calls on the real worker.

Loaded with ``--module axon_fixture`` (this directory is put on PYTHONPATH by
``AxonPort.TestHelpers``). Imports nothing heavy, so core-only tests start fast.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import axon_port.registry as r

log = logging.getLogger("axon_fixture")


@r.function(inline=True)
def add(a, b):
    """Adds two numbers."""
    return a + b


@r.function(inline=True)
def echo(value):
    """Returns its argument unchanged (round-trips a term)."""
    return value


@r.function(inline=True)
def kwargs_echo(*args, **kwargs):
    """Returns [args, kwargs]."""
    return [list(args), kwargs]


@r.function
def sleep_ms(ms):
    """Blocks a worker thread for ``ms`` milliseconds."""
    time.sleep(ms / 1000)
    return ms


@r.function
async def async_sleep_ms(ms):
    """Sleeps on the event loop for ``ms`` milliseconds."""
    await asyncio.sleep(ms / 1000)
    return ms


@r.function(inline=True)
def boom():
    """Always fails."""
    raise ValueError("boom")


@r.function(inline=True)
def getpid():
    """The worker's OS pid."""
    return os.getpid()


@r.function(inline=True)
def noisy(text):
    """Writes junk to fd 1 and stdout; the frame stream must stay clean."""
    print("junk on stdout", text)
    os.write(1, b"raw junk on fd 1\n")
    return text


@r.function(inline=True)
def log_warning(message):
    """Emits a warning log record (forwarded as a `log` frame)."""
    log.warning("%s", message)
    return True


@r.tool
def lookup_city(ctx, city: str) -> str:
    """Looks up a city's weather."""
    return f"sunny in {city}"


@r.tool
def customer_balance(ctx, include_pending: bool) -> float:
    """Returns the customer's current account balance."""
    return 123.45

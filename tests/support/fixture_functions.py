"""Functions the process tests load into real workers with ``--module fixture_functions``."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time

from axon_port import registry

log = logging.getLogger("fixture_functions")


@registry.function(inline=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@registry.function
def block_forever() -> None:
    """A synchronous function that never returns (runs in a worker thread)."""
    while True:
        time.sleep(3600)


@registry.function(inline=True)
def block_loop_forever() -> None:
    """A synchronous *inline* function that blocks the event loop itself."""
    while True:
        time.sleep(3600)


@registry.function
async def sleep_ms(ms: int) -> str:
    """Sleep asynchronously."""
    await asyncio.sleep(ms / 1000)
    return "slept"


@registry.function(inline=True)
def noisy(text: str) -> str:
    """Write junk to fd 1 in every way user code might, then return."""
    print(text)
    sys.stdout.flush()
    os.write(1, text.encode() + b"\n")
    subprocess.run(["echo", text], check=True)
    log.info("noisy wrote %s", text)
    return text


@registry.function(inline=True)
def reverse_bytes(data: bytes) -> bytes:
    """The bytes reversed (to check binaries travel as bytes both ways)."""
    return bytes(reversed(data))


@registry.function
async def stubborn() -> str:
    """Ignore every cancellation (a misbehaving tool): shutdown must still end the worker."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue


@registry.function(inline=True)
def blob(n: int) -> str:
    """A reply of ``n`` bytes."""
    return "x" * n

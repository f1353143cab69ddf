"""Warming the worker's agent path before the client's first run (see :func:`warm_up`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from axon_port.agents._service import AgentService
from axon_port.registry import Registry

__all__ = ["warm_up"]


class _WarmContext:
    """A request context for :func:`warm_up`: frames go nowhere."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.id = 0
        self.params = params
        self.cancel_reason: str | None = None

    def send(self, type_: str, fields: dict[str, Any]) -> None:
        pass

    def chunk(self, event: str, data: Any) -> None:
        pass

    async def drain(self) -> None:
        pass


def warm_up() -> None:
    """Serve one tiny run (``TestModel``, text output) on a private event loop, so the
    parts pydantic-ai builds lazily on a first run are ready before the client's.

    Measured: a first plain run later on takes ~8 ms instead of ~58 ms, a first
    structured one ~40 ms instead of ~89 ms. Warming structured output and streaming
    too would save ~25 ms more but costs ~4 MB of idle RSS (jsonschema and friends),
    which the idle-RSS budget (1.2x a bare ``import pydantic_ai``) cannot spare.
    Call it from a background thread.
    """
    service = AgentService(Registry())
    params = {"op": "run", "id": 0, "spec": {"model": "test"}, "prompt": "warm up"}
    asyncio.run(service.run(_WarmContext(params)))

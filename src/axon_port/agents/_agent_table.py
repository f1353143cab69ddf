"""Built agents by name and by inline spec, and when their MCP servers stop.

Theory of operation: a built agent is *entered* once (its MCP servers started,
its model's client opened) and shared by every run that uses it. A run holds the
agent from the moment it looks it up until it answers (:meth:`AgentTable.acquire`
and :meth:`AgentTable.release`, around the whole run, whatever ends it: a result,
an error, ``cancel``, ``timeout_ms``). When the agent is replaced (``define_agent``
with the same name, a name registered again from Python, an inline spec evicted
from the cache), lookups get the new agent at once and the old one is *retired*:
stopped then and there if no run holds it, otherwise by the last run holding it,
as that run ends, so an MCP tool call late in an old run still reaches its
server. The worker's exit (:meth:`AgentTable.aclose`) stops every agent, including
retired ones that a run still holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from pydantic_ai.agent import Agent

from axon_port.agents._spec import BuiltAgent, build_python_agent, build_spec_agent, spec_key
from axon_port.errors import AxonError
from axon_port.registry import Registry

__all__ = ["AgentTable"]

logger = logging.getLogger(__name__)

_INLINE_CACHE = 256


class AgentTable:
    """The built agents of a service: current ones by name and inline spec, retired ones
    still held by a run, and the stops in progress."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        #: name -> (the registry value it was built from, built agent)
        self.named: dict[str, tuple[Any, BuiltAgent]] = {}
        self.inline: OrderedDict[str, BuiltAgent] = OrderedDict()
        #: Replaced agents that runs still hold, by ``id``: the last run stops them.
        self.retired: dict[int, BuiltAgent] = {}
        self._stopping: set[asyncio.Future[Any]] = set()

    async def define(self, name: str, spec: Any) -> None:
        """Build and start ``spec`` (``mcp_error`` registers nothing), then make it ``name``."""
        built = build_spec_agent(name, spec, self.registry)
        await built.start()
        self.registry.add_agent(name, spec)
        old = self.named.get(name)
        self.named[name] = (spec, built)
        if old is not None and old[1] is not built:
            await self._retire(old[1])

    def get(self, name: str) -> BuiltAgent:
        """The built agent registered as ``name`` (``unknown_agent`` if none)."""
        value = self.registry.agents.get(name)
        if value is None:
            raise AxonError(
                f"no agent named {name!r}", kind="unknown_agent", details={"name": name}
            )
        cached = self.named.get(name)
        if cached is not None and cached[0] is value:
            return cached[1]
        if isinstance(value, Agent):
            built = build_python_agent(name, value)
        else:
            built = build_spec_agent(name, value, self.registry)
        self.named[name] = (value, built)
        if cached is not None:  # registered again outside define_agent
            self._retire_soon(cached[1])
        return built

    def get_inline(self, spec: Any) -> BuiltAgent:
        """The agent of an inline spec, built once per distinct spec (an LRU of 256)."""
        key = spec_key(spec)
        built = self.inline.get(key)
        if built is None:
            built = build_spec_agent("inline", spec, self.registry)
            self.inline[key] = built
            if len(self.inline) > _INLINE_CACHE:
                _, evicted = self.inline.popitem(last=False)
                self._retire_soon(evicted)
        else:
            self.inline.move_to_end(key)
        return built

    def acquire(self, built: BuiltAgent) -> None:
        """A run starts using ``built`` (call before the run's first ``await``)."""
        built.users += 1

    def release(self, built: BuiltAgent) -> None:
        """A run that used ``built`` ended; the last run of a retired agent stops it.

        The stop runs in the background, so the run's answer does not wait for its
        servers to exit; :meth:`aclose` waits for stops still in progress."""
        built.users -= 1
        if built.retired and built.users <= 0:
            self.retired.pop(id(built), None)
            self._background(built.stop())

    async def aclose(self) -> None:
        """Stop every agent's MCP servers, retired ones too (the worker is exiting)."""
        built = [b for _, b in self.named.values()]
        built += [*self.inline.values(), *self.retired.values()]
        self.named.clear()
        self.inline.clear()
        self.retired.clear()
        for b in built:
            b.retired = True  # a run still holding it stops it again: a no-op
            await b.stop()
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    async def _retire(self, built: BuiltAgent) -> None:
        """``built`` was replaced: stop it now if no run holds it, else at its last run."""
        built.retired = True
        if built.users <= 0:
            await built.stop()
        else:
            logger.debug("agent %r replaced: its %d run(s) keep it", built.name, built.users)
            self.retired[id(built)] = built

    def _retire_soon(self, built: BuiltAgent) -> None:
        built.retired = True
        if built.users <= 0:
            self._background(built.stop())
        else:
            self.retired[id(built)] = built

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

"""The worker: the typed request layer on top of the dispatcher.

Theory of operation: :class:`Worker` owns a :class:`~axon_port.dispatcher.Dispatcher`
and registers the handlers for every op of protocol v1. Core ops (``ping``,
``describe``, ``stats``, ``set_log_level``, ``shutdown``) are served here,
``call`` by :class:`axon_port._functions.FunctionRunner` (which owns the thread
pool for synchronous functions); agent ops (``define_agent``, ``run``,
``complete``, ``tool_result``) are routed to :class:`axon_port.agents.AgentService`,
which is imported lazily: the ``ready`` frame goes out before pydantic-ai is
imported, and :meth:`Worker.start_warmup` imports it in a background thread meanwhile.
Nothing here touches file descriptors; the transport is given as callables.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import logging
import os
import platform
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from axon_port import _secrets
from axon_port._framing import DEFAULT_MAX_FRAME
from axon_port._functions import FunctionRunner
from axon_port._logging import parse_level
from axon_port.codecs import Codec, get_codec
from axon_port.dispatcher import Dispatcher, RequestContext
from axon_port.errors import AxonError, BadRequest
from axon_port.messages import KEPT_ENCODED
from axon_port.registry import REGISTRY, Registry

__all__ = ["PROTOCOL_VERSION", "Worker", "WorkerConfig"]

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
#: How long cancelled work may take to unwind at shutdown before it is abandoned.
UNWIND_GRACE = 0.75
CAPABILITIES = [
    "ping", "call", "cancel", "describe", "shutdown", "stats", "set_log_level",
    "define_agent", "run", "complete", "tool_result", "stream", "remote_tools",
    "timeout_ms", "compressed_etf",
]  # fmt: skip
Fields = dict[str, Any]


@dataclass
class WorkerConfig:
    """Start-up settings (the command line, or a test)."""

    codec: str = "etf"
    max_frame: int = DEFAULT_MAX_FRAME
    max_inflight: int = 10_000
    threads: int = 32
    shutdown_grace: float = 5.0
    eof_grace: float = 0.25
    warm: bool = True
    modules: list[str] = field(default_factory=list)
    #: env vars a request may name as ``api_key_env`` (shell patterns; empty: ``*_API_KEY``)
    allow_env: list[str] = field(default_factory=list)
    #: base URL prefixes a request may use (empty: any)
    allow_base_url: list[str] = field(default_factory=list)


def _version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, read from its ``.dist-info``
    folder name (``importlib.metadata`` would add ~30 ms to start-up)."""
    prefix = dist.replace("-", "_").lower() + "-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and name.lower().startswith(prefix):
                return name[len(prefix) : -len(".dist-info")]
    return None


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Worker:
    """Serves protocol v1 over whatever ``write``/``drain`` the caller provides."""

    def __init__(
        self,
        config: WorkerConfig,
        write: Callable[[bytes], None],
        *,
        drain: Callable[[], Awaitable[None]] | None = None,
        registry: Registry = REGISTRY,
        transport_info: Callable[[], Fields] | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        # ETF keeps a run's history encoded: the agents layer's cache keys each message
        # by its bytes and decodes only those it has not seen (see messages.KEPT_ENCODED).
        self.codec: Codec = get_codec(
            config.codec, max_frame=config.max_frame, keep_encoded=KEPT_ENCODED
        )
        _secrets.configure(config.allow_env, config.allow_base_url)
        kwargs: dict[str, Any] = {"max_inflight": config.max_inflight}
        if drain is not None:
            kwargs["drain"] = drain
        self.dispatcher = Dispatcher(self.codec, write, **kwargs)
        self._transport_info = transport_info
        self.functions = FunctionRunner(registry, config.threads)
        self._agents: Any = None
        self._agents_import: Future[Any] | None = None
        self._agents_wanted = False
        self.stopped = asyncio.Event()
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None
        d = self.dispatcher
        d.register("ping", self._ping, reply="pong")
        d.register("call", self.functions.call)
        d.register("describe", self._describe)
        d.register("stats", self._stats)
        d.register("set_log_level", self._set_log_level)
        d.register("shutdown", self._shutdown, closes=True)
        for op in ("define_agent", "run", "complete"):
            d.register(op, functools.partial(self._agent_op, op))
        d.register_notification("tool_result", self._tool_result)

    # -- start-up ------------------------------------------------------------

    def load_modules(self) -> None:
        """Import every ``--module``; they register functions, tools and agents."""
        for name in self.config.modules:
            importlib.import_module(name)

    def ready_frame(self) -> Fields:
        """The ``ready`` frame, sent once, first."""
        return {
            "type": "ready",
            "protocol": PROTOCOL_VERSION,
            "codec": self.codec.name,
            "pid": os.getpid(),
            "versions": {
                "python": platform.python_version(),
                "axon_port": _version("axon_port"),
                "pydantic_ai": _version("pydantic-ai-slim") or _version("pydantic-ai"),
            },
            "limits": {
                "max_frame": self.config.max_frame,
                "max_inflight": self.config.max_inflight,
            },
            "capabilities": list(CAPABILITIES),
        }

    def start_warmup(self) -> None:
        """Import the agents layer (and pydantic-ai) in a background thread."""
        if self._agents_import is None:
            self._agents_import = Future()
            threading.Thread(target=self._import_agents, name="axon-port-warm", daemon=True).start()

    def _import_agents(self) -> None:
        assert self._agents_import is not None
        # The import holds the GIL for up to the switch interval at a time; a
        # short interval while it runs keeps request latency flat meanwhile.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            module = importlib.import_module("axon_port.agents")
        except BaseException as exc:
            if not self._agents_import.done():
                self._agents_import.set_exception(exc)
        else:
            if not self._agents_import.done():
                self._agents_import.set_result(module)
            # Warm what a first run builds lazily, unless a real agent request is
            # already waiting: then it does the warming, without competition.
            if not self._agents_wanted:
                try:
                    module.warm_up()
                except Exception:  # a warm-up problem must never cost the worker its agents
                    logger.debug("agent warm-up failed", exc_info=True)
            # Start-up objects are long-lived: keep them out of every collection.
            gc.freeze()
        finally:
            sys.setswitchinterval(interval)

    async def agent_service(self) -> Any:
        """The lazily created ``AgentService`` (awaits the background import)."""
        if self._agents is None:
            self._agents_wanted = True
            self.start_warmup()
            assert self._agents_import is not None
            try:
                # Shielded: cancelling one waiting request must not cancel the
                # import every later agent request depends on.
                module = await asyncio.shield(asyncio.wrap_future(self._agents_import))
            except ImportError as exc:
                raise AxonError(f"agents are unavailable: {exc}", kind="internal") from exc
            if self._agents is None:
                self._agents = module.AgentService(self.registry)
        return self._agents

    # -- core ops --------------------------------------------------------------

    def _ping(self, ctx: RequestContext) -> Fields:
        return {}

    async def _describe(self, ctx: RequestContext) -> Fields:
        out: Fields = {"functions": self.functions.describe(), "agents": [], "tools": []}
        try:
            service = await self.agent_service()
        except AxonError as exc:
            logger.warning("describe without agents: %s", exc.message)
        else:
            out.update(service.describe())
        return {"output": out}

    def _stats(self, ctx: RequestContext) -> Fields:
        out = self.dispatcher.stats()
        out["rss_bytes"] = _rss_bytes()
        out["agents_loaded"] = self._agents is not None
        out["threads"] = self.config.threads
        out["threads_busy"] = self.functions.threads_busy
        if self._transport_info is not None:
            out.update(self._transport_info())
        return {"output": out}

    def _set_log_level(self, ctx: RequestContext) -> Fields:
        try:
            level = parse_level(ctx.params["level"])
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        logging.getLogger().setLevel(level)
        return {"output": logging.getLevelName(level).lower()}

    async def _shutdown(self, ctx: RequestContext) -> Fields:
        grace_ms = ctx.params.get("grace_ms")  # checked by check_fields: 0..MAX_MS
        grace = None if grace_ms is None else grace_ms / 1000
        cancelled = await self.drain(self.config.shutdown_grace if grace is None else grace,
                                     exclude=ctx.id)  # fmt: skip
        self.stopped.set()
        return {"output": {"cancelled": cancelled}}

    async def close_agents(self, timeout: float) -> None:
        """Stop the agents' MCP servers cleanly, within ``timeout`` s (the worker is
        exiting; a stdio server that does not stop in time still dies with the worker,
        through its parent-death signal)."""
        if self._agents is None:
            return
        try:
            await asyncio.wait_for(self._agents.aclose(), timeout)
        except TimeoutError:
            logger.info("MCP servers still stopping after %.2f s: they end with us", timeout)
        except Exception:  # exiting anyway: the reason goes to stderr, not the wire
            logger.warning("stopping the agents' MCP servers failed", exc_info=True)

    async def drain(self, grace: float, *, exclude: int | None = None) -> int:
        """Stop accepting, let in-flight work finish for ``grace`` s, cancel the rest.

        Returns the number cancelled. Work that has not unwound 0.75 s after its
        cancellation is answered ``shutdown`` at once (:meth:`Dispatcher.abandon_all`),
        so this always returns within ``grace + 0.75`` s."""
        d = self.dispatcher
        d.accepting = False
        try:
            await asyncio.wait_for(d.wait_idle(exclude=exclude), grace)
            return 0
        except TimeoutError:
            n = d.cancel_all("shutdown", exclude=exclude)
        try:
            # 0.75 s to unwind: with the flush and teardown, the process is gone
            # within grace + 1 s.
            await asyncio.wait_for(d.wait_idle(exclude=exclude), UNWIND_GRACE)
        except TimeoutError:
            keep = d.inflight.pop(exclude, None) if exclude is not None else None
            stuck = d.abandon_all("shutdown")
            if keep is not None and exclude is not None:
                d.inflight[exclude] = keep
            logger.error("%d request(s) ignored cancellation; answered and abandoned", stuck)
        return n

    def stop_soon(self, grace: float) -> None:
        """Schedule :meth:`stop` (from a signal handler or the transport's EOF callback)."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self.stop(grace))

    async def stop(self, grace: float) -> None:
        """Drain (no reply of its own) and signal :attr:`stopped`: SIGTERM and input EOF."""
        if self._stopping:
            return
        self._stopping = True
        try:
            await self.drain(grace)
        finally:
            self.stopped.set()

    # -- agent ops -------------------------------------------------------------

    async def _agent_op(self, op: str, ctx: RequestContext) -> Fields:
        service = await self.agent_service()
        result: Fields = await getattr(service, op)(ctx)
        return result

    def _tool_result(self, params: Mapping[str, Any]) -> None:
        if self._agents is None:
            logger.warning("tool_result for run %s: no agent run is in flight", params.get("id"))
            return
        self._agents.tool_result(params)

    def close(self) -> None:
        """Release the thread pool without waiting for blocked functions."""
        self.functions.close()

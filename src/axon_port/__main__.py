"""``python -m axon_port``: arguments, logging, fds, the event loop, exit codes.

Exit codes: 0 after ``shutdown``, SIGTERM or input EOF; 2 for bad command-line
arguments; 3 when a ``--module`` fails to import (before ``ready`` is sent).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from axon_port._framing import DEFAULT_MAX_FRAME, MAX_WIRE_FRAME
from axon_port._logging import LEVELS, FrameLogHandler, parse_level
from axon_port._transport import (
    FdTransport,
    claim_input,
    claim_output,
    set_parent_death_signal,
    shares_one_cpu_with_parent,
)
from axon_port.codecs import CODEC_NAMES
from axon_port.worker import Worker, WorkerConfig

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_MODULE = 3
#: Microseconds the loop keeps polling after the last reply before it blocks: longer
#: than a BEAM's turn-around between one sequential request and the next (~200-300 µs
#: measured), short enough that an idle worker costs nothing measurable.
DEFAULT_IDLE_SPIN_US = 1000


def _fds(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected IN,OUT, e.g. 3,4") from None
    return a, b


def _spin_us(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("expected 0..1000000")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="axon-port",
        description="Serve pydantic-ai agents to an Erlang/Elixir Port over {packet,4} frames. "
        "Run 'axon-port demo' for a guided demo, 'axon-port pipe --help' to pipe JSON lines.",
    )
    p.add_argument("--codec", choices=CODEC_NAMES, default="etf", help="payload codec (etf)")
    p.add_argument(
        "--fds",
        type=_fds,
        default=(0, 1),
        metavar="IN,OUT",
        help="frame fds; 3,4 for Elixir's :nouse_stdio (default: stdin/stdout)",
    )
    p.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="import NAME at start-up to register functions/tools/agents (repeatable)",
    )
    p.add_argument("--max-frame", type=int, default=DEFAULT_MAX_FRAME, metavar="BYTES")
    p.add_argument(
        "--idle-spin-us",
        type=_spin_us,
        default=DEFAULT_IDLE_SPIN_US,
        metavar="US",
        help="keep polling this long after going idle before blocking"
        f" (default {DEFAULT_IDLE_SPIN_US}; 0: block at once; off when pinned to the"
        " one CPU of its parent)",
    )
    p.add_argument("--max-inflight", type=int, default=10_000, metavar="N")
    p.add_argument(
        "--threads", type=int, default=32, metavar="N", help="threads for synchronous functions"
    )
    p.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="event loop: uvloop if installed (auto), or force one",
    )
    p.add_argument("--log-level", choices=list(LEVELS), default="info")
    p.add_argument("--log-stderr", action="store_true", help="also write logs to stderr")
    p.add_argument("--shutdown-grace", type=float, default=5.0, metavar="SECONDS")
    p.add_argument(
        "--no-warm",
        dest="warm",
        action="store_false",
        help="do not import pydantic-ai in the background after ready",
    )
    p.add_argument("--no-parent-death-signal", dest="pdeathsig", action="store_false")
    p.add_argument(
        "--allow-env",
        action="append",
        default=[],
        metavar="PATTERN",
        help="env vars a request may name as api_key_env (shell pattern, repeatable;"
        " default *_API_KEY)",
    )
    p.add_argument(
        "--allow-base-url",
        action="append",
        default=[],
        metavar="PREFIX",
        help="base URLs a request may send credentials to (repeatable; default: any)",
    )
    return p  # fmt: skip


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when asked for or (``auto``) when installed: it halves the event loop's
    per-wake-up cost, which is most of a ping's round trip; else asyncio's own."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m axon_port`` and ``axon-port``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        from axon_port.demo import main as demo_main

        return int(demo_main(argv[1:]))
    if argv[:1] == ["pipe"]:
        from axon_port._pipe import main as pipe_main

        return pipe_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.max_frame < 1 or args.max_inflight < 1 or args.threads < 1:
        print("axon-port: --max-frame, --max-inflight and --threads must be >= 1", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    if args.max_frame > MAX_WIRE_FRAME:
        limit = f"axon-port: --max-frame must be at most {MAX_WIRE_FRAME} (the {{packet,4}} limit)"
        print(limit, file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    if args.shutdown_grace < 0 or args.shutdown_grace != args.shutdown_grace:
        print("axon-port: --shutdown-grace must be >= 0", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    in_fd, out_fd = args.fds
    try:
        out = claim_output(out_fd)
        inp = claim_input(in_fd)
    except OSError as exc:
        print(f"axon-port: cannot use fds {in_fd},{out_fd}: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    if args.pdeathsig:
        set_parent_death_signal(signal.SIGKILL)
    config = WorkerConfig(
        codec=args.codec,
        max_frame=args.max_frame,
        max_inflight=args.max_inflight,
        threads=args.threads,
        shutdown_grace=args.shutdown_grace,
        warm=args.warm,
        modules=args.module,
        allow_env=args.allow_env,
        allow_base_url=args.allow_base_url,
    )
    root = logging.getLogger()
    root.setLevel(parse_level(args.log_level))
    if args.log_stderr:
        root.addHandler(logging.StreamHandler(sys.stderr))
    logging.captureWarnings(True)
    # Fewer, larger young-generation collections: request handling allocates
    # many short-lived objects and default thresholds collect far too often.
    gc.set_threshold(50_000, 20, 100)
    # Not closed on purpose: closing cancels the remaining tasks and waits for
    # them, and a task that ignores cancellation would then keep the process
    # alive. Every id is answered and the output flushed before run() returns.
    runner = asyncio.Runner(loop_factory=_loop_factory(args.loop))
    code = runner.run(_serve(config, inp, out, args.idle_spin_us))
    sys.stderr.flush()
    # Threads blocked in user code must not keep a finished worker alive.
    os._exit(code)


async def _serve(config: WorkerConfig, in_fd: int, out_fd: int, idle_spin_us: int) -> int:
    loop = asyncio.get_running_loop()
    worker: Worker | None = None

    def on_events(events: Any) -> None:
        assert worker is not None
        worker.dispatcher.feed(events)

    def on_eof() -> None:
        assert worker is not None
        worker.stop_soon(config.eof_grace)

    transport = FdTransport(
        in_fd,
        out_fd,
        on_events=on_events,
        on_eof=on_eof,
        max_frame=config.max_frame,
        # Pinned to the client's one CPU, a spin would only keep the client waiting.
        idle_spin=0.0 if shares_one_cpu_with_parent() else idle_spin_us / 1e6,
    )
    worker = Worker(config, transport.write, drain=transport.drain, transport_info=transport.info)
    handler = FrameLogHandler(worker.dispatcher.send, loop)
    logging.getLogger().addHandler(handler)
    try:
        worker.load_modules()
    except BaseException as exc:
        logging.getLogger().removeHandler(handler)
        print(f"axon-port: --module failed: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_MODULE
    worker.dispatcher.send(worker.ready_frame())
    transport.start(loop, is_idle=lambda: not worker.dispatcher.inflight)
    loop.add_signal_handler(signal.SIGTERM, worker.stop_soon, config.shutdown_grace)
    if config.warm:
        worker.start_warmup()
    await worker.stopped.wait()
    # drain() has answered every id, so the agents' MCP servers can stop now, while
    # the shutdown reply itself may still be leaving (bounded: exit stays within
    # grace + 1 s).
    closing = asyncio.ensure_future(worker.close_agents(0.25))
    try:
        await asyncio.wait_for(worker.dispatcher.wait_idle(), 0.2)
    except TimeoutError:
        worker.dispatcher.abandon_all("shutdown")
    logging.getLogger().removeHandler(handler)
    transport.flush_blocking()
    await closing
    worker.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

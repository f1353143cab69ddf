"""MCP servers from a spec, against real servers made with the official ``mcp`` SDK."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents_fixtures import define, error_of, run, service, worker

from axon_port.client import PortClient

SERVER = str(Path(__file__).parents[1] / "support" / "mcp_servers" / "calc_server.py")
STDIO = {"MCP": {"command": sys.executable, "args": [SERVER]}}
CALLS = {
    "tool_calls": [
        {"tool": "add", "args": {"a": 2, "b": 3}, "id": "c1"},
        {"tool": "server_pid", "args": {}, "id": "c2"},
        {"tool": "customer_balance", "args": {"include_pending": False}, "id": "c3"},
    ]
}


def spec(*caps: Any) -> dict[str, Any]:
    return {
        "model": {"provider": "script", "responses": [CALLS, "done"]},
        "capabilities": list(caps),
        "tools": ["customer_balance"],
    }


def returns(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["type"] == "result", reply
    return {
        p["tool_name"]: p["content"]
        for m in reply["messages"]
        for p in m["parts"]
        if p["part_kind"] == "tool-return"
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (ProcessLookupError, OSError):
        return False


def wait_gone(pid: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while alive(pid):
        assert time.monotonic() < end, f"MCP server {pid} still alive"
        time.sleep(0.02)


def test_stdio_server_tools_mix_with_python_tools_and_live_as_long_as_the_agent() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "calc", spec(STDIO))
            frame = {"op": "run", "agent": "calc", "prompt": "x", "deps": {"customer_id": 1}}
            first = returns(await w.request({**frame, "id": 1}))
            second = returns(await w.request({**frame, "id": 2}))
            assert first["add"] == 5 and first["customer_balance"] == 123.45
            pid = first["server_pid"]
            assert second["server_pid"] == pid  # started once, reused by runs
            await define(w, "calc", spec(STDIO))  # redefined: the old server stops
            wait_gone(pid)
            third = returns(await w.request({**frame, "id": 3}))
            assert third["server_pid"] != pid
            await (await service(w)).aclose()
            wait_gone(third["server_pid"])

    run(main())


def test_a_server_that_cannot_start_is_an_mcp_error_and_registers_nothing() -> None:
    async def main() -> None:
        async with worker() as w:
            bad = {"MCP": {"command": "/no/such/server", "init_timeout": 5}}
            reply = await w.request({"op": "define_agent", "id": 1, "name": "b", "spec": spec(bad)})
            err = error_of(reply)
            assert err["kind"] == "mcp_error", err
            assert "failed to start" in err["message"]
            assert "b" not in w.registry.agents
            assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"

    run(main())


@pytest.fixture
def http_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)], stderr=subprocess.DEVNULL
    )
    try:
        end = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < end and proc.poll() is None, "HTTP MCP server down"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait(10)


def test_streamable_http_server_from_a_url(http_server: str) -> None:
    async def main() -> None:
        async with worker() as w:
            cap = {"MCP": {"url": http_server, "headers": {"X-Test": "1"}}}
            await define(w, "h", spec(cap))
            got = returns(
                await w.request(
                    {"op": "run", "id": 1, "agent": "h", "prompt": "x", "deps": {"customer_id": 2}}
                )
            )
            assert got["add"] == 5 and got["customer_balance"] == 10.0
            await (await service(w)).aclose()

    run(main())


def test_a_stdio_server_dies_with_a_sigkilled_worker() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "support")}
    with PortClient.spawn("etf", ["--module", "fixture_functions", "--no-warm"], env=env) as c:
        one = {"model": {"provider": "script", "responses": [CALLS, "done"]},
               "capabilities": [STDIO]}  # fmt: skip
        one["model"]["responses"][0] = {"tool_calls": CALLS["tool_calls"][1:2]}
        reply = c.request({"op": "define_agent", "id": 1, "name": "k", "spec": one})
        assert reply["type"] == "result", reply
        pid = returns(c.request({"op": "run", "id": 2, "agent": "k", "prompt": "x"}))["server_pid"]
        assert alive(pid)
        os.kill(c.pid, signal.SIGKILL)
        wait_gone(pid)


@pytest.mark.parametrize("how", ["shutdown", "eof"])
def test_a_worker_that_exits_leaves_no_stdio_server_behind(how: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "support")}
    with PortClient.spawn("etf", ["--module", "fixture_functions", "--no-warm"], env=env) as c:
        turns = [{"tool_calls": CALLS["tool_calls"][1:2]}, "done"]
        one = {"model": {"provider": "script", "responses": turns}, "capabilities": [STDIO]}
        reply = c.request({"op": "define_agent", "id": 1, "name": "k", "spec": one})
        assert reply["type"] == "result", reply
        pid = returns(c.request({"op": "run", "id": 2, "agent": "k", "prompt": "x"}))["server_pid"]
        assert alive(pid)
        if how == "shutdown":
            assert c.request({"op": "shutdown", "id": 3})["type"] == "result"
        assert c.close(timeout=10) == 0  # closes input (EOF) and waits for the exit
        wait_gone(pid)


def test_mcp_python_and_remote_tools_answer_in_one_run() -> None:
    remote = {
        "name": "crm_note",
        "description": "Write a note in the CRM (an Elixir tool).",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
        "remote": True,
    }
    calls = {"tool_calls": [*CALLS["tool_calls"], {"tool": "crm_note", "args": {"text": "hi"},
                                                   "id": "c4"}]}  # fmt: skip
    one = {
        "model": {"provider": "script", "responses": [calls, "done"]},
        "capabilities": [STDIO],
        "tools": ["customer_balance", remote],
    }

    async def main() -> None:
        async with worker() as w:
            await define(w, "mixed", one)
            frame = {"op": "run", "id": 1, "agent": "mixed", "prompt": "x",
                     "deps": {"customer_id": 1}}  # fmt: skip
            await w.send(frame)
            call = await w.wait_for(lambda f: f["type"] == "tool_call")
            assert call["tool"] == "crm_note" and call["args"] == {"text": "hi"}
            await w.send({"op": "tool_result", "id": 1, "call_id": call["call_id"], "ok": "noted"})
            got = returns(await w.terminal(1))
            assert got["add"] == 5 and got["customer_balance"] == 123.45
            assert got["crm_note"] == "noted"
            await (await service(w)).aclose()
            wait_gone(got["server_pid"])

    run(main())

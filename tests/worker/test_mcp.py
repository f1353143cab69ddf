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
from agents_fixtures import define, error_of, run, service, until, worker

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


HOLD = {
    "name": "hold",
    "description": "Waits for the client (an Elixir tool).",
    "parameters": {"type": "object", "properties": {}},
    "remote": True,
}


def held_spec() -> dict[str, Any]:
    """MCP call, then a remote call the test answers when it likes, then MCP calls again."""
    turns = [
        {"tool_calls": [{"tool": "server_pid", "args": {}, "id": "p1"}]},
        {"tool_calls": [{"tool": "hold", "args": {}, "id": "h1"}]},
        {"tool_calls": [{"tool": "server_pid", "args": {}, "id": "p2"},
                        {"tool": "add", "args": {"a": 2, "b": 3}, "id": "a1"}]},
        "old done",
    ]  # fmt: skip
    return {"model": {"provider": "script", "responses": turns}, "capabilities": [STDIO],
            "tools": [HOLD]}  # fmt: skip


async def held_run(w: Any, rid: int, **fields: Any) -> int:
    """Start a ``held_spec`` run of agent ``calc``; its server's pid once it waits in ``hold``."""
    await w.send({"op": "run", "id": rid, "agent": "calc", "prompt": "x", "stream": True,
                  **fields})  # fmt: skip
    await w.wait_for(lambda f: f["type"] == "tool_call" and f["id"] == rid, timeout=20)
    (pid,) = [
        f["data"]["content"]
        for f in w.frames(rid)
        if f["type"] == "chunk" and f["event"] == "tool_result"
        if f["data"]["tool_name"] == "server_pid"
    ]
    assert alive(pid)
    return int(pid)


async def gone(pid: int) -> None:
    await until(lambda: not alive(pid), timeout=10)


def tool_returns(reply: dict[str, Any]) -> list[tuple[str, Any]]:
    assert reply["type"] == "result", reply
    return [
        (p["tool_name"], p["content"])
        for m in reply["messages"]
        for p in m["parts"]
        if p["part_kind"] == "tool-return"
    ]


def test_a_run_in_flight_keeps_its_servers_across_a_redefinition_and_the_last_run_stops_them() -> (
    None
):
    async def main() -> None:
        async with worker() as w:
            await define(w, "calc", held_spec())
            old = await held_run(w, 1)
            await define(w, "calc", spec(STDIO))  # answered at once, run 1 still waiting
            assert alive(old)
            frame = {"op": "run", "agent": "calc", "prompt": "x", "deps": {"customer_id": 1}}
            new = returns(await w.request({**frame, "id": 2}, timeout=20))["server_pid"]
            assert new != old and alive(old)  # new runs use the new definition at once

            await w.send({"op": "tool_result", "id": 1, "call_id": "h1", "ok": "go"})
            reply = await w.terminal(1, timeout=20)
            assert reply["type"] == "result" and reply["output"] == "old done", reply
            # The old run's MCP calls after the redefinition reached the old server.
            assert [c for t, c in tool_returns(reply) if t in ("server_pid", "add")] == [
                old, old, 5]  # fmt: skip
            await gone(old)  # its last run ended: stopped
            assert alive(new)
            again = returns(await w.request({**frame, "id": 3}, timeout=20))["server_pid"]
            assert again == new
            await (await service(w)).aclose()
            await gone(new)

    run(main())


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_cancelled_or_timed_out_last_run_of_a_replaced_agent_stops_its_servers(
    how: str,
) -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "calc", held_spec())
            fields = {"timeout_ms": 1500} if how == "timeout" else {}
            old = await held_run(w, 1, **fields)
            await define(w, "calc", {"model": "test"})  # no server to start: quick
            assert alive(old) and w.frames(1)[-1]["type"] not in ("result", "error")
            if how == "cancel":
                await w.send({"op": "cancel", "target": 1})
            err = error_of(await w.terminal(1, timeout=20))
            assert err["kind"] == ("cancelled" if how == "cancel" else "timeout"), err
            await gone(old)
            svc = await service(w)
            assert svc.agents.retired == {}
            assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"

    run(main())


def test_a_redefinition_with_no_run_in_flight_stops_the_old_servers_before_it_answers() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "calc", held_spec())
            old = await held_run(w, 1)
            await w.send({"op": "tool_result", "id": 1, "call_id": "h1", "ok": "go"})
            assert (await w.terminal(1, timeout=20))["type"] == "result"
            assert alive(old)  # the agent is current: its server stays up between runs
            await define(w, "calc", {"model": "test"})
            assert not alive(old)
            await (await service(w)).aclose()

    run(main())


@pytest.mark.parametrize("how", ["shutdown", "eof"])
def test_a_worker_that_exits_while_a_run_holds_a_replaced_agent_leaves_no_server_behind(
    how: str,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "support")}
    with PortClient.spawn("etf", ["--module", "fixture_functions", "--no-warm"], env=env) as c:
        assert c.request({"op": "define_agent", "id": 1, "name": "calc",
                          "spec": held_spec()})["type"] == "result"  # fmt: skip
        c.send({"op": "run", "id": 2, "agent": "calc", "prompt": "x", "stream": True})
        pids = []
        while True:
            frame = c.recv(20)
            if frame["type"] == "chunk" and frame["event"] == "tool_result":
                pids.append(frame["data"]["content"])
            if frame["type"] == "tool_call":
                break
        (old,) = pids
        turns = [{"tool_calls": CALLS["tool_calls"][1:2]}, "done"]
        new_spec = {"model": {"provider": "script", "responses": turns}, "capabilities": [STDIO]}
        assert c.request({"op": "define_agent", "id": 3, "name": "calc",
                          "spec": new_spec})["type"] == "result"  # fmt: skip
        new = returns(c.request({"op": "run", "id": 4, "agent": "calc", "prompt": "x"}))
        assert new["server_pid"] != old and alive(old) and alive(new["server_pid"])
        if how == "shutdown":
            reply = c.request({"op": "shutdown", "id": 5, "grace_ms": 0})
            assert reply["type"] == "result" and reply["output"] == {"cancelled": 1}, reply
        assert c.close(timeout=10) == 0
        wait_gone(old)
        wait_gone(new["server_pid"])


def test_an_agent_registered_again_from_python_stops_the_servers_of_the_one_it_replaces() -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    from axon_port.agents._mcp import stdio_toolset

    def python_agent() -> Agent[None, str]:
        toolset = stdio_toolset(sys.executable, [SERVER], None, None, "calc", 10.0, True)
        return Agent(TestModel(call_tools=["server_pid"]), toolsets=[toolset])

    async def main() -> None:
        async with worker() as w:
            w.registry.add_agent("py", python_agent())
            frame = {"op": "run", "agent": "py", "prompt": "x"}
            old = returns(await w.request({**frame, "id": 1}, timeout=20))["server_pid"]
            assert alive(old)
            w.registry.add_agent("py", python_agent())  # e.g. a module reloaded
            new = returns(await w.request({**frame, "id": 2}, timeout=20))["server_pid"]
            assert new != old
            await gone(old)
            await (await service(w)).aclose()
            await gone(new)

    run(main())

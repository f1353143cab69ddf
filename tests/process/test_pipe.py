"""`python -m axon_port pipe`: JSON lines in, a JSON line per frame out, in a shell pipeline."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys

import pytest

PIPE = f"{shlex.quote(sys.executable)} -m axon_port pipe"


def sh(command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, timeout=timeout
    )


def frames(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("codec", ["etf", "msgpack"])
def test_a_shell_pipeline_gets_one_json_line_per_frame_and_ids_are_added(codec: str) -> None:
    data = base64.b64encode(b"\x00\x01\xff").decode()
    lines = [
        {"op": "ping"},
        {"op": "call", "function": "add", "args": [1, 2], "id": 7},
        {"op": "call", "function": "reverse_bytes", "args": [{"$bytes": data}]},
        {"op": "call", "function": "nope"},
    ]
    script = "\n".join(json.dumps(line) for line in lines)
    out = sh(
        f"printf '%s\\n' {shlex.quote(script)} | "
        f"{PIPE} --codec {codec} --module fixture_functions --no-warm"
    )
    assert out.returncode == 0, out.stderr
    got = frames(out.stdout)
    assert got[0]["type"] == "ready" and got[0]["codec"] == codec
    by_id = {f["id"]: f for f in got[1:] if "id" in f}
    assert by_id[1] == {"type": "pong", "id": 1}
    assert by_id[7]["output"] == 3
    # Ids are added from 1, skipping those the input uses; bytes come back as base64.
    assert base64.b64decode(by_id[2]["output"]) == b"\xff\x01\x00"
    assert by_id[3]["type"] == "error"
    assert by_id[3]["error"]["kind"] == "unknown_function"


def test_an_agent_run_prints_its_chunks_and_result() -> None:
    run = {
        "op": "run",
        "spec": {"model": {"provider": "script", "responses": [{"text": ["Hel", "lo"]}]}},
        "prompt": "hi",
        "stream": True,
    }
    out = sh(f"echo {shlex.quote(json.dumps(run))} | {PIPE} --no-warm")
    assert out.returncode == 0, out.stderr
    got = frames(out.stdout)
    assert [f["type"] for f in got][-1] == "result"
    assert got[-1]["output"] == "Hello"
    assert any(f["type"] == "chunk" for f in got)


def test_a_line_that_is_not_json_is_reported_and_skipped() -> None:
    out = sh(f'printf \'not json\\n[1]\\n{{"op": "ping"}}\\n\' | {PIPE} --no-warm')
    assert out.returncode == 0, out.stderr
    assert "line 1: not JSON" in out.stderr
    assert "line 2: a request must be a JSON object" in out.stderr
    assert [f["type"] for f in frames(out.stdout)] == ["ready", "pong"]


def test_expect_ends_the_pipe_while_stdin_stays_open() -> None:
    # stdin is a pipe nobody closes until the pipe exits: --expect alone ends it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "axon_port", "pipe", "--expect", "1", "--no-warm"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write('{"op": "ping", "id": 5}\n')
    proc.stdin.flush()
    try:
        assert proc.wait(timeout=60) == 0
        stdout = proc.stdout.read()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
    assert frames(stdout)[-1] == {"type": "pong", "id": 5}


def test_timeout_gives_up_with_exit_1_and_names_the_unanswered_ids() -> None:
    proc = subprocess.Popen(
        [*shlex.split(PIPE), "--timeout", "1", "--module", "fixture_functions", "--no-warm"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write('{"op": "call", "function": "sleep_ms", "args": [60000]}\n')
    proc.stdin.flush()
    try:
        assert proc.wait(timeout=60) == 1
        assert "no reply yet for ids [1]" in proc.stderr.read()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()


def test_the_worker_exiting_with_requests_pending_is_exit_1() -> None:
    out = sh(f'echo \'{{"op": "ping"}}\' | {PIPE} --module no_such_module_anywhere')
    assert out.returncode == 1
    assert "unanswered" in out.stderr

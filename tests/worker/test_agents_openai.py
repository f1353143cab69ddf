"""The real provider path: OpenAIChatModel over HTTP to a loopback server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from agents_fixtures import chunks, define, error_of, run, worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import itertools

from openai_loopback import OpenAILoopback, Reply, error, text, tool_call

pytestmark = pytest.mark.usefixtures("loopback_requests")


def with_server(*replies: Reply) -> OpenAILoopback:
    return OpenAILoopback(*replies)


def test_a_run_goes_over_http_to_an_openai_compatible_server() -> None:
    async def main() -> None:
        with with_server(text("Hello from the loopback.")) as server:
            async with worker() as w:
                await define(w, "oa", {"model": server.model_map(), "instructions": "Be kind."})
                reply = await w.request({"op": "run", "id": 1, "agent": "oa", "prompt": "hi"})
            assert reply["output"] == "Hello from the loopback."
            assert reply["usage"]["input_tokens"] == 11
            assert reply["usage"]["output_tokens"] == 7
            (req,) = server.requests
            assert req["model"] == "loopback-1"
            assert req["messages"][0] == {"role": "system", "content": "Be kind."}
            assert req["messages"][-1]["content"] == "hi"

    run(main())


def test_tool_calls_and_structured_output_work_over_http() -> None:
    schema = {
        "type": "object",
        "properties": {"risk": {"type": "integer", "maximum": 10}},
        "required": ["risk"],
    }

    async def main() -> None:
        replies = [
            tool_call("customer_balance", {"include_pending": False}),
            tool_call("final_result", {"risk": 42}),  # violates the schema: retried
            tool_call("final_result", {"risk": 4}),
        ]
        with with_server(*replies) as server:
            async with worker() as w:
                await define(
                    w,
                    "oa",
                    {
                        "model": server.model_map(),
                        "output_schema": schema,
                        "tools": ["customer_balance"],
                    },
                )
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "oa", "prompt": "x", "deps": {"customer_id": 2}}
                )
            assert reply["output"] == {"risk": 4}
            assert len(server.requests) == 3
            tools = {t["function"]["name"] for t in server.requests[0]["tools"]}
            assert tools == {"customer_balance", "final_result"}
            tool_msg = [m for m in server.requests[1]["messages"] if m["role"] == "tool"]
            assert tool_msg[0]["content"] == "10.0"
            retry_msg = [m for m in server.requests[2]["messages"] if m["role"] == "tool"][-1]
            assert "42 is greater than the maximum of 10" in retry_msg["content"]

    run(main())


def test_sse_streaming_from_the_server_becomes_chunks() -> None:
    async def main() -> None:
        with with_server(text("one two three")) as server:
            async with worker("msgpack") as w:
                await define(w, "oa", {"model": server.model_map()})
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "oa", "prompt": "count", "stream": True}
                )
            assert reply["output"] == "one two three"
            assert server.requests[0]["stream"] is True
            got = chunks(w, 1)
            assert "".join(d["delta"] for e, d in got if e == "text_delta") == "one two three"
            assert next(e for e, _ in got) == "part_start" and got[-1][0] == "part_end"

    run(main())


def test_sse_streaming_of_structured_output_emits_partials() -> None:
    schema = {
        "type": "object",
        "properties": {"advice": {"type": "string"}, "risk": {"type": "integer"}},
        "required": ["advice", "risk"],
    }

    async def main() -> None:
        with with_server(tool_call("final_result", {"advice": "hold on", "risk": 2})) as server:
            async with worker() as w:
                await define(w, "oa", {"model": server.model_map(), "output_schema": schema})
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "oa", "prompt": "x", "stream": True}
                )
            assert reply["output"] == {"advice": "hold on", "risk": 2}
            partials = [d["output"] for e, d in chunks(w, 1) if e == "output_partial"]
            assert partials[-1] == reply["output"]
            assert all(a != b for a, b in itertools.pairwise(partials))

    run(main())


@pytest.mark.parametrize(
    ("status", "retryable", "category"),
    [
        (429, True, "ModelRateLimitError"),
        (500, True, "ModelServerError"),
        (503, True, "ModelUnavailableError"),
        (400, False, "ModelRequestRejectedError"),
        (401, False, "ModelAuthenticationError"),
    ],
)
def test_http_errors_map_to_model_http_error_with_retryable_set(
    status: int, retryable: bool, category: str
) -> None:
    async def main() -> None:
        with with_server(error(status, "nope")) as server:
            async with worker() as w:
                await define(w, "oa", {"model": server.model_map()})
                err = error_of(
                    await w.request({"op": "run", "id": 1, "agent": "oa", "prompt": "x"})
                )
            assert err["kind"] == "model_http_error"
            assert err["retryable"] is retryable
            assert err["details"]["status"] == status
            assert err["details"]["category"] == category
            assert err["details"]["body"]["message"] == "nope"

    run(main())


def test_the_client_retries_a_5xx_when_max_retries_allows() -> None:
    async def main() -> None:
        with with_server(error(500), text("recovered")) as server:
            async with worker() as w:
                await define(w, "oa", {"model": server.model_map(max_retries=1)})
                reply = await w.request({"op": "run", "id": 1, "agent": "oa", "prompt": "x"})
            assert reply["output"] == "recovered"
            assert len(server.requests) == 2

    run(main())


def test_complete_over_http_returns_the_response_and_streams() -> None:
    async def main() -> None:
        with with_server(text("direct answer"), text("streamed answer")) as server:
            async with worker() as w:
                spec = server.model_map()
                reply = await w.request(
                    {"op": "complete", "id": 1, "model": spec, "messages": "hi"}
                )
                streamed = await w.request(
                    {"op": "complete", "id": 2, "model": spec, "messages": "hi", "stream": True}
                )
            assert reply["output"]["text"] == "direct answer"
            assert reply["output"]["finish_reason"] == "stop"
            assert reply["usage"]["input_tokens"] == 11
            assert streamed["output"]["text"] == "streamed answer"
            deltas = [d["delta"] for e, d in chunks(w, 2) if e == "text_delta"]
            assert "".join(deltas) == "streamed answer"

    run(main())


def test_a_missing_api_key_variable_is_a_bad_request_at_definition() -> None:
    async def main() -> None:
        async with worker() as w:
            spec = {
                "provider": "openai-compatible",
                "name": "m",
                "base_url": "http://127.0.0.1:9",
                "api_key_env": "AXON_TEST_NO_SUCH_API_KEY",
            }
            reply = await w.request(
                {"op": "define_agent", "id": 1, "name": "x", "spec": {"model": spec}}
            )
            assert error_of(reply)["kind"] == "bad_request"
            assert "AXON_TEST_NO_SUCH_API_KEY" in error_of(reply)["message"]

    run(main())


def test_a_frame_cannot_name_an_env_var_the_operator_did_not_allow() -> None:
    async def main() -> None:
        with with_server(text("should never be asked")) as server:
            async with worker() as w:
                for var in ("PATH", "HOME", "AXON_TEST_OPENAI_API_KEY_NOT"):
                    spec = {"model": {**server.model_map(), "api_key_env": var}}
                    reply = await w.request(
                        {"op": "run", "id": 1, "spec": spec, "prompt": "leak it"}
                    )
                    err = error_of(reply)
                    assert err["kind"] == "bad_request"
                    assert "--allow-env" in err["message"]
            assert server.requests == []
        # The operator may widen it.
        with with_server(text("ok")) as server:
            os.environ["AXON_TEST_CUSTOM_TOKEN"] = "tok"
            async with worker(allow_env=["AXON_TEST_CUSTOM_*"]) as w:
                spec = {"model": {**server.model_map(), "api_key_env": "AXON_TEST_CUSTOM_TOKEN"}}
                reply = await w.request({"op": "run", "id": 2, "spec": spec, "prompt": "hi"})
                assert reply["output"] == "ok"

    run(main())


def test_only_allowed_base_urls_get_credentials_when_configured() -> None:
    async def main() -> None:
        with with_server(text("ok"), text("ok")) as server:
            async with worker(allow_base_url=["https://api.example.com/"]) as w:
                spec = {"model": server.model_map()}
                reply = await w.request({"op": "run", "id": 1, "spec": spec, "prompt": "hi"})
                assert error_of(reply)["kind"] == "bad_request"
                assert "--allow-base-url" in error_of(reply)["message"]
            assert server.requests == []
            async with worker(allow_base_url=[server.base_url]) as w:
                spec = {"model": server.model_map()}
                reply = await w.request({"op": "run", "id": 2, "spec": spec, "prompt": "hi"})
                assert reply["output"] == "ok"

    run(main())


def test_credentials_in_a_base_url_never_reach_log_frames_errors_or_history() -> None:
    async def main() -> None:
        with with_server(text("ok"), error(401, "bad key")) as server:
            url = server.base_url.replace("http://", "http://user:s3cr3tpw@")
            async with worker() as w:
                await w.request({"op": "set_log_level", "id": 9, "level": "debug"})
                spec = {"model": {**server.model_map(), "base_url": url}}
                ok = await w.request({"op": "run", "id": 1, "spec": spec, "prompt": "hi"})
                bad = await w.request({"op": "run", "id": 2, "spec": spec, "prompt": "hi"})
                described = await w.request({"op": "describe", "id": 3})
                await w.request({"op": "set_log_level", "id": 10, "level": "info"})
            assert ok["output"] == "ok"
            assert bad["type"] == "error"
            assert any(f["type"] == "log" and "HTTP Request" in f["message"] for f in w.received)
            # Every frame: logs, errors, describe, and the history of run results
            # (whose provider_url is pydantic-ai's record of the request, redacted).
            assert ok["messages"][-1]["provider_url"].startswith("http://***@")
            for frame in [*w.received, described]:
                assert "s3cr3tpw" not in repr(frame), frame
                assert "sk-loopback" not in repr(frame), frame
                assert "sk-loopback" not in repr(frame), frame

    run(main())

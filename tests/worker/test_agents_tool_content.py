"""Rich tool results: content parts and ``ToolReturn`` from client-side (Elixir) tools and
from Python tools, sent to the model the way pydantic-ai sends them in-process."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from agents_fixtures import CODECS, define, error_of, run, worker
from file_server import FileServer
from openai import AsyncOpenAI
from openai_loopback import OpenAILoopback, text, tool_call
from pydantic_ai import Agent
from pydantic_ai.messages import BinaryContent, ImageUrl, ToolReturn
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from axon_port import Atom
from axon_port.registry import Registry
from axon_port.testing import InProcessWorker

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"

CHART = {
    "name": "chart",
    "description": "Draws the balance chart (answered by Elixir).",
    "parameters": {"type": "object", "properties": {}},
    "remote": True,
}


pytestmark = pytest.mark.usefixtures("loopback_requests")


async def remote_run(codec: str, answer: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A loopback run whose model calls the remote tool ``chart``, answered with ``answer``."""
    with OpenAILoopback(tool_call("chart", {}), text("A rising line.")) as server:
        async with worker(codec) as w:
            spec = {"model": server.model_map(), "tools": [CHART]}
            await w.send({"op": "run", "id": 1, "spec": spec, "prompt": "Show my balance"})
            call = await w.wait_for(lambda f: f["type"] == "tool_call")
            await w.send({"op": "tool_result", "id": 1, "call_id": call["call_id"], "ok": answer})
            reply = await w.terminal(1)
    return reply, server.requests


def _chart_agent(server: OpenAILoopback, returned: Any) -> Agent[None, str]:
    """An in-process agent on ``server`` whose Python tool ``chart`` returns ``returned``."""
    client = AsyncOpenAI(base_url=server.base_url, api_key="sk-loopback", max_retries=0)
    agent = Agent(OpenAIChatModel("loopback-1", provider=OpenAIProvider(openai_client=client)))

    @agent.tool_plain(description=CHART["description"])
    def chart() -> Any:
        return returned

    return agent


async def in_process_requests(returned: Any) -> list[dict[str, Any]]:
    """The request bodies of the same conversation with a Python tool returning ``returned``."""
    with OpenAILoopback(tool_call("chart", {}), text("A rising line.")) as server:
        await _chart_agent(server, returned).run("Show my balance")
    return server.requests


def image(**keys: Any) -> dict[Any, Any]:
    return {Atom("kind"): "binary", Atom("data"): PNG, Atom("media_type"): "image/png", **keys}


@pytest.mark.parametrize("codec", CODECS)
def test_an_image_from_an_elixir_tool_reaches_the_model_as_an_image(codec: str) -> None:
    async def main() -> None:
        reply, sent = await remote_run(codec, image())
        assert reply["output"] == "A rising line.", reply
        expected = await in_process_requests(BinaryContent(PNG, media_type="image/png"))
        assert sent[1]["messages"] == expected[1]["messages"]
        assert "image_url" in repr(sent[1]["messages"])
        # Not as base64 text inside the tool message.
        (tool_msg,) = [m for m in sent[1]["messages"] if m["role"] == "tool"]
        assert "iVBOR" not in repr(tool_msg)

    run(main())


@pytest.mark.parametrize("codec", CODECS)
def test_a_tool_return_map_sends_content_beside_the_result_and_keeps_metadata(codec: str) -> None:
    async def main() -> None:
        answer = {
            Atom("return_value"): "chart drawn",
            Atom("content"): ["Here is the chart:", image()],
            Atom("metadata"): {"rows": 12},
        }
        reply, sent = await remote_run(codec, answer)
        assert reply["output"] == "A rising line.", reply
        expected = await in_process_requests(
            ToolReturn(
                return_value="chart drawn",
                content=["Here is the chart:", BinaryContent(PNG, media_type="image/png")],
                metadata={"rows": 12},
            )
        )
        assert sent[1]["messages"] == expected[1]["messages"]
        (ret,) = [
            p for m in reply["messages"] for p in m["parts"] if p["part_kind"] == "tool-return"
        ]
        assert ret["content"] == "chart drawn"
        assert ret["metadata"] == {"rows": 12}

    run(main())


def test_a_malformed_part_from_an_elixir_tool_fails_the_run_as_a_tool_error() -> None:
    async def main() -> None:
        reply, _ = await remote_run("etf", {Atom("kind"): "binary", Atom("data"): PNG})
        err = error_of(reply)
        assert err["kind"] == "tool_error"
        assert "media_type" in err["message"]

    run(main())


def test_the_script_model_takes_tool_return_content_without_looping() -> None:
    reg = Registry()

    def chart() -> ToolReturn:
        """Draws the chart."""
        return ToolReturn("drawn", content=[BinaryContent(PNG, media_type="image/png")])

    reg.add_tool(chart)
    turns = [{"tool_calls": [{"tool": "chart", "args": {}}]}, "Done."]

    async def main() -> None:
        async with InProcessWorker("etf", registry=reg) as w:
            spec = {"model": {"provider": "script", "responses": turns}, "tools": ["chart"]}
            await define(w, "charts", spec)
            reply = await w.request({"op": "run", "id": 1, "agent": "charts", "prompt": "Go"})
            assert reply["type"] == "result", reply
            assert reply["output"] == "Done."
            responses = [m for m in reply["messages"] if m["kind"] == "response"]
            assert len(responses) == 2
            assert reply["usage"]["requests"] == 2

            # The same from an Elixir tool answering with a ToolReturn map.
            spec = {"model": {"provider": "script", "responses": turns}, "tools": [{
                **CHART, "name": "chart"}]}  # fmt: skip
            await w.send({"op": "run", "id": 2, "spec": spec, "prompt": "Go"})
            call = await w.wait_for(lambda f: f["type"] == "tool_call" and f["id"] == 2)
            answer = {"return_value": "drawn", "content": [image()]}
            await w.send({"op": "tool_result", "id": 2, "call_id": call["call_id"], "ok": answer})
            reply = await w.terminal(2)
            assert reply["output"] == "Done.", reply

    run(main())


def refused_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/chart.png"


async def in_process_error(part: ImageUrl) -> BaseException:
    """What an in-process agent whose tool returns ``part`` raises on the same model."""
    with OpenAILoopback(tool_call("chart", {}), text("never")) as server:
        agent = _chart_agent(server, part)
        with pytest.raises(Exception) as caught:
            await agent.run("Show my balance")
    return caught.value


def test_an_elixir_tools_url_that_cannot_be_downloaded_is_bad_request_naming_the_tool() -> None:
    async def main() -> None:
        with FileServer({}) as files:
            cases = [
                # pydantic-ai's SSRF guard refuses a private address without allow-local.
                ({"url": files.url("/chart.png"), "force_download": True},
                 "Access to private/internal IP address (127.0.0.1) is blocked"),
                ({"url": files.url("/chart.png"), "force_download": "allow-local"},
                 "404 Not Found"),
                ({"url": refused_url(), "force_download": "allow-local"}, ""),
            ]  # fmt: skip
            for keys, said in cases:
                part = {Atom("kind"): "image-url", **{Atom(k): v for k, v in keys.items()}}
                expected = str(await in_process_error(ImageUrl(**keys)))  # type: ignore[arg-type]
                assert said in expected
                with OpenAILoopback(tool_call("chart", {}), text("never")) as server:
                    async with worker() as w:
                        spec = {"model": server.model_map(), "tools": [CHART]}
                        await w.send({"op": "run", "id": 1, "spec": spec, "prompt": "Show"})
                        call = await w.wait_for(lambda f: f["type"] == "tool_call")
                        await w.send({"op": "tool_result", "id": 1, "call_id": call["call_id"],
                                      "ok": part})  # fmt: skip
                        err = error_of(await w.terminal(1))
                        assert err["kind"] == "bad_request", err
                        assert expected in err["message"], (expected, err)
                        assert "remote tool 'chart'" in err["message"]
                        details = err["details"]
                        assert details["tool"] == "chart", details
                        assert details["call_id"] == call["call_id"]
                        assert details["url"] == keys["url"]
                        # The tool's answer is in the messages: resend them to go on without it.
                        assert "tool-return" in repr(details["messages"])
                        assert "Traceback" not in repr(err)
                        assert err["retryable"] is False
                        # The worker keeps serving, runs included.
                        assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"
                        again = await w.request({"op": "run", "id": 3, "spec": {},
                                                 "prompt": "x"})  # fmt: skip
                        assert again["type"] == "result", again
                    assert len(server.requests) == 1  # the failed request never left

    run(main())


def test_a_python_tools_url_that_cannot_be_downloaded_is_bad_request_too() -> None:
    reg = Registry()

    def chart() -> ImageUrl:
        """Draws the chart."""
        return ImageUrl(refused, force_download="allow-local")

    refused = refused_url()
    reg.add_tool(chart)

    async def main() -> None:
        expected = str(await in_process_error(ImageUrl(refused, force_download="allow-local")))
        with OpenAILoopback(tool_call("chart", {}), text("never")) as server:
            async with InProcessWorker("etf", registry=reg) as w:
                spec = {"model": server.model_map(), "tools": ["chart"]}
                err = error_of(await w.request({"op": "run", "id": 1, "spec": spec,
                                                "prompt": "Show"}))  # fmt: skip
                assert err["kind"] == "bad_request", err
                assert err["message"] == f"content could not be sent to the model: {expected}"
                assert "Traceback" not in repr(err)
                assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"
        # The same from the tool of an Agent registered from Python.
        with OpenAILoopback(tool_call("chart", {}), text("never")) as server:
            client = AsyncOpenAI(base_url=server.base_url, api_key="sk-loopback", max_retries=0)
            model = OpenAIChatModel("loopback-1", provider=OpenAIProvider(openai_client=client))
            agent = Agent(model, tools=[chart])
            async with InProcessWorker("etf", registry=Registry()) as w:
                w.registry.add_agent("charts", agent)
                err = error_of(await w.request({"op": "run", "id": 1, "agent": "charts",
                                                "prompt": "Show"}))  # fmt: skip
                assert err["kind"] == "bad_request", err
                assert err["message"] == f"content could not be sent to the model: {expected}"
                assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"

    run(main())

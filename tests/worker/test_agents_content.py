"""Multimodal prompts over the real worker, checked against an OpenAI-compatible loopback.

Every content kind reaches the provider exactly as pydantic-ai sends it in-process:
each test runs the same prompt through the worker and through a plain in-process
``Agent`` on the same model, and compares the two request bodies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agents_fixtures import CODECS, error_of, run, worker
from file_server import FileServer
from openai import AsyncOpenAI
from openai_loopback import OpenAILoopback, text
from pydantic_ai import Agent
from pydantic_ai.messages import (
    AudioUrl,
    BinaryContent,
    DocumentUrl,
    ImageUrl,
    UserContent,
)
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from axon_port import Atom

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\xff"


pytestmark = pytest.mark.usefixtures("loopback_requests")


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    with FileServer(
        {"/doc.pdf": (PDF, "application/pdf"), "/clip.wav": (WAV, "audio/wav")}
    ) as server:
        yield server


async def worker_request(codec: str, prompt: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``prompt`` through the worker; (the reply, the request body the provider saw)."""
    with OpenAILoopback(text("A cat.")) as server:
        async with worker(codec) as w:
            reply = await w.request(
                {"op": "run", "id": 1, "spec": {"model": server.model_map()}, "prompt": prompt}
            )
    return reply, (server.requests[0] if server.requests else {})


async def in_process_request(prompt: str | list[UserContent]) -> dict[str, Any]:
    """The request body pydantic-ai sends for ``prompt`` in-process, same model."""
    with OpenAILoopback(text("A cat.")) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-loopback", max_retries=0)
        agent = Agent(OpenAIChatModel("loopback-1", provider=OpenAIProvider(openai_client=client)))
        await agent.run(prompt)
    return server.requests[0]


def kinds(files: FileServer) -> list[tuple[str, dict[str, Any], UserContent]]:
    """(name, wire part, the pydantic-ai object it stands for)."""
    return [
        (
            "image-url",
            {"kind": "image-url", "url": "https://example.com/cat.png",
             "vendor_metadata": {"detail": "low"}},
            ImageUrl("https://example.com/cat.png", vendor_metadata={"detail": "low"}),
        ),
        (
            "binary-image",
            {"kind": "binary", "data": PNG, "media_type": "image/png", "identifier": "cat"},
            BinaryContent(PNG, media_type="image/png", identifier="cat"),
        ),
        (
            "document-url",
            {"kind": "document-url", "url": files.url("/doc.pdf"),
             "force_download": "allow-local"},
            DocumentUrl(files.url("/doc.pdf"), force_download="allow-local"),
        ),
        (
            "binary-document",
            {"kind": "binary", "data": PDF, "media_type": "application/pdf"},
            BinaryContent(PDF, media_type="application/pdf"),
        ),
        (
            "audio-url",
            {"kind": "audio-url", "url": files.url("/clip.wav"), "force_download": "allow-local"},
            AudioUrl(files.url("/clip.wav"), force_download="allow-local"),
        ),
        (
            "binary-audio",
            {"kind": "binary", "data": WAV, "media_type": "audio/wav"},
            BinaryContent(WAV, media_type="audio/wav"),
        ),
        (
            # Valid UTF-8: ETF decodes it as a str; it must still be these bytes, not base64.
            "binary-utf8-text",
            {"kind": "binary", "data": b"%PDF-1.4 plain", "media_type": "application/pdf"},
            BinaryContent(b"%PDF-1.4 plain", media_type="application/pdf"),
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("codec", CODECS)
def test_every_content_kind_reaches_the_provider_as_pydantic_ai_sends_it(
    codec: str, files: FileServer
) -> None:
    async def main() -> None:
        for name, part, obj in kinds(files):
            reply, sent = await worker_request(codec, ["What is in this picture?", part])
            assert reply["type"] == "result", (name, reply)
            assert reply["output"] == "A cat."
            expected = await in_process_request(["What is in this picture?", obj])
            assert sent["messages"] == expected["messages"], name
            # The new messages carry the part in pydantic-ai's own JSON form.
            (content,) = [
                p["content"] for m in reply["messages"] for p in m["parts"]
                if p["part_kind"] == "user-prompt"
            ]  # fmt: skip
            assert content[1]["kind"] == part["kind"], name

    run(main())


def test_atom_keys_and_kinds_work_as_elixir_sends_them() -> None:
    async def main() -> None:
        part = {Atom("kind"): Atom("binary"), Atom("data"): PNG, Atom("media_type"): "image/png"}
        reply, sent = await worker_request("etf", ["Look", part])
        assert reply["type"] == "result", reply
        expected = await in_process_request(["Look", BinaryContent(PNG, media_type="image/png")])
        assert sent["messages"] == expected["messages"]
        image = sent["messages"][-1]["content"][1]
        assert image["image_url"]["url"].startswith("data:image/png;base64,")

    run(main())


def test_a_single_part_or_a_list_of_texts_is_a_prompt_too() -> None:
    async def main() -> None:
        part = {"kind": "image-url", "url": "https://example.com/cat.png"}
        reply, sent = await worker_request("msgpack", part)
        assert reply["type"] == "result", reply
        expected = await in_process_request([ImageUrl("https://example.com/cat.png")])
        assert sent["messages"] == expected["messages"]
        reply, sent = await worker_request("etf", ["one", "two"])
        assert sent["messages"] == (await in_process_request(["one", "two"]))["messages"]

    run(main())


def test_a_failed_download_is_bad_request_with_pydantic_ais_message(files: FileServer) -> None:
    async def main() -> None:
        cases = [
            # pydantic-ai's SSRF guard refuses private addresses without allow-local.
            ({"kind": "document-url", "url": files.url("/doc.pdf")},
             "Access to private/internal IP address (127.0.0.1) is blocked"),
            ({"kind": "document-url", "url": files.url("/missing.pdf"),
              "force_download": "allow-local"}, "404 Not Found"),
            # OpenAI Chat Completions takes no video: pydantic-ai says so.
            ({"kind": "video-url", "url": "https://example.com/v.mp4"},
             "VideoUrl is not supported in OpenAI Chat Completions"),
        ]  # fmt: skip
        for part, said in cases:
            with OpenAILoopback(text("never")) as server:
                async with worker() as w:
                    spec = {"model": server.model_map()}
                    reply = await w.request(
                        {"op": "run", "id": 1, "spec": spec, "prompt": ["Read", part]}
                    )
                    err = error_of(reply)
                    assert err["kind"] == "bad_request", err
                    assert said in err["message"]
                    assert "Traceback" not in repr(err)
                    # The worker keeps serving.
                    assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"
                assert server.requests == []

    run(main())


@pytest.mark.parametrize("codec", CODECS)
def test_malformed_parts_are_bad_request_and_name_the_part(codec: str) -> None:
    async def main() -> None:
        cases = [
            ({"kind": "image-url"}, "prompt[1] is not a valid image-url content part"),
            ({"kind": "picture", "url": "x"}, "prompt[1] is not a valid picture content part"),
            ({"kind": "binary", "data": PNG}, "media_type"),
            ({"kind": "image-url", "url": "https://e.com/a.png", "size": 3}, "unknown keys"),
            ({"url": "https://e.com/a.png"}, "needs a kind"),
            (42, "prompt[1] must be a binary or a content part map"),
        ]
        async with worker(codec) as w:
            for part, said in cases:
                spec = {"model": "test"}
                reply = await w.request(
                    {"op": "run", "id": 1, "spec": spec, "prompt": ["Look", part]}
                )
                err = error_of(reply)
                assert err["kind"] == "bad_request", (part, err)
                assert said in err["message"], (part, err["message"])
            reply = await w.request({"op": "run", "id": 2, "spec": spec, "prompt": 42})
            assert error_of(reply)["kind"] == "bad_request"

    run(main())


def test_a_prompt_binary_that_is_not_utf8_is_bad_request() -> None:
    async def main() -> None:
        async with worker("msgpack") as w:
            spec = {"model": "test"}
            reply = await w.request({"op": "run", "id": 1, "spec": spec, "prompt": [b"\xff\xfe"]})
            assert "not UTF-8" in error_of(reply)["message"]

    run(main())

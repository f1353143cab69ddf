"""Capabilities over the real provider path: ModelFallback across two loopback servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agents_fixtures import define, run, worker
from pydantic_ai import models

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from openai_loopback import OpenAILoopback, error, text


@pytest.fixture(autouse=True)
def allow_loopback_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Real model requests are allowed here only: they go to 127.0.0.1."""
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setenv("AXON_TEST_OPENAI_API_KEY", "sk-loopback")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback")
    yield


def test_model_fallback_moves_on_from_a_503_to_the_next_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        with (
            OpenAILoopback(error(503, "overloaded")) as down,
            OpenAILoopback(text("from the fallback"), model="backup-2") as up,
        ):
            monkeypatch.setenv("OPENAI_BASE_URL", up.base_url)
            primary = {
                "provider": "openai-compatible",
                "name": "primary-1",
                "base_url": down.base_url,
                "api_key_env": "AXON_TEST_OPENAI_API_KEY",
                "max_retries": 0,
            }
            async with worker() as w:
                await define(
                    w,
                    "fb",
                    {
                        "model": primary,
                        "capabilities": [{"ModelFallback": ["openai-chat:backup-2"]}],
                    },
                )
                reply = await w.request({"op": "run", "id": 1, "agent": "fb", "prompt": "hi"})
                assert reply["type"] == "result", reply
                assert reply["output"] == "from the fallback"
                assert reply["messages"][-1]["model_name"] == "backup-2"

    run(main())

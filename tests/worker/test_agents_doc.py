"""docs/agents.md's request/reply examples, run against the real dispatcher (msgpack).

A ```json request block is sent as it is, except that ``"$history"`` becomes the
``messages`` of the previous reply and ``"$spec"`` the previous request's spec; the
```json reply block after it must be contained in the actual reply (maps by subset,
lists item by item).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents_fixtures import run, worker
from pydantic_ai import models

DOC = Path(__file__).parents[2] / "docs" / "agents.md"
BLOCK = re.compile(r"```json (request|reply)\n(.*?)\n```", re.S)


def pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    blocks = BLOCK.findall(DOC.read_text())
    assert [k for k, _ in blocks] == ["request", "reply"] * (len(blocks) // 2)
    return [(json.loads(blocks[i][1]), json.loads(blocks[i + 1][1]))
            for i in range(0, len(blocks), 2)]  # fmt: skip


def contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected and type(actual) is type(expected))


@pytest.fixture(autouse=True)
def allow_model_requests() -> Iterator[None]:
    # The one example with a real provider is refused before any request is made.
    models.ALLOW_MODEL_REQUESTS = True
    try:
        yield
    finally:
        models.ALLOW_MODEL_REQUESTS = False


def test_the_doc_has_examples_for_the_new_sections() -> None:
    assert len(pairs()) >= 5


def test_every_request_gets_the_documented_reply() -> None:
    async def main() -> None:
        async with worker("msgpack") as w:
            last_reply: dict[str, Any] = {}
            last_spec: Any = None
            for request, expected in pairs():
                if request.get("history") == "$history":
                    request["history"] = last_reply["messages"]
                if request.get("spec") == "$spec":
                    request["spec"] = last_spec
                last_spec = request.get("spec")
                last_reply = await w.request(request, timeout=30)
                assert contains(last_reply, expected), (request["id"], last_reply)

    run(main())

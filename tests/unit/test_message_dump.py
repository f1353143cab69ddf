"""``dump_messages`` is pydantic-ai's own ``ModelMessagesTypeAdapter.dump_python(mode="json")``.

It serialises each message with its own type's adapter (same config) instead of
through the tagged union; these pin that the output does not change, binary content
(base64), usage extras and every common part kind included.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from pydantic_ai.messages import (
    BinaryContent,
    FilePart,
    ImageUrl,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    NativeToolCallPart,
    NativeToolReturnPart,
    RetryFeedbackPart,
    RetryInfo,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.usage import RequestUsage

from axon_port.agents._messages import dump_messages, load_history

T0 = datetime(2026, 12, 2, 13, 0, 0, 123456, tzinfo=UTC)


def _rich_messages() -> list[ModelMessage]:
    usage = RequestUsage(input_tokens=12, output_tokens=7, details={"reasoning_tokens": 3})
    usage.custom_counter = 5  # type: ignore[attr-defined]  # kept by pydantic-ai's serialiser
    png = BinaryContent(data=b"\x89PNG\r\n\x1a\n\x00\xff", media_type="image/png")
    return [
        ModelRequest(
            parts=[
                SystemPromptPart(content="be brief", timestamp=T0),
                UserPromptPart(
                    content=["look", png, ImageUrl(url="https://x.test/a.png")], timestamp=T0
                ),
            ],
            instructions="answer in French",
            run_id="run-1",
            metadata={"tenant": "acme"},
        ),
        ModelResponse(
            parts=[
                ThinkingPart(content="hmm", signature="sig"),
                TextPart(content="voici"),
                ToolCallPart(tool_name="lookup", args={"q": 1}, tool_call_id="c1"),
                NativeToolCallPart(tool_name="web_search", args={"q": "x"}, tool_call_id="b1"),
                NativeToolReturnPart(
                    tool_name="web_search", content={"hits": 2}, tool_call_id="b1"
                ),
                FilePart(content=png),
            ],
            usage=usage,
            model_name="m",
            timestamp=T0,
            provider_name="p",
            provider_details={"finish": "stop", "n": [1, 2]},
            provider_response_id="r1",
            finish_reason="stop",
        ),
        ModelRequest(
            parts=[
                ToolReturnPart(
                    tool_name="lookup", content={"rows": [1, 2]}, tool_call_id="c1", timestamp=T0
                ),
                ToolReturnPart(
                    tool_name="lookup", content="bad q", tool_call_id="c2", outcome="retried"
                ),
                RetryFeedbackPart(
                    content="answer with a number", retry=RetryInfo(cause="model_retry")
                ),
            ]
        ),
        ModelResponse(parts=[TextPart(content="fin")], timestamp=T0),
    ]


def test_every_message_dumps_as_pydantic_ais_adapter_does() -> None:
    messages = _rich_messages()
    expected = ModelMessagesTypeAdapter.dump_python(messages, mode="json")
    got = dump_messages(messages)
    assert got == expected
    assert [list(m) for m in got] == [list(m) for m in expected]  # key order too
    assert got[1]["usage"]["custom_counter"] == 5
    assert got[1]["parts"][-1]["content"]["data"] == expected[1]["parts"][-1]["content"]["data"]


def test_the_dump_loads_back_and_dumps_the_same() -> None:
    dumped = dump_messages(_rich_messages())
    assert dump_messages(load_history(dumped)) == dumped


def test_a_subclassed_message_goes_through_pydantic_ais_adapter() -> None:
    @dataclasses.dataclass(repr=False)
    class TaggedResponse(ModelResponse):
        pass

    messages: list[Any] = [TaggedResponse(parts=[TextPart(content="x")], timestamp=T0)]
    assert dump_messages(messages) == ModelMessagesTypeAdapter.dump_python(messages, mode="json")

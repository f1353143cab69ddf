"""Agents registered from Python for the ExUnit suite (loaded only by agent tests).

``history_counter`` answers with the number of messages its model was given,
which lets a test prove that the history it sent reached the model.
"""

from __future__ import annotations

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import axon_port.registry as r


def _count(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    return ModelResponse(parts=[TextPart(f"seen {len(messages)} messages")])


r.register_agent("history_counter", Agent(FunctionModel(_count), name="history_counter"))

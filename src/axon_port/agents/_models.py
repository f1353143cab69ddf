"""The ``model`` of a spec (or of ``complete``) → a pydantic-ai ``Model``.

Accepted forms:

* omitted, ``nil`` or ``"test"`` — pydantic-ai's ``TestModel`` (calls every tool
  once with generated arguments, then answers with generated output);
* any other pydantic-ai model string (``"openai-chat:gpt-4o"``, ``"anthropic:…"``):
  resolved with ``pydantic_ai.models.infer_model`` when the agent is defined, so a
  missing provider package or API key is a ``bad_request`` then, not at run time;
* ``%{"provider" => "test", …}`` — ``TestModel`` with its options
  ``call_tools`` (``"all"`` or a list of names), ``custom_output_text``,
  ``custom_output_args``, ``seed``;
* ``%{"provider" => "openai-compatible", "name" => model, "base_url" => url,
  "api_key_env" => var}`` — Chat Completions (``openai-chat`` semantics) against any
  OpenAI-compatible server; optional ``max_retries`` (the client's own HTTP retries,
  default 2) and ``timeout`` (seconds). ``api_key_env`` names an environment
  variable of the worker, so keys never travel in frames; without it the key is
  ``"unused"`` (local servers);
* ``%{"provider" => "script", "responses" => [turn, …]}`` — a deterministic
  scripted model (below), for tests written in Elixir.

The script model
----------------
Each model request of a run takes the next *turn* of ``responses``; the first
request after the user prompt takes turn 0 (the turn is the number of model
responses since the last user prompt, so every run of an agent starts at 0, and a
retry consumes a turn). The content a tool sends beside its result
(``ToolReturn(content=...)``) is not a new prompt, and a run resumed from history
without a prompt (deferred tool results) continues the count.

A turn is a binary (text), or a map combining:

* ``"text"`` — a binary, or a list of binaries streamed as separate chunks;
* ``"thinking"`` — a binary;
* ``"tool_calls"`` — ``[%{"tool" => name, "args" => map, "id" => optional}]``;
* ``"output"`` — a map: structured output (a call of the agent's output tool;
  for an agent with text output the JSON text of the map); ``"output_tool"`` names
  the output tool to call when there are several (one per ``anyOf`` branch);
* ``"error"`` — ``%{"status" => 429, "body" => …}``: the request fails like a
  provider HTTP error with that status;
* ``"delay_ms"`` — wait this long before answering (to test cancel and timeouts);
  ``"chunk_delay_ms"`` — wait between streamed chunks.

A request past the last turn fails as ``unexpected_model_behavior``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic_ai import exceptions as pai
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ModelResponsePart,
    RetryPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, infer_model
from pydantic_ai.models.function import (
    AgentInfo,
    DeltaThinkingCalls,
    DeltaThinkingPart,
    DeltaToolCall,
    DeltaToolCalls,
    FunctionModel,
)
from pydantic_ai.models.test import TestModel

from axon_port import _secrets
from axon_port.errors import BadRequest

__all__ = ["build_model", "model_key"]

_TURN_KEYS = {
    "text", "thinking", "tool_calls", "output", "output_tool", "error", "delay_ms", "chunk_delay_ms"
}  # fmt: skip
_THINKING_INDEX = 10_000  # vendor part id for thinking, apart from tool-call indexes


def model_key(model: Any) -> str:
    """A canonical text key for a model spec (for caching built models)."""
    return json.dumps(model, sort_keys=True, default=repr)


def build_model(model: Any, *, where: str = "model") -> Model:
    """Build the model a spec names; ``BadRequest`` if it cannot be built."""
    if model is None or model == "test":
        return TestModel()
    if isinstance(model, str):
        try:
            return infer_model(model)
        except (pai.UserError, ValueError, ImportError, KeyError) as exc:
            raise BadRequest(f"{where}: cannot use model {model!r}: {exc}") from None
    if not isinstance(model, Mapping):
        raise BadRequest(f"{where} must be a model string or a map with a provider")
    provider = model.get("provider")
    if provider == "test":
        return _test_model(model, where)
    if provider == "script":
        return _script_model(model, where)
    if provider == "openai-compatible":
        return _openai_compatible(model, where)
    raise BadRequest(
        f"{where}: unknown provider {provider!r} (expected test, script or openai-compatible)"
    )


def _check_keys(m: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in m if k not in allowed)
    if unknown:
        raise BadRequest(f"{where}: unknown keys {unknown} (allowed: {sorted(allowed)})")


def _test_model(m: Mapping[str, Any], where: str) -> Model:
    _check_keys(
        m, {"provider", "call_tools", "custom_output_text", "custom_output_args", "seed"}, where
    )
    call_tools = m.get("call_tools", "all")
    if call_tools != "all" and not (
        isinstance(call_tools, list) and all(isinstance(t, str) for t in call_tools)
    ):
        raise BadRequest(f'{where}.call_tools must be "all" or a list of tool names')
    return TestModel(
        call_tools=call_tools,
        custom_output_text=m.get("custom_output_text"),
        custom_output_args=m.get("custom_output_args"),
        seed=int(m.get("seed", 0)),
    )


def _openai_compatible(m: Mapping[str, Any], where: str) -> Model:
    from openai import AsyncOpenAI
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    _check_keys(m, {"provider", "name", "base_url", "api_key_env", "max_retries", "timeout"}, where)
    name, base_url = m.get("name"), m.get("base_url")
    if not isinstance(name, str) or not isinstance(base_url, str):
        raise BadRequest(f"{where}: openai-compatible needs binary name and base_url")
    api_key = _api_key(m.get("api_key_env"), base_url, where)
    max_retries = m.get("max_retries", 2)
    timeout = m.get("timeout", 600.0)
    if not isinstance(max_retries, int) or not isinstance(timeout, int | float):
        raise BadRequest(f"{where}: max_retries must be an integer and timeout a number")
    client = AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=float(timeout)
    )
    return OpenAIChatModel(name, provider=OpenAIProvider(openai_client=client))


def _api_key(env: Any, base_url: str, where: str) -> str:
    """The key named by ``api_key_env``, if the operator's policy allows the variable
    and the base URL (``--allow-env``, ``--allow-base-url``; see ``axon_port._secrets``)."""
    refused = _secrets.check_base_url(base_url)
    if refused is not None:
        raise BadRequest(f"{where}: {refused}")
    if env is None:
        return "unused"
    if not isinstance(env, str):
        raise BadRequest(f"{where}: api_key_env must be a binary")
    refused = _secrets.check_env(env)
    if refused is not None:
        raise BadRequest(f"{where}: {refused}")
    if env not in os.environ:
        raise BadRequest(f"{where}: environment variable {env!r} (api_key_env) is not set")
    return os.environ[env]


def _script_model(m: Mapping[str, Any], where: str) -> Model:
    _check_keys(m, {"provider", "responses", "name"}, where)
    turns = m.get("responses")
    if not isinstance(turns, list) or not turns:
        raise BadRequest(f"{where}.responses must be a non-empty list of turns")
    checked = [_check_turn(t, f"{where}.responses[{i}]") for i, t in enumerate(turns)]
    script = _Script(checked)
    return FunctionModel(
        script.respond, stream_function=script.stream, model_name=str(m.get("name", "script"))
    )


def _check_turn(turn: Any, where: str) -> dict[str, Any]:
    if isinstance(turn, str):
        return {"text": turn}
    if not isinstance(turn, Mapping):
        raise BadRequest(f"{where} must be a binary or a map")
    _check_keys(turn, _TURN_KEYS, where)
    text = turn.get("text")
    if text is not None and not (
        isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))
    ):
        raise BadRequest(f"{where}.text must be a binary or a list of binaries")
    for call in turn.get("tool_calls") or []:
        if not isinstance(call, Mapping) or not isinstance(call.get("tool"), str):
            raise BadRequest(f"{where}.tool_calls entries need a binary tool")
    if "output" in turn and not isinstance(turn["output"], Mapping):
        raise BadRequest(f"{where}.output must be a map")
    error = turn.get("error")
    if error is not None and not (
        isinstance(error, Mapping) and isinstance(error.get("status"), int)
    ):
        raise BadRequest(f"{where}.error must be a map with an integer status")
    return dict(turn)


class _Script:
    """The turns of a script model; picks the turn for each request from the messages."""

    def __init__(self, turns: list[dict[str, Any]]) -> None:
        self.turns = turns

    def _turn(self, messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
        index = 0
        for msg in reversed(messages):
            if isinstance(msg, ModelResponse):
                index += 1
            elif isinstance(msg, ModelRequest) and _is_prompt(msg):
                break
        if index >= len(self.turns):
            raise pai.UnexpectedModelBehavior(
                f"script model has no response {index} (it has {len(self.turns)})"
            )
        turn = self.turns[index]
        if turn.get("error") is not None:
            err = turn["error"]
            raise pai.ModelHTTPError(int(err["status"]), "script", err.get("body"))
        return turn

    async def respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        turn = self._turn(messages, info)
        if turn.get("delay_ms"):
            await asyncio.sleep(turn["delay_ms"] / 1000)
        parts: list[ModelResponsePart] = []
        if turn.get("thinking"):
            parts.append(ThinkingPart(str(turn["thinking"])))
        text = turn.get("text")
        if text is not None:
            parts.append(TextPart(text if isinstance(text, str) else "".join(text)))
        for i, call in enumerate(turn.get("tool_calls") or []):
            parts.append(
                ToolCallPart(call["tool"], dict(call.get("args") or {}), _call_id(call, i))
            )
        if "output" in turn:
            parts.append(_output_part(turn["output"], info, turn.get("output_tool")))
        return ModelResponse(parts=parts)

    async def stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls | DeltaThinkingCalls]:
        turn = self._turn(messages, info)
        pause = (turn.get("chunk_delay_ms") or 0) / 1000
        if turn.get("delay_ms"):
            await asyncio.sleep(turn["delay_ms"] / 1000)
        if turn.get("thinking"):
            yield {_THINKING_INDEX: DeltaThinkingPart(content=str(turn["thinking"]))}
        text = turn.get("text")
        for i, chunk in enumerate([text] if isinstance(text, str) else (text or [])):
            if i and pause:
                await asyncio.sleep(pause)
            yield chunk
        calls = [
            (call["tool"], json.dumps(call.get("args") or {}), _call_id(call, i))
            for i, call in enumerate(turn.get("tool_calls") or [])
        ]
        if "output" in turn:
            part = _output_part(turn["output"], info, turn.get("output_tool"))
            if isinstance(part, TextPart):
                yield part.content
            else:
                calls.append((part.tool_name, json.dumps(turn["output"]), part.tool_call_id))
        for i, (tool, args, call_id) in enumerate(calls):
            pieces = _pieces(args)
            yield {i: DeltaToolCall(name=tool, json_args=pieces[0], tool_call_id=call_id)}
            for piece in pieces[1:]:
                if pause:
                    await asyncio.sleep(pause)
                yield {i: DeltaToolCall(json_args=piece)}


def _is_prompt(request: ModelRequest) -> bool:
    """A request that starts a turn count: it has a user prompt and answers no tool call.

    A tool's ``ToolReturn(content=...)`` adds a user prompt part to the request that
    returns the tool's result; that is the same turn sequence, not a new prompt.
    """
    parts = request.parts
    return any(isinstance(p, UserPromptPart) for p in parts) and not any(
        isinstance(p, ToolReturnPart | RetryPromptPart) for p in parts
    )


def _call_id(call: Mapping[str, Any], i: int) -> str:
    given = call.get("id")
    return str(given) if given is not None else f"script_call_{i}"


def _output_part(output: Any, info: AgentInfo, tool: Any = None) -> TextPart | ToolCallPart:
    if info.output_tools:
        names = [t.name for t in info.output_tools]
        name = next((n for n in names if tool is not None and n.endswith(str(tool))), names[0])
        return ToolCallPart(name, dict(output), "script_output")
    return TextPart(json.dumps(output))


def _pieces(args: str, size: int = 12) -> list[str]:
    """Split JSON text into streamable pieces (so ``output_partial`` has something to show)."""
    return [args[i : i + size] for i in range(0, len(args), size)] or [""]

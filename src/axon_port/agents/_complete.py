"""``complete``: one direct model request, without the agent loop.

The design discussion's "thin LLM wrapper": the client sends the conversation
(pydantic-ai message data, or a binary as shorthand for one user prompt),
optional tool definitions the model may call (nothing is executed: the calls
are returned) and optional ``output_schema`` (offered as an output tool; the
arguments are checked against the schema). Uses ``pydantic_ai.direct``.

The ``result``'s ``output`` is ``%{"text" => binary | nil, "tool_calls" =>
[%{"tool_name", "args", "tool_call_id"}], "finish_reason"}`` plus ``"output"``
(the structured output) when ``output_schema`` was given; ``messages`` is
``[response]``, ready to append to the conversation; ``usage`` is the request's
usage. ``stream: true`` sends the same ``chunk`` events as a streamed run.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from axon_port.agents._errors import to_axon_error
from axon_port.agents._messages import dump_messages, jsonable, load_history, plain
from axon_port.agents._schema import SchemaOutput, compile_validator
from axon_port.agents._stream import EventForwarder
from axon_port.errors import AxonError, BadRequest

if TYPE_CHECKING:
    from axon_port.agents import AgentService, RequestLike

__all__ = ["complete_request"]

_OUTPUT_TOOL = "final_result"


async def complete_request(service: AgentService, ctx: RequestLike) -> dict[str, Any]:
    """Serve one ``complete`` request (see the module docstring)."""
    from axon_port.agents import cancelled_error

    started = time.monotonic()
    params = ctx.params
    model = service.model(plain(params.get("model")))
    raw_messages = params.get("messages")
    messages: list[ModelMessage]
    if isinstance(raw_messages, str):
        messages = [ModelRequest.user_text_prompt(str(raw_messages))]
    else:
        messages = load_history(raw_messages, field="messages")
    if not messages:
        raise BadRequest("complete: messages must not be empty")
    if not isinstance(messages[-1], ModelRequest):
        raise BadRequest('complete: the last message must be a request (kind "request")')
    output = None
    if params.get("output_schema") is not None:
        output = SchemaOutput.from_spec(plain(params["output_schema"]), where="output_schema")
    mrp = _parameters(params.get("tools"), output)
    settings: ModelSettings | None = plain(params.get("model_settings"))
    if settings is not None and not isinstance(settings, dict):
        raise BadRequest("complete: model_settings must be a map")
    # pydantic_ai.direct is imported on first use: worker start-up does not need it.
    from pydantic_ai import direct

    try:
        if params.get("stream") is True:
            forwarder = EventForwarder(ctx.chunk, partial_interval=service.partial_interval)
            async with direct.model_request_stream(
                model, messages, model_settings=settings, model_request_parameters=mrp
            ) as stream:
                async for event in stream:
                    forwarder.handle(event)
                    await ctx.drain()
            response = stream.get()
        else:
            response = await direct.model_request(
                model, messages, model_settings=settings, model_request_parameters=mrp
            )
    except asyncio.CancelledError:
        raise cancelled_error(ctx.cancel_reason, []) from None
    except Exception as exc:
        err = to_axon_error(exc)
        if err is None:
            raise
        raise err from exc
    return {
        "output": _output(response, output),
        "usage": jsonable(response.usage),
        "messages": dump_messages([response]),
        "elapsed_ms": round((time.monotonic() - started) * 1000, 3),
    }


def _parameters(tools: Any, output: SchemaOutput | None) -> ModelRequestParameters:
    defs: list[ToolDefinition] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest("complete: tools must be a list of tool definitions")
        for i, tool in enumerate(plain(tools)):
            where = f"tools[{i}]"
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise BadRequest(f"{where} must be a map with a binary name")
            unknown = sorted(set(tool) - {"name", "description", "parameters", "remote"})
            if unknown:
                raise BadRequest(f"{where}: unknown key(s) {unknown}")
            schema = tool.get("parameters") or {"type": "object", "properties": {}}
            compile_validator(schema, where=f"{where}.parameters")
            defs.append(
                ToolDefinition(
                    name=tool["name"],
                    description=tool.get("description"),
                    parameters_json_schema=schema,
                )
            )
    if output is None:
        return ModelRequestParameters(function_tools=defs)
    out_def = ToolDefinition(
        name=_OUTPUT_TOOL,
        description=output.description,
        parameters_json_schema=output.schema,
        kind="output",
    )
    return ModelRequestParameters(
        function_tools=defs, output_mode="tool", output_tools=[out_def], allow_text_output=False
    )


def _output(response: ModelResponse, output: SchemaOutput | None) -> dict[str, Any]:
    texts = [p.content for p in response.parts if isinstance(p, TextPart)]
    calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
    out: dict[str, Any] = {
        "text": "".join(texts) if texts else None,
        "tool_calls": [
            {"tool_name": c.tool_name, "args": _args(c), "tool_call_id": c.tool_call_id}
            for c in calls
            if c.tool_name != _OUTPUT_TOOL or output is None
        ],
        "finish_reason": response.finish_reason,
    }
    if output is not None:
        final = next((c for c in calls if c.tool_name == _OUTPUT_TOOL), None)
        if final is None:
            raise AxonError(
                "the model did not produce the structured output",
                kind="unexpected_model_behavior",
                details={"messages": dump_messages([response])},
            )
        value = _args(final)
        errors = output.errors(value)
        if errors:
            raise AxonError(
                "the output did not match output_schema",
                kind="validation_error",
                details={"errors": errors, "output": value, "messages": dump_messages([response])},
            )
        out["output"] = value
    return out


def _args(call: ToolCallPart) -> Any:
    try:
        return jsonable(call.args_as_dict())
    except ValueError:
        return call.args

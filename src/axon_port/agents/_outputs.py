"""A spec's ``output_schema`` (any JSON Schema) and ``output_mode`` → a pydantic-ai output type.

* an object schema → one ``StructuredDict`` (one output tool);
* ``anyOf``/``oneOf`` of object schemas → one ``StructuredDict`` per branch, as
  ``output_type=[A, B]`` gives one output tool per type (named from each branch's
  ``title``, else ``Output1``, ``Output2``, ...);
* a plain ``{"type": "string"}`` (nothing but ``title``/``description`` besides) →
  text output, as ``output_type=str``;
* any other schema (scalars, arrays, enums, ...) → an object with one ``response``
  field holding it, unwrapped again before the client sees it (what pydantic-ai does
  for non-object output types).

``output_mode`` picks how the model is asked for it: ``"tool"`` (the default, output
tools: ``ToolOutput``), ``"native"`` (the provider's structured output:
``NativeOutput``) or ``"prompted"`` (the schema in the instructions: ``PromptedOutput``).
Every output is validated against the whole schema (see ``_schema``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_ai import NativeOutput, PromptedOutput, StructuredDict, ToolOutput

from axon_port.agents._schema import SchemaOutput, compile_validator
from axon_port.errors import BadRequest

__all__ = ["OUTPUT_MODES", "OutputPlan", "plan_output"]

OUTPUT_MODES = ("tool", "native", "prompted")
_TEXT_KEYS = frozenset({"type", "title", "description"})


@dataclass(frozen=True)
class OutputPlan:
    """What the agent is built with, and how its output is checked."""

    #: For ``Agent(output_type=...)`` (``DeferredToolRequests`` is added by the builder).
    output_type: Any
    #: The whole schema and its validator; ``None`` for text output.
    check: SchemaOutput | None
    #: The schema is not an object: the output is ``{"response": value}`` on the way in.
    wrapped: bool = False


def _dict(schema: dict[str, Any], name: str) -> Any:
    title = schema.get("title")
    description = schema.get("description")
    return StructuredDict(
        schema,
        name=title if isinstance(title, str) and title else name,
        description=description if isinstance(description, str) else None,
    )


def plan_output(schema: Any, mode: Any, *, where: str) -> OutputPlan:
    """Build the output plan; ``BadRequest`` for an invalid schema or mode."""
    if mode is not None and mode not in OUTPUT_MODES:
        raise BadRequest(f"spec.output_mode must be one of {list(OUTPUT_MODES)}, got {mode!r}")
    validator = compile_validator(schema, where=where)
    check = SchemaOutput(schema=dict(schema), validator=validator, name="Output", description=None)
    if schema.get("type") == "string" and schema.keys() <= _TEXT_KEYS:
        if mode is not None and mode != "tool":
            raise BadRequest(f"{where}: a plain string output is text; output_mode does not apply")
        return OutputPlan(str, None)
    wrapped = False
    branches = schema.get("anyOf") or schema.get("oneOf")
    if (
        "type" not in schema
        and isinstance(branches, list)
        and branches
        and all(isinstance(b, dict) and b.get("type") == "object" for b in branches)
    ):
        types = [_dict(b, f"Output{i + 1}") for i, b in enumerate(branches)]
    elif schema.get("type") == "object":
        types = [_dict(schema, "Output")]
    else:
        wrapper = {
            "type": "object",
            "properties": {"response": schema},
            "required": ["response"],
            "additionalProperties": False,
        }
        types = [_dict(wrapper, str(schema.get("title") or "Output"))]
        wrapped = True
    if mode == "native":
        output_type: Any = NativeOutput(types)
    elif mode == "prompted":
        output_type = PromptedOutput(types)
    elif mode == "tool":
        output_type = [ToolOutput(t) for t in types]
    else:
        output_type = types[0] if len(types) == 1 else types
    return OutputPlan(output_type, check, wrapped)

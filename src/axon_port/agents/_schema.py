"""JSON Schema output types whose validation is actually enforced.

Theory of operation: pydantic-ai's ``StructuredDict`` only *describes* a schema
to the model; whatever dict the model returns is accepted. :class:`SchemaOutput`
pairs the ``StructuredDict`` with a compiled ``jsonschema`` validator, and the
agent builder installs :meth:`SchemaOutput.check` as an output validator: an
invalid output raises ``ModelRetry`` listing the errors, so pydantic-ai sends
them back to the model and counts the attempt against the ``output`` retry
budget. The last errors are remembered on the run's state so that an exhausted
budget becomes a ``validation_error`` carrying them.

The Elixir shorthand (``result_type: %{risk: :integer, tags: {:list, :string}}``)
is translated by :func:`shorthand_to_schema`; every field is required and no
other fields are allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from axon_port.errors import BadRequest

if TYPE_CHECKING:  # jsonschema is imported on first use: it is not needed to start
    from jsonschema.protocols import Validator

__all__ = [
    "SchemaOutput",
    "compile_validator",
    "schema_errors",
    "shorthand_to_schema",
]

_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "float": {"type": "number"},
    "boolean": {"type": "boolean"},
    "list": {"type": "array"},
    "map": {"type": "object"},
    "any": {},
}


def shorthand_to_schema(shorthand: Any, *, where: str = "result_type") -> dict[str, Any]:
    """Translate the Elixir ``result_type`` shorthand to a JSON Schema object.

    A map is an object whose fields are all required; a type name (atom or
    binary) is one of ``string integer number float boolean list map any``;
    a ``{:list, type}`` tuple (or ``[type]`` one-element list) is an array of
    that type. Anything else is a ``BadRequest`` naming the offending path.
    """
    if not isinstance(shorthand, Mapping) or not shorthand:
        raise BadRequest(f"{where} must be a non-empty map of field => type")
    return _shorthand(shorthand, where)


def _shorthand(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        props = {str(k): _shorthand(v, f"{where}.{k}") for k, v in value.items()}
        return {
            "type": "object",
            "properties": props,
            "required": list(props),
            "additionalProperties": False,
        }
    if isinstance(value, str):
        try:
            return dict(_SCALARS[str(value)])
        except KeyError:
            names = ", ".join(sorted(_SCALARS))
            raise BadRequest(
                f"{where}: unknown type {str(value)!r} (expected one of {names})"
            ) from None
    if isinstance(value, tuple) and len(value) == 2 and str(value[0]) == "list":
        return {"type": "array", "items": _shorthand(value[1], f"{where}[]")}
    if isinstance(value, list) and len(value) == 1:
        return {"type": "array", "items": _shorthand(value[0], f"{where}[]")}
    raise BadRequest(f"{where}: cannot read {value!r} as a type")


def compile_validator(schema: Any, *, where: str) -> Validator:
    """Check ``schema`` is a valid JSON Schema and compile a validator for it."""
    if not isinstance(schema, dict):
        raise BadRequest(f"{where} must be a JSON Schema map")
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise BadRequest(f"{where} is not a valid JSON Schema: {exc.message}") from None
    validator: Validator = _with_bounded_patterns(cls)(schema)
    return validator


#: The longest one ``pattern`` check may take: a request's regex must not stall the loop.
PATTERN_TIMEOUT = 0.05


def _with_bounded_patterns(cls: Any) -> Any:
    """``cls`` with ``pattern`` and ``patternProperties`` checked by the ``regex`` engine
    with a time limit (the stdlib ``re`` cannot be interrupted: ``^(a+)+$`` against 28
    characters takes seconds). A check past the limit is a validation error."""
    import jsonschema
    import regex  # type: ignore[import-untyped]

    def search(patrn: str, text: str) -> bool | str:
        try:
            return regex.search(patrn, text, timeout=PATTERN_TIMEOUT) is not None
        except TimeoutError:
            return f"pattern {patrn[:80]!r} took more than {PATTERN_TIMEOUT} s to check"
        except regex.error as exc:
            return f"pattern {patrn[:80]!r} is not a valid regex: {exc}"

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string"):
            found = search(patrn, instance)
            if found is not True:
                msg = found or f"{instance[:80]!r} does not match {patrn[:80]!r}"
                yield jsonschema.ValidationError(msg)

    def pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
        if not validator.is_type(instance, "object"):
            return
        for patrn, subschema in patterns.items():
            for k, v in instance.items():
                found = search(patrn, k)
                if isinstance(found, str):
                    yield jsonschema.ValidationError(found)
                elif found:
                    yield from validator.descend(v, subschema, path=k, schema_path=patrn)

    return jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        cls, {"pattern": pattern, "patternProperties": pattern_properties}
    )


def schema_errors(validator: Validator, value: Any) -> list[dict[str, Any]]:
    """All the ways ``value`` fails ``validator``, as wire-friendly maps (empty if valid).

    Each error is ``{"path": JSON pointer, "message": text, "validator": keyword}``.
    """
    errors = []
    for err in validator.iter_errors(value):
        pointer = "".join(f"/{p}" for p in err.absolute_path)
        errors.append(
            {"path": pointer or "/", "message": err.message, "validator": str(err.validator)}
        )
    errors.sort(key=lambda e: (e["path"], e["message"]))
    return errors


def errors_text(errors: list[dict[str, Any]]) -> str:
    """The errors as the bullet list the model is asked to fix."""
    return "\n".join(f"- {e['path']}: {e['message']}" for e in errors)


@dataclass(frozen=True)
class SchemaOutput:
    """An object JSON Schema used as an agent's output type, with its validator."""

    schema: dict[str, Any]
    validator: Validator
    name: str
    description: str | None

    @classmethod
    def from_spec(
        cls,
        schema: Any,
        *,
        where: str,
        name: str | None = None,
        description: str | None = None,
    ) -> SchemaOutput:
        """Validate and compile ``schema``, which must describe an object (else ``BadRequest``)."""
        validator = compile_validator(schema, where=where)
        plain = dict(schema)
        if plain.get("type") != "object":
            raise BadRequest(f'{where} must describe an object ("type": "object")')
        title = plain.get("title")
        return cls(
            schema=plain,
            validator=validator,
            name=name or (title if isinstance(title, str) and title else "Output"),
            description=description or _str_or_none(plain.get("description")),
        )

    def errors(self, value: Any) -> list[dict[str, Any]]:
        """Validation errors of ``value`` against the schema (empty when valid)."""
        return schema_errors(self.validator, value)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None

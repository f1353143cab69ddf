"""JSON Schema output types whose validation is actually enforced.

Theory of operation: pydantic-ai's ``StructuredDict`` only *describes* a schema
to the model; whatever dict the model returns is accepted. :class:`SchemaOutput`
pairs the ``StructuredDict`` with a compiled ``jsonschema`` validator, and the
agent builder installs :meth:`SchemaOutput.check` as an output validator: an
invalid output raises ``ModelRetry`` listing the errors, so pydantic-ai sends
them back to the model and counts the attempt against the ``output`` retry
budget. The last errors are remembered on the run's state so that an exhausted
budget becomes a ``validation_error`` carrying them.

The Elixir shorthand (``result_type: %{risk: {:integer, min: 0, max: 10},
note: {:optional, :string}, tier: {:enum, ["gold", "silver"]}}``) is translated by
:func:`shorthand_to_schema`; fields are required unless ``:optional``, and no
other fields are allowed. A value the schema declares integer is coerced from an
integral float (``8.0`` → ``8``) by :func:`coerce_integers` before validation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from axon_port.errors import BadRequest

if TYPE_CHECKING:  # jsonschema is imported on first use: it is not needed to start
    from jsonschema.protocols import Validator

__all__ = [
    "SchemaOutput",
    "coerce_integers",
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


_MODIFIERS = frozenset({"list", "optional", "nullable", "enum"})
# Option name -> (JSON Schema keyword, the scalar types it applies to; None: any type).
_OPTIONS: dict[str, tuple[str, frozenset[str] | None]] = {
    "min": ("minimum", frozenset({"integer", "number", "float"})),
    "max": ("maximum", frozenset({"integer", "number", "float"})),
    "min_length": ("minLength", frozenset({"string"})),
    "max_length": ("maxLength", frozenset({"string"})),
    "pattern": ("pattern", frozenset({"string"})),
    "min_items": ("minItems", frozenset({"list"})),
    "max_items": ("maxItems", frozenset({"list"})),
    "description": ("description", None),
}


def _shorthand(value: Any, where: str) -> dict[str, Any]:
    schema, _ = _field(value, where)
    return schema


def _field(value: Any, where: str) -> tuple[dict[str, Any], bool]:
    """The schema of one shorthand type, and whether it is required (not ``:optional``)."""
    if isinstance(value, Mapping):
        props: dict[str, Any] = {}
        required = []
        for k, v in value.items():
            props[str(k)], needed = _field(v, f"{where}.{k}")
            if needed:
                required.append(str(k))
        return {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }, True
    if isinstance(value, str):
        try:
            return dict(_SCALARS[str(value)]), True
        except KeyError:
            names = ", ".join(sorted(_SCALARS))
            raise BadRequest(
                f"{where}: unknown type {str(value)!r} (expected one of {names})"
            ) from None
    # {name, arg} or {type, opts}: a tuple from ETF, a two-item list from msgpack.
    if isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[0], str):
        head, arg = str(value[0]), value[1]
        if head == "list" and not _is_options(arg):
            return {"type": "array", "items": _shorthand(arg, f"{where}[]")}, True
        if head == "optional":
            return _shorthand(arg, where), False
        if head == "nullable":
            return {"anyOf": [_shorthand(arg, where), {"type": "null"}]}, True
        if head == "enum":
            if not isinstance(arg, list | tuple) or not arg:
                raise BadRequest(f"{where}: {{:enum, values}} needs a non-empty list of values")
            values = [str(v) if isinstance(v, str) else v for v in arg]
            schema: dict[str, Any] = {"enum": values}
            if all(isinstance(v, str) for v in values):
                schema["type"] = "string"
            return schema, True
        if _is_options(arg):
            return _with_options(value[0], arg, where), True
    if isinstance(value, tuple | list) and len(value) == 2 and _is_options(value[1]):
        return _with_options(value[0], value[1], where), True  # {%{...}, description: ...}
    if isinstance(value, list) and len(value) == 1:
        return {"type": "array", "items": _shorthand(value[0], f"{where}[]")}, True
    raise BadRequest(f"{where}: cannot read {value!r} as a type")


def _is_options(value: Any) -> bool:
    """A keyword list (``[min: 0]``: 2-tuples with atom keys) or a map of known options."""
    if isinstance(value, Mapping):
        return bool(value) and all(str(k) in _OPTIONS for k in value)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, tuple) and len(i) == 2 and str(i[0]) in _OPTIONS for i in value)
    )


def _with_options(type_: Any, options: Any, where: str) -> dict[str, Any]:
    schema = _shorthand(type_, where)
    name = str(type_) if isinstance(type_, str) else None
    items = options.items() if isinstance(options, Mapping) else options
    for key, val in items:
        keyword, applies = _OPTIONS[str(key)]
        if applies is not None and name not in applies:
            raise BadRequest(f"{where}: option {str(key)!r} does not apply to {name or type_!r}")
        schema[keyword] = str(val) if isinstance(val, str) else val
    return schema


def coerce_integers(schema: Any, value: Any) -> Any:
    """``value`` with every float that stands for an integer field made an ``int`` (8.0 → 8).

    Follows ``properties``, ``items`` and ``anyOf``/``oneOf`` branches; a float with
    a fraction is left for the validator to reject.
    """
    if not isinstance(schema, Mapping):
        return value
    kind = schema.get("type")
    if (
        isinstance(value, float)
        and value.is_integer()
        and (kind == "integer" or (isinstance(kind, list) and "integer" in kind))
    ):
        return int(value)
    if isinstance(value, dict) and isinstance(schema.get("properties"), Mapping):
        props = schema["properties"]
        return {k: coerce_integers(props.get(k), v) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [coerce_integers(schema["items"], v) for v in value]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                coerced = coerce_integers(branch, value)
                if coerced is not value:
                    return coerced
    return value


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
#: The longest all the ``pattern`` checks of one validation may take together: many
#: strings against a slow pattern must not add up to a stall either.
PATTERN_BUDGET = 0.2

# The monotonic deadline of the validation in progress (set by :func:`schema_errors`).
_pattern_deadline: ContextVar[float | None] = ContextVar("axon_port_pattern_deadline", default=None)


class _PatternBudgetSpent(Exception):
    """The validation's pattern checks used up :data:`PATTERN_BUDGET`."""


def _with_bounded_patterns(cls: Any) -> Any:
    """``cls`` with ``pattern`` and ``patternProperties`` checked by the ``regex`` engine
    with a time limit (the stdlib ``re`` cannot be interrupted: ``^(a+)+$`` against 28
    characters takes seconds). A check past the limit is a validation error."""
    import jsonschema
    import regex  # type: ignore[import-untyped]

    def search(patrn: str, text: str) -> bool | str:
        limit = PATTERN_TIMEOUT
        deadline = _pattern_deadline.get()
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _PatternBudgetSpent
            limit = min(limit, left)
        try:
            return regex.search(patrn, text, timeout=limit) is not None
        except TimeoutError:
            if limit < PATTERN_TIMEOUT:
                raise _PatternBudgetSpent from None
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
    The ``pattern`` checks of one call share :data:`PATTERN_BUDGET`: once it is spent,
    validation stops with the errors found so far plus one saying so, so no value,
    however many strings it holds, holds the event loop longer than that.
    """
    errors = []
    token = _pattern_deadline.set(time.monotonic() + PATTERN_BUDGET)
    try:
        for err in validator.iter_errors(value):
            pointer = "".join(f"/{p}" for p in err.absolute_path)
            errors.append(
                {"path": pointer or "/", "message": err.message, "validator": str(err.validator)}
            )
    except _PatternBudgetSpent:
        errors.append(
            {
                "path": "/",
                "message": f"the pattern checks took more than {PATTERN_BUDGET} s in total;"
                " validation stopped",
                "validator": "pattern",
            }
        )
    finally:
        _pattern_deadline.reset(token)
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

"""Request envelope validation."""

from __future__ import annotations

import pytest

from axon_port import Atom
from axon_port.errors import BadRequest
from axon_port.messages import OP_FIELDS, Kind, check_fields, parse_request


def test_a_valid_request_is_parsed_with_a_plain_str_op() -> None:
    req = parse_request({Atom("op"): Atom("ping"), Atom("id"): 3})
    assert (req.op, req.id) == ("ping", 3)
    assert type(req.op) is str


def test_cancel_names_a_target_instead_of_opening_an_id() -> None:
    req = parse_request({"op": "cancel", "target": 9})
    assert (req.op, req.id) == ("cancel", None)


@pytest.mark.parametrize(
    ("term", "recovered_id"),
    [
        ("nope", None),
        ({"id": 1}, 1),
        ({"op": 5, "id": 2}, 2),
        ({"op": "ping"}, None),
        ({"op": "ping", "id": True}, None),
        ({"op": "ping", "id": 1.0}, None),
        ({"op": "fly", "id": 3}, 3),
        ({"op": "cancel"}, None),
    ],
)
def test_bad_envelopes_raise_bad_request_with_the_recoverable_id(
    term: object, recovered_id: int | None
) -> None:
    with pytest.raises(BadRequest) as info:
        parse_request(term)
    details = info.value.details
    assert (details or {}).get("id") == recovered_id


SAMPLES = {
    Kind.ANY: {"a": 1}, Kind.BOOL: True, Kind.NAME: "x", Kind.TEXT: "x", Kind.MAP: {},
    Kind.LIST: [], Kind.MAP_OR_NAME: "test", Kind.PROMPT: "hi", Kind.TIMEOUT: 5,
    Kind.GRACE: 0, Kind.ID: 7,
}  # fmt: skip


def test_every_op_field_table_entry_accepts_its_own_fields() -> None:
    for op, fields in OP_FIELDS.items():
        check_fields(op, {"op": op, "id": 1, **{k: SAMPLES[f.kind] for k, f in fields.items()}})
        required = {k: SAMPLES[f.kind] for k, f in fields.items() if f.required}
        check_fields(op, {"op": op, "id": 1, **required})


@pytest.mark.parametrize(
    ("op", "field", "value"),
    [
        ("call", "timeout_ms", 10**400),
        ("call", "timeout_ms", 0),
        ("call", "timeout_ms", -5),
        ("call", "timeout_ms", 1.5),
        ("call", "timeout_ms", float("nan")),
        ("call", "timeout_ms", True),
        ("call", "timeout_ms", Atom("soon")),
        ("run", "stream", Atom("yes")),
        ("run", "stream", 1),
        ("shutdown", "grace_ms", -1),
        ("shutdown", "grace_ms", 2**31),
        ("call", "function", {"nested": {}}),
        ("call", "function", "f" * 1_000_000),
        ("call", "args", {"a": 1}),
        ("call", "kwargs", [1]),
        ("set_log_level", "level", 5),
    ],
)
def test_wrong_types_and_out_of_range_values_are_bad_requests(
    op: str, field: str, value: object
) -> None:
    base = {"function": "f", "prompt": "p", "level": "info"}
    params = {"op": op, "id": 1, **{k: v for k, v in base.items() if k in OP_FIELDS[op]}}
    params[field] = value
    with pytest.raises(BadRequest) as info:
        check_fields(op, params)
    assert len(info.value.message) < 300


def test_ids_and_targets_beyond_64_bits_are_bad_requests_answered_with_nil() -> None:
    for term in ({"op": "ping", "id": 10**5000}, {"op": "ping", "id": -(2**63) - 1}):
        with pytest.raises(BadRequest) as info:
            parse_request(term)
        assert info.value.details == {"id": None, "op": "ping"}
    with pytest.raises(BadRequest):
        parse_request({"op": "cancel", "target": 2**64})
    assert parse_request({"op": "ping", "id": 2**64 - 1}).id == 2**64 - 1


def test_missing_and_unknown_fields_are_named_in_the_error() -> None:
    with pytest.raises(BadRequest, match="missing field\\(s\\) function"):
        check_fields("call", {"op": "call", "id": 1})
    with pytest.raises(BadRequest, match="unknown field\\(s\\) colour"):
        check_fields("ping", {"op": "ping", "id": 1, Atom("colour"): 1})


def test_a_model_named_by_a_string_may_be_longer_than_other_names() -> None:
    """``model`` (a map or a "provider:model" name) takes names up to 1024 characters;
    other names (``function``, ``agent``, ...) up to 255."""
    run = {"op": "run", "id": 1, "prompt": "p"}
    complete = {"op": "complete", "id": 1, "messages": "p"}
    check_fields("run", {**run, "model": "m" * 1024})
    check_fields("complete", {**complete, "model": "m" * 300})
    for params in (run, complete):
        with pytest.raises(BadRequest, match="model must be"):
            check_fields(str(params["op"]), {**params, "model": "m" * 1025})
    with pytest.raises(BadRequest, match="function must be"):
        check_fields("call", {"op": "call", "id": 1, "function": "f" * 256})

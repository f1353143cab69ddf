"""Request envelope validation."""

from __future__ import annotations

import pytest

from axon_port import Atom
from axon_port.errors import BadRequest
from axon_port.messages import OP_FIELDS, check_fields, parse_request


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


def test_every_op_field_table_entry_accepts_its_own_fields() -> None:
    for op, (required, optional) in OP_FIELDS.items():
        check_fields(op, {"op": op, "id": 1, **{k: 1 for k in required | optional}})


def test_missing_and_unknown_fields_are_named_in_the_error() -> None:
    with pytest.raises(BadRequest, match="missing field\\(s\\) function"):
        check_fields("call", {"op": "call", "id": 1})
    with pytest.raises(BadRequest, match="unknown field\\(s\\) colour"):
        check_fields("ping", {"op": "ping", "id": 1, Atom("colour"): 1})

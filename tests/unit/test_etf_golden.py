"""ETF codec against real Erlang bytes (tests/data/etf_golden.json).

The data file is written by ``elixir scripts/gen_etf_golden.exs`` (OTP 25), so these
tests need no Elixir. Each case carries ``term_to_binary`` bytes in several variants
and a JSON description of the Python value; see the script for the format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typed_equality import assert_same

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.codecs._etf import SPEEDUPS_AVAILABLE, EtfCodec
from axon_port.errors import DecodeError

DATA = Path(__file__).resolve().parents[1] / "data" / "etf_golden.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text())["cases"]


@pytest.fixture(scope="module", params=["c", "python"])
def codec(request: pytest.FixtureRequest) -> EtfCodec:
    """``EtfCodec`` with the C accelerator, then pure Python (same cases, same results)."""
    if request.param == "c" and not SPEEDUPS_AVAILABLE:
        pytest.skip("the C accelerator (_etf_speedups) is not built")
    return EtfCodec(speedups=request.param == "c")


def from_desc(d: Any, key: bool = False) -> Any:
    """Build the Python value a golden description stands for (``key``: hashable forms)."""
    if d is None or isinstance(d, bool | int | str):
        return d
    if isinstance(d, list):
        items = [from_desc(x, key) for x in d]
        return FrozenList(items) if key else items
    ((tag, body),) = d.items()
    if tag == "atom":
        return Atom(body)
    if tag == "bytes_hex":
        return bytes.fromhex(body)
    if tag == "float":
        return float(body)
    if tag == "tuple":
        return tuple(from_desc(x, key) for x in body)
    assert tag == "map", tag
    m = {from_desc(k, True): from_desc(v, key) for k, v in body}
    return FrozenMap(m) if key else m


VARIANTS = [pytest.param(c, v, id=f"{c['name']}-{v}") for c in CASES for v in sorted(c["hex"])]
BY_NAME = [pytest.param(c, id=c["name"]) for c in CASES]


@pytest.mark.parametrize(("case", "variant"), VARIANTS)
def test_erlang_bytes_decode_to_the_described_python_value(
    case: Any, variant: str, codec: EtfCodec
) -> None:
    assert_same(codec.decode(bytes.fromhex(case["hex"][variant])), from_desc(case["value"]))


@pytest.mark.parametrize("case", BY_NAME)
def test_encoding_reproduces_erlangs_bytes_or_round_trips(case: Any, codec: EtfCodec) -> None:
    value = from_desc(case["value"])
    ours = codec.encode(value)
    if case["canonical"]:
        assert ours.hex() == case["hex"]["minor2"]
    else:  # charlists and map key order differ from Erlang; the generator's --verify
        assert_same(codec.decode(ours), value)  # checks that Erlang reads these back


@pytest.mark.parametrize("case", BY_NAME)
def test_every_truncated_prefix_of_an_erlang_term_is_a_decode_error(
    case: Any, codec: EtfCodec
) -> None:
    for variant in ("default", "compressed"):
        data = bytes.fromhex(case["hex"][variant])
        for cut in range(len(data)):
            with pytest.raises(DecodeError):
                codec.decode(data[:cut])


@pytest.mark.parametrize("case", BY_NAME)
def test_an_erlang_term_followed_by_junk_is_a_decode_error(case: Any, codec: EtfCodec) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode(bytes.fromhex(case["hex"]["default"]) + b"\x00")

"""``dump_usage`` is pydantic-ai's own serialisation of a run's usage, built directly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic_ai.usage import RunUsage

from axon_port.agents._messages import dump_usage, jsonable


def _typed(value: dict[str, Any]) -> list[tuple[str, type, Any]]:
    return [(k, type(v), v) for k, v in value.items()]


counts = st.integers(min_value=0, max_value=2**40)


@given(
    st.fixed_dictionaries(
        {
            "requests": counts,
            "tool_calls": counts,
            "input_tokens": counts,
            "output_tokens": counts,
            "cache_read_tokens": counts,
            "cache_write_tokens": counts,
            "input_audio_tokens": counts,
            "audio_seconds": st.one_of(counts, st.floats(0, 1e6)),
            "details": st.dictionaries(st.text(min_size=1, max_size=8), counts, max_size=3),
        }
    )
)
def test_equals_pydantic_ais_serialisation_key_order_and_types_included(fields: Any) -> None:
    usage = RunUsage(**fields)
    assert _typed(dump_usage(usage)) == _typed(jsonable(usage))


def test_unusual_usage_takes_pydantic_ais_own_path() -> None:
    priced = RunUsage(requests=1)
    priced.cost = Decimal("0.25")  # type: ignore[assignment]
    assert dump_usage(priced) == jsonable(priced)
    extra = RunUsage(requests=1)
    extra.vendor_field = 3  # type: ignore[attr-defined]
    assert dump_usage(extra) == jsonable(extra)

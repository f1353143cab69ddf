"""The shipped bank-support example and the ``demo`` command."""

from __future__ import annotations

import pytest
from agents_fixtures import run

from axon_port.demo import main as demo_main
from axon_port.testing import InProcessWorker


def test_the_bank_support_example_registers_its_tool_and_agent() -> None:
    async def main() -> None:
        async with InProcessWorker("etf", modules=["axon_port.examples.bank_support"]) as w:
            reply = await w.request(
                {
                    "op": "run",
                    "id": 1,
                    "agent": "bank_support",
                    "prompt": "balance?",
                    "deps": {"customer_id": 123},
                }
            )
            assert set(reply["output"]) == {"support_advice", "block_card", "risk"}
            returns = [
                p["content"]
                for m in reply["messages"]
                for p in m["parts"]
                if p.get("tool_name") == "customer_balance" and p["part_kind"] == "tool-return"
            ]
            assert returns == ["$123.45"]
            spec = {
                "tools": ["customer_balance"],
                "result_type": {
                    "support_advice": "string",
                    "block_card": "boolean",
                    "risk": "integer",
                },
            }
            defined = await w.request({"op": "define_agent", "id": 2, "name": "s", "spec": spec})
            assert defined["type"] == "result"
            out = (await w.request({"op": "describe", "id": 3}))["output"]
            (agent,) = [a for a in out["agents"] if a["name"] == "bank_support"]
            assert agent["output_schema"]["properties"]["risk"]["maximum"] == 10

    run(main())


def test_the_demo_runs_a_real_worker_and_prints_a_transcript(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert demo_main([]) == 0
    out = capsys.readouterr().out
    assert "⇐ tool_call  card_status" in out
    assert "⇒ tool_result" in out
    assert 'customer_balance returned "$123.45"' in out
    assert '"block_card": true, "risk": 8' in out
    assert "multi-turn" in out

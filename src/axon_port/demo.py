"""``python -m axon_port demo``: a guided tour of the worker, as an Elixir app would drive it.

It starts a real worker subprocess (``PortClient``, the same ``{packet, 4}``
frames an Elixir Port exchanges), loads the bank-support example module,
defines the bank-support agent *as data* on the default ``test`` model with a
Python tool and an Elixir-side tool (answered here, as the Elixir client
would), runs it with streaming, continues the conversation from the returned
history, and prints a transcript. Exit status 0 on success.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from axon_port.client import PortClient

__all__ = ["main"]

CARD_STATUS = {
    "name": "card_status",
    "description": "Status of the customer's card, looked up by the Elixir app.",
    "parameters": {
        "type": "object",
        "properties": {"customer_id": {"type": "integer"}},
        "required": ["customer_id"],
    },
    "remote": True,
}

ADVICE = {
    "support_advice": "We have blocked your card; a new one is on its way.",
    "block_card": True,
    "risk": 8,
}

SPEC = {
    # The embedded test model (no LLM, no network), told what output to produce.
    "model": {"provider": "test", "custom_output_args": ADVICE},
    "instructions": (
        "You are a support agent in our bank, give the customer support and judge "
        "the risk level of their query."
    ),
    "tools": ["customer_balance", CARD_STATUS],
    "result_type": {"support_advice": "string", "block_card": "boolean", "risk": "integer"},
    "retries": {"tools": 2, "output": 2},
}


def _show(value: Any, width: int = 160) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


class Transcript:
    """Prints frames readably and answers ``tool_call`` frames like the Elixir side."""

    def __init__(self, client: PortClient, out: Any) -> None:
        self.client = client
        self.out = out
        self.text_open = False

    def say(self, line: str) -> None:
        if self.text_open:
            print(file=self.out)
            self.text_open = False
        print(line, file=self.out)

    def on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "tool_call":
            self.say(f"  ⇐ tool_call  {frame['tool']}({_show(frame['args'])})  [to Elixir]")
            answer = {"status": "active", "last_used": "2 hours ago, Lisbon"}
            self.client.send(
                {"op": "tool_result", "id": frame["id"], "call_id": frame["call_id"], "ok": answer}
            )
            self.say(f"  ⇒ tool_result {_show(answer)}  [from Elixir]")
        elif kind == "chunk":
            self.chunk(str(frame["event"]), frame["data"])
        elif kind == "log":
            self.say(f"  log {frame.get('level')}: {frame.get('message')}")

    def chunk(self, event: str, data: Any) -> None:
        if event == "text_delta":
            if not self.text_open:
                print("  ✎ ", end="", file=self.out)
                self.text_open = True
            print(data["delta"], end="", file=self.out, flush=True)
        elif event == "tool_call":
            where = "Elixir" if data["remote"] else "Python"
            self.say(f"  · model calls {data['tool_name']}({_show(data['args'])}) → {where}")
        elif event == "tool_result":
            self.say(f"  · {data['tool_name']} returned {_show(data['content'])}")
        elif event == "output_partial":
            self.say(f"  · output so far: {_show(data['output'])}")
        elif event == "retry":
            self.say(f"  · retry ({data['source']}): {_show(data['message'])}")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    parser = argparse.ArgumentParser(prog="axon-port demo", description=__doc__)
    parser.add_argument("--codec", choices=["etf", "msgpack"], default="etf")
    args = parser.parse_args(argv)
    out = sys.stdout
    print("axon_port demo — the bank-support agent, driven like an Elixir app would.\n", file=out)
    module = "axon_port.examples.bank_support"
    with PortClient.spawn(codec=args.codec, args=["--module", module]) as client:
        talk = Transcript(client, out)
        ready = client.ready
        versions = ready.get("versions", {})
        talk.say(
            f"worker pid {ready.get('pid')} ready: protocol {ready.get('protocol')}, "
            f"codec {ready.get('codec')}, pydantic_ai {versions.get('pydantic_ai')}"
        )

        talk.say("\n→ define_agent bank_support_elixir (a spec: plain data, as sent from Elixir)")
        reply = client.request(
            {"op": "define_agent", "id": 1, "name": "bank_support_elixir", "spec": SPEC}
        )
        if reply.get("type") != "result":
            talk.say(f"← error {reply.get('error')}")
            return 1
        talk.say(f"← result: {reply['output']}")

        prompt = "I just lost my card!"
        talk.say(f'\n→ run bank_support_elixir, streaming: "{prompt}"  deps {{customer_id: 123}}')
        first = client.request(
            {
                "op": "run",
                "id": 2,
                "agent": "bank_support_elixir",
                "prompt": prompt,
                "deps": {"customer_id": 123},
                "stream": True,
            },
            on_frame=talk.on_frame,
        )
        if first.get("type") != "result":
            talk.say(f"← error {first.get('error')}")
            return 1
        usage = first["usage"]
        talk.say(f"← result: {_show(first['output'])}")
        talk.say(
            f"  usage: {usage['requests']} model requests, {usage['input_tokens']} in / "
            f"{usage['output_tokens']} out tokens, {first['elapsed_ms']:.1f} ms; "
            f"{len(first['messages'])} new messages kept by the client"
        )

        follow_up = "Thanks. Is my balance safe?"
        talk.say(f'\n→ run again with the history (multi-turn): "{follow_up}"')
        second = client.request(
            {
                "op": "run",
                "id": 3,
                "agent": "bank_support_elixir",
                "prompt": follow_up,
                "history": first["messages"],
                "deps": {"customer_id": 123},
            },
            on_frame=talk.on_frame,
        )
        if second.get("type") != "result":
            talk.say(f"← error {second.get('error')}")
            return 1
        talk.say(f"← result: {_show(second['output'])}")

        talk.say("\n→ run bank_support (the same agent, defined in Python by the example module)")
        third = client.request(
            {
                "op": "run",
                "id": 4,
                "agent": "bank_support",
                "prompt": "What is my balance?",
                "deps": {"customer_id": 7},
            }
        )
        if third.get("type") != "result":
            talk.say(f"← error {third.get('error')}")
            return 1
        talk.say(f"← result: {_show(third['output'])}")

        talk.say("\n→ shutdown")
        done = client.request({"op": "shutdown", "id": 5})
        talk.say(f"← {done.get('type')}")
    print('\nDone. Replace model "test" with e.g. "openai-chat:gpt-4o" for a real LLM.', file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The bank-support agent of the design discussion, registered by decorators.

Load it with ``python -m axon_port --module axon_port.examples.bank_support``.
It registers:

* the Python tool ``customer_balance`` — reads ``customer_id`` from the run's
  ``deps`` (``deps: %{customer_id: 123}`` from Elixir) and looks the balance up
  in a small fake database, so Elixir specs can name it in ``tools``;
* the agent ``bank_support`` — a ready ``pydantic_ai.Agent`` with
  :class:`SupportResult` output on the ``test`` model by default (set
  ``AXON_BANK_SUPPORT_MODEL`` to any pydantic-ai model string for a real one).

The same agent as data, as an Elixir client would define it::

    %{model: "test",
      instructions: "You are a support agent in our bank, ...",
      tools: ["customer_balance"],
      result_type: %{support_advice: :string, block_card: :boolean, risk: :integer}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from pydantic_ai import Agent, RunContext

from axon_port.registry import register_agent, tool

__all__ = ["INSTRUCTIONS", "FakeDatabase", "SupportResult", "customer_balance", "support_agent"]

INSTRUCTIONS = (
    "You are a support agent in our bank, give the customer support and judge the risk level "
    "of their query. Use the customer_balance tool when the balance matters."
)


@dataclass(frozen=True)
class FakeDatabase:
    """A stand-in for the bank's database: customer id → (name, balance)."""

    customers: dict[int, tuple[str, float]]

    def customer_name(self, customer_id: int) -> str:
        return self.customers[customer_id][0]

    def customer_balance(self, customer_id: int, *, include_pending: bool) -> float:
        balance = self.customers[customer_id][1]
        return balance + (25.0 if include_pending else 0.0)


DATABASE = FakeDatabase({123: ("John", 123.45), 7: ("Ada", 9_000.0)})


class SupportResult(BaseModel):
    """What the support agent answers."""

    support_advice: str = Field(description="Advice returned to the customer")
    block_card: bool = Field(description="Whether to block the customer's card")
    risk: int = Field(description="Risk level of query", ge=0, le=10)


@tool
def customer_balance(ctx: RunContext[dict[str, Any]], include_pending: bool) -> str:
    """Returns the customer's current account balance.

    Args:
        include_pending: Whether to include pending transactions.
    """
    customer_id = int(ctx.deps["customer_id"])
    balance = DATABASE.customer_balance(customer_id, include_pending=include_pending)
    return f"${balance:.2f}"


support_agent: Agent[dict[str, Any], SupportResult] = Agent(
    os.environ.get("AXON_BANK_SUPPORT_MODEL", "test"),
    output_type=SupportResult,
    deps_type=dict[str, Any],
    instructions=INSTRUCTIONS,
    tools=[customer_balance],
    name="bank_support",
)

register_agent("bank_support", support_agent)

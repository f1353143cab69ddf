"""The Python module ``my_app_tools`` that docs/elixir.md's examples load.

``AxonPort.DocsTest`` starts the documentation's supervision tree (workers with
``modules: ["my_app_tools"]``) and runs every example against it, so what the
examples call exists here for real:

* ``add`` and ``search`` — functions for ``AxonPort.call/5``;
* ``customer_balance`` — the tool the ``support`` and ``bank_support_agent``
  agents name; it reads ``customer_id`` from the run's ``deps``.
"""

from __future__ import annotations

from typing import Any

from pydantic_ai import RunContext

import axon_port.registry as r

#: customer id -> (name, balance); a stand-in for the bank's database.
CUSTOMERS: dict[int, tuple[str, float]] = {123: ("John", 123.45), 7: ("Ada", 9_000.0)}
PENDING = 25.0

FAQ = [
    "How to block a lost card",
    "Exchange rates for card payments abroad",
    "Opening a savings account",
    "Raising the card limit",
]


@r.function(inline=True)
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


@r.function(inline=True)
def search(query: str, limit: int = 3) -> list[str]:
    """The FAQ entries whose title contains ``query`` (case-insensitive), at most ``limit``."""
    q = query.lower()
    return [title for title in FAQ if q in title.lower()][:limit]


@r.tool
def customer_balance(ctx: RunContext[dict[str, Any]], include_pending: bool) -> str:
    """Returns the customer's current account balance.

    Args:
        include_pending: Whether to include pending transactions.
    """
    _name, balance = CUSTOMERS[int(ctx.deps["customer_id"])]
    return f"${balance + (PENDING if include_pending else 0.0):.2f}"

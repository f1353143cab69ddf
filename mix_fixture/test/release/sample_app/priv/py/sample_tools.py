"""The sample app's Python tool, loaded by its worker with --module sample_tools."""

from typing import Any

from pydantic_ai import RunContext

from axon_port.registry import tool


@tool
def lookup_price(ctx: RunContext[dict[str, Any]], item: str) -> str:
    """Returns the price of an item.

    Args:
        item: The item to price.
    """
    return f"python-price:{item}:{ctx.deps['currency']}"

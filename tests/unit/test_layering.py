"""Each layer imports only the layers below it (HOUSE_STYLE.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("axon_port._framing", {"asyncio", "pydantic_ai", "pydantic"}),
        ("axon_port.errors", {"asyncio", "pydantic_ai", "pydantic"}),
        ("axon_port.codecs._etf", {"asyncio", "pydantic_ai", "pydantic"}),
        ("axon_port.messages", {"asyncio", "pydantic_ai"}),
        ("axon_port.dispatcher", {"pydantic_ai", "pydantic"}),
        ("axon_port.worker", {"pydantic_ai"}),
        ("axon_port.__main__", {"pydantic_ai", "importlib.metadata"}),
        # Start-up cost: what a first plain run does not need is imported on first use.
        ("axon_port.agents", {"jsonschema", "pydantic_ai.direct"}),
    ],
)
def test_a_layer_does_not_import_what_sits_above_it(module: str, forbidden: set[str]) -> None:
    assert not modules_after_import(module) & forbidden

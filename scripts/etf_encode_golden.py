"""Helper for ``elixir scripts/gen_etf_golden.exs --verify``: print our ETF encoding of each case.

Output: one ``<name> <hex>`` line per golden case, so the Elixir side can check that
``binary_to_term(ours, [:safe])`` gives back the original term.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from axon_port.codecs._etf import EtfCodec

_TEST = Path(__file__).resolve().parents[1] / "tests" / "unit" / "test_etf_golden.py"


def main() -> None:
    """Encode every golden case's expected value and print it as hex."""
    spec = importlib.util.spec_from_file_location("golden_test", _TEST)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    codec = EtfCodec()
    for case in json.loads(Path(sys.argv[1]).read_text())["cases"]:
        print(case["name"], codec.encode(mod.from_desc(case["value"])).hex())  # noqa: T201


if __name__ == "__main__":
    main()

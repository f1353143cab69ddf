"""docs/protocol.md's examples, checked byte for byte (and against the BEAM when present)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from axon_port import Atom
from axon_port._framing import encode_frame
from axon_port.codecs import get_codec
from axon_port.messages import REPLY_KEYS, REPLY_TYPES

DOC = Path(__file__).parents[2] / "docs" / "protocol.md"
BLOCK = re.compile(r"```(python|elixir|hex \w+ \w+)\n(.*?)\n```", re.S)


@dataclass
class Example:
    python: str
    elixir: str | None
    codec: str
    direction: str
    hex: str

    @property
    def frame(self) -> bytes:
        return bytes.fromhex(self.hex.replace(" ", ""))


def examples() -> list[Example]:
    found: list[Example] = []
    python: str | None = None
    elixir: str | None = None
    for kind, body in BLOCK.findall(DOC.read_text()):
        if kind == "python":
            python, elixir = body, None
        elif kind == "elixir":
            elixir = body
        else:
            _, codec, direction = kind.split()
            assert python is not None, "a hex block needs a python block before it"
            found.append(Example(python, elixir, codec, direction, body))
            python = elixir = None
    return found


EXAMPLES = examples()


def test_the_protocol_doc_has_examples_for_both_codecs_and_directions() -> None:
    assert {(e.codec, e.direction) for e in EXAMPLES} == {
        ("etf", "request"), ("etf", "reply"), ("msgpack", "request"), ("msgpack", "reply")
    }  # fmt: skip


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: f"{e.codec}-{e.direction}-{e.hex[:24]}")
def test_each_example_frame_decodes_to_its_python_value(ex: Example) -> None:
    codec = get_codec(ex.codec)
    value = eval(ex.python, {"Atom": Atom})
    size = int.from_bytes(ex.frame[:4], "big")
    assert size == len(ex.frame) - 4
    decoded = codec.decode(ex.frame[4:])
    assert decoded == value
    if ex.direction == "reply":
        # What the worker writes for this value, byte for byte.
        assert encode_frame(codec.encode_frame(value)) == ex.frame
    elif ex.codec == "etf":
        # Requests decode with atoms where Elixir sent atoms.
        assert all(type(k) is Atom for k in decoded)


@pytest.mark.skipif(shutil.which("elixir") is None, reason="Elixir is not installed")
def test_the_elixir_terms_are_what_the_beam_sends_and_reads() -> None:
    checks = [e for e in EXAMPLES if e.codec == "etf" and e.elixir]
    lines = ["results = ["]
    for e in checks:
        hexstr = e.hex.replace(" ", "")
        if e.direction == "request":
            lines.append(
                f"  (fn -> t = :erlang.term_to_binary({e.elixir}); "
                f'Base.encode16(<<byte_size(t)::32>> <> t, case: :lower) == "{hexstr}" end).(),'
            )
        else:
            lines.append(
                f'  (fn -> <<_::32, b::binary>> = Base.decode16!("{hexstr}", case: :lower); '
                f":erlang.binary_to_term(b, [:safe]) == {e.elixir} end).(),"
            )
    lines.append("]")
    lines.append('IO.puts(Enum.map_join(results, ",", &to_string/1))')
    out = subprocess.run(
        ["elixir", "-e", "\n".join(lines)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().split(",") == ["true"] * len(checks)


def test_the_doc_lists_exactly_the_atoms_the_worker_may_write() -> None:
    text = DOC.read_text()
    types = re.search(r"\* types: (.*?);", text, re.S)
    keys = re.search(r"\* keys: (.*?)\.\n", text, re.S)
    assert types and keys
    assert re.findall(r"`(\w+)`", types.group(1)) == list(REPLY_TYPES)
    assert re.findall(r"`(\w+)`", keys.group(1)) == list(REPLY_KEYS)

"""A fake axon_port worker for the Elixir client's fuzz tests (stdio, {packet,4}, ETF).

It sends a valid `ready`, then answers each request either correctly or, with
probability FUZZ_RATE, with a random well-framed but malformed term: a map or
tuple where a binary is expected, an unknown type, a missing id, a non-map,
an unknown atom... Deterministic per FUZZ_SEED. Requests are decoded with the
project's ETF codec; replies are encoded by hand so any term can be sent.
"""

import os
import random
import struct
import sys

from axon_port.codecs import get_codec

codec = get_codec("etf")
rng = random.Random(int(os.environ.get("FUZZ_SEED", "1")))
rate = float(os.environ.get("FUZZ_RATE", "0.2"))
inp = sys.stdin.buffer
out = sys.stdout.buffer


class A(str):
    """An atom."""


def enc(t):
    if t is None:
        return enc(A("nil"))
    if t is True or t is False:
        return enc(A("true" if t else "false"))
    if isinstance(t, A):
        b = t.encode()
        return bytes([119, len(b)]) + b
    if isinstance(t, int):
        if 0 <= t < 256:
            return bytes([97, t])
        if -(2**31) <= t < 2**31:
            return b"b" + struct.pack(">i", t)
        sign, n = (1, -t) if t < 0 else (0, t)
        digits = n.to_bytes((n.bit_length() + 7) // 8, "little")
        return bytes([110, len(digits), sign]) + digits
    if isinstance(t, float):
        return b"F" + struct.pack(">d", t)
    if isinstance(t, bytes):
        return b"m" + struct.pack(">I", len(t)) + t
    if isinstance(t, str):
        return enc(t.encode())
    if isinstance(t, tuple):
        return bytes([104, len(t)]) + b"".join(enc(x) for x in t)
    if isinstance(t, list):
        if not t:
            return b"j"
        return b"l" + struct.pack(">I", len(t)) + b"".join(enc(x) for x in t) + b"j"
    if isinstance(t, dict):
        return (
            b"t" + struct.pack(">I", len(t)) + b"".join(enc(k) + enc(v) for k, v in t.items())
        )
    raise TypeError(t)


def send(term):
    payload = b"\x83" + enc(term)
    out.write(struct.pack(">I", len(payload)) + payload)
    out.flush()


def rand_term(depth=0):
    choices = ["int", "bigint", "bin", "atom", "float", "nil"]
    if depth < 3:
        choices += ["map", "tuple", "list"]
    c = rng.choice(choices)
    if c == "int":
        return rng.randint(-1000, 1000)
    if c == "bigint":
        return rng.randint(2**70, 2**90)
    if c == "bin":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
    if c == "atom":
        return A(rng.choice(["ok", "error", "result", "chunk", "type", "id", "nil", "true"]))
    if c == "float":
        return rng.random() * 1e6
    if c == "nil":
        return None
    if c == "map":
        return {rand_term(depth + 1): rand_term(depth + 1) for _ in range(rng.randint(0, 3))}
    if c == "tuple":
        return tuple(rand_term(depth + 1) for _ in range(rng.randint(0, 3)))
    return [rand_term(depth + 1) for _ in range(rng.randint(0, 3))]


def hostile_value():
    return rng.choice([{b"a": 1}, (1, 2), [1], 3.5, 2**80, A("ok"), rand_term()])


def good_frames(rid):
    return [
        {A("type"): A("log"), A("level"): b"info", A("message"): b"hi", A("id"): rid},
        {A("type"): A("chunk"), A("id"): rid, A("seq"): 0, A("event"): b"text_delta",
         A("data"): b"x"},
        {A("type"): A("tool_call"), A("id"): rid, A("call_id"): b"c1", A("tool"): b"t",
         A("args"): {}},
        {A("type"): A("error"), A("id"): rid,
         A("error"): {b"kind": b"internal", b"message": b"m", b"retryable": False}},
        {A("type"): A("result"), A("id"): rid, A("output"): b"ok"},
    ]


def malformed(rid):
    kind = rng.randrange(7)
    if kind == 0:  # a field of a valid frame replaced by a hostile value
        frame = rng.choice(good_frames(rid))
        key = rng.choice([k for k in frame if k != "type"])
        frame[key] = hostile_value()
        return frame
    if kind == 1:  # a nested error field replaced
        err = {b"kind": b"internal", b"message": b"m", b"retryable": False}
        err[rng.choice(list(err))] = hostile_value()
        return {A("type"): A("error"), A("id"): rid, A("error"): err}
    if kind == 2:
        return {A("type"): A(rng.choice(["ready", "nil", "ok"])), A("id"): rid}
    if kind == 3:  # missing id
        frame = rng.choice(good_frames(rid)[1:])
        del frame[A("id")]
        return frame
    if kind == 4:
        return rand_term()
    if kind == 5:  # an atom the client does not know
        return {A("type"): A("result"), A("id"): rid, A("no_such_atom_zz9"): 1}
    return {A("type"): A("result"), A("id"): rand_term(), A("output"): 1}


def atom_ext(name):
    """An atom as ATOM_EXT (tag 100), which the worker's encoder never writes."""
    return bytes([100, 0, len(name)]) + name.encode()


# Valid replies whose bytes do not start the way the worker's encoder writes
# them (type, then id, as SMALL_ATOM_UTF8_EXT atoms): the client must decode
# them in full, and answer the caller all the same.
VALID = {
    "reordered": lambda rid: {A("id"): rid, A("output"): b"reordered", A("type"): A("result")},
    "extra_fields": lambda rid: {A("type"): A("result"), A("id"): rid, A("output"): b"extra",
                                 A("elapsed_ms"): 1.5, A("usage"): {}},
    "atom_ext": lambda rid: (b"t" + struct.pack(">I", 3) + atom_ext("type") + atom_ext("result")
                             + atom_ext("id") + enc(rid) + atom_ext("output")
                             + enc(b"atom_ext")),
}

CASES = {
    # A frame that starts as the worker's encoder writes it (and so is routed
    # to its caller undecoded), with a wrongly typed field further on.
    "result_usage_bin": lambda rid: {A("type"): A("result"), A("id"): rid, A("output"): 1,
                                     A("usage"): b"not a map"},
    "log_message_map": lambda rid: {A("type"): A("log"), A("level"): b"info",
                                    A("message"): {b"a": 1}, A("id"): rid},
    "log_level_tuple": lambda rid: {A("type"): A("log"), A("level"): (1, 2),
                                    A("message"): b"m", A("id"): rid},
    "error_kind_map": lambda rid: {A("type"): A("error"), A("id"): rid,
                                   A("error"): {b"kind": {b"x": 1}, b"message": b"m"}},
    "tool_call_tool_map": lambda rid: {A("type"): A("tool_call"), A("id"): rid,
                                       A("call_id"): b"c", A("tool"): {b"x": 1},
                                       A("args"): {}},
    "unknown_type": lambda rid: {A("type"): A("ok"), A("id"): rid},
    "missing_id": lambda rid: {A("type"): A("result"), A("output"): 1},
    "not_a_map": lambda rid: (A("result"), rid),
    "unknown_atom": lambda rid: {A("type"): A("result"), A("id"): rid,
                                 A("no_such_atom_zz9"): 1},
}


def main():
    send({A("type"): A("ready"), A("protocol"): 1, A("codec"): b"etf", A("pid"): os.getpid(),
          A("limits"): {}})
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        (n,) = struct.unpack(">I", head)
        req = codec.decode(inp.read(n))
        rid = req.get("id")
        if req.get("op") == "cancel" or rid is None:
            continue
        args = req.get("args") or [None]
        if req.get("op") == "call" and args[0] in VALID:
            reply = VALID[args[0]](rid)
            if isinstance(reply, bytes):
                payload = b"\x83" + reply
                out.write(struct.pack(">I", len(payload)) + payload)
                out.flush()
            else:
                send(reply)
            continue
        if req.get("op") == "call" and args[0] in CASES:
            send(CASES[args[0]](rid))
            continue
        if req.get("op") == "call" and args[0] == "hang":
            continue
        if rng.random() < rate:
            send(malformed(rid))
        if req.get("op") == "ping":
            send({A("type"): A("pong"), A("id"): rid})
        else:
            send({A("type"): A("result"), A("id"): rid, A("output"): req.get("args")})


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, ConnectionResetError):
        os._exit(0)

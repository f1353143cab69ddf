"""The dispatcher's net: whatever fails between decoding a request and starting it is
that request's one ``internal`` error, through ``feed`` and ``handle_payload`` alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from axon_port._framing import FrameDecoder, encode_frame
from axon_port.codecs import get_codec
from axon_port.dispatcher import Dispatcher, RequestContext


def _replies(out: list[bytes], codec: Any) -> list[dict[str, Any]]:
    dec = FrameDecoder(1 << 20)
    return [codec.decode(p) for chunk in out for p in dec.feed(chunk)]


@pytest.mark.parametrize("entry", ["feed", "handle_payload"])
def test_a_handler_returning_neither_a_dict_nor_an_awaitable_is_internal_and_not_left_in_flight(
    entry: str,
) -> None:
    async def main() -> None:
        codec = get_codec("msgpack")
        out: list[bytes] = []
        d = Dispatcher(codec, out.append)
        d.register("ping", lambda ctx: 42)  # type: ignore[arg-type,return-value]

        def stats(ctx: RequestContext) -> dict[str, Any]:
            return {"output": "fine"}

        d.register("stats", stats)
        payloads = [codec.encode({"op": "ping", "id": 1}), codec.encode({"op": "stats", "id": 2})]
        if entry == "feed":
            d.feed(FrameDecoder(1 << 20).feed(b"".join(encode_frame(p) for p in payloads)))
        else:
            for p in payloads:
                d.handle_payload(p)
        got = _replies(out, codec)
        assert [(f["id"], f["type"]) for f in got] == [(1, "error"), (2, "result")]
        assert got[0]["error"]["kind"] == "internal"
        assert got[1]["output"] == "fine"
        assert not d.inflight
        await asyncio.sleep(0)

    asyncio.run(main())

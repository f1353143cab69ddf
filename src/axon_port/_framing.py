"""Sans-IO ``{packet, 4}`` framing: bytes in, whole frames out.

Theory of operation: every frame is a 4-byte unsigned big-endian length N and
then N payload bytes, exactly Erlang's ``{packet, 4}``. :class:`FrameDecoder`
buffers whatever it is fed and returns the frames completed so far. A header
that declares more than ``max_frame`` bytes yields an :class:`OversizeFrame`
event instead, and the decoder then *skips* that many bytes as they arrive, so
the stream stays in sync and the next frame is served. ``feed(b"")`` means EOF;
bytes of a frame still incomplete at EOF yield a :class:`TruncatedFrame` event.
No sockets, threads or asyncio here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_FRAME",
    "HEADER_SIZE",
    "MAX_WIRE_FRAME",
    "FrameDecoder",
    "FrameEvent",
    "OversizeFrame",
    "TruncatedFrame",
    "encode_frame",
]

HEADER_SIZE = 4
DEFAULT_MAX_FRAME = 64 * 1024 * 1024
MAX_WIRE_FRAME = 2**32 - 1


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A frame whose header declared ``size`` > ``max_frame``; its bytes are skipped."""

    size: int
    max_frame: int


@dataclass(frozen=True, slots=True)
class TruncatedFrame:
    """EOF arrived with ``buffered`` bytes of an incomplete frame."""

    buffered: int


FrameEvent = bytes | OversizeFrame | TruncatedFrame


class FrameDecoder:
    """Incremental ``{packet, 4}`` decoder.

    ``feed(data)`` returns a list of events in stream order: ``bytes`` (one whole
    payload), :class:`OversizeFrame` or, once, at EOF, :class:`TruncatedFrame`.
    """

    __slots__ = ("_buf", "_eof", "_skip", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 0 < max_frame <= MAX_WIRE_FRAME:
            raise ValueError(f"max_frame must be in 1..{MAX_WIRE_FRAME}, got {max_frame}")
        self.max_frame = max_frame
        self._buf = bytearray()
        self._skip = 0
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf)

    @property
    def at_eof(self) -> bool:
        """True once ``feed(b"")`` was called."""
        return self._eof

    def feed(self, data: bytes) -> list[FrameEvent]:
        """Add ``data`` and return the events it completes; ``b""`` signals EOF."""
        if self._eof:
            if data:
                raise RuntimeError("data fed after EOF")
            return []
        if not data:
            self._eof = True
            if self._buf or self._skip:
                buffered = len(self._buf)
                self._buf.clear()
                self._skip = 0
                return [TruncatedFrame(buffered)]
            return []
        if self._buf:
            self._buf += data
            view: bytes | bytearray = self._buf
        else:
            view = data
        events: list[FrameEvent] = []
        pos = 0
        end = len(view)
        max_frame = self.max_frame
        while True:
            if self._skip:
                step = min(self._skip, end - pos)
                pos += step
                self._skip -= step
                if self._skip:
                    break
            if end - pos < HEADER_SIZE:
                break
            size = int.from_bytes(view[pos : pos + HEADER_SIZE], "big")
            if size > max_frame:
                events.append(OversizeFrame(size, max_frame))
                pos += HEADER_SIZE
                self._skip = size
                continue
            stop = pos + HEADER_SIZE + size
            if stop > end:
                break
            if view is self._buf:  # one copy out of the buffer, not a slice and a copy
                with memoryview(view) as mv:
                    events.append(mv[pos + HEADER_SIZE : stop].tobytes())
            else:
                events.append(data[pos + HEADER_SIZE : stop])
            pos = stop
        if view is self._buf:
            del self._buf[:pos]
        elif pos < end:
            self._buf += view[pos:]
        return events


def encode_frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length. ``ValueError`` if > 4 GiB - 1."""
    size = len(payload)
    if size > MAX_WIRE_FRAME:
        raise ValueError(f"payload of {size} bytes exceeds the {{packet, 4}} limit")
    return size.to_bytes(HEADER_SIZE, "big") + payload

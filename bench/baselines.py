"""Baseline echo processes: the floor for any Python worker on a pipe.

``python bench/baselines.py raw [--fds IN,OUT]``: blocking ``os.read`` loop, every
complete ``{packet,4}`` frame echoed with its header in a single ``os.write``.

``python bench/baselines.py asyncio [--fds IN,OUT]``: the same with asyncio streams
(``connect_read_pipe``/``connect_write_pipe``, ``readexactly`` per header and body).

Both exit 0 on input EOF. With ``--fds 3,4`` they serve Elixir's ``:nouse_stdio``
ports. Neither imports anything beyond the standard library, and neither sends a
``ready`` frame (the benchmark drivers know that).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys


def raw_echo(in_fd: int, out_fd: int) -> None:
    """Echo frames with a blocking read loop; one write per frame."""
    buf = b""
    read = os.read
    write = os.write
    unpack = struct.unpack_from
    while True:
        data = read(in_fd, 1 << 16)
        if not data:
            return
        buf = buf + data if buf else data
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (n,) = unpack(">I", buf, pos)
            if end - pos - 4 < n:
                break
            frame = buf[pos : pos + 4 + n]
            view = memoryview(frame)
            while view:
                view = view[write(out_fd, view) :]
            pos += 4 + n
        buf = buf[pos:]


def asyncio_echo(in_fd: int, out_fd: int) -> None:
    """Echo frames with asyncio streams; one ``writer.write`` per frame."""
    import asyncio

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 26)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", 0)
        )
        w_transport, w_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", 0)
        )
        writer = asyncio.StreamWriter(w_transport, w_protocol, reader, loop)
        while True:
            try:
                header = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", header)[0])
            except asyncio.IncompleteReadError:
                break
            writer.write(header + body)
            await writer.drain()
        writer.close()

    asyncio.run(serve())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=("raw", "asyncio"))
    p.add_argument("--fds", default="0,1", metavar="IN,OUT")
    args = p.parse_args()
    in_fd, out_fd = (int(x) for x in args.fds.split(","))
    if out_fd == 1:
        # Keep stray writes out of the frame stream, like the worker does.
        out_fd = os.dup(1)
        os.dup2(2, 1)
    (raw_echo if args.kind == "raw" else asyncio_echo)(in_fd, out_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Exec an MCP stdio server so that it dies with the worker that started it.

Run as a script (``python _mcp_launch.py PARENT_PID COMMAND ARGS...``), never
imported: it sets ``PR_SET_PDEATHSIG`` to ``SIGKILL`` (Linux), checks that the
worker has not already gone, then ``execvp``s the server. The death signal
survives ``exec``, so a server is killed even when the worker is SIGKILLed and
never gets to close its pipes. Elsewhere the server still sees stdin EOF.
"""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main() -> None:
    parent, argv = int(sys.argv[1]), sys.argv[2:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            sys.exit(f"axon_port: prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}")
    if os.getppid() != parent:  # the worker died before the signal was armed
        sys.exit(1)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.exit(f"axon_port: cannot start MCP server {argv[0]!r}: {exc}")


if __name__ == "__main__":
    main()

"""Claiming the frame fds at start-up, and tying the worker's life to its parent's.

* :func:`claim_output` takes a private duplicate of the frame-output fd and points
  fd 1 at stderr (and ``sys.stdout`` at ``sys.stderr``), so no ``print``, C extension
  or subprocess can ever write into the frame stream.
* :func:`claim_input` takes a private duplicate of the frame-input fd and points fd 0
  at ``/dev/null``, so no subprocess can eat frames.
* The duplicates are numbered 3 or above (``F_DUPFD_CLOEXEC``) and closed-on-exec;
  closed std fds are opened on ``/dev/null`` first, so nothing lands on them later.
* Both duplicates, when they are pipes, are widened to :data:`PIPE_SIZE`
  (:func:`widen_pipe`): a Port's pipes hold 64 KiB, so a 700 KB request (a long
  history) would cross in ~11 writes, each a wake-up of the worker and then of
  the BEAM's poller, ~0.4 ms apiece across cores.
* :func:`set_parent_death_signal`: ``PR_SET_PDEATHSIG`` on Linux.
* :func:`shares_one_cpu_with_parent`: whether the worker and its client (the BEAM)
  are confined to the same single CPU, where the idle spin only delays the client.
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys

__all__ = [
    "PIPE_SIZE", "claim_input", "claim_output", "set_parent_death_signal",
    "shares_one_cpu_with_parent", "widen_pipe",
]  # fmt: skip

#: What the frame pipes are widened to; Linux caps an unprivileged process at
#: ``/proc/sys/fs/pipe-max-size`` (1 MiB by default), which is used when smaller.
PIPE_SIZE = 1 << 20


def widen_pipe(fd: int, size: int = PIPE_SIZE) -> int | None:
    """Grow the pipe buffer behind ``fd`` to ``size`` bytes (or the system's cap).

    Returns the new size, or ``None`` when ``fd`` is not a pipe, the platform has no
    ``F_SETPIPE_SZ``, or the kernel refuses (e.g. the user's pipe quota is spent):
    the pipe then keeps its size, which is only slower.
    """
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None or not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return None
    try:
        with open("/proc/sys/fs/pipe-max-size", "rb") as f:
            size = min(size, int(f.read()))
    except (OSError, ValueError):
        pass
    try:
        return int(fcntl.fcntl(fd, setpipe, size))
    except OSError:
        return None


def _dup_above_std(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered 3 or above: a plain ``os.dup`` could
    land on a closed fd 0, 1 or 2, which the redirections below then overwrite."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


def _ensure_std_fds() -> None:
    """Open ``/dev/null`` on any of fds 0-2 that is closed, so nothing later lands there."""
    for std in (0, 1, 2):
        try:
            os.fstat(std)
        except OSError:
            fd = os.open(os.devnull, os.O_RDWR)
            if fd != std:
                os.dup2(fd, std)
                os.close(fd)


def claim_output(out_fd: int) -> int:
    """Return a private dup of ``out_fd`` for frames; fd 1 becomes a copy of stderr.

    ``out_fd`` is 1 (stdio mode) or 4 (``--fds 3,4``). Either way fd 1 is
    redirected, so nothing but frames can reach the frame output.
    """
    private = _dup_above_std(out_fd)
    widen_pipe(private)
    _ensure_std_fds()
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if out_fd not in (0, 1, 2):
        os.close(out_fd)
    return private


def claim_input(in_fd: int) -> int:
    """Return a private dup of ``in_fd`` for frames; fd 0 becomes ``/dev/null``.

    A subprocess started by user code inherits fd 0 and must not eat our frames.
    """
    private = _dup_above_std(in_fd)
    widen_pipe(private)
    _ensure_std_fds()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if in_fd not in (0, 1, 2):
        os.close(in_fd)
    return private


def set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` when our parent dies (``PR_SET_PDEATHSIG``).

    Returns False where unsupported. If the parent is already gone (we were
    re-parented before the call), the signal is raised at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, signum, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent == 1 or os.getppid() != parent:
        signal.raise_signal(signum)
    return True


def shares_one_cpu_with_parent() -> bool:
    """True when this process may run on one CPU only and so may its client: the
    parent, or the grandparent (an Erlang port's parent is the BEAM's
    ``erl_child_setup`` helper, started before the BEAM pinned itself; ``priv/axon_port``
    and ``taskset`` exec, so they are no extra level), pinned to that same CPU. False
    when unknown (no affinity API, no ``/proc``, a process gone)."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return False
    try:
        ours = getaffinity(0)
        if len(ours) != 1:
            return False
        pid = os.getppid()
        for _ in range(2):
            if pid <= 1:
                return False
            if getaffinity(pid) == ours:
                return True
            pid = _parent_of(pid)
    except (OSError, ValueError):
        return False
    return False


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])

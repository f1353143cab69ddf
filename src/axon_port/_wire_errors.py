"""The one exception-to-wire mapping: what an ``error`` frame says about a failure.

Theory of operation: whatever ends a request other than its result - an
:class:`~axon_port.errors.AxonError` raised on purpose, a cancellation, a timeout,
or any other exception (a bug) - is turned into the ``error`` map of its terminal
frame by :func:`error_payload`, and only there. Messages and tracebacks are
redacted on the way out. :func:`interrupted_error` is the error of a request ended
from outside (``cancel``, ``timeout_ms``, shutdown). The dispatcher re-exports both.
"""

from __future__ import annotations

import traceback
from asyncio import CancelledError
from typing import Any

from axon_port._secrets import redact
from axon_port.errors import AxonError

__all__ = ["error_payload", "interrupted_error"]


def interrupted_error(reason: str | None, details: Any = None) -> AxonError:
    """The error of a request ended by ``cancel`` (``cancelled``), ``timeout_ms``
    (``timeout``) or shutdown (``shutdown``); the latter two may succeed if retried."""
    kind = reason or "cancelled"
    return AxonError(
        f"request {kind}", kind=kind, details=details, retryable=kind in ("timeout", "shutdown")
    )


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The one exception -> wire mapping: the ``error`` map of an error frame."""
    if isinstance(exc, AxonError):
        return {
            "kind": exc.kind,
            "message": redact(exc.message),
            "details": exc.details,
            "retryable": exc.retryable,
        }
    if isinstance(exc, CancelledError):
        return {"kind": "cancelled", "message": "cancelled", "details": None, "retryable": False}
    if isinstance(exc, TimeoutError):
        return {
            "kind": "timeout",
            "message": str(exc) or "timed out",
            "details": None,
            "retryable": True,
        }
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8)
    return {
        "kind": "internal",
        "message": redact(f"{type(exc).__name__}: {exc}"),
        "details": {"type": type(exc).__name__, "traceback": redact("".join(tb)[-4000:])},
        "retryable": False,
    }

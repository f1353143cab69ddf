"""Python ``logging`` records as ``log`` frames.

Theory of operation: :class:`FrameLogHandler` is installed on the root logger.
Each record becomes ``{type: log, level, logger, message, time, id}``, where
``id`` is the request being served when the record was made (a context
variable the dispatcher sets, copied into tasks and worker threads). Records
from other threads are handed to the event loop; a record emitted while a log
frame is being written is dropped rather than recursing. When there is no
frame output (before start-up, after shutdown), records go to stderr. Messages
are redacted (``axon_port._secrets.redact``): credentials in URLs and auth headers
never reach the client's Logger.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from axon_port._secrets import redact
from axon_port.dispatcher import current_request_id

__all__ = ["LEVELS", "FrameLogHandler", "parse_level"]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def parse_level(name: Any) -> int:
    """``"info"`` (any case, atom or binary) -> ``logging.INFO``; ``ValueError`` otherwise."""
    level = LEVELS.get(str(name).lower())
    if level is None:
        raise ValueError(f"unknown log level {name!r}; expected one of {', '.join(LEVELS)}")
    return level


class FrameLogHandler(logging.Handler):
    """Forwards log records to the client as ``log`` frames."""

    def __init__(
        self, send: Callable[[dict[str, Any]], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__()
        self._send = send
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False):
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            frame = {
                "type": "log",
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": redact(message),
                "time": record.created,
                "id": current_request_id.get(),
            }
            if threading.get_ident() == self._loop_thread:
                self._write(frame)
            elif not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._write, frame)
        except Exception:
            self.handleError(record)

    def _write(self, frame: dict[str, Any]) -> None:
        self._busy.on = True
        try:
            self._send(frame)
        finally:
            self._busy.on = False

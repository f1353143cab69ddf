"""pydantic-ai and provider exceptions → wire error kinds.

The one place that decides which ``kind`` and ``retryable`` a failed run or
``complete`` reports (see ``docs/agents.md`` for the table):

==============================================  ==========================  =========
exception                                       kind                        retryable
==============================================  ==========================  =========
output failed the JSON Schema, retries used up  ``validation_error``        no
other retries used up (tools, validators)       ``model_retry_exhausted``   no
other ``UnexpectedModelBehavior``               ``unexpected_model_behavior``  no
``UsageLimitExceeded``                          ``usage_limit_exceeded``    no
``ModelHTTPError`` / ``ModelAPIError``          ``model_http_error``        429, 5xx, overload,
                                                                            connection: yes
a Python tool raised / remote tool ``error``    ``tool_error``              no
a tool timed out, its retries used up           ``tool_timeout``            no
``RunTimedOut`` / ``RunCancelled``              ``timeout`` / ``cancelled`` no
``UserError`` (misuse, e.g. bad history)        ``bad_request``             no
a content part failed (download, SSRF guard,    ``bad_request``             no
unsupported by the model), from the prompt, the
history or a tool's answer: ``ContentError``
==============================================  ==========================  =========

Anything else is not mapped here and becomes ``internal`` at the dispatcher.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic_ai import exceptions as pai

from axon_port.agents._messages import jsonable
from axon_port.errors import AxonError

__all__ = ["ContentError", "RemoteToolError", "ToolExecutionError", "to_axon_error"]


class ContentError(Exception):
    """A content part could not be sent: download failed, SSRF refusal, unsupported kind.

    ``files`` are the URLs of the failed request's files (``None`` for a binary part);
    ``source`` is set by the service when the part clearly came from one remote tool
    call's answer (``tool``, ``call_id`` and, if there was one URL, ``url``).
    """

    def __init__(self, message: str, *, files: list[str | None] | None = None) -> None:
        super().__init__(message)
        self.files = files or []
        self.source: dict[str, str] | None = None


class ToolExecutionError(Exception):
    """A registered Python tool raised; carries the tool name and the original exception."""

    def __init__(self, tool: str, error: BaseException) -> None:
        super().__init__(f"tool {tool!r} failed: {type(error).__name__}: {error}")
        self.tool = tool
        self.error = error


class RemoteToolError(Exception):
    """The client answered a ``tool_call`` with ``error`` and no ``retry``."""

    def __init__(self, tool: str, call_id: str, error: Any) -> None:
        super().__init__(f"remote tool {tool!r} failed: {error}")
        self.tool = tool
        self.call_id = call_id
        self.error = error


def to_axon_error(
    exc: BaseException,
    *,
    validation_errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> AxonError | None:
    """The wire error for ``exc``, or ``None`` if it is not a known failure (→ ``internal``).

    ``validation_errors`` are the last JSON Schema errors of the run's output, if
    any; ``extra`` is merged into ``details`` (e.g. the partial ``messages``).
    """
    err = _map(exc, validation_errors)
    if err is not None and extra:
        details = err.details if isinstance(err.details, dict) else {}
        err.details = {**details, **extra}
    return err


def _map(exc: BaseException, validation_errors: list[dict[str, Any]] | None) -> AxonError | None:
    if isinstance(exc, AxonError):
        return exc
    if isinstance(exc, ContentError):
        message = f"content could not be sent to the model: {exc}"
        if exc.source is None:
            return AxonError(message, kind="bad_request")
        tool, call_id = exc.source["tool"], exc.source["call_id"]
        message += f" (returned by remote tool {tool!r}, call {call_id!r})"
        return AxonError(message, kind="bad_request", details=dict(exc.source))
    if isinstance(exc, ToolExecutionError):
        return AxonError(
            str(exc),
            kind="tool_error",
            details={"tool": exc.tool, "type": type(exc.error).__name__, "error": str(exc.error)},
        )
    if isinstance(exc, RemoteToolError):
        return AxonError(
            str(exc),
            kind="tool_error",
            details={"tool": exc.tool, "call_id": exc.call_id, "error": jsonable(exc.error)},
        )
    if isinstance(exc, pai.RunTimedOut):
        return AxonError(str(exc), kind="timeout")
    if isinstance(exc, pai.RunCancelled):
        return AxonError(str(exc), kind="cancelled")
    if isinstance(exc, pai.UsageLimitExceeded):
        return AxonError(exc.message, kind="usage_limit_exceeded")
    if isinstance(exc, pai.ModelAPIError):
        return _model_api_error(exc)
    if isinstance(exc, pai.UnexpectedModelBehavior):
        return _unexpected(exc, validation_errors)
    if isinstance(exc, pai.UserError):
        return AxonError(exc.message, kind="bad_request")
    return None


_TIMED_OUT = "Timed out after"


def _model_api_error(exc: pai.ModelAPIError) -> AxonError:
    status = exc.status_code if isinstance(exc, pai.ModelHTTPError) else None
    if isinstance(exc, pai.ModelQuotaExceededError | pai.ModelRequestRejectedError):
        retryable = False
    elif isinstance(
        exc,
        pai.ModelRateLimitError
        | pai.ModelUnavailableError
        | pai.ModelServerError
        | pai.ModelConnectionError
        | pai.ModelRequestTimeout,
    ):
        retryable = True
    else:
        retryable = status is not None and (status == 429 or status >= 500)
    details: dict[str, Any] = {
        "status": status,
        "model_name": exc.model_name,
        "body": jsonable(exc.body),
        "category": type(exc).__name__.lstrip("_").removeprefix("HTTP"),
    }
    if exc.provider_error_code is not None:
        details["provider_error_code"] = exc.provider_error_code
    if exc.retry_after is not None:
        details["retry_after"] = exc.retry_after
    return AxonError(exc.message, kind="model_http_error", details=details, retryable=retryable)


def _pydantic_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors in the shape of the JSON Schema ones (``path``, ``message``,
    ``validator``), so both kinds of agent report output errors alike."""
    errors = [
        {
            "path": "".join(f"/{p}" for p in e["loc"]) or "/",
            "message": e["msg"],
            "validator": e["type"],
        }
        for e in exc.errors(include_url=False, include_input=False)
    ]
    errors.sort(key=lambda e: (e["path"], e["message"]))
    return errors


def _unexpected(
    exc: pai.UnexpectedModelBehavior, validation_errors: list[dict[str, Any]] | None
) -> AxonError:
    cause = exc.__cause__
    output_exhausted = exc.message.startswith("Exceeded maximum output retries")
    exhausted = output_exhausted or "exceeded max retries" in exc.message
    if output_exhausted and not validation_errors and isinstance(cause, pydantic.ValidationError):
        # An Agent registered from Python: its output type's own pydantic errors.
        validation_errors = _pydantic_errors(cause)
    if output_exhausted and validation_errors:
        return AxonError(
            f"{exc.message}: the output did not match output_schema",
            kind="validation_error",
            details={"errors": validation_errors},
        )
    if exhausted and cause is not None and _TIMED_OUT in str(cause):
        # pydantic-ai turns a tool timeout into a "Timed out after N seconds." retry
        return AxonError(
            f"{exc.message}: {_TIMED_OUT.lower()} {str(cause).split(_TIMED_OUT, 1)[1].strip()}",
            kind="tool_timeout",
            details={"last_error": str(cause)},
        )
    if exhausted:
        details: dict[str, Any] = {}
        if cause is not None:
            details["last_error"] = str(cause)
        return AxonError(exc.message, kind="model_retry_exhausted", details=details)
    return AxonError(
        exc.message,
        kind="unexpected_model_behavior",
        details={"body": exc.body} if exc.body else None,
    )

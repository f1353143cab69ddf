"""Exception types shared by every layer (stdlib only).

Two families, after h11: :class:`RemoteProtocolError` means the *client* sent
something we cannot accept (a bad frame, a bad request); :class:`LocalProtocolError`
means *we* were about to produce something the wire cannot carry. Everything a
request handler raises is turned into an ``error`` frame by exactly one function,
:func:`axon_port.dispatcher.error_payload`; :class:`AxonError` carries the wire
``kind``, ``message``, ``details`` and ``retryable`` fields directly.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AxonError",
    "BadFrame",
    "BadRequest",
    "Busy",
    "DecodeError",
    "EncodeError",
    "FrameTooLarge",
    "LocalProtocolError",
    "RemoteProtocolError",
    "UnknownFunction",
]


class AxonError(Exception):
    """An error with a wire representation.

    ``kind`` is the binary error kind clients match on; ``details`` is any
    codec-encodable value (binary keys); ``retryable`` tells the client whether
    the same request may succeed if sent again.
    """

    kind: str = "internal"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        details: Any = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        if retryable is not None:
            self.retryable = retryable
        self.details = details


class RemoteProtocolError(AxonError):
    """The peer sent something that violates the protocol."""

    kind = "bad_request"


class LocalProtocolError(AxonError):
    """We were about to send something the protocol cannot carry."""

    kind = "internal"


class DecodeError(RemoteProtocolError):
    """A payload could not be decoded into a term (bad ETF/msgpack bytes)."""

    kind = "bad_frame"


class FrameTooLarge(DecodeError):
    """A payload would decode to more than the limits allow: a compressed term that
    inflates past ``max_frame``, or a term past the decoded-size budget."""

    kind = "frame_too_large"


class BadFrame(RemoteProtocolError):
    """A frame was rejected before decoding (e.g. larger than ``max_frame``)."""

    kind = "bad_frame"


class BadRequest(RemoteProtocolError):
    """A decoded request is malformed: missing or mistyped fields, unknown op."""

    kind = "bad_request"


class EncodeError(LocalProtocolError):
    """A value cannot be encoded (non-finite float, set, big int in msgpack, ...)."""

    kind = "unencodable"


class UnknownFunction(AxonError):
    """``call`` named a function that is not registered."""

    kind = "unknown_function"


class Busy(AxonError):
    """The worker is at ``max_inflight``; the request was not started."""

    kind = "busy"
    retryable = True

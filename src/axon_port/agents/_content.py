"""Prompts and content parts on the wire → pydantic-ai user content.

A ``prompt`` is a binary (text), or a list whose items are binaries (text) and
content parts in pydantic-ai's own serialised shapes, the ones message history
uses (``kind`` discriminates):

* ``%{kind: "image-url" | "document-url" | "audio-url" | "video-url", url: url}``,
  optional ``media_type``, ``identifier``, ``force_download`` (``true``, ``false``
  or ``"allow-local"``) and ``vendor_metadata``;
* ``%{kind: "binary", data: bytes, media_type: "image/png"}``, optional
  ``identifier`` and ``vendor_metadata``;
* any other ``UserContent`` kind pydantic-ai validates (``text-content``,
  ``cache-point``, ``uploaded-file``).

Parts are validated with a ``TypeAdapter`` of pydantic-ai's ``UserContent`` union,
so they are exactly what pydantic-ai builds in-process. ``data`` is raw bytes:
ETF sends a binary as it is (a binary that happens to be valid UTF-8 decodes as a
``str``, and is turned back into those bytes here, never read as base64);
msgpack sends ``bin`` (or a ``str``, taken as its UTF-8 bytes).

Downloads (a URL the provider cannot take, or ``force_download``) happen inside
the model request, for the prompt's parts as for those a tool returned; there
:class:`ContentGuard` turns a failed download, pydantic-ai's SSRF refusal, or
content the model does not support into :class:`ContentError`, which the service
answers as ``bad_request`` with pydantic-ai's message (naming the Elixir tool whose
answer held the part, when that is clear).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

import httpx2
import pydantic
from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import (
    FileUrl,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolReturn,
    ToolReturnPart,
    UserContent,
    UserPromptPart,
    is_multi_modal_content,
)

from axon_port.agents._errors import ContentError
from axon_port.agents._messages import jsonable, plain
from axon_port.errors import BadRequest

__all__ = [
    "ContentError",
    "ContentGuard",
    "content_part",
    "file_urls",
    "has_files",
    "tool_output",
    "user_prompt",
]

_URL_KINDS = frozenset({"image-url", "document-url", "audio-url", "video-url"})
_URL_KEYS = frozenset(
    {"kind", "url", "media_type", "identifier", "force_download", "vendor_metadata"}
)
_BINARY_KEYS = frozenset({"kind", "data", "media_type", "identifier", "vendor_metadata"})


@cache
def _adapter() -> pydantic.TypeAdapter[UserContent]:
    return pydantic.TypeAdapter(UserContent)


def user_prompt(value: Any, *, where: str = "prompt") -> str | list[UserContent] | None:
    """The ``prompt`` of a ``run`` as pydantic-ai takes it; ``BadRequest`` if it is not one.

    ``None`` (no new prompt: resume from history), a text, or a list of texts and parts.
    A single part map is taken as a one-item list.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return _text(value, where)
    if isinstance(value, Mapping):
        return [content_part(value, where)]
    if isinstance(value, list | tuple):
        out: list[UserContent] = []
        for i, item in enumerate(value):
            at = f"{where}[{i}]"
            if isinstance(item, str):
                out.append(str(item))
            elif isinstance(item, bytes):
                out.append(_text(item, at))
            else:
                out.append(content_part(item, at))
        return out
    raise BadRequest(
        f"{where} must be a binary, a list of binaries and content parts, or nil; "
        f"got {type(value).__name__}"
    )


def _text(value: bytes, where: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(
            f'{where}: a binary that is not UTF-8 text; send bytes as %{{kind: "binary", '
            f"data: bytes, media_type: type}}"
        ) from None


def content_part(value: Any, where: str = "content") -> UserContent:
    """One content part map → the pydantic-ai object; ``BadRequest`` with pydantic's errors."""
    if not isinstance(value, Mapping):
        raise BadRequest(f"{where} must be a binary or a content part map")
    part = plain(value)
    kind = part.get("kind")
    if not isinstance(kind, str):
        raise BadRequest(f"{where}: a content part needs a kind (image-url, binary, ...)")
    allowed = _URL_KEYS if kind in _URL_KINDS else _BINARY_KEYS if kind == "binary" else None
    if allowed is not None:
        unknown = sorted(str(k) for k in part if k not in allowed)
        if unknown:
            raise BadRequest(f"{where}: unknown keys {unknown} for {kind} (allowed: "
                             f"{sorted(allowed)})")  # fmt: skip
    if kind == "binary" and isinstance(part.get("data"), str):
        part["data"] = part["data"].encode("utf-8")  # a UTF-8-valid ETF binary
    try:
        return _adapter().validate_python(part)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        # The union tries every member; keep the errors of the member ``kind`` picked.
        mine = [e for e in errors if kind in (str(x) for x in e["loc"])] or errors
        said = "; ".join(f"{'.'.join(str(x) for x in e['loc'][1:]) or kind}: {e['msg']}"
                         for e in mine)  # fmt: skip
        raise BadRequest(
            f"{where} is not a valid {kind} content part: {said}", details=jsonable(mine)
        ) from None


def _message_files(messages: Sequence[ModelMessage]) -> Iterator[Any]:
    """The files (URL and binary parts) of the requests in ``messages``: user prompts and
    tool returns (one part or a list)."""
    for msg in messages:
        if not isinstance(msg, ModelRequest):
            continue
        for part in msg.parts:
            if not isinstance(part, UserPromptPart | ToolReturnPart):
                continue
            content = part.content
            if isinstance(content, str):  # the common case, checked first (once per part)
                continue
            items = content if isinstance(content, list) else [content]
            yield from (p for p in items if is_multi_modal_content(p))


def has_files(prompt: Any, history: Sequence[ModelMessage]) -> bool:
    """Whether the prompt or history holds a file (URL or binary) the model request maps."""
    if isinstance(prompt, list) and any(is_multi_modal_content(p) for p in prompt):
        return True
    return next(_message_files(history), None) is not None


def file_urls(value: Any) -> list[str]:
    """The URLs of the URL parts in what a tool returned (a part, a list, a ``ToolReturn``)."""
    if isinstance(value, FileUrl):
        return [value.url]
    if isinstance(value, ToolReturn):
        return file_urls(value.return_value) + file_urls(value.content)
    if isinstance(value, list):
        return [url for v in value for url in file_urls(v)]
    return []


class ContentGuard(AbstractCapability[Any]):
    """Turns download and unsupported-content failures of a model request into ``ContentError``.

    pydantic-ai downloads URL parts while mapping messages for the provider, inside
    the model call; it raises ``ValueError`` (SSRF guard, size limits), ``httpx2``
    errors (the download failed) or ``NotImplementedError`` (the provider cannot take
    the kind). Only a request that holds files is concerned: any other failure, and
    a model's own HTTP failures (``ModelAPIError``), pass through unchanged.
    """

    async def on_model_request_error(
        self, ctx: RunContext[Any], *, request_context: Any, error: Exception
    ) -> ModelResponse:
        if isinstance(error, ValueError | NotImplementedError | httpx2.HTTPError):
            files = list(_message_files(request_context.messages))
            if files:
                urls = [f.url if isinstance(f, FileUrl) else None for f in files]
                raise ContentError(str(error), files=urls) from error
        raise error


_PART_KINDS = frozenset({*_URL_KINDS, "binary", "text-content", "uploaded-file"})
_TOOL_RETURN_KEYS = frozenset({"return_value", "content", "metadata", "kind"})


def _is_part(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("kind") in _PART_KINDS


def _parts(value: Any, where: str) -> Any:
    """A content part, or a list holding some, converted; anything else as it is."""
    if _is_part(value):
        return content_part(value, where)
    if isinstance(value, list) and any(_is_part(v) for v in value):
        return [content_part(v, f"{where}[{i}]") if _is_part(v) else v
                for i, v in enumerate(value)]  # fmt: skip
    return value


def tool_output(value: Any) -> Any:
    """What a client-side tool answered (``ok``) → what the pydantic-ai tool returns.

    * a content part, or a list with content parts: those become pydantic-ai content
      (an image goes to the model as an image, not as base64 text);
    * ``%{return_value: v, content: parts, metadata: m}`` (``ToolReturn``'s fields;
      ``return_value`` required, ``kind: "tool-return"`` optional): a ``ToolReturn``,
      so ``content`` reaches the model as a user message beside the tool result and
      ``metadata`` stays in history only;
    * anything else is returned unchanged.

    Raises ``BadRequest`` if a part is malformed.
    """
    if (
        isinstance(value, Mapping)
        and "return_value" in value
        and value.keys() <= _TOOL_RETURN_KEYS
        and value.get("kind", "tool-return") == "tool-return"
    ):
        content = value.get("content")
        if isinstance(content, Mapping):
            content = [content]
        return ToolReturn(
            return_value=_parts(value["return_value"], "return_value"),
            content=content if content is None or isinstance(content, str)
            else user_prompt(content, where="content"),
            metadata=value.get("metadata"),
        )  # fmt: skip
    return _parts(value, "ok")

"""What a frame may make the worker do with its secrets, and redaction (stdlib only).

Theory of operation: the operator decides, on the command line, which environment
variables a request may name as an API key (``--allow-env PATTERN``, shell-style,
default ``*_API_KEY``) and, optionally, which base URLs a request may send them to
(``--allow-base-url PREFIX``; none given means any). :func:`configure` is called once
at start-up; the agents layer asks :func:`check_env` and :func:`check_base_url`
before it builds a client. :func:`redact` removes credentials from any text that
leaves the worker (log frames, error messages): the user-info of URLs, and the
values of ``Authorization``/``api-key`` headers and ``key``/``token`` query
parameters.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

__all__ = ["DEFAULT_ALLOW_ENV", "check_base_url", "check_env", "configure", "redact"]

DEFAULT_ALLOW_ENV = ("*_API_KEY",)

_allow_env: tuple[str, ...] = DEFAULT_ALLOW_ENV
_allow_base_url: tuple[str, ...] = ()


def configure(allow_env: Iterable[str] | None, allow_base_url: Iterable[str] | None) -> None:
    """Set the policy (``None`` keeps the default: ``*_API_KEY``, any base URL)."""
    global _allow_env, _allow_base_url
    _allow_env = tuple(allow_env) if allow_env else DEFAULT_ALLOW_ENV
    _allow_base_url = tuple(allow_base_url or ())


def check_env(name: str) -> str | None:
    """``None`` if a request may read env var ``name``, else the reason it may not."""
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in _allow_env):
        return None
    return f"environment variable {redact(name)[:80]!r} is not allowed (--allow-env " + (
        ", ".join(_allow_env) + ")"
    )


def check_base_url(url: str) -> str | None:
    """``None`` if a request may send credentials to ``url``, else the reason it may not."""
    if not _allow_base_url or any(url.startswith(p) for p in _allow_base_url):
        return None
    return f"base_url {redact(url)[:200]!r} is not allowed (--allow-base-url)"


_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")
_HEADER = re.compile(
    r"(?i)((?:authorization|proxy-authorization|api-key|x-api-key)['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(bearer|basic|token)\s+)?[^\s'\",}]+"
)
_QUERY = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|sig|signature)=)[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``***`` (cheap when there are none)."""
    if "@" in text:
        text = _URL_USERINFO.sub(r"\1***@", text)
    if "=" in text:
        text = _QUERY.sub(r"\1***", text)
    if ":" in text or "=" in text:
        text = _HEADER.sub(
            lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + "***", text
        )
    return text

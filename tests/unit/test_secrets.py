"""The secrets policy and redaction (axon_port._secrets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from axon_port import _secrets


@pytest.fixture(autouse=True)
def default_policy() -> Iterator[None]:
    _secrets.configure(None, None)
    yield
    _secrets.configure(None, None)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("HTTP Request: POST http://user:s3cret@127.0.0.1:8/v1/chat", "s3cret"),
        ("headers: {'Authorization': 'Bearer sk-abc123'}", "sk-abc123"),
        ("api-key: abcdef123", "abcdef123"),
        ("GET https://h/v1?key=AIzaSecret&x=1", "AIzaSecret"),
        ('{"x-api-key": "zzz999"}', "zzz999"),
    ],
)
def test_credentials_are_redacted(text: str, secret: str) -> None:
    out = _secrets.redact(text)
    assert secret not in out
    assert "***" in out


def test_text_without_credentials_is_unchanged() -> None:
    text = "HTTP Request: POST http://127.0.0.1:8/v1/chat/completions 200 OK"
    assert _secrets.redact(text) == text


def test_env_and_base_url_policy() -> None:
    assert _secrets.check_env("OPENAI_API_KEY") is None
    assert _secrets.check_env("PATH") is not None
    assert _secrets.check_base_url("http://anywhere/") is None
    _secrets.configure(["MY_*"], ["https://api.example.com/"])
    assert _secrets.check_env("MY_TOKEN") is None
    assert _secrets.check_env("OPENAI_API_KEY") is not None
    assert _secrets.check_base_url("https://api.example.com/v1") is None
    assert _secrets.check_base_url("https://evil.example.net/") is not None

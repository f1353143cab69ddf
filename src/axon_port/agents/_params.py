"""A run request's parameters as the pydantic-ai values ``Agent.run`` takes.

Each is checked here, so a wrong type is a ``bad_request`` naming the field, never an
``internal`` error deep inside the run: ``RunUsage`` and ``UsageLimits`` go through
their constructors (unknown keys) and pydantic's validation of their fields (types).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic_ai.usage import RunUsage, UsageLimits

from axon_port.agents._messages import jsonable, plain
from axon_port.errors import BadRequest

__all__ = ["instructions", "optional_map", "run_usage", "usage_limits"]


def optional_map(params: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest(f"{key} must be a map")
    out: dict[str, Any] = plain(value)
    return out


def instructions(value: Any) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    raise BadRequest("run.instructions must be a binary or a list of binaries")


def run_usage(value: Any) -> RunUsage | None:
    """The usage a run starts from (a previous result's ``usage``), to accumulate over runs."""
    return _fields_of(RunUsage, value, "run.usage")


def usage_limits(value: Any) -> UsageLimits | None:
    return _fields_of(UsageLimits, value, "usage_limits")


_D = TypeVar("_D")
_ADAPTERS: dict[type, pydantic.TypeAdapter[Any]] = {}


def _fields_of(cls: type[_D], value: Any, where: str) -> _D | None:
    """``value`` (a map) as the pydantic-ai dataclass ``cls``; ``BadRequest`` for a key
    its constructor does not take or a value of the wrong type (which would otherwise
    fail deep inside the run as ``internal``)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest(f"{where} must be a map of pydantic-ai {cls.__name__} fields")
    data = plain(value)
    try:
        cls(**data)
    except TypeError as exc:
        raise BadRequest(f"{where}: {exc}") from None
    adapter = _ADAPTERS.get(cls)
    if adapter is None:  # built on first use: nothing at start-up
        adapter = _ADAPTERS[cls] = pydantic.TypeAdapter(cls)
    try:
        checked: _D = adapter.validate_python(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        raise BadRequest(f"{where}: {said}", details=jsonable(errors)) from None
    return checked

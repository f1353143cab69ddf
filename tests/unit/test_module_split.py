"""The worker and dispatcher were split into smaller modules; their public names
stay importable from where they always were, as the very same objects."""

from __future__ import annotations

import subprocess
import sys

import pytest

from axon_port import _context, _wire_errors, dispatcher, worker


def test_the_dispatcher_re_exports_the_context_and_the_error_mapping() -> None:
    assert dispatcher.RequestContext is _context.RequestContext
    assert dispatcher.current_request_id is _context.current_request_id
    assert dispatcher.Handler is _context.Handler
    assert dispatcher.error_payload is _wire_errors.error_payload
    assert dispatcher.interrupted_error is _wire_errors.interrupted_error
    for name in dispatcher.__all__:
        assert hasattr(dispatcher, name)


def test_the_worker_module_still_exports_its_public_names() -> None:
    from axon_port.worker import PROTOCOL_VERSION, Worker, WorkerConfig

    assert PROTOCOL_VERSION == 1
    assert isinstance(Worker, type) and isinstance(WorkerConfig, type)
    assert set(worker.__all__) == {"PROTOCOL_VERSION", "Worker", "WorkerConfig"}


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("axon_port._wire_errors", {"pydantic_ai", "pydantic", "axon_port.dispatcher"}),
        ("axon_port._context", {"asyncio", "pydantic_ai", "pydantic", "axon_port.dispatcher"}),
        ("axon_port._functions", {"pydantic_ai", "pydantic", "axon_port.worker"}),
    ],
)
def test_a_split_out_module_imports_nothing_above_it(module: str, forbidden: set[str]) -> None:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not set(out.stdout.split()) & forbidden

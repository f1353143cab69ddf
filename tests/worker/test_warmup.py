"""The background warm-up serves real runs, so a broken warm-up cannot hide."""

from __future__ import annotations

import logging

import pytest

import axon_port.agents


def test_warm_up_serves_a_run_without_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        axon_port.agents.warm_up()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

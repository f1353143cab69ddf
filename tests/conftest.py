"""Shared test set-up: no test may reach a real LLM; fixture modules are importable;
hypothesis has no per-example deadline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))
# Child workers spawned by process tests import fixture modules from here too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(SUPPORT), *filter(None, [os.environ.get("PYTHONPATH")])]
)

# Tests assert behaviour, never timings: hypothesis's default 200 ms deadline per
# example is a timing assertion, and failed a codec property under load.
settings.register_profile("axon_port", deadline=None)
settings.load_profile("axon_port")

try:  # pydantic-ai is a dependency, but the core tests must not need it imported
    from pydantic_ai import models

    models.ALLOW_MODEL_REQUESTS = False
except ImportError:  # pragma: no cover
    pass

"""One strict comparison for codec tests: equal, with the same types all the way down."""

from __future__ import annotations

from typing import Any

from axon_port import FrozenMap


def assert_same(got: Any, want: Any, *, nan_equal: bool = False) -> None:
    """Assert ``got == want`` with identical types at every level, keys included
    (``Atom`` vs ``str``, ``bool`` vs ``int``, ``FrozenList`` vs ``tuple``).

    ``nan_equal`` lets a NaN equal a NaN (for round trips of arbitrary floats).
    """
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict | FrozenMap):
        assert len(got) == len(want)
        got_keys = {k: k for k in got}
        for k, v in want.items():
            assert_same(got_keys[k], k, nan_equal=nan_equal)
            assert_same(got[k], v, nan_equal=nan_equal)
    elif isinstance(want, list | tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w, nan_equal=nan_equal)
    else:
        assert got == want or (nan_equal and got != got and want != want)

"""The ``call`` op: running registered Python functions, and describing them.

Theory of operation: :class:`FunctionRunner` serves ``call`` for the worker. The
name is looked up in the registry on every call, so a re-registration takes effect
at once; arguments are bound against the function's signature only when they are
not exactly its plain positional parameters (each function's shape is cached).
Where the function runs follows its registration:

* a coroutine function is awaited on the event loop, in the request's own task;
* an ``inline`` sync function runs on the loop and its result is the reply at
  once (no task: the dispatcher sends a returned dict inline);
* any other sync function runs in a thread of a bounded pool. Busy threads are
  counted, including those whose caller timed out or cancelled (a thread cannot be
  stopped): when all are taken, a new call is answered ``busy`` instead of queueing
  unseen.

An :class:`~axon_port.errors.AxonError` a function raises reaches the wire as
itself; any other exception becomes ``function_error`` naming the function.
Nothing here imports pydantic-ai; ``describe``'s JSON schemas import pydantic on
first use.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from axon_port._context import Fields, RequestContext
from axon_port.errors import AxonError, BadRequest, Busy, UnknownFunction
from axon_port.registry import FunctionEntry, Registry

__all__ = ["FunctionRunner"]

# Shared by every call without kwargs; only ever unpacked (``**``), never changed.
_NO_KWARGS: dict[str, Any] = {}


class FunctionRunner:
    """Runs the registry's functions for ``call``; ``threads`` bounds the sync pool."""

    def __init__(self, registry: Registry, threads: int) -> None:
        self.registry = registry
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="axon-port-fn")
        self._threads_busy = 0
        self._threads_lock = threading.Lock()
        # name -> (fn, count of plain positional parameters or -1, signature)
        self._shapes: dict[str, tuple[Callable[..., Any], int, inspect.Signature | None]] = {}

    @property
    def threads_busy(self) -> int:
        """Threads running a function right now (timed-out calls included)."""
        return self._threads_busy

    def call(self, ctx: RequestContext) -> Fields | Awaitable[Fields]:
        """The ``call`` handler: ``{"output": ...}`` now for an inline function, else
        an awaitable of it. Raises ``unknown_function``, ``bad_request`` (arguments),
        ``busy`` (no thread free) or ``function_error``."""
        params = ctx.params
        name = params["function"]
        entry = self.registry.functions.get(name) if isinstance(name, str) else None
        if entry is None:
            raise UnknownFunction(f"no function registered as {name!r}", details={"function": name})
        args = params.get("args", ())
        if args is None:
            args = ()
        elif type(args) is not list and type(args) is not tuple:
            raise BadRequest("call: args must be a list")
        kwargs = params.get("kwargs")
        if kwargs is None:
            kwargs = _NO_KWARGS
        elif kwargs or type(kwargs) is not dict:
            if type(kwargs) is not dict or not all(isinstance(k, str) for k in kwargs):
                raise BadRequest("call: kwargs must be a map with atom or binary keys")
            kwargs = {str(k): v for k, v in kwargs.items()}
        shape = self._shapes.get(entry.name)
        if shape is None or shape[0] is not entry.fn:
            shape = self._shapes[entry.name] = (entry.fn, *_call_shape(entry.fn))
        # The common case, exactly the positional parameters, needs no bind().
        if kwargs or len(args) != shape[1]:
            _check_binds(entry, shape[2], args, kwargs)
        if entry.is_async:
            return self._await_function(entry, entry.fn(*args, **kwargs))
        if entry.inline:
            # The hot path (what ``call`` costs beyond ``ping``): run it here, once,
            # and hand the dispatcher a dict, which it answers without a task.
            try:
                return {"output": entry.fn(*args, **kwargs)}
            except AxonError:
                raise
            except Exception as exc:
                raise _function_error(entry, exc) from exc
        with self._threads_lock:
            if self._threads_busy >= self.threads:
                raise Busy(
                    f"all {self.threads} threads are running synchronous functions"
                    " (some may belong to calls that timed out)",
                    details={"threads": self.threads},
                )
            self._threads_busy += 1
        loop = asyncio.get_running_loop()
        run = functools.partial(
            contextvars.copy_context().run, self._in_thread, entry, args, kwargs
        )
        try:
            fut = loop.run_in_executor(self._executor, run)
        except BaseException:
            with self._threads_lock:
                self._threads_busy -= 1
            raise
        return self._await_output(fut)

    def describe(self) -> list[Fields]:
        """``describe``'s ``functions``: name, description, parameters schema, async."""
        return [
            {"name": e.name, "description": e.description, "parameters": _params_schema(e.fn),
             "async": e.is_async}
            for e in self.registry.functions.values()
        ]  # fmt: skip

    def close(self) -> None:
        """Release the thread pool without waiting for blocked functions."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _in_thread(self, entry: FunctionEntry, args: Any, kwargs: dict[str, Any]) -> Any:
        try:
            return _run_function(entry, args, kwargs)
        finally:
            with self._threads_lock:
                self._threads_busy -= 1

    async def _await_function(self, entry: FunctionEntry, coro: Awaitable[Any]) -> Fields:
        try:
            return {"output": await coro}
        except (AxonError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise _function_error(entry, exc) from exc

    async def _await_output(self, fut: Awaitable[Any]) -> Fields:
        return {"output": await fut}


def _call_shape(fn: Callable[..., Any]) -> tuple[int, inspect.Signature | None]:
    """(n, signature): ``n`` is the number of parameters if all are plain positional
    ones without defaults (so ``n`` positional args always bind), else -1."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return -1, None
    params = sig.parameters.values()
    plain = all(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        for p in params
    )
    return (len(sig.parameters) if plain else -1), sig


def _check_binds(
    entry: FunctionEntry, signature: inspect.Signature | None, args: Any, kwargs: dict[str, Any]
) -> None:
    """Raise ``bad_request`` unless ``args``/``kwargs`` bind to ``signature`` (``None``:
    unknown, so the call itself will tell)."""
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise BadRequest(f"call {entry.name}: {exc}") from None


def _run_function(entry: FunctionEntry, args: Any, kwargs: dict[str, Any]) -> Any:
    try:
        return entry.fn(*args, **kwargs)
    except AxonError:
        raise
    except Exception as exc:
        raise _function_error(entry, exc) from exc


def _function_error(entry: FunctionEntry, exc: Exception) -> AxonError:
    return AxonError(
        f"{entry.name} raised {type(exc).__name__}: {exc}",
        kind="function_error",
        details={"function": entry.name, "type": type(exc).__name__},
    )


def _params_schema(fn: Callable[..., Any]) -> Fields:
    """A JSON Schema for ``fn``'s parameters, from its type hints (best effort)."""
    try:
        from pydantic import TypeAdapter

        sig = inspect.signature(fn)
        hints = _hints(fn)
        props: Fields = {}
        required: list[str] = []
        for name, p in sig.parameters.items():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            ann = hints.get(name, Any)
            props[name] = TypeAdapter(ann).json_schema()
            if p.default is p.empty:
                required.append(name)
        return {"type": "object", "properties": props, "required": required}
    except Exception:
        return {"type": "object"}


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}

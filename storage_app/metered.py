"""Storage operation metrics: latency and errors by backend, at the one place every caller gets a store.

`get_store()` meters the store it builds: each operation of the `MediaStore` interface is timed and
its failures counted (a missing object is an answer, not a failure); reads and listings are timed
until their first item, since the rest runs at the client's pace. The wrappers are set on the store
instance itself, so the caller still holds the backend's own class (`isinstance(store, S3Store)`)
and the backend's internal calls stay as they are.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from config.errors import NotFound, ServiceError
from config.metrics import STORAGE_ERRORS, STORAGE_SECONDS

Store = TypeVar("Store")

TIMED = ("save_stream", "read_bytes", "plain_size", "looks_encrypted", "size", "stat", "exists", "delete", "copy", "move",
         "sweep_partial", "signed_download_url", "signed_upload", "ping", "open_file")
ITERATED = ("open_range", "list")


def meter(store: Store) -> Store:
    """Time and count the operations of `store` (see the module docstring); returns it."""
    backend = type(store).__name__.removesuffix("Store").lower()
    for name in TIMED + ITERATED:
        if hasattr(type(store), name):
            wrap = _iterated if name in ITERATED else _timed
            setattr(store, name, functools.partial(wrap, backend, name, _method(store, name)))
    return store


def _method(store: Any, name: str) -> Callable:
    """Calls the class's method as it is at call time (a test may patch the class)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(type(store), name)(store, *args, **kwargs)

    return call


def _timed(backend: str, operation: str, call: Callable, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        _failed(backend, operation, exc)
        raise
    finally:
        _observe(backend, operation, started)


def _iterated(backend: str, operation: str, call: Callable, *args: Any, **kwargs: Any) -> Iterator:
    started = time.perf_counter()
    try:
        iterator = iter(call(*args, **kwargs))
    except Exception as exc:
        _failed(backend, operation, exc)
        _observe(backend, operation, started)
        raise
    return _measured(backend, operation, iterator, started)


def _measured(backend: str, operation: str, iterator: Iterator, started: float) -> Iterator:
    first = True
    try:
        for item in iterator:
            if first:
                _observe(backend, operation, started)
                first = False
            yield item
    except Exception as exc:
        _failed(backend, operation, exc)
        raise
    finally:
        if first:
            _observe(backend, operation, started)


def _observe(backend: str, operation: str, started: float) -> None:
    STORAGE_SECONDS.labels(backend=backend, operation=operation).observe(time.perf_counter() - started)


def _failed(backend: str, operation: str, exc: Exception) -> None:
    missing = isinstance(exc, (NotFound, FileNotFoundError))
    if not missing and (not isinstance(exc, ServiceError) or exc.status >= 500):
        STORAGE_ERRORS.labels(backend=backend, operation=operation).inc()

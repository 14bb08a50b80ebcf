"""Run the conformance suite's sync tests through the async API.

:func:`connect_async_as_sync` returns an object with the sync :class:`~vecbridge.Client`
interface whose every call is the matching coroutine of :mod:`vecbridge.aio`, run on one
event loop in a thread of its own: the same tests, unchanged, check the async path.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import vecbridge.aio

__all__ = ["connect_async_as_sync"]


class _Loop:
    """One event loop in a daemon thread, shared by every adapter."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="vecbridge-test-loop", daemon=True).start()
                cls._loop = loop
            return cls._loop


def _run(coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, _Loop.get()).result()


class SyncCollection:
    """A sync view of an :class:`~vecbridge.aio.AsyncCollection`."""

    def __init__(self, acoll: vecbridge.aio.AsyncCollection):
        self._a = acoll

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._a, name)
        if name.startswith("_") or not callable(value):
            return value
        if not asyncio.iscoroutinefunction(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return _run(value(*args, **kwargs))

        return call

    def scan(self, batch_size: int = 1000, include: Any = None) -> Iterator[Any]:
        agen = self._a.scan(batch_size, include)  # arguments are checked here, like the sync scan

        def gen() -> Iterator[Any]:
            while True:
                try:
                    yield _run(agen.__anext__())
                except StopAsyncIteration:
                    return

        return gen()

    def __len__(self) -> int:
        return int(_run(self._a.count()))

    def __enter__(self) -> SyncCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        _run(self._a.close())

    def __repr__(self) -> str:
        return f"<sync view of {self._a!r}>"


class SyncClient:
    """A sync view of an :class:`~vecbridge.aio.AsyncClient`."""

    def __init__(self, aclient: vecbridge.aio.AsyncClient):
        self._a = aclient

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._a, name)
        if name.startswith("_") or not asyncio.iscoroutinefunction(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            out = _run(value(*args, **kwargs))
            return SyncCollection(out) if isinstance(out, vecbridge.aio.AsyncCollection) else out

        return call

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        _run(self._a.close())


def connect_async_as_sync(url: str, **options: Any) -> SyncClient:
    return SyncClient(_run(vecbridge.aio.connect(url, **options)))

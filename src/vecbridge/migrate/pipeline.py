"""Run a producer in a background thread, a bounded number of items ahead of its consumer.

The reader (producer) and the writer (consumer) then work at the same time, and the
bounded queue between them keeps memory flat: at most ``depth`` batches wait, one is
being read and one written.  An exception in the producer is raised in the consumer;
a consumer that stops early (an error, Ctrl-C) stops the producer at its next item.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["Pipeline"]

T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Pipeline(Generic[T]):
    """``with Pipeline(items, depth=2) as it: for x in it: ...``."""

    def __init__(self, items: Iterable[T], depth: int = 2, name: str = "vecbridge-reader"):
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it = iter(self._items)
        try:
            for item in it:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed over to the consumer
            self._put(_Failed(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:  # release the scan's cursor in the thread that ran it
                with contextlib.suppress(Exception):  # nothing more to do with a failed source
                    close()

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._consume()

    def _consume(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A reader stuck in a slow network call is a daemon thread: do not wait for it forever.
        self._thread.join(timeout=5.0)

"""Progress: a one-line bar on a terminal, plain periodic lines otherwise, or a callback.

No extra dependency: on a terminal the line is redrawn with ``\\r`` at most ten
times a second; when stderr is a file or a pipe a plain line is printed every
``interval`` seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "ProgressCallback", "SharedProgress", "make_progress"]

#: ``callback(phase, done, total)``: phase is "copy" or "verify"; total may be None.
ProgressCallback = Callable[[str, int, "int | None"], None]


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Counts records of one phase; ``done`` includes records skipped on resume, the rate does not."""

    def __init__(self, phase: str = "copy", total: int | None = None, stream: TextIO | None = None,
                 callback: ProgressCallback | None = None, enabled: bool = True, interval: float = 10.0):
        self.phase = phase
        self.total = total
        self.done = 0
        self._moved = 0  # records really processed in this run (for the rate)
        self._stream = stream
        self._callback = callback
        self.enabled = enabled and (stream is not None or callback is not None)
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._interval = 0.1 if self._tty else interval
        self._t0 = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._pending = False  # counts changed since the last line shown by finish()

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        """Begin a phase (again), e.g. after a restart from the first record."""
        self.finish()
        self.phase, self.total, self.done, self._moved = phase, total, done, 0
        self._t0 = self._last = time.monotonic()

    def skip(self, n: int) -> None:
        """Records passed over (copied by an earlier run)."""
        self.done += n
        self._pending = True
        self._show()

    def advance(self, n: int) -> None:
        self.done += n
        self._moved += n
        self._pending = True
        self._show()

    def rate(self) -> float:
        elapsed = time.monotonic() - self._t0
        return self._moved / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        if self.total:
            pct = min(self.done / self.total, 1.0)
            if self.done >= self.total:
                when = f"took {_clock(time.monotonic() - self._t0)}"
            else:
                when = f"ETA {_clock((self.total - self.done) / rate)}" if rate > 0 else "ETA --:--:--"
            return f"{self.phase}: {self.done:,}/{self.total:,} records ({pct:4.0%}) {rate:,.0f} records/s, {when}"
        return f"{self.phase}: {self.done:,} records {rate:,.0f} records/s"

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        self._pending = False
        if self._callback is not None:
            self._callback(self.phase, self.done, self.total)
            return
        assert self._stream is not None
        if self._tty:
            self._stream.write("\r" + self.line() + "\x1b[K")
            self._drawn = True
        else:
            self._stream.write(self.line() + "\n")
        self._stream.flush()

    def finish(self) -> None:
        """Show the final count of the phase and end the terminal line."""
        if not self.enabled or not self._pending:
            return
        self._pending = False
        self._show(force=True)
        if self._tty and self._drawn and self._stream is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def make_progress(progress: Any) -> Progress:
    """``True``: stderr; ``False``/``None``: silent; a callable: called with (phase, done, total)."""
    if callable(progress):
        return Progress(callback=progress, interval=0.0)
    if progress:
        return Progress(stream=sys.stderr)
    return Progress(enabled=False)


class SharedProgress:
    """The one bar of a parallel copy, advanced by every partition's copier (thread-safe).

    The copiers' own ``start`` and ``finish`` do nothing: the phase is the whole copy's,
    begun and ended by its owner, so that one line counts every partition.
    """

    def __init__(self, bar: Progress):
        self.bar = bar
        self._lock = threading.Lock()

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass

    def skip(self, n: int) -> None:
        with self._lock:
            self.bar.skip(n)

    def advance(self, n: int) -> None:
        with self._lock:
            self.bar.advance(n)

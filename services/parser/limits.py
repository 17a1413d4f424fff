"""Per-document limits that hold inside a long-running worker.

trafilatura's own timeout is implemented by its command line only, so a pathological page
would stall a faust worker. :class:`TimeLimit` arms ``SIGALRM`` (``setitimer``) when it runs on
the main thread, which is where faust agents run: the handler raises :class:`ParseTimeout`
between two Python bytecodes, also inside trafilatura. Off the main thread (e.g. in an executor)
signals cannot be used; the limit is then checked between pipeline stages
(:meth:`TimeLimit.check`), and the DOM-size limit bounds how long one stage can take.

:class:`ParseTimeout` derives from ``BaseException`` on purpose: trafilatura and htmldate catch
``Exception`` in places and would swallow a timeout and carry on.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType, TracebackType


class ParseTimeout(BaseException):
    """The document ran past its time limit. Convert at the boundary, never swallow."""


class TimeLimit:
    """Context manager: a hard (signal) or cooperative (``check()``) time limit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = 0.0
        self._armed = False
        self._previous: signal._HANDLER = None

    @property
    def hard(self) -> bool:
        """True when the limit is enforced by a signal, not only between stages."""
        return self._armed

    def __enter__(self) -> TimeLimit:
        self._deadline = time.monotonic() + self.seconds
        if (
            hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
            # someone else's alarm is pending: do not steal it, fall back to checks
            and signal.getitimer(signal.ITIMER_REAL)[0] == 0
        ):
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self._armed = True
        return self

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        raise ParseTimeout(f"parse exceeded {self.seconds:g} s")

    def check(self) -> None:
        """Raise :class:`ParseTimeout` if the deadline has passed."""
        if time.monotonic() > self._deadline:
            raise ParseTimeout(f"parse exceeded {self.seconds:g} s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._armed:
            return
        # A late alarm may raise ParseTimeout right here; the finally still restores the
        # previous handler, and the caller converts the ParseTimeout like any other.
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, self._previous)
            self._armed = False

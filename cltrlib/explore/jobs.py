"""The life cycle every explorer panel's background job shares: state, timing, cancel, wait.

Panels run slow model work in a thread so the kernel never freezes; the thread checks
``_stop`` between small chunks of work, which is what makes Stop respond quickly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Self


@dataclass
class BackgroundJob:
    """Base of the panels' jobs; subclasses add a ``state`` string and their own progress fields."""

    error: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return getattr(self, "state", "pending") not in ("done", "cancelled", "error")

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def cancel(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> Self:
        if self._thread is not None:
            self._thread.join(timeout)
        return self

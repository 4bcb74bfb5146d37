"""The life cycle every explorer panel's background job shares: state, timing, cancel, wait.

Panels run slow model work in a thread so the kernel never freezes; the thread checks
``_stop`` between small chunks of work, which is what makes Stop respond quickly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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

    def start(self, body: Callable[[], None], cancelled: type[BaseException], on_finish: Callable[[], None],
              name: str, wait: bool = False) -> Self:
        """Run ``body`` in a daemon thread and keep ``state`` honest whatever happens in it.

        ``state`` becomes ``done`` when ``body`` returns, ``cancelled`` when it raises
        ``cancelled`` (the panel's Stop), ``error`` (message in ``error``) on any other
        exception, so a failing model never kills the kernel; ``on_finish`` always runs
        (status line, buttons).
        """

        def run() -> None:
            try:
                body()
                self.state = "done"
            except cancelled:
                self.state = "cancelled"
            except Exception as exc:  # shown in the panel; the kernel keeps running
                self.error, self.state = f"{type(exc).__name__}: {exc}", "error"
            finally:
                self.finished = time.monotonic()
                on_finish()

        self._thread = threading.Thread(target=run, daemon=True, name=name)
        self._thread.start()
        if wait:
            self.wait()
        return self

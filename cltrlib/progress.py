"""Progress bars that reach the terminal of ``make reproduce`` as well as the notebook.

Inside a papermill kernel ``tqdm.auto`` draws an ipywidget into the executed notebook, which the terminal that
runs ``make reproduce`` never sees; and the kernel's stdout/stderr (``sys.__stderr__`` and fd 2 included) are
captured into the notebook's outputs, so writing a text bar there would litter the committed-style notebook
instead of reaching the terminal. So the two ends talk through a file:

- writer (this module's ``tqdm``, a drop-in for ``tqdm.auto.tqdm``, used by every stage): draws the usual bar
  (widget in a kernel, text in a terminal) and, when ``CLTR_PROGRESS_FILE`` names a file, also appends one JSON
  line per open / update (at most every ``MIRROR_INTERVAL_S`` seconds) / close to it. A plain file, not a FIFO:
  a writer never blocks or dies of SIGPIPE when nobody reads, and each event is one ``write(2)`` with
  ``O_APPEND``, so the processes a stage forks can share the file.
- reader (``ProgressTail``) and ``Console``: the runner tails the file in a thread and draws the notebook, the
  running cell, the open bars and their counts and rates on its stderr: one line rewritten in place on a
  terminal, a status line every ``interval`` seconds in a log file.

Each event carries ``text``, the plain one-line bar (``[02_code_eval] generate: 40%|...| 66/164 [00:40<01:00,
1.63it/s]``), so ``tail -f $CLTR_PROGRESS_FILE`` is readable on its own. A mirror that cannot write gives up
silently: progress reporting must never break a study run.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _std_tqdm

PROGRESS_FILE_ENV = "CLTR_PROGRESS_FILE"  # set by the runner: where bars append their events
PROGRESS_LABEL_ENV = "CLTR_PROGRESS_LABEL"  # set by the runner: the notebook's stem, e.g. 02_code_eval
MIRROR_INTERVAL_S = 0.5  # a bar redraws its widget every 0.1 s; the terminal needs far fewer events

_ids = itertools.count()
_fds: dict[tuple[int, str], int] = {}  # (pid, path) -> fd: a forked child opens its own
_broken: set[str] = set()  # paths that failed once: never retried (and never raised)
_fd_lock = threading.Lock()


def _sink_fd(path: str) -> int | None:
    """An ``O_APPEND`` descriptor for ``path`` in this process, or None once writing there has failed."""
    if path in _broken:
        return None
    key = (os.getpid(), path)
    with _fd_lock:
        fd = _fds.get(key)
        if fd is None:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError:
                _broken.add(path)
                return None
            _fds[key] = fd
    return fd


def _emit(path: str, event: dict[str, Any]) -> None:
    """Append one event as one JSON line in one ``write`` (so concurrent writers never interleave a line)."""
    fd = _sink_fd(path)
    if fd is None:
        return
    try:
        os.write(fd, (json.dumps(event, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
    except OSError:
        _broken.add(path)


def meter(state: dict[str, Any], ncols: int | None = None, prefix: str | None = None, ascii: bool | str = False,
          elapsed: float | None = None) -> str:
    """One plain-text tqdm line for a bar's state (an event's fields), optionally at another width or time."""
    return _std_tqdm.format_meter(
        n=state.get("n") or 0, total=state.get("total"), elapsed=state.get("elapsed", 0) if elapsed is None else elapsed,
        ncols=ncols, prefix=(state.get("desc") or "") if prefix is None else prefix, ascii=ascii,
        unit=state.get("unit") or "it", unit_scale=state.get("unit_scale") or False, rate=state.get("rate"),
        postfix=state.get("postfix"), unit_divisor=state.get("unit_divisor") or 1000, initial=state.get("initial") or 0)


class tqdm(_auto_tqdm):  # noqa: N801 - a drop-in for tqdm.auto.tqdm keeps its name
    """``tqdm.auto.tqdm`` (a widget in a notebook, text in a terminal) that also mirrors itself to
    ``$CLTR_PROGRESS_FILE`` when the runner set it. Disabled bars (``disable=True``) mirror nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._mirror_path: str | None = None  # set before super().__init__, which may already display
        self._mirror_last = 0.0
        super().__init__(*args, **kwargs)
        if self.disable:
            return
        self._mirror_path = os.environ.get(PROGRESS_FILE_ENV) or None
        self._mirror_id = f"{os.getpid()}.{next(_ids)}"
        self._mirror_label = os.environ.get(PROGRESS_LABEL_ENV, "")
        self._mirror("open", force=True)

    def _mirror(self, kind: str, force: bool = False) -> None:
        path = self._mirror_path
        if path is None:
            return
        now = time.time()
        if not force and now - self._mirror_last < MIRROR_INTERVAL_S and not (self.total and self.n >= self.total):
            return
        self._mirror_last = now
        fmt = self.format_dict
        state = {"n": fmt["n"], "total": fmt["total"], "elapsed": round(fmt["elapsed"], 3), "desc": fmt["prefix"],
                 "unit": fmt["unit"], "unit_scale": fmt["unit_scale"], "unit_divisor": fmt["unit_divisor"],
                 "rate": fmt["rate"], "postfix": fmt["postfix"], "initial": fmt["initial"]}
        label = f"[{self._mirror_label}] " if self._mirror_label else ""
        text = meter(state, ncols=100 + len(label), prefix=label + (state["desc"] or ""))
        _emit(path, {"v": 1, "event": kind, "id": self._mirror_id, "label": self._mirror_label, "t": now,
                     "leave": self.leave, **state, "text": text})

    def display(self, *args: Any, **kwargs: Any) -> Any:
        shown = super().display(*args, **kwargs)
        self._mirror("update")
        return shown

    def close(self) -> None:
        if self._mirror_path is not None and not self.disable:
            self._mirror("close", force=True)
            self._mirror_path = None  # super().close() redraws once more: nothing further to mirror
        super().close()


def progress(iterable: Iterable | None = None, **tqdm_kwargs: Any) -> tqdm:
    """``tqdm(iterable, **tqdm_kwargs)`` that also reaches ``make reproduce``'s terminal (see the module doc)."""
    return tqdm(iterable, **tqdm_kwargs)


class ProgressTail:
    """Follows an event file in a thread and hands each parsed event to ``on_event``.

    Polls (the file is written by another process; a regular file has no readiness to wait on), keeps a partial
    last line until its newline arrives, and skips lines that are not events.
    """

    def __init__(self, path: Path, on_event: Callable[[dict[str, Any]], None], poll_s: float = 0.2) -> None:
        self.path, self.on_event, self.poll_s = Path(path), on_event, poll_s
        self._stop = threading.Event()
        self._pos = 0
        self._rest = b""
        self._lock = threading.Lock()  # the poller and ``read_new`` callers (the runner, to keep order) share it
        self._thread = threading.Thread(target=self._run, name=f"progress-tail {self.path.name}", daemon=True)

    def __enter__(self) -> ProgressTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.read_new()  # what the last events said before the kernel went away

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.read_new()

    def read_new(self) -> None:
        """Hand over every complete event written since the last read. The runner also calls it before it logs a
        cell start or a printed line, so the bars a cell drew show up before what came after them."""
        with self._lock:
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(self._pos)
                    data = fh.read()
            except FileNotFoundError:
                return
            self._pos += len(data)
            *lines, self._rest = (self._rest + data).split(b"\n")
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "event" in event:
                    self.on_event(event)


class Console:
    """The runner's terminal: permanent log lines, and one live status line (notebook, cell, open bars).

    On a terminal (``live``) the status line is rewritten in place, cut to the width so it never wraps; in a log
    file it is printed as a line of its own every ``interval`` seconds while something runs, so a CI log shows
    progress without thousands of carriage-return frames. A finished bar that asked to stay (``leave``) is logged
    as a permanent line either way.
    """

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None, interval: float = 30.0,
                 refresh_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.interval, self.refresh_s = interval, refresh_s
        enc = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        self.ascii = enc not in ("utf8", "utf16", "utf32")
        self._lock = threading.RLock()
        self._bars: dict[str, dict[str, Any]] = {}  # open bars in opening order (outermost first)
        self._label = ""
        self._cell: tuple[int, int] | None = None
        self._cell_t = self._notebook_t = time.monotonic()
        self._shown = ""  # the live line currently on screen
        self._last_status = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> Console:
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="progress-console", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.render()

    # -- inputs ----------------------------------------------------------------------------------------------
    def start_notebook(self, label: str) -> None:
        with self._lock:
            self._label, self._cell, self._bars = label, None, {}
            self._notebook_t = self._cell_t = time.monotonic()
            self._last_status = time.monotonic()

    def end_notebook(self) -> None:
        with self._lock:
            self._bars, self._cell, self._label = {}, None, ""
            self._clear()

    def start_cell(self, number: int, count: int, section: str | None = None) -> None:
        """Cell ``number`` of ``count`` code cells starts; a new ``section`` (markdown heading) is logged."""
        with self._lock:
            self._cell, self._cell_t = (number, count), time.monotonic()
            if section:
                self.log(f"[{self._label}] {section}")
            self.render()

    def log(self, text: str) -> None:
        """A permanent line (the live line is cleared first and redrawn after)."""
        with self._lock:
            self._clear()
            for line in text.rstrip("\n").splitlines() or [""]:
                self.stream.write(line + "\n")
            self.stream.flush()
            self.render(force=True)

    def on_event(self, event: dict[str, Any]) -> None:
        """A bar event from ``ProgressTail``: open/update keep the bar, close drops it (logged if it stays)."""
        with self._lock:
            event = {**event, "seen": time.monotonic()}
            if event["event"] == "close":
                self._bars.pop(event["id"], None)
                if event.get("leave") is not False:
                    label = event.get("label") or self._label
                    self.log(meter(event, prefix=f"[{label}] {event.get('desc') or ''}", ascii=self.ascii,
                                   ncols=min(self._width(), 120)))
            else:
                self._bars[event["id"]] = event
            self.render()

    # -- output ----------------------------------------------------------------------------------------------
    def _width(self) -> int:
        return shutil.get_terminal_size((120, 24)).columns if self.live else 120

    def status_line(self) -> str:
        """The live line: ``[label cell/count] outer 3/12 > inner: 40%|###   | 66/164 [00:40<01:00, 1.63it/s]``."""
        now = time.monotonic()
        where = self._label + (f" {self._cell[0]}/{self._cell[1]}" if self._cell else "")
        head = f"[{where}] "
        bars = list(self._bars.values())
        width = max(self._width() - 1, 40)
        if not bars:
            return (head + f"cell running {_clock(now - self._cell_t)} (notebook {_clock(now - self._notebook_t)})"
                    )[:width]
        *outer, inner = bars
        chain = "".join(f"{b.get('desc') or 'bar'} {b.get('n')}/{b.get('total') or '?'} > " for b in outer)
        # The clock runs between events (a decode group can take minutes), and so does the estimate: the bar's
        # smoothed rate, or the average so far once the next item is overdue, whichever is slower.
        elapsed = (inner.get("elapsed") or 0) + (now - inner["seen"])
        rate = inner.get("rate")
        n = (inner.get("n") or 0) - (inner.get("initial") or 0)
        if rate and n > 0:
            rate = min(rate, n / elapsed)
        return meter({**inner, "rate": rate}, ncols=width, prefix=head + chain + (inner.get("desc") or ""),
                     ascii=self.ascii, elapsed=elapsed)[:width]

    def render(self, force: bool = False) -> None:
        with self._lock:
            if not self._label or self._cell is None:  # nothing until the first cell (the kernel starts)
                return
            line = self.status_line()
            if self.live:
                if line != self._shown or force:
                    self.stream.write("\r" + line + "\x1b[K")
                    self.stream.flush()
                    self._shown = line
            elif time.monotonic() - self._last_status >= self.interval:
                self._last_status = time.monotonic()
                self.stream.write(line + "\n")
                self.stream.flush()

    def _clear(self) -> None:
        if self.live and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = ""


def _clock(seconds: float) -> str:
    return _std_tqdm.format_interval(seconds)

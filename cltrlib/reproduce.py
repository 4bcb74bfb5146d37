"""The papermill runner behind ``make reproduce``: every notebook on a profile, with live progress on the terminal.

Profiles are ``cltrlib.study.PROFILES`` (``smoke``, ``local``, ``paper``; ``study.py`` says what each runs).

Notebooks run in reading order (``notebooks/NN_*.ipynb``), except that a notebook whose metadata sets
``cltr.run_after_others`` (the explorer, which shows the others' stored results) runs last, and one whose metadata
lists ``cltr.run_after`` (notebook number prefixes, e.g. 03 shows the CLTR of the models 07 trains) runs after
those; executed copies go to ``<results>/notebooks/<profile>/`` so the committed notebooks stay output-free.

What the terminal shows while a notebook runs (``cltrlib.progress`` has the how):

- the notebook, each section it enters (its markdown headings) and the code cell running (``3/10``);
- the stages' tqdm bars, which a kernel would otherwise draw only as widgets in the executed notebook: each
  bar's events go through a file named by ``CLTR_PROGRESS_FILE``, which the runner tails;
- the lines the stages print with a ``[tag] `` prefix (``[code-eval] gemma3-270m / jhumaneval / completion``),
  taken from the kernel's stream output (``--verbose``: every line the cells print);
- at the end, a table of seconds and status per notebook.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cltrlib import config
from cltrlib.progress import PROGRESS_FILE_ENV, PROGRESS_LABEL_ENV, Console, ProgressTail
from cltrlib.study import PROFILES

ENGINE_NAME = "cltr"  # papermill's nbclient engine plus a cell-start hook (registered on first use)
_TAGGED = re.compile(r"^\[(?!transformers\])[^\]\s]+\] ")  # "[code-eval] ...", "[cltr] ...": the stages' own progress lines


def _cltr_meta(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("cltr", {})


def runs_last(path: Path) -> bool:
    """True for a notebook that shows other notebooks' stored results (metadata ``cltr.run_after_others``).

    The explorer is read first (it is ``00``) but its snapshots show the stored code-eval
    results and fine-tuned classifiers, so ``make reproduce`` runs it after the others.
    """
    return bool(_cltr_meta(path).get("run_after_others"))


def notebook_paths(only: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """The notebooks in run order: reading order, except that a notebook waits for the ones its ``cltr.run_after``
    names (when they run too) and those that show all the others' results come last."""
    paths = sorted((folder or config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    paths = sorted(paths, key=runs_last)  # stable: reading order within each group
    ordered: list[Path] = []
    waiting = list(paths)
    while waiting:
        for p in waiting:
            after = [q for q in waiting if q is not p and any(q.name.startswith(a) for a in _cltr_meta(p).get(
                "run_after", []))]
            if not after:
                ordered.append(p)
                waiting.remove(p)
                break
        else:
            raise ValueError(f"notebooks wait for each other in a cycle: {[p.name for p in waiting]}")
    return ordered


class _CellWatcher:
    """Turns papermill's per-cell start calls into console updates: the section (last markdown heading) on
    entering it, and ``n/count`` over code cells (the injected parameters cell included: it runs too)."""

    def __init__(self, console: Console, drain: Callable[[], None]) -> None:
        self.console, self.drain = console, drain
        self.section: str | None = None
        self.logged: str | None = None
        self.number = 0

    def __call__(self, nb: Any, cell: Any, index: int | None) -> None:
        if cell.cell_type == "markdown":
            heading = next((ln.lstrip("#").strip() for ln in cell.source.splitlines() if ln.startswith("#")), None)
            self.section = heading or self.section
            return
        if cell.cell_type != "code":
            return
        self.drain()  # the previous cell's last bar events first
        self.number += 1
        count = sum(c.cell_type == "code" for c in nb.cells)
        new = self.section if self.section != self.logged else None
        self.logged = self.section
        self.console.start_cell(self.number, count, section=new)


def _register_engine() -> None:
    """Register papermill's nbclient engine with a hook on each cell's start (papermill has no callback for it;
    ``NotebookExecutionManager.cell_start`` is where its own progress bar learns the cell)."""
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.exceptions import PapermillException

    try:
        papermill_engines.get_engine(ENGINE_NAME)
        return
    except PapermillException:
        pass

    class CltrEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            on_cell = kwargs.pop("cltr_on_cell", None)
            if on_cell is not None:
                cell_start = nb_man.cell_start

                def hooked(cell, cell_index=None, **kw):
                    try:
                        on_cell(nb_man.nb, cell, cell_index)
                    except Exception as exc:  # a display glitch must not fail the notebook
                        print(f"[reproduce] progress display error: {exc!r}", file=sys.stderr)
                    return cell_start(cell, cell_index, **kw)

                nb_man.cell_start = hooked
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(ENGINE_NAME, CltrEngine)


class _StreamLines:
    """A file-like ``stdout_file`` / ``stderr_file`` for papermill: whole lines of the kernel's stream output go
    to the console, all of them (``verbose``) or only the stages' ``[tag] ...`` lines."""

    def __init__(self, console: Console, label: str, verbose: bool, drain: Callable[[], None]) -> None:
        self.console, self.label, self.verbose, self.drain = console, label, verbose, drain
        self._rest = ""

    def write(self, text: str) -> int:
        *lines, self._rest = (self._rest + text).split("\n")
        for line in lines:
            line = line.rsplit("\r", 1)[-1].rstrip()  # a text bar's frames: keep the last
            if line and (self.verbose or _TAGGED.match(line)):
                self.drain()
                self.console.log(f"[{self.label}] {line}")
        return len(text)

    def flush(self) -> None:
        pass


def run_notebook(path: Path, profile: str, out_dir: Path | None = None, log_output: bool = False,
                 extra_parameters: dict | None = None, console: Console | None = None) -> Path:
    """Execute one notebook with papermill (fresh kernel, parameters injected); return the executed copy.

    With a ``console``, the notebook's cells, bars and tagged lines are drawn on it while it runs (see the
    module doc); ``log_output`` then means every line the cells print. Without one, papermill runs as is.
    """
    import papermill as pm

    out_dir = out_dir or (config.results_dir() / "notebooks" / profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    params = {"profile": profile, **(extra_parameters or {})}
    common = dict(parameters=params, cwd=str(path.parent), kernel_name="python3", progress_bar=False)
    if console is None:
        pm.execute_notebook(str(path), str(out), log_output=log_output, **common)
        return out
    _register_engine()
    label = path.stem
    saved = {k: os.environ.get(k) for k in (PROGRESS_FILE_ENV, PROGRESS_LABEL_ENV)}
    with tempfile.TemporaryDirectory(prefix="cltr-progress-") as tmp:
        events = Path(tmp) / f"{label}.jsonl"
        events.touch()
        os.environ[PROGRESS_FILE_ENV], os.environ[PROGRESS_LABEL_ENV] = str(events), label  # the kernel inherits
        console.start_notebook(label)
        try:
            with ProgressTail(events, console.on_event) as tail:
                pm.execute_notebook(str(path), str(out), engine_name=ENGINE_NAME,
                                    cltr_on_cell=_CellWatcher(console, tail.read_new),
                                    stdout_file=_StreamLines(console, label, log_output, tail.read_new),
                                    stderr_file=_StreamLines(console, label, log_output, tail.read_new), **common)
        finally:
            console.end_notebook()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return out


def _failure(exc: Exception) -> str:
    """One line for a failed notebook: the cell's exception (papermill's message is the whole traceback)."""
    if hasattr(exc, "ename"):
        return f"cell [{getattr(exc, 'exec_count', '?')}]: {exc.ename}: {str(exc.evalue).splitlines()[0][:200]}"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def timing_table(rows: list[tuple[str, float, str]]) -> str:
    """The end-of-run table: notebook, wall seconds, status (``ok`` / ``FAILED``), and the total."""
    width = max([len("notebook"), len("total"), *(len(name) for name, _, _ in rows)])
    lines = [f"{'notebook':{width}s}  {'seconds':>8s}  status"]
    lines += [f"{name:{width}s}  {seconds:8.1f}  {status}" for name, seconds, status in rows]
    failed = sum(status != "ok" for _, _, status in rows)
    lines.append(f"{'total':{width}s}  {sum(s for _, s, _ in rows):8.1f}  {failed} failed")
    return "\n".join(lines)


def run_notebooks(profile: str, only: list[str] | None = None, log_output: bool = False,
                  console: Console | None = None) -> int:
    """Run every notebook on ``profile`` in order with live progress; print the time table; non-zero on failure."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    paths = notebook_paths(only)
    console = console or Console()
    rows: list[tuple[str, float, str]] = []
    tag = f"[reproduce:{profile}]"
    with console:
        out_dir = config.results_dir() / "notebooks" / profile
        console.log(f"{tag} {len(paths)} notebook(s); executed copies in {out_dir}")
        for i, path in enumerate(paths, 1):
            console.log(f"{tag} {path.name} ({i}/{len(paths)}) ...")
            start = time.monotonic()
            try:
                run_notebook(path, profile, log_output=log_output, console=console)
                status = "ok"
            except Exception as exc:  # report and go on: one broken notebook should not hide the others
                status = "FAILED"
                console.log(f"{tag} {path.name} FAILED: {_failure(exc)} (traceback in {out_dir / path.name})")
            seconds = time.monotonic() - start
            rows.append((path.name, seconds, status))
            console.log(f"{tag} {path.name} {status} in {seconds:.0f}s")
    print(timing_table(rows), flush=True)
    return 1 if any(status != "ok" for _, _, status in rows) else 0

"""Profiles and the papermill runner behind ``make reproduce``.

Profiles (every notebook maps the profile name to its own settings; see each stage's
``PROFILES``):

- ``smoke``  a handful of items, both embedded models, minutes on 2 CPU cores (``make test``)
- ``local``  the full study at embedded-model scale on 2 CPU cores (``make reproduce``)
- ``paper``  the papers' hub models, for a GPU machine with hub access

Notebooks run in reading order (``notebooks/NN_*.ipynb``), except that a notebook whose metadata sets
``cltr.run_after_others`` (the explorer, which shows the others' stored results) runs last; executed copies go to
``<results>/notebooks/<profile>/`` so the committed notebooks stay output-free.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from cltrlib import config

PROFILES = ("smoke", "local", "paper")


def runs_last(path: Path) -> bool:
    """True for a notebook that shows other notebooks' stored results (metadata ``cltr.run_after_others``).

    The explorer is read first (it is ``00``) but its snapshots show the stored code-eval
    results and fine-tuned classifiers, so ``make reproduce`` runs it after the others.
    """
    import json

    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    return bool(meta.get("cltr", {}).get("run_after_others"))


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The notebooks in run order: reading order, except those that show the others' results come last."""
    paths = sorted((config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    return sorted(paths, key=runs_last)  # stable: reading order within each group


def run_notebook(path: Path, profile: str, out_dir: Path | None = None, log_output: bool = False,
                 extra_parameters: dict | None = None) -> Path:
    """Execute one notebook with papermill (fresh kernel, parameters injected); return the executed copy."""
    import papermill as pm

    out_dir = out_dir or (config.results_dir() / "notebooks" / profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    params = {"profile": profile, **(extra_parameters or {})}
    pm.execute_notebook(str(path), str(out), parameters=params, cwd=str(path.parent), kernel_name="python3",
                        log_output=log_output, progress_bar=False)
    return out


def run_notebooks(profile: str, only: list[str] | None = None, log_output: bool = False) -> int:
    """Run every notebook on ``profile`` in order; report wall time per notebook; non-zero on failure."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    os.environ.setdefault("CLTR_PROFILE", profile)
    total = time.monotonic()
    failed = []
    for path in notebook_paths(only):
        start = time.monotonic()
        print(f"[reproduce:{profile}] {path.name} ...", flush=True)
        try:
            run_notebook(path, profile, log_output=log_output)
        except Exception as exc:  # report and go on: one broken notebook should not hide the others
            failed.append(path.name)
            print(f"[reproduce:{profile}] {path.name} FAILED: {exc}", file=sys.stderr, flush=True)
            continue
        print(f"[reproduce:{profile}] {path.name} done in {time.monotonic() - start:.0f}s", flush=True)
    print(f"[reproduce:{profile}] all done in {time.monotonic() - total:.0f}s; failed: {failed or 'none'}", flush=True)
    return 1 if failed else 0

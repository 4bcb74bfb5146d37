"""Stored evaluation results for one problem, across models, prompt modes and languages.

Reads what the code-eval notebooks already computed (``results/evaluation/*/summary.json``
→ its ``results`` JSONL); nothing is generated here, so the table appears instantly and
answers the class's question "who solves this in English only, Japanese only, both?".
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pandas as pd

from cltrlib.data import normalise_task_id
from cltrlib.store import find_runs

# Cache of parsed results files keyed by (path, mtime, size): rereading is free until a run changes.
_CACHE: dict[tuple[str, float, int], list[dict]] = {}


def _results_file(summary_path: Path) -> Path | None:
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    results = summary.get("results")
    if not results:
        return None
    path = Path(results)
    if not path.is_absolute() or not path.exists():
        path = summary_path.parent / Path(results).name  # the results store was moved: look beside the summary
    return path if path.exists() else None


def _read_results(path: Path) -> list[dict]:
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _CACHE:
        rows = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn line in a results file being written: skip it, the rest still counts
                rows.append({k: rec.get(k) for k in ("task_id", "passed", "language", "model", "prompt_mode")})
        _CACHE[key] = rows
    return _CACHE[key]


def all_stored_results(root: Path | None = None) -> pd.DataFrame:
    """One row per stored evaluated sample: task_id, passed, language, model, prompt_mode, run."""
    frames = []
    for run in find_runs("evaluation", root=root):
        path = _results_file(run.summary_file)
        if path is None:
            continue
        rows = _read_results(path)
        if rows:
            df = pd.DataFrame(rows)
            df["run"] = run.path.name
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["task_id", "passed", "language", "model", "prompt_mode", "run"])
    df = pd.concat(frames, ignore_index=True)
    df["task_id"] = df["task_id"].astype(str).map(normalise_task_id)
    df["passed"] = df["passed"].astype(bool)
    return df


def solve_category(en: float | None, ja: float | None) -> str:
    """Which languages a model solves a problem in (solved = at least one passing sample)."""
    has_en, has_ja = en is not None and not pd.isna(en), ja is not None and not pd.isna(ja)
    if not (has_en and has_ja):
        return "EN evaluated only" if has_en else "JA evaluated only" if has_ja else "not evaluated"
    if en > 0 and ja > 0:
        return "both"
    if en > 0:
        return "EN only"
    if ja > 0:
        return "JA only"
    return "neither"


def problem_results(task_id: str, root: Path | None = None) -> pd.DataFrame:
    """Per (model, prompt mode): pass rate in EN and JA for ``task_id`` and the solve category.

    Empty frame (with the columns) when nothing is stored for this problem yet.
    """
    cols = ["model", "prompt_mode", "EN", "JA", "n_EN", "n_JA", "solves"]
    df = all_stored_results(root)
    df = df[df["task_id"] == normalise_task_id(task_id)]
    if df.empty:
        return pd.DataFrame(columns=cols)
    agg: dict[tuple[str, str], dict] = defaultdict(dict)
    for (model, mode, lang), g in df.groupby(["model", "prompt_mode", "language"], dropna=False):
        key = "EN" if lang == "en" else "JA" if lang == "ja" else str(lang)
        agg[(str(model), str(mode))][key] = g["passed"].mean()
        agg[(str(model), str(mode))]["n_" + key] = len(g)
    rows = []
    for (model, mode), v in sorted(agg.items()):
        rows.append({"model": model, "prompt_mode": mode, "EN": v.get("EN"), "JA": v.get("JA"),
                     "n_EN": v.get("n_EN", 0), "n_JA": v.get("n_JA", 0),
                     "solves": solve_category(v.get("EN"), v.get("JA"))})
    return pd.DataFrame(rows, columns=cols)

"""The canonical-solution check: does each problem's own reference solution pass its tests here?

One check for the JHumanEval validator (its ``canonical_fails`` defect) and for notebook
01's summary line. It runs through ``evaluate_samples`` (the code path of ``cltr codeeval
evaluate``) with a fixed time limit: limits derived from the canonical solution
itself would make the check circular. Stored under ``<results>/canonical/`` keyed by the
problems' content, the timeout and the sandbox isolation, so a rerun (or the validator
and the notebook asking about the same set) reads the verdicts back instead of rerunning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cltrlib.codeeval.evaluate import evaluate_samples
from cltrlib.codeeval.programs import problems_key
from cltrlib.data import Problem
from cltrlib.execution import VERDICT_SCHEME, isolation_level
from cltrlib.store import RunStore


@dataclass(frozen=True)
class CanonicalCheck:
    """``summary``: evaluate_samples' summary (``pass@1``, ``n_problems``, ``isolation``, ...);
    ``results``: task id → its results record (``passed``, ``status``, ``result``, ``time_limit``)."""

    summary: dict
    results: dict[str, dict]
    path: Path


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def check_canonical(problems: Sequence[Problem], timeout: float = 10.0, workers: int | None = None) -> CanonicalCheck:
    """Run every problem's canonical solution against its tests in the sandbox (stored; reread on rerun)."""
    problems = list(problems)
    key = {"problems": problems_key(problems), "timeout": float(timeout), "isolation": isolation_level(),
           "verdict": VERDICT_SCHEME}
    store = RunStore("canonical", key, label="canonical")
    dataset, samples, out = (store.path / name for name in ("problems.jsonl", "samples.jsonl", "results.jsonl"))
    with store.lock():
        if not store.is_complete():
            _write_jsonl(dataset, [p.to_dict() for p in problems])
            _write_jsonl(samples, [{"task_id": p.task_id, "completion": p.canonical_solution} for p in problems])
            store.mark_complete(evaluate_samples(samples, dataset, out, ks=(1,), timeout=timeout, workers=workers,
                                                 progress=False, time_limits="fixed"))
    results = {r["task_id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    return CanonicalCheck(store.summary(), results, store.path)

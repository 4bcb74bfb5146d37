"""Functional-correctness evaluation of a samples file (openai/human-eval compatible).

A sample is ``{"task_id", "completion"}`` (appended to the problem's prompt) or
``{"task_id", "solution"}`` (a full program). Results keep every input field, in
input order, and add ``passed`` and ``result``. Results are appended to
``<out>.partial`` as they complete, so killing the evaluator and rerunning the same
command finishes only the rest; the final file is written atomically at the end.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from cltrlib.data import Problem, load_problems
from cltrlib.data.problems import _normalise_task_id
from cltrlib.execution import SandboxLimits, isolation_level, run_programs
from cltrlib.metrics import pass_at_k


class SampleError(ValueError):
    """A samples file is malformed; the message names the file and line."""


def read_samples(path: str | Path) -> list[dict]:
    """Read and validate a samples JSONL file completely before anything runs."""
    path = Path(path)
    samples = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SampleError(f"{path}:{lineno}: not UTF-8 (byte {exc.start}); re-encode the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SampleError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(rec, dict) or "task_id" not in rec:
                raise SampleError(f"{path}:{lineno}: each line must be a JSON object with a 'task_id'")
            if not isinstance(rec.get("completion"), str) and not isinstance(rec.get("solution"), str):
                raise SampleError(f"{path}:{lineno}: sample for {rec['task_id']} has neither 'completion' nor 'solution'")
            rec["_line"] = lineno
            samples.append(rec)
    return samples


def build_program(sample: dict, problem: Problem) -> str:
    """The program human-eval would run: code, tests, then the check call."""
    code = sample["solution"] if isinstance(sample.get("solution"), str) else problem.prompt + sample["completion"]
    return f"{code}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


def summarize(records: Sequence[dict], ks: Sequence[int]) -> dict:
    """pass@k over problems (only k <= the smallest per-problem sample count are reported)."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        per_task[r["task_id"]].append(bool(r["passed"]))
    summary: dict = {"n_samples": len(records), "n_problems": len(per_task)}
    if not per_task:
        return summary
    min_n = min(len(v) for v in per_task.values())
    for k in ks:
        if k <= min_n:
            vals = [pass_at_k(len(v), sum(v), k) for v in per_task.values()]
            summary[f"pass@{k}"] = sum(vals) / len(vals)
    return summary


def evaluate_samples(
    samples_path: str | Path,
    dataset: str | Path,
    out_path: str | Path,
    ks: Sequence[int] = (1, 10, 100),
    timeout: float = 10.0,
    workers: int | None = None,
    memory_mb: int = 4096,
    progress: bool = True,
) -> dict:
    """Evaluate every sample; write results in input order; return the summary."""
    samples = read_samples(samples_path)
    problems = {p.task_id: p for p in load_problems(dataset)}
    for s in samples:
        tid = _normalise_task_id(str(s["task_id"]))
        if tid not in problems:
            raise SampleError(f"{samples_path}:{s['_line']}: unknown task_id {s['task_id']!r} for data set {dataset}")
        s["_tid"] = tid
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    done: dict[int, dict] = {}
    if partial.exists():
        good = 0
        raw = partial.read_bytes()
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break
            done[rec["index"]] = rec
            good += len(line)
        if good != len(raw):
            with open(partial, "r+b") as fh:
                fh.truncate(good)
    todo = [i for i in range(len(samples)) if i not in done]
    limits = SandboxLimits(timeout=timeout, memory_mb=memory_mb)
    counts = {"passed": 0, "failed": 0, "timeout": 0}
    bar = tqdm(total=len(samples), initial=len(done), desc="evaluate", disable=not progress)
    with open(partial, "a", encoding="utf-8") as fh:

        def record(j: int, res) -> None:
            i = todo[j]
            rec = {"index": i, "passed": res.passed, "result": res.result, "status": res.status,
                   "duration": round(res.duration, 4)}
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            done[i] = rec
            counts[res.status] = counts.get(res.status, 0) + 1
            bar.update(1)
            bar.set_postfix(counts)

        programs = [build_program(samples[i], problems[samples[i]["_tid"]]) for i in todo]
        run_programs(programs, limits, workers=workers, on_result=record)
    bar.close()
    isolation = isolation_level()
    results = []
    for i, s in enumerate(samples):
        rec = {k: v for k, v in s.items() if not k.startswith("_")}
        rec.update(passed=done[i]["passed"], result=done[i]["result"], isolation=isolation)
        results.append(rec)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in results:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)
    partial.unlink(missing_ok=True)
    scored = [dict(r, task_id=_normalise_task_id(str(r["task_id"]))) for r in results]
    summary = summarize(scored, ks)
    summary.update(dataset=str(dataset), isolation=isolation, out=str(out_path))
    return summary

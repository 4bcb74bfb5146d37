"""Functional-correctness evaluation of a samples file (openai/human-eval compatible).

Results keep every input field, in input order, and add ``passed``, ``result``,
``status``, ``time_limit``, ``isolation`` and ``verdict_scheme`` (how a pass was decided:
``cltrlib.execution.VERDICT_SCHEME``, the tests outside the program's process, unless the
old exit-token scheme is asked for, which only the before/after benchmark does). Time
limits come from ``limits`` (canonical-derived by default); they are stored in the resume
file, so a resumed run uses exactly the limits it started with.

Resumable: results are appended to ``<out>.partial`` as they complete (a header line
records what is being evaluated); killing the evaluator (even SIGKILL) and rerunning the
same command runs only the rest, and the final file is written atomically at the end.
Bad input fails before anything runs, with the file and line named, and writes nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from cltrlib.codeeval.limits import TIME_LIMIT_MODES, task_time_limits
from cltrlib.codeeval.programs import build_check, build_program, problems_key
from cltrlib.codeeval.samples import SampleError, file_sha, read_samples
from cltrlib.data import load_problems, normalise_task_id
from cltrlib.execution import VERDICT_SCHEMES, ExecutionPool, SandboxLimits, isolation_level
from cltrlib.metrics import pass_at_k
from cltrlib.progress import tqdm
from cltrlib.store import read_complete_lines

PARTIAL_FORMAT = 3  # 3: the header records the verdict scheme


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


def _load_partial(partial: Path, header: dict) -> tuple[dict[int, dict], dict | None]:
    """Records of an interrupted run with the same inputs; a torn last line is dropped."""
    if not partial.exists():
        return {}, None
    lines = read_complete_lines(partial)
    stored = lines[0].get("header") if lines and isinstance(lines[0], dict) else None
    same = stored is not None and all(stored.get(k) == header[k] for k in ("format", "samples_sha256", "dataset",
                                                                           "problems", "time_limits", "timeout",
                                                                           "memory_mb", "verdict_scheme"))
    if not same:
        print(f"[evaluate] {partial} belongs to a different run; starting over", file=sys.stderr)
        partial.unlink()
        return {}, None
    return {int(rec["index"]): rec for rec in lines[1:]}, stored


def evaluate_samples(
    samples_path: str | Path,
    dataset: str | Path,
    out_path: str | Path,
    ks: Sequence[int] = (1, 10, 100),
    timeout: float = 10.0,
    workers: int | None = None,
    memory_mb: int = 4096,
    progress: bool = True,
    time_limits: str = "canonical",
    verdict: str = "outside",
) -> dict:
    """Evaluate every sample; write results in input order; return the summary.

    ``timeout`` is the per-program limit in seconds (``time_limits="fixed"``) or the floor
    under the canonical-derived per-task limits (``"canonical"``, default). ``verdict``
    selects the scheme (``"outside"``; ``"exit-token"`` is the forgeable old one, kept for
    the benchmark's before/after comparison).
    """
    if time_limits not in TIME_LIMIT_MODES:
        raise ValueError(f"time_limits must be one of {TIME_LIMIT_MODES}, got {time_limits!r}")
    if verdict not in VERDICT_SCHEMES:
        raise ValueError(f"verdict must be one of {sorted(VERDICT_SCHEMES)}, got {verdict!r}")
    scheme = VERDICT_SCHEMES[verdict]
    samples_path = Path(samples_path)
    samples = read_samples(samples_path)
    problem_list = load_problems(dataset)
    problems = {p.task_id: p for p in problem_list}
    for s in samples:
        tid = normalise_task_id(str(s["task_id"]))
        if tid not in problems:
            raise SampleError(f"{samples_path}:{s['_line']}: unknown task_id {s['task_id']!r} for data set {dataset}")
        s["_tid"] = tid
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    isolation = isolation_level()
    header = {"format": PARTIAL_FORMAT, "samples_sha256": file_sha(samples_path), "dataset": str(dataset),
              "problems": problems_key(problem_list), "time_limits": time_limits, "timeout": float(timeout),
              "memory_mb": int(memory_mb), "isolation": isolation, "verdict_scheme": scheme}
    done, stored = _load_partial(partial, header)
    n_resumed = len(done)
    counts = {"passed": 0, "failed": 0, "timeout": 0}
    for rec in done.values():
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
    todo = [i for i in range(len(samples)) if i not in done]
    with ExecutionPool(workers) as pool:
        if stored is not None:
            limits_by_task = stored["limits"]
        else:
            needed = [problems[t] for t in sorted({s["_tid"] for s in samples})]
            limits_by_task = task_time_limits(needed, timeout, time_limits, pool, verdict=verdict)
            header["limits"] = limits_by_task
            with open(partial, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"header": header}) + "\n")
        bar = tqdm(total=len(samples), initial=len(done), desc="evaluate", disable=not progress, unit="sample",
                   dynamic_ncols=True)
        bar.set_postfix(counts)
        with open(partial, "a", encoding="utf-8") as fh:

            def record(j: int, res) -> None:
                i = todo[j]
                rec = {"index": i, "passed": res.passed, "result": res.result, "status": res.status,
                       "duration": round(res.duration, 4)}
                fh.write(json.dumps(rec) + "\n")
                fh.flush()  # in the kernel now: survives SIGKILL of this process
                done[i] = rec
                counts[res.status] = counts.get(res.status, 0) + 1
                bar.update(1)
                bar.set_postfix(counts, refresh=False)

            def stuck(j: int, elapsed: float, limit: float) -> None:
                s = samples[todo[j]]
                msg = (f"watchdog: sample {todo[j]} ({s['task_id']}, line {s['_line']}) still running after "
                       f"{elapsed:.1f} s, past its {limit:.1f} s limit; its worker will be killed if it does not end")
                if progress:
                    bar.write(msg, file=sys.stderr)
                else:
                    print(msg, file=sys.stderr)

            build = build_check if verdict == "outside" else build_program
            programs = [build(samples[i], problems[samples[i]["_tid"]]) for i in todo]
            limits = [SandboxLimits(timeout=limits_by_task[samples[i]["_tid"]], memory_mb=memory_mb) for i in todo]
            pool.run(programs, limits, on_result=record, on_stuck=stuck)
            os.fsync(fh.fileno())
        bar.close()
        sandbox_cpu = pool.cpu_seconds()
    results = []
    for i, s in enumerate(samples):
        rec = {k: v for k, v in s.items() if not k.startswith("_")}
        d = done[i]
        rec.update(passed=d["passed"], result=d["result"], status=d["status"],
                   time_limit=limits_by_task[s["_tid"]], isolation=isolation, verdict_scheme=scheme)
        results.append(rec)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in results:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out_path)
    partial.unlink(missing_ok=True)
    scored = [dict(r, task_id=normalise_task_id(str(r["task_id"]))) for r in results]
    summary = summarize(scored, ks)
    summary.update(dataset=str(dataset), isolation=isolation, verdict_scheme=scheme, out=str(out_path),
                   time_limits=time_limits,
                   timeout_floor=float(timeout), n_resumed=n_resumed, sandbox_cpu_s=round(sandbox_cpu, 2),
                   n_passed=sum(r["status"] == "passed" for r in results),
                   n_failed=sum(r["status"] == "failed" for r in results),
                   n_timeout=sum(r["status"] == "timeout" for r in results))
    return summary

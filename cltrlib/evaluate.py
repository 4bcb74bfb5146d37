"""Functional-correctness evaluation of a samples file (openai/human-eval compatible).

A sample is ``{"task_id", "completion"}`` (appended to the problem's prompt) or
``{"task_id", "solution"}`` (a full program). Results keep every input field, in input
order, and add ``passed``, ``result``, ``status``, ``time_limit`` and ``isolation``.

Time limits do not flake: with ``time_limits="canonical"`` (default) each task's limit is
``max(timeout, TIME_FACTOR x the canonical solution's own time)``, measured in the same
sandbox on this machine (slowest of ``CANONICAL_RUNS`` runs for any reference slower than ``RETIME_ABOVE``; cached
per data set), so a
slow or busy CPU stretches the limits with it; ``timeout`` is the floor. The limits are
stored in the resume file, so a resumed run uses exactly the limits it started with.

Resumable: results are appended to ``<out>.partial`` as they complete (a header line
records what is being evaluated); killing the evaluator (even SIGKILL) and rerunning the
same command runs only the rest, and the final file is written atomically at the end.
Bad input fails before anything runs, with the file and line named, and writes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from cltrlib import config
from cltrlib.data import Problem, load_problems
from cltrlib.data.problems import _normalise_task_id
from cltrlib.execution import ExecutionPool, SandboxLimits, isolation_level
from cltrlib.metrics import pass_at_k

TIME_FACTOR = 10.0
CANONICAL_RUNS = 3
RETIME_ABOVE = 0.05  # seconds; references faster than this are timed once
TIME_LIMIT_MODES = ("canonical", "fixed")
PARTIAL_FORMAT = 2


class SampleError(ValueError):
    """A samples file is malformed; the message names the file and line."""


def _open_bytes(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_samples(path: str | Path) -> list[dict]:
    """Read and validate a samples JSONL(.gz) file completely before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise SampleError(f"{path}: samples file does not exist")
    samples = []
    try:
        with _open_bytes(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                samples.extend(_parse_line(path, lineno, raw))
    except (OSError, EOFError) as exc:  # e.g. a truncated .gz
        raise SampleError(f"{path}: cannot read ({exc})") from None
    if not samples:
        raise SampleError(f"{path}: no samples in the file")
    return samples


def _parse_line(path: Path, lineno: int, raw: bytes) -> list[dict]:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SampleError(f"{path}:{lineno}: not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                          "re-encode the file as UTF-8") from None
    line = line.rstrip("\r\n")
    if not line.strip():
        return []
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SampleError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(rec, dict):
        raise SampleError(f"{path}:{lineno}: each line must be a JSON object, got {type(rec).__name__}")
    if not isinstance(rec.get("task_id"), str | int) or isinstance(rec.get("task_id"), bool):
        raise SampleError(f"{path}:{lineno}: missing or non-string 'task_id'")
    has = [k for k in ("completion", "solution") if isinstance(rec.get(k), str)]
    if not has:
        bad = [k for k in ("completion", "solution") if k in rec]
        why = f"'{bad[0]}' is {type(rec[bad[0]]).__name__}, not a string" if bad else "neither 'completion' nor 'solution'"
        raise SampleError(f"{path}:{lineno}: sample for {rec['task_id']} has {why}")
    for key in ("_line", "_tid"):
        rec.pop(key, None)
    rec["_line"] = lineno
    return [rec]


def build_program(sample: dict, problem: Problem) -> str:
    """The program human-eval would run: code, tests, then the check call."""
    code = sample["solution"] if isinstance(sample.get("solution"), str) else problem.prompt + sample["completion"]
    return f"{code}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


def canonical_program(problem: Problem) -> str | None:
    """The problem's own reference solution as a full program, or None if it has none."""
    if not problem.canonical_solution.strip():
        return None
    return build_program({"completion": problem.canonical_solution}, problem)


def _problems_key(problems: Sequence[Problem]) -> str:
    h = hashlib.sha256()
    for p in sorted(problems, key=lambda q: q.task_id):
        for part in (p.task_id, p.prompt, p.canonical_solution, p.test, p.entry_point):
            h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()[:16]


def measure_canonical_times(problems: Sequence[Problem], pool: ExecutionPool, use_cache: bool = True,
                            probe_timeout: float = 60.0) -> dict[str, float | None]:
    """Seconds each canonical solution takes in this sandbox on this machine (slowest of a few runs).

    None for a task whose canonical solution is missing or does not pass here. Cached
    under ``<cache>/execution/`` by the problems' content and the isolation level, so
    reruns use the same numbers (same limits, same verdicts).
    """
    cache = config.cache_dir() / "execution" / f"canonical-times-{_problems_key(problems)}.json"
    iso = isolation_level()
    if use_cache and cache.is_file():
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
            if stored.get("isolation") == iso and stored.get("python") == sys.version.split()[0]:
                return stored["times"]
        except (json.JSONDecodeError, KeyError, OSError):
            pass
    jobs = [(p.task_id, prog) for p in problems if (prog := canonical_program(p)) is not None]
    limits = SandboxLimits(timeout=probe_timeout)
    times: dict[str, float | None] = {p.task_id: None for p in problems}
    ok: dict[str, bool] = {tid: True for tid, _ in jobs}
    for rerun in (False, True):
        # Fast references cannot reach any sensible floor, so only slow ones are timed again (in parallel).
        batch = jobs if not rerun else [(t, prog) for t, prog in jobs if ok[t] and (times[t] or 0) >= RETIME_ABOVE
                                        for _ in range(CANONICAL_RUNS - 1)]
        for (tid, _), res in zip(batch, pool.run([prog for _, prog in batch], limits), strict=True):
            ok[tid] = ok[tid] and res.passed
            times[tid] = max(times[tid] or 0.0, res.duration)
    for tid, good in ok.items():
        if not good:
            times[tid] = None
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"isolation": iso, "python": sys.version.split()[0], "runs": CANONICAL_RUNS,
                                   "times": times}, indent=1), encoding="utf-8")
        os.replace(tmp, cache)
    return times


def task_time_limits(problems: Sequence[Problem], floor: float, mode: str, pool: ExecutionPool | None = None,
                     factor: float = TIME_FACTOR) -> dict[str, float]:
    """Per-task wall-clock limits: ``fixed`` = ``floor`` everywhere; ``canonical`` = max(floor, factor x t_ref)."""
    if mode not in TIME_LIMIT_MODES:
        raise ValueError(f"time_limits must be one of {TIME_LIMIT_MODES}, got {mode!r}")
    if mode == "fixed" or pool is None:
        return {p.task_id: float(floor) for p in problems}
    times = measure_canonical_times(problems, pool)
    return {tid: round(max(float(floor), factor * t) if t is not None else float(floor), 3)
            for tid, t in times.items()}


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


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_partial(partial: Path, header: dict) -> tuple[dict[int, dict], dict | None]:
    """Records of an interrupted run with the same inputs; a torn last line is dropped."""
    if not partial.exists():
        return {}, None
    raw = partial.read_bytes()
    lines = raw.splitlines(keepends=True)
    try:
        stored = json.loads(lines[0])["header"] if lines and lines[0].endswith(b"\n") else None
    except (json.JSONDecodeError, KeyError, TypeError):
        stored = None
    same = stored is not None and all(stored.get(k) == header[k] for k in ("format", "samples_sha256", "dataset",
                                                                           "problems", "time_limits", "timeout",
                                                                           "memory_mb"))
    if not same:
        print(f"[evaluate] {partial} belongs to a different run; starting over", file=sys.stderr)
        partial.unlink()
        return {}, None
    done: dict[int, dict] = {}
    good = len(lines[0])
    for line in lines[1:]:
        if not line.endswith(b"\n"):
            break
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            break
        done[int(rec["index"])] = rec
        good += len(line)
    if good != len(raw):
        with open(partial, "r+b") as fh:
            fh.truncate(good)
    return done, stored


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
) -> dict:
    """Evaluate every sample; write results in input order; return the summary.

    ``timeout`` is the per-program limit in seconds (``time_limits="fixed"``) or the floor
    under the canonical-derived per-task limits (``"canonical"``, default).
    """
    if time_limits not in TIME_LIMIT_MODES:
        raise ValueError(f"time_limits must be one of {TIME_LIMIT_MODES}, got {time_limits!r}")
    samples_path = Path(samples_path)
    samples = read_samples(samples_path)
    problem_list = load_problems(dataset)
    problems = {p.task_id: p for p in problem_list}
    for s in samples:
        tid = _normalise_task_id(str(s["task_id"]))
        if tid not in problems:
            raise SampleError(f"{samples_path}:{s['_line']}: unknown task_id {s['task_id']!r} for data set {dataset}")
        s["_tid"] = tid
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    isolation = isolation_level()
    header = {"format": PARTIAL_FORMAT, "samples_sha256": _file_sha(samples_path), "dataset": str(dataset),
              "problems": _problems_key(problem_list), "time_limits": time_limits, "timeout": float(timeout),
              "memory_mb": int(memory_mb), "isolation": isolation}
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
            limits_by_task = task_time_limits(needed, timeout, time_limits, pool)
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

            programs = [build_program(samples[i], problems[samples[i]["_tid"]]) for i in todo]
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
                   time_limit=limits_by_task[s["_tid"]], isolation=isolation)
        results.append(rec)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in results:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out_path)
    partial.unlink(missing_ok=True)
    scored = [dict(r, task_id=_normalise_task_id(str(r["task_id"]))) for r in results]
    summary = summarize(scored, ks)
    summary.update(dataset=str(dataset), isolation=isolation, out=str(out_path), time_limits=time_limits,
                   timeout_floor=float(timeout), n_resumed=n_resumed, sandbox_cpu_s=round(sandbox_cpu, 2),
                   n_passed=sum(r["status"] == "passed" for r in results),
                   n_failed=sum(r["status"] == "failed" for r in results),
                   n_timeout=sum(r["status"] == "timeout" for r in results))
    return summary

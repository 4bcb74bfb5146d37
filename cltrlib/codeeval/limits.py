"""Per-task time limits that do not flake: scaled from the canonical solution's own time here.

With ``canonical`` limits each task's limit is ``max(floor, TIME_FACTOR x t_ref)``, where
``t_ref`` is the canonical solution's time in the same sandbox on this machine (slowest of
``CANONICAL_RUNS`` runs for any reference slower than ``RETIME_ABOVE``), so a slow or busy
CPU stretches the limits with it; the floor is the caller's ``timeout``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from cltrlib import config
from cltrlib.codeeval.programs import canonical_check, canonical_program, problems_key
from cltrlib.data import Problem
from cltrlib.execution import VERDICT_SCHEMES, ExecutionPool, SandboxLimits, isolation_level

TIME_FACTOR = 10.0
CANONICAL_RUNS = 3
RETIME_ABOVE = 0.05  # seconds; references faster than this are timed once
TIME_LIMIT_MODES = ("canonical", "fixed")


def measure_canonical_times(problems: Sequence[Problem], pool: ExecutionPool, use_cache: bool = True,
                            probe_timeout: float = 60.0, verdict: str = "outside") -> dict[str, float | None]:
    """Seconds each canonical solution takes in this sandbox on this machine (slowest of a few runs).

    None for a task whose canonical solution is missing or does not pass here. Timed under
    the same verdict scheme as the evaluation (``verdict``: a key of ``VERDICT_SCHEMES``).
    Cached under ``<cache>/execution/`` by the problems' content, the isolation level and
    the scheme, so reruns use the same numbers (same limits, same verdicts).
    """
    scheme = VERDICT_SCHEMES[verdict]
    cache = config.cache_dir() / "execution" / f"canonical-times-{problems_key(problems)}.json"
    iso = isolation_level()
    if use_cache and cache.is_file():
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
            if stored.get("isolation") == iso and stored.get("python") == sys.version.split()[0] \
                    and stored.get("verdict_scheme") == scheme:
                return stored["times"]
        except (json.JSONDecodeError, KeyError, OSError):
            pass
    build = canonical_check if verdict == "outside" else canonical_program
    jobs = [(p.task_id, prog) for p in problems if (prog := build(p)) is not None]
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
        tmp.write_text(json.dumps({"isolation": iso, "python": sys.version.split()[0], "verdict_scheme": scheme,
                                   "runs": CANONICAL_RUNS, "times": times}, indent=1), encoding="utf-8")
        os.replace(tmp, cache)
    return times


def task_time_limits(problems: Sequence[Problem], floor: float, mode: str, pool: ExecutionPool | None = None,
                     factor: float = TIME_FACTOR, verdict: str = "outside") -> dict[str, float]:
    """Per-task wall-clock limits: ``fixed`` = ``floor`` everywhere; ``canonical`` = max(floor, factor x t_ref)."""
    if mode not in TIME_LIMIT_MODES:
        raise ValueError(f"time_limits must be one of {TIME_LIMIT_MODES}, got {mode!r}")
    if mode == "fixed" or pool is None:
        return {p.task_id: float(floor) for p in problems}
    times = measure_canonical_times(problems, pool, verdict=verdict)
    return {tid: round(max(float(floor), factor * t) if t is not None else float(floor), 3)
            for tid, t in times.items()}

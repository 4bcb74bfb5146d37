"""Run many programs concurrently: a thread per worker supervises one child process at a time.

Threads (not a multiprocessing Manager) because all the work happens in the child
processes; the supervising side only waits on pipes, so no shutdown hangs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from cltrlib.execution.sandbox import ExecResult, SandboxLimits, run_program


def run_programs(
    programs: Sequence[str],
    limits: SandboxLimits | Sequence[SandboxLimits] | None = None,
    workers: int | None = None,
    on_result: Callable[[int, ExecResult], None] | None = None,
) -> list[ExecResult]:
    """Run every program; ``on_result(index, result)`` is called as each completes."""
    if limits is None or isinstance(limits, SandboxLimits):
        limits = [limits or SandboxLimits()] * len(programs)
    workers = workers or os.cpu_count() or 1
    results: list[ExecResult | None] = [None] * len(programs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_program, src, lim): i for i, (src, lim) in enumerate(zip(programs, limits, strict=True))}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_result is not None:
                on_result(i, results[i])
    return results  # type: ignore[return-value]

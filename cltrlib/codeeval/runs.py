"""Stored evaluation runs: a generation run's samples evaluated once, reread on every rerun.

The store key is the generation run's key plus what changes a verdict (timeout floor,
sandbox isolation, data set, the sanitizer that assembled chat replies into programs), so a new sandbox or a new generation gets a new run and
an unchanged one is read back in seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cltrlib.codeeval.evaluate import evaluate_samples
from cltrlib.execution import VERDICT_SCHEME, isolation_level
from cltrlib.store import RunStore

if TYPE_CHECKING:  # codegen pulls in torch; evaluating needs only the run's store and config
    from cltrlib.codegen.run import GenerationRun


def run_evaluation(run: GenerationRun, timeout: float = 10.0, workers: int | None = None,
                   progress: bool = True) -> dict:
    """Evaluate a generation run's samples in the sandbox (stored; reread on rerun)."""
    from cltrlib.codegen.run import dataset_key
    from cltrlib.codegen.sanitize import SANITIZER_VERSION  # here: importing cltrlib.codegen pulls in torch

    cfg = {"generation": run.store.key, "timeout": timeout, "isolation": isolation_level(),
           "dataset": dataset_key(run.cfg.dataset),
           "verdict": VERDICT_SCHEME, "sanitizer": SANITIZER_VERSION}
    store = RunStore("evaluation", cfg, label=run.store.path.name.rsplit("-", 1)[0])
    with store.lock():
        if store.is_complete():
            return store.summary()
        out = store.path / "results.jsonl"
        summary = evaluate_samples(run.export_samples(), run.cfg.dataset, out, ks=(1, 10, 100), timeout=timeout,
                                   workers=workers, progress=progress)
        summary.update(model=run.cfg.model, prompt_mode=run.prompt_mode, n=run.cfg.n,
                       temperature=run.cfg.temperature, results=str(out), generation_store=str(run.store.path),
                       limit=run.cfg.limit, sanitizer=SANITIZER_VERSION)
        store.mark_complete(summary)
    return summary

"""Running the code-eval plan: generation configs (``study(profile).codeeval.generation_configs()``) → stored
generation and evaluation runs → one summary per run.

Notebooks 02 (code eval) and 03 (CLTR) share this: 02 runs the plan, 03 reads the same
runs back from the store (seconds) and derives CLTR.
"""

from __future__ import annotations

import pandas as pd

from cltrlib.codeeval.runs import run_evaluation
from cltrlib.codegen.run import GenerationConfig, run_generation


def run_plan(configs: list[GenerationConfig], timeout: float = 10.0, progress: bool = True) -> list[dict]:
    """Generate and evaluate every config (stored: a rerun reads the store in seconds)."""
    summaries = []
    for cfg in configs:
        if progress:
            print(f"[code-eval] {cfg.model} / {cfg.dataset} / {cfg.prompt_mode}", flush=True)
        run = run_generation(cfg, progress=progress)
        summaries.append(run_evaluation(run, timeout=timeout, progress=progress))
    return summaries


def summaries_frame(summaries: list[dict]) -> pd.DataFrame:
    cols = ["model", "dataset", "prompt_mode", "n", "n_samples", "pass@1", "isolation"]
    df = pd.DataFrame(summaries)
    return df[[c for c in cols if c in df.columns]]

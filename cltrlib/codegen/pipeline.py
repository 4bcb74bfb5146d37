"""Running the code-eval plan: generation configs (``study(profile).codeeval.generation_configs()``) → stored
generation and evaluation runs → one summary per run.

Notebooks 02 (code eval) and 03 (CLTR) share this: 02 runs the plan, 03 reads the same
runs back from the store (seconds) and derives CLTR.
"""

from __future__ import annotations

import os

import pandas as pd

from cltrlib.codeeval.runs import run_evaluation
from cltrlib.codegen.run import GenerationConfig, api_model_of, run_generation


def run_plan(configs: list[GenerationConfig], timeout: float = 10.0, progress: bool = True) -> list[dict]:
    """Generate and evaluate every config (stored: a rerun reads the store in seconds); an API model without
    ``OPENAI_API_KEY`` is skipped with a message (``skip_reason``)."""
    summaries = []
    for cfg in configs:
        if (why := skip_reason(cfg)) is not None:
            print(f"[code-eval] skipped {cfg.model} / {cfg.dataset}: {why}", flush=True)
            continue
        if progress:
            print(f"[code-eval] {cfg.model} / {cfg.dataset} / {cfg.prompt_mode}", flush=True)
        run = run_generation(cfg, progress=progress)
        summaries.append(run_evaluation(run, timeout=timeout, progress=progress))
    return summaries


def skip_reason(cfg: GenerationConfig) -> str | None:
    """Why a config cannot run here, or None: an API model (Paper A's GPT rows) needs ``OPENAI_API_KEY``."""
    if cfg.provider == "openai" and api_model_of(cfg.model) and not os.environ.get("OPENAI_API_KEY"):
        return (f"{cfg.model} is served only through an API: set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
                "OpenAI-compatible endpoint) to generate it with the OpenAI provider")
    return None


def summaries_frame(summaries: list[dict]) -> pd.DataFrame:
    cols = ["model", "dataset", "prompt_mode", "n", "n_samples", "pass@1", "isolation"]
    df = pd.DataFrame(summaries)
    return df[[c for c in cols if c in df.columns]]

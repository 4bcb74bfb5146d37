"""The code-eval study as a plan: profile → generation configs → stored runs → tables.

Notebooks 02 (code eval) and 03 (CLTR) share this: 02 runs the plan, 03 reads the same
runs back from the store (seconds) and derives CLTR.
"""

from __future__ import annotations

import pandas as pd

from cltrlib.codegen.run import GenerationConfig, run_evaluation, run_generation
from cltrlib.models import EMBEDDED_MODELS, PAPER_MODELS

EMBEDDED = list(EMBEDDED_MODELS)
PAPER_A = [m.name for m in PAPER_MODELS.values() if {"A1", "A2"} & set(m.paper_tables) and not m.hub_id.startswith("openai:")]

# Each profile: models, data sets, prompt modes per model ("default" = the registry's mode),
# sampling and limits. `local` fits ~40 min on 2 CPU cores; `paper` is for a GPU with hub access.
PROFILES: dict[str, dict] = {
    "smoke": {"models": EMBEDDED, "datasets": ["humaneval", "jhumaneval"], "prompt_modes": {"*": ["default"]},
              "n": 1, "temperature": 0.0, "limit": 3, "max_new_tokens": 96, "batch_size": 4,
              "cltr_pairs": []},
    "local": {"models": EMBEDDED, "datasets": ["humaneval", "jhumaneval"],
              # Each model in its relevant mode: SmolLM2-Instruct in chat mode, Gemma-3-270M (a base model
              # without a chat template) in completion mode. All 164 problems, both languages, greedy.
              "prompt_modes": {"*": ["default"]},
              # batch_size bounds a decode group; the engine's KV-cache budget (4 GiB) splits it further.
              "n": 1, "temperature": 0.0, "limit": None, "max_new_tokens": 256, "batch_size": 164,
              # The measured failure of an instruct model in completion mode, on the first 20 problems (20 show
              # it as well as 40 did: 0/40 in both languages; the 20 saved ~1.6 min of the 90-min budget).
              "extra_runs": [{"model": "smollm2-135m-instruct", "prompt_mode": "completion", "limit": 20}],
              "cltr_pairs": []},
    "paper": {"models": PAPER_A, "datasets": ["humaneval", "jhumaneval"], "prompt_modes": {"*": ["default"]},
              "n": 1, "temperature": 0.0, "limit": None, "max_new_tokens": 512, "batch_size": 32,
              "cltr_pairs": [(m.base, m.name) for m in PAPER_MODELS.values() if m.base and "A2" in m.paper_tables]},
}


def plan(profile: str = "local", **overrides) -> list[GenerationConfig]:
    """Generation configs for a profile; keyword overrides (models, datasets, n, ...) win when not None."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    p = {**PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None}}
    if isinstance(p["prompt_modes"], str | list):
        modes = p["prompt_modes"]
        p["prompt_modes"] = {"*": [modes] if isinstance(modes, str) else modes}
    configs = []
    for model in p["models"]:
        for mode in p["prompt_modes"].get(model, p["prompt_modes"].get("*", ["default"])):
            for ds in p["datasets"]:
                configs.append(GenerationConfig(
                    model=model, dataset=ds, prompt_mode="auto" if mode == "default" else mode, n=p["n"],
                    temperature=p["temperature"], limit=p["limit"], max_new_tokens=p["max_new_tokens"],
                    batch_size=p["batch_size"]))
    if not overrides.get("models") and not overrides.get("prompt_modes"):
        for extra in p.get("extra_runs", []):
            for ds in p["datasets"]:
                configs.append(GenerationConfig(
                    dataset=ds, n=p["n"], temperature=p["temperature"], max_new_tokens=p["max_new_tokens"],
                    batch_size=p["batch_size"], **extra))
    return configs


def cltr_pairs(profile: str, pairs=None) -> list[tuple[str, str]]:
    return list(pairs) if pairs is not None else list(PROFILES[profile]["cltr_pairs"])


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

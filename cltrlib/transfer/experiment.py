"""The whole Paper B grid (models × conditions × patterns × seeds) from one profile, and its results table.

``PROFILES`` maps the suite's profile names to settings; ``settings_for(profile, **overrides)``
applies the notebook's knobs (``None`` = take the profile's value).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd
from tqdm.auto import tqdm

from cltrlib.transfer.data import load_bilingual, make_pattern
from cltrlib.transfer.modeling import ClassifierConfig
from cltrlib.transfer.train import TrainConfig, completed_run, prefill_prefix_cache, run_transfer


@dataclass
class TransferSettings:
    """Everything one notebook run varies. Paper B: 1024 en rows, 0/16/104 ja, 512 ja test, 10 epochs, 3 seeds."""

    models: list[str]
    dataset: str = "sib200-science"
    patterns: dict[str, int] = field(default_factory=lambda: {"ja0": 0, "ja16": 16, "ja104": 104})
    conditions: list[str] = field(default_factory=lambda: ["crosslingual", "monolingual"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    n_source: int | None = 1024
    n_test: int | None = 512
    epochs: int = 10
    batch_size: int = 16
    max_length: int = 128
    lora_layers: int | None = None
    lr: float | None = None
    attribution_model: str | None = None
    attribution_texts: int = 64
    attribution_samples: int = 64
    attribution_seed: int = 0


PROFILES: dict[str, TransferSettings] = {
    # make test: both embedded models, one seed, a few rows — checks the whole path end to end.
    "smoke": TransferSettings(models=["smollm2-135m-instruct", "gemma3-270m"], patterns={"ja0": 0, "ja4": 4},
                              conditions=["crosslingual"], seeds=[0], n_source=16, n_test=8, epochs=1,
                              max_length=24, lora_layers=1, attribution_model="gemma3-270m", attribution_texts=2,
                              attribution_samples=6),
    # The committed run (2 CPU cores, ≤30 min for notebook 04): Paper B's epochs, conditions, patterns and seeds;
    # fewer rows, shorter inputs and LoRA on the top layer only (measured: 11.6 min on 2 idle cores, see notebook 04).
    "local": TransferSettings(models=["smollm2-135m-instruct", "gemma3-270m"], n_source=128, n_test=100, epochs=10,
                              max_length=64, lora_layers=1, attribution_model="gemma3-270m", attribution_texts=12,
                              attribution_samples=48),
    # A GPU machine with hub access: Paper B's models and settings (SIB-200 has 701 English train rows, so
    # n_source is capped there; the balanced science-vs-rest test set has 152 rows, not 512).
    "paper": TransferSettings(models=["elyza-japanese-llama-2-7b-fast-instruct", "llama-2-7b-hf", "open-calm-7b",
                                      "bert-base-multilingual-cased", "bert-base-japanese-v2"],
                              attribution_model="elyza-japanese-llama-2-7b-fast-instruct"),
}


def settings_for(profile: str, **overrides) -> TransferSettings:
    """The profile's settings with every non-None override applied."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    return replace(PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})


def run_grid(s: TransferSettings, device: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or read) every run of the grid; one row per run with its metrics and timings."""
    from cltrlib.models import default_device

    device = device or default_device()
    data = load_bilingual(s.dataset)
    n_source = None if s.n_source is None else min(s.n_source, len(data.source_train))
    train_cfg = TrainConfig(epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, max_length=s.max_length, device=device)
    jobs = []
    for model in s.models:
        for condition in s.conditions:
            for pattern, n_target in s.patterns.items():
                if condition == "monolingual" and n_target == 0:
                    continue
                for seed in s.seeds:
                    jobs.append((model, condition, pattern, n_target, seed))
    patterns = {job: make_pattern(data, job[2], job[3], job[4], job[1], n_source=n_source, n_test=s.n_test)
                for job in jobs}
    for model in s.models:  # one pass over the frozen prefix per model for every text still to be trained on
        clf = ClassifierConfig(model=model, num_labels=data.num_labels, lora_layers=s.lora_layers)
        todo = [p for job, p in patterns.items() if job[0] == model and not completed_run(p, clf, train_cfg)]
        if todo:
            texts = [t for p in todo for t in (*p.train["text"], *p.test["text"])]
            prefill_prefix_cache(clf, texts, train_cfg, progress)
    rows = []
    for job in tqdm(jobs, desc="transfer runs", disable=not progress):
        clf = ClassifierConfig(model=job[0], num_labels=data.num_labels, lora_layers=s.lora_layers)
        summary = run_transfer(patterns[job], clf, train_cfg, progress=progress)
        rows.append({k: v for k, v in summary.items() if k != "epoch_losses"}
                    | {"final_loss": summary["epoch_losses"][-1]})
    return pd.DataFrame(rows)


def run_attributions(s: TransferSettings, runs: pd.DataFrame, device: str | None = None,
                     progress: bool = True) -> pd.DataFrame:
    """LIME-style token attributions for ``s.attribution_model`` (seed ``s.attribution_seed``), per pattern.

    Texts: a label-stratified sample of ``s.attribution_texts`` test rows; target class: the
    positive label for binary tasks, the true label otherwise. Stored per (run, settings),
    so reruns read them. Returns per-token rows: pattern, text_id, position, token, weight.
    """
    from cltrlib.models import default_device
    from cltrlib.store import RunStore
    from cltrlib.transfer.adapters import load_classifier
    from cltrlib.transfer.attribution import lime_tokens
    from cltrlib.transfer.data import stratified_sample

    device = device or default_device()
    if s.attribution_model is None or s.attribution_texts <= 0:
        return pd.DataFrame(columns=["model", "condition", "pattern", "text_id", "position", "token", "weight"])
    chosen = runs[(runs["model"] == s.attribution_model) & (runs["seed"] == s.attribution_seed)
                  & (runs["condition"] == "crosslingual")]
    if chosen.empty:
        raise ValueError(f"no crosslingual run of {s.attribution_model} with seed {s.attribution_seed} to explain")
    data = load_bilingual(s.dataset)
    n_source = None if s.n_source is None else min(s.n_source, len(data.source_train))
    frames = []
    for run in tqdm(chosen.itertuples(), total=len(chosen), desc="attributions", disable=not progress):
        pat = make_pattern(data, run.pattern, s.patterns[run.pattern], run.seed, run.condition, n_source=n_source,
                           n_test=s.n_test)
        texts = stratified_sample(pat.test, min(s.attribution_texts, len(pat.test)), s.attribution_seed)
        cfg = {"adapter_dir": run.adapter_dir, "text_ids": texts["id"].tolist(), "n_samples": s.attribution_samples,
               "max_length": s.max_length, "seed": s.attribution_seed}
        store = RunStore("transfer_attribution", cfg, label=f"{run.model}-{run.pattern}-s{run.seed}")
        if not store.is_complete():
            model, tok, meta = load_classifier(run.adapter_dir, device=device)
            done = {r["text_id"] for r in store.records()}
            for row in texts.itertuples():
                if row.id in done:
                    continue
                target = 1 if len(meta["label_names"]) == 2 else int(row.label)
                w = lime_tokens(model, tok, row.text, target, n_samples=s.attribution_samples,
                                max_length=s.max_length, seed=s.attribution_seed, device=device)
                store.append({"text_id": int(row.id), "position": int(p), "token": t, "weight": float(v)}
                             for p, t, v in zip(w["position"], w["token"], w["weight"], strict=True))
                if w.empty:  # keep a marker so an empty text is not recomputed
                    store.append([{"text_id": int(row.id), "position": -1, "token": "", "weight": 0.0}])
            store.mark_complete({"n_texts": len(texts)})
        df = pd.DataFrame(store.records())
        df = df[df["position"] >= 0]
        frames.append(df.assign(model=run.model, condition=run.condition, pattern=run.pattern,
                                n_texts=len(texts)))
    return pd.concat(frames, ignore_index=True)

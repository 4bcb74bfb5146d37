"""The whole Paper B grid (models × conditions × patterns × seeds) from one ``TransferSettings``
(``study(profile).transfer``), its LIME attributions, and the comparisons notebook 04 states."""

from __future__ import annotations

import pandas as pd

from cltrlib.progress import tqdm
from cltrlib.study import TransferSettings
from cltrlib.transfer.adapters import layers_label
from cltrlib.transfer.data import BilingualData, Pattern, load_bilingual, make_pattern
from cltrlib.transfer.modeling import ClassifierConfig
from cltrlib.transfer.train import TrainConfig, completed_run, prefill_prefix_cache, run_transfer


def conditions_for(model: str, conditions: tuple[str, ...]) -> tuple[str, ...]:
    """The conditions a model runs: a Japanese-only model (registry ``en=False``: OpenCALM, Japanese BERT) is Paper
    B's monolingual reference and trains on the Japanese rows only, so it gets no cross-lingual runs."""
    from cltrlib.models import get_spec

    return tuple(c for c in conditions if get_spec(model).en or c == "monolingual")


def texts_by_language(data: BilingualData) -> dict[str, list[str]]:
    """Every text of the data set (training and test, both languages) grouped by language: what lengths are fitted
    to, so no test or training text of any language is cut."""
    out: dict[str, list[str]] = {}
    for df in (data.source_train, data.target_train, data.target_test):
        for lang, g in df.groupby("lang", sort=False):
            out.setdefault(str(lang), []).extend(g["text"].tolist())
    return out


def fitted_max_length(model: str, data: BilingualData, cap: int | None = None) -> tuple[int, pd.DataFrame]:
    """(max_length, truncation report) for one model: the longest text of any language in its tokens
    (``lengths.fit_max_length``), bounded by ``cap``; the report gives each language's share truncated."""
    from cltrlib.lengths import fit_max_length, truncation_report
    from cltrlib.models import load_tokenizer

    tok = load_tokenizer(model, padding_side="right")
    texts = texts_by_language(data)
    n = fit_max_length(tok, texts, cap=cap)
    report = truncation_report(tok, texts, n)
    return n, report.assign(model=model, dataset=data.name, cap="none" if cap is None else str(cap))[
        ["model", "dataset", *report.columns, "cap"]]


def length_table(s: TransferSettings) -> pd.DataFrame:
    """The truncation table of the grid: per model and language, token lengths, the length used, share truncated."""
    data = load_bilingual(s.dataset)
    return pd.concat([fitted_max_length(m, data, s.max_length)[1] for m in s.models], ignore_index=True)


def grid_pattern(s: TransferSettings, data: BilingualData, pattern: str, seed: int, condition: str) -> Pattern:
    """One pattern of the grid: training rows sampled as ``s.train_balance`` says, the target rows from ids the
    source side does not use, the same source subset for every pattern (``target_reserve`` = the largest pattern's
    size per label, whatever pattern this is)."""
    n_source = None if s.n_source is None else min(s.n_source, len(data.source_train))
    return make_pattern(data, pattern, s.patterns[pattern], seed, condition, n_source=n_source, n_test=s.n_test,
                        balance=s.train_balance, target_reserve=max(s.patterns.values(), default=0))


def full_depth_jobs(s: TransferSettings) -> list[tuple]:
    """The full-depth LoRA runs beside a probe grid (``s.full_depth_*``): cross-lingual only, as job tuples.
    None when the grid itself already trains every layer."""
    if s.lora_layers is None:
        return []
    seeds = s.seeds if s.full_depth_seeds is None else s.full_depth_seeds
    unknown = set(s.full_depth_patterns) - set(s.patterns)
    if s.full_depth_models and unknown:
        raise ValueError(f"full_depth_patterns {sorted(unknown)} are not among the grid's patterns {list(s.patterns)}")
    return [(m, "crosslingual", p, s.patterns[p], seed, None)
            for m in s.full_depth_models for p in s.full_depth_patterns for seed in seeds]


def full_depth_bf16(s: TransferSettings, device: str) -> bool:
    """Whether the full-depth runs use bf16 autocast: ``s.full_depth_bf16``, or where None, on GPU and on CPUs with
    bf16 matrix instructions (elsewhere bf16 is emulated and slower than fp32)."""
    if s.full_depth_bf16 is not None:
        return s.full_depth_bf16
    from cltrlib.pretrain.train import cpu_has_bf16

    return str(device).startswith("cuda") or cpu_has_bf16()


def train_config(s: TransferSettings, lora_layers: int | None, max_length: int, device: str) -> TrainConfig:
    """The training settings of one job: the grid's, except that a full-depth run beside a probe grid (``lora_layers``
    None while the grid's is not) takes ``s.full_depth_epochs`` and ``s.full_depth_bf16``, the knobs that size its
    cost separately."""
    deep = s.lora_layers is not None and lora_layers is None
    epochs = s.full_depth_epochs if deep and s.full_depth_epochs is not None else s.epochs
    return TrainConfig(epochs=epochs, lr=s.lr, batch_size=s.batch_size, max_length=max_length, device=device,
                       bf16=deep and full_depth_bf16(s, device))


def run_grid(s: TransferSettings, device: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or read) every run of the grid; one row per run with its metrics and timings.

    Each model reads whole texts: its input length is fitted to the data (``fitted_max_length``; ``s.max_length``
    is only a cap), so no language is truncated more than another."""
    from cltrlib.models import default_device

    device = device or default_device()
    data = load_bilingual(s.dataset)
    jobs = []  # (model, condition, pattern, n_target, seed, lora_layers)
    for model in s.models:
        for condition in conditions_for(model, s.conditions):
            for pattern, n_target in s.patterns.items():
                if condition == "monolingual" and n_target == 0:
                    continue
                for seed in s.seeds:
                    jobs.append((model, condition, pattern, n_target, seed, s.lora_layers))
    jobs += full_depth_jobs(s)
    lengths = {m: fitted_max_length(m, data, s.max_length)[0] for m in dict.fromkeys(j[0] for j in jobs)}
    train_cfgs = {(m, layers): train_config(s, layers, lengths[m], device)
                  for m, layers in dict.fromkeys((j[0], j[5]) for j in jobs)}
    patterns = {job: grid_pattern(s, data, job[2], job[4], job[1]) for job in jobs}
    for model, layers in dict.fromkeys((j[0], j[5]) for j in jobs):  # one pass over the frozen prefix per model
        clf = ClassifierConfig(model=model, num_labels=data.num_labels, lora_layers=layers)
        todo = [p for job, p in patterns.items() if job[0] == model and job[5] == layers
                and not completed_run(p, clf, train_cfgs[model, layers])]
        if todo:
            texts = [t for p in todo for t in (*p.train["text"], *p.test["text"])]
            prefill_prefix_cache(clf, texts, train_cfgs[model, layers], progress)
    rows = []
    for job in tqdm(jobs, desc="transfer runs", disable=not progress):
        clf = ClassifierConfig(model=job[0], num_labels=data.num_labels, lora_layers=job[5])
        cfg = train_cfgs[job[0], job[5]]
        summary = run_transfer(patterns[job], clf, cfg, progress=progress)
        rows.append({k: v for k, v in summary.items() if k != "epoch_losses"}
                    | {"final_loss": summary["epoch_losses"][-1], "max_length": lengths[job[0]],
                       "epochs": cfg.epochs, "bf16": cfg.bf16,
                       "train_balance": s.train_balance, "layers": layers_label(summary["method"], job[5])})
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
    # the grid's own runs (a probe grid's full-depth runs beside it are not explained)
    grid_rows = runs["layers"] != "LoRA all" if s.lora_layers is not None and "layers" in runs else True
    chosen = runs[(runs["model"] == s.attribution_model) & (runs["seed"] == s.attribution_seed)
                  & (runs["condition"] == "crosslingual") & grid_rows]
    if chosen.empty:
        raise ValueError(f"no crosslingual run of {s.attribution_model} with seed {s.attribution_seed} to explain")
    data = load_bilingual(s.dataset)
    frames = []
    for run in tqdm(chosen.itertuples(), total=len(chosen), desc="attributions", disable=not progress):
        pat = grid_pattern(s, data, run.pattern, run.seed, run.condition)
        texts = stratified_sample(pat.test, min(s.attribution_texts, len(pat.test)), s.attribution_seed)
        cfg = {"adapter_dir": run.adapter_dir, "text_ids": texts["id"].tolist(), "n_samples": s.attribution_samples,
               "max_length": int(run.max_length), "seed": s.attribution_seed}
        store = RunStore("transfer_attribution", cfg, label=f"{run.model}-{run.pattern}-s{run.seed}")
        if not store.is_complete():
            model, tok, meta = load_classifier(run.adapter_dir, device=device)
            done = {r["text_id"] for r in store.records()}
            for row in texts.itertuples():
                if row.id in done:
                    continue
                target = 1 if len(meta["label_names"]) == 2 else int(row.label)
                w = lime_tokens(model, tok, row.text, target, n_samples=s.attribution_samples,
                                max_length=int(run.max_length), seed=s.attribution_seed, device=device)
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

"""Fine-tuning runs: one (model, data set, condition, pattern, seed) per results-store folder.

A run trains (AdamW, linear decay, cross-entropy), predicts the target test set, stores
one record per test item (id, label, probabilities), saves the adapter (LoRA + head) or
the full model with ``classifier.json`` beside it, and marks the run complete with its
metrics. Rerunning reads the stored results; ``cltrlib.transfer.adapters`` lists and
loads the saved classifiers for Paper C's "after fine-tuning" embeddings.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from cltrlib.progress import tqdm
from cltrlib.store import RunStore
from cltrlib.transfer.data import Pattern
from cltrlib.transfer.modeling import ClassifierConfig, PrefixCache, build_classifier, classifier_logits

STAGE = "transfer"
# In every run's store key. "2": with lora_layers=1 the top layer runs for the pooled token only (same function;
# dropout draws differ from "1", so stored "1" runs are not reused as if they were identical).
TRANSFER_VERSION = "2"
_PREFIX_STORES: dict[tuple, dict] = {}  # (model, n_frozen) -> cached prefix states, shared across runs


@dataclass
class TrainConfig:
    """Paper B's settings are the defaults (10 epochs; lr 5e-4 LoRA / 5e-5 full fine-tuning; linear decay)."""

    epochs: int = 10
    lr: float | None = None  # None: 5e-4 for LoRA, 5e-5 for full fine-tuning
    batch_size: int = 16
    max_length: int = 128  # run_grid passes the length fitted to the data (cltrlib.lengths), not this default
    weight_decay: float = 0.0
    eval_batch_size: int = 32
    device: str = "cpu"
    extra: dict = field(default_factory=dict)
    # bf16 autocast of the matrix products (training and prediction); weights, LoRA and optimizer state stay fp32.
    # About 2x the fp32 speed on CPUs with bf16 instructions (``cltrlib.pretrain.train.cpu_has_bf16``).
    bf16: bool = False

    def learning_rate(self, method: str) -> float:
        return self.lr if self.lr is not None else (5e-4 if method == "lora" else 5e-5)

    def autocast(self):
        """The context the forward passes run in: bf16 autocast when ``bf16``, else nothing."""
        import contextlib

        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast("cuda" if str(self.device).startswith("cuda") else "cpu", dtype=torch.bfloat16)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _tokenize(tok, texts: list[str], max_length: int):
    enc = tok(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _batches(df: pd.DataFrame, size: int):
    for start in range(0, len(df), size):
        yield df.iloc[start : start + size]


def _logits(model, ids: torch.Tensor, mask: torch.Tensor, cache: PrefixCache | None) -> torch.Tensor:
    """Classifier logits, through the prefix cache when there is one (same numbers, frozen layers run once)."""
    if cache is None:
        return classifier_logits(model, ids, mask)
    cache.fill([(ids, mask)])
    with cache.active():
        return cache.logits(ids, mask)


@torch.no_grad()
def predict_proba(model, tok, texts: list[str], max_length: int, batch_size: int = 32, cache: PrefixCache | None = None,
                  device: str = "cpu", bf16: bool = False) -> np.ndarray:
    """Class probabilities (n, num_labels) for texts; batches of similar token length (``lengths``), so a batch pads
    to its own longest text, not the data's (the fitted length is the data's longest). ``bf16``: autocast, as the
    run was trained."""
    from cltrlib.lengths import length_sorted_batches, token_lengths

    model.eval()
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float64)
    for idx in length_sorted_batches(token_lengths(tok, texts).tolist(), batch_size):
        ids, mask = _tokenize(tok, [texts[i] for i in idx], max_length)
        ids, mask = ids.to(device), mask.to(device)
        with TrainConfig(device=device, bf16=bf16).autocast():
            logits = _logits(model, ids, mask, cache)
        out[idx] = torch.softmax(logits.float(), -1).cpu().numpy()
    return out


def train_classifier(model, tok, train: pd.DataFrame, cfg: TrainConfig, method: str, seed: int,
                     cache: PrefixCache | None = None, progress: bool = True) -> list[float]:
    """Train in place; return the mean loss of each epoch. Shuffling is drawn from ``seed``."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate(method), weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(train) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / max(1, steps)))
    rng = np.random.default_rng(seed)
    losses = []
    bar = tqdm(total=steps, desc="train", leave=False, disable=not progress)
    for _epoch in range(cfg.epochs):
        model.train()
        shuffled = train.iloc[rng.permutation(len(train))]
        total, count = 0.0, 0
        for part in _batches(shuffled, cfg.batch_size):
            ids, mask = _tokenize(tok, part["text"].tolist(), cfg.max_length)
            ids, mask = ids.to(cfg.device), mask.to(cfg.device)
            labels = torch.as_tensor(part["label"].to_numpy().astype("int64"), device=cfg.device)
            with cfg.autocast():
                logits = _logits(model, ids, mask, cache)
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            total += float(loss.detach()) * len(part)
            count += len(part)
            bar.update(1)
        losses.append(total / max(1, count))
    bar.close()
    return losses


def prefill_prefix_cache(clf: ClassifierConfig, texts: list[str], train_cfg: TrainConfig, progress: bool = True) -> None:
    """Compute the frozen-prefix states of every text a grid will use, in length-sorted batches.

    Runs fill the cache lazily anyway; doing it up front with similar lengths per batch
    wastes far less compute on padding (Japanese and English rows differ ~3x in tokens).
    """
    from cltrlib.lengths import length_sorted_batches, token_lengths
    from cltrlib.models import model_revision

    if clf.lora_layers is None:
        return
    model, tok, method = build_classifier(clf, device=train_cfg.device, seed=0)
    n_frozen = model.config.num_hidden_layers - clf.lora_layers
    if method != "lora" or n_frozen <= 0:
        return
    key = (clf.model, model_revision(clf.model), n_frozen, clf.dtype, train_cfg.device)
    cache = PrefixCache(model, n_frozen)
    cache.store = _PREFIX_STORES.setdefault(key, {})
    model.eval()
    unique = sorted(set(texts))
    batches = length_sorted_batches(token_lengths(tok, unique).tolist(), train_cfg.eval_batch_size)
    for idx in tqdm(batches, desc=f"prefix cache {clf.model}", disable=not progress, leave=False):
        ids, mask = _tokenize(tok, [unique[i] for i in idx], train_cfg.max_length)
        cache.fill([(ids.to(train_cfg.device), mask.to(train_cfg.device))])


def run_config(pattern: Pattern, clf: ClassifierConfig, train_cfg: TrainConfig) -> dict:
    """The configuration a run's store is keyed by (everything that changes its result)."""
    from cltrlib.models import model_revision

    return {
        "version": TRANSFER_VERSION, "classifier": clf.to_dict(), "model_revision": model_revision(clf.model),
        # bf16 joins the key only when on, so the fp32 runs stored before it existed keep their keys
        "train": {k: v for k, v in asdict(train_cfg).items()
                  if k not in ("device", "eval_batch_size") and not (k == "bf16" and not v)},
        "dataset": pattern.data.name, "label_names": pattern.data.label_names, "task": pattern.data.task,
        "source_lang": pattern.data.source_lang, "target_lang": pattern.data.target_lang,
        "condition": pattern.condition, "pattern": pattern.name, "n_target": pattern.n_target, "seed": pattern.seed,
        "train_ids": [f"{lang}:{i}" for lang, i in zip(pattern.train["lang"], pattern.train["id"], strict=True)],
        "test_ids": pattern.test["id"].astype(int).tolist(),
    }


def run_store(pattern: Pattern, clf: ClassifierConfig, train_cfg: TrainConfig, root=None) -> RunStore:
    """The results-store folder of one run (created empty if new)."""
    label = f"{clf.model}-{pattern.data.name}-{pattern.condition}-{pattern.name}-s{pattern.seed}"
    return RunStore(STAGE, run_config(pattern, clf, train_cfg), label=label, root=root)


def completed_run(pattern: Pattern, clf: ClassifierConfig, train_cfg: TrainConfig, root=None) -> dict | None:
    """Summary of the stored run for these settings, or None when it still has to be trained."""
    return run_store(pattern, clf, train_cfg, root).summary()


def run_transfer(pattern: Pattern, clf: ClassifierConfig, train_cfg: TrainConfig, progress: bool = True,
                 save_adapter: bool = True, root=None) -> dict:
    """Train and evaluate one run (or read it from the store); return its summary (metrics, timings, paths)."""
    from cltrlib.transfer.scores import classification_scores

    store = run_store(pattern, clf, train_cfg, root)
    cfg = store.config
    if store.is_complete():
        return store.summary()
    set_seed(pattern.seed)
    t0 = time.monotonic()
    model, tok, method = build_classifier(clf, device=train_cfg.device, seed=pattern.seed)
    cache = None
    if method == "lora" and clf.lora_layers is not None and clf.lora_layers < model.config.num_hidden_layers:
        n_frozen = model.config.num_hidden_layers - clf.lora_layers
        key = (clf.model, cfg["model_revision"], n_frozen, clf.dtype, train_cfg.device)
        cache = PrefixCache(model, n_frozen)
        cache.store = _PREFIX_STORES.setdefault(key, {})
    losses = train_classifier(model, tok, pattern.train, train_cfg, method, pattern.seed, cache, progress)
    t_train = time.monotonic() - t0
    probs = predict_proba(model, tok, pattern.test["text"].tolist(), train_cfg.max_length,
                          train_cfg.eval_batch_size, cache, train_cfg.device, train_cfg.bf16)
    labels = pattern.test["label"].to_numpy()
    store.append({"id": int(i), "label": int(y), "probs": [round(float(x), 6) for x in p]}
                 for i, y, p in zip(pattern.test["id"], labels, probs, strict=True))
    adapter_dir = None
    if save_adapter:
        adapter_dir = store.path / "adapter"
        model.save_pretrained(adapter_dir)
        tok.save_pretrained(adapter_dir)
        meta = {"base_model": clf.model, "method": method, "classifier": clf.to_dict(), "dataset": pattern.data.name,
                "task": pattern.data.task, "label_names": pattern.data.label_names, "condition": pattern.condition,
                "pattern": pattern.name, "n_target": pattern.n_target, "seed": pattern.seed,
                "max_length": train_cfg.max_length, "bf16": train_cfg.bf16, "source_lang": pattern.data.source_lang,
                "target_lang": pattern.data.target_lang, "store": str(store.path)}
        (adapter_dir / "classifier.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    summary = {"model": clf.model, "dataset": pattern.data.name, "condition": pattern.condition,
               "pattern": pattern.name, "seed": pattern.seed, "method": method, "n_train": len(pattern.train),
               "n_test": len(pattern.test), "epoch_losses": losses, "train_s": round(t_train, 1),
               "total_s": round(time.monotonic() - t0, 1), "adapter_dir": str(adapter_dir) if adapter_dir else None,
               **classification_scores(labels, probs)}
    store.mark_complete(summary)
    return summary


def load_run_probs(summary: dict) -> pd.DataFrame:
    """Per-item test predictions of a completed run (id, label, probs)."""
    store_dir = summary.get("adapter_dir")
    if store_dir is None:
        raise ValueError("this run has no stored folder recorded; rerun with save_adapter=True")
    from pathlib import Path

    rows = [json.loads(line) for line in (Path(store_dir).parent / "records.jsonl").read_text().splitlines() if line]
    return pd.DataFrame(rows)

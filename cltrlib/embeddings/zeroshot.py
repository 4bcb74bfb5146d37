"""Zero-shot accuracy of a base or tuned model in every language, one stored run per language.

Each test item is scored by the label words' next-token logits (see ``scoring``);
records keep the logits so other metrics can be computed later without the model.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from cltrlib.embeddings.scoring import encode_prompts, label_token_ids, next_token_logits
from cltrlib.embeddings.tasks import EVAL_LANGS, PROMPT_VERSION, evaluation_examples, evaluation_ids, label_words
from cltrlib.lengths import length_sorted_batches
from cltrlib.metrics import clopper_pearson
from cltrlib.models import load, model_revision
from cltrlib.progress import tqdm
from cltrlib.store import RunStore

ZEROSHOT_VERSION = "1"


def _store(model: str, adapter_key: str | None, task: str, lang: str, ids: list[int], max_length: int) -> RunStore:
    cfg = {"model": model, "revision": model_revision(model), "adapter": adapter_key, "task": task, "lang": lang,
           "ids": ids, "max_length": max_length, "prompt_version": PROMPT_VERSION, "version": ZEROSHOT_VERSION}
    return RunStore("zeroshot", cfg, label=f"{model}-{adapter_key or 'base'}-{task}-{lang}")


def evaluate_zero_shot(model: str, task: str, n_test: int | None, adapter_key: str | None = None,
                       adapter_dir: str | Path | None = None, langs: tuple[str, ...] = EVAL_LANGS,
                       max_length: int = 256, batch_size: int = 8, seed: int = 0, device: str | None = None,
                       progress: bool = True) -> pd.DataFrame:
    """Per-item predictions (model, adapter, task, lang, id, label, pred, correct) for every language."""
    ids = evaluation_ids(task, n_test, seed=seed)
    frames = []
    lm = tok = targets = None
    for lang in langs:
        store = _store(model, adapter_key, task, lang, ids, max_length)
        if not store.is_complete():
            if lm is None:
                lm, tok = load(model, "generate", adapter_dir, device=device)
                targets = label_token_ids(tok, label_words(task))
            done = {r["id"] for r in store.records()}
            todo = [e for e in evaluation_examples(task, lang, ids) if e.id not in done]
            lengths = [len(tok(e.prompt)["input_ids"]) for e in todo]
            bar = tqdm(total=len(todo), desc=f"{model}/{adapter_key or 'base'}/{task}/{lang}", disable=not progress,
                       leave=False)
            for idx in length_sorted_batches(lengths, batch_size):
                batch = [todo[i] for i in idx]
                enc = encode_prompts(tok, [e.prompt for e in batch], max_length)
                dev = next(lm.parameters()).device
                with torch.inference_mode():
                    scores = next_token_logits(lm, enc["input_ids"].to(dev), enc["attention_mask"].to(dev),
                                               token_ids=targets).cpu()
                store.append([{"id": e.id, "label": e.label, "pred": int(s.argmax()), "scores": s.tolist()}
                              for e, s in zip(batch, scores, strict=True)])
                bar.update(len(batch))
            bar.close()
            store.mark_complete({"n": len(ids)})
        df = pd.DataFrame(store.records()).drop_duplicates("id")
        df["lang"] = lang
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["correct"] = out["label"] == out["pred"]
    out.insert(0, "task", task)
    out.insert(0, "adapter", adapter_key or "base")
    out.insert(0, "model", model)
    return out


def accuracy_by_lang(pred: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """model, adapter, task, lang, accuracy, correct, n, ci_low, ci_high (exact Clopper-Pearson interval over the
    test items; from ``evaluate_zero_shot`` output, concatenated). 32 items make one accuracy's 95% interval about
    +-0.17 wide: the interval, not the point, says whether two languages differ."""
    g = pred.groupby(["model", "adapter", "task", "lang"], sort=False)["correct"]
    out = g.agg(accuracy="mean", correct="sum", n="size").reset_index()
    out["correct"] = out["correct"].astype(int)
    ci = [clopper_pearson(int(c), int(n), alpha) for c, n in zip(out.correct, out.n, strict=True)]
    out["ci_low"], out["ci_high"] = [c[0] for c in ci], [c[1] for c in ci]
    return out


def majority_baseline(task: str, labels: list[int], alpha: float = 0.05) -> dict:
    """The accuracy of always answering the most frequent gold label of the evaluated items.

    Why: a constant predictor beats uniform chance whenever classes are unbalanced (SIB-200 test: 0.25 vs 1/7), so a
    model is only better than trivial if it beats this line; the interval is Clopper-Pearson like the models'."""
    counts = pd.Series(labels).value_counts()
    label, hits, n = int(counts.index[0]), int(counts.iloc[0]), len(labels)
    low, high = clopper_pearson(hits, n, alpha)
    return {"task": task, "label": label_words(task)[label], "accuracy": hits / n, "correct": hits, "n": n,
            "ci_low": low, "ci_high": high, "uniform_chance": 1 / len(label_words(task))}

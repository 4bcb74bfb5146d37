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


def accuracy_by_lang(pred: pd.DataFrame) -> pd.DataFrame:
    """model, adapter, task, lang, accuracy, n (from ``evaluate_zero_shot`` output, concatenated)."""
    g = pred.groupby(["model", "adapter", "task", "lang"], sort=False)["correct"]
    return g.agg(accuracy="mean", n="size").reset_index()

"""Saved fine-tuned classifiers ("after fine-tuning" models for Paper C's embeddings).

Every completed run keeps ``<results>/transfer/<run>/adapter/`` with the peft adapter
(LoRA weights + the trained classification head) or the full model, the tokenizer, and
``classifier.json`` (base model, method, data set, task, label names, condition,
pattern, seed, max_length). ``list_adapters`` finds them; ``load_classifier`` rebuilds
the classifier on its base model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cltrlib import config

META_FILE = "classifier.json"


def layers_label(method: str, lora_layers: int | None) -> str:
    """What a run trained, for the tables: ``LoRA top k`` (a probe over frozen lower layers), ``LoRA all`` (Paper
    B's fine-tuning: q/v on every layer) or ``full`` (every weight: the encoders)."""
    if method != "lora":
        return method
    return "LoRA all" if lora_layers is None else f"LoRA top {lora_layers}"


def list_adapters(root: str | Path | None = None, **filters) -> pd.DataFrame:
    """One row per saved classifier: its ``classifier.json`` fields plus ``layers`` (what was trained: ``LoRA top k``
    or ``LoRA all``), ``epochs`` and ``adapter_dir``.

    ``filters`` keep rows whose field equals the value, e.g.
    ``list_adapters(base_model=models.GEMMA3, pattern="ja0")``.
    """
    root = Path(root) if root is not None else config.results_dir()
    rows = []
    for meta_file in sorted((root / "transfer").glob(f"*/adapter/{META_FILE}")):
        if not (meta_file.parent.parent / "summary.json").exists():
            continue  # a run interrupted after saving: not a finished classifier
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        clf = meta.pop("classifier", None) or {}
        summary = json.loads((meta_file.parent.parent / "summary.json").read_text(encoding="utf-8"))
        # a probe (LoRA on the top layers) and a full-depth run of one pattern and seed differ only here
        rows.append({**meta, "layers": layers_label(meta.get("method", "lora"), clf.get("lora_layers")),
                     "epochs": len(summary.get("epoch_losses", [])), "adapter_dir": str(meta_file.parent)})
    df = pd.DataFrame(rows)
    for key, value in filters.items():
        if key not in df.columns:
            raise KeyError(f"no field {key!r} in {META_FILE}; fields: {sorted(df.columns)}")
        df = df[df[key] == value]
    return df.reset_index(drop=True)


def load_classifier(adapter_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer, meta) of a saved classifier, in eval mode.

    LoRA runs: the base model (``meta["base_model"]``) with the adapter and trained head
    loaded on top (``PeftModel``); for hidden states call it with
    ``output_hidden_states=True``. Full fine-tuning runs: the saved model itself.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    from cltrlib.models import load_tokenizer, resolve_model_path

    adapter_dir = Path(adapter_dir)
    meta_file = adapter_dir / META_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file} not found: pass a folder from cltrlib.transfer.list_adapters()")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    dtype = getattr(torch, meta.get("classifier", {}).get("dtype", "float32"))
    tok = load_tokenizer(str(adapter_dir), padding_side="right")
    if meta["method"] == "lora":
        from peft import PeftModel

        base = AutoModelForSequenceClassification.from_pretrained(
            resolve_model_path(meta["base_model"]), num_labels=len(meta["label_names"]), dtype=dtype)
        base.config.pad_token_id = tok.pad_token_id
        model = PeftModel.from_pretrained(base, str(adapter_dir))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(adapter_dir), dtype=dtype)
        model.config.pad_token_id = tok.pad_token_id
    return model.to(device).eval(), tok, meta

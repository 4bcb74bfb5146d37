"""Per-layer sentence embeddings, batched by length and cached in the results store.

One forward pass yields every layer for both poolings; each (model, adapter, corpus,
language, pooling) lands in its own store entry as ``embeddings.npy`` (float32, ``[n_sentences, n_layers + 1,
hidden]``; not float16: Gemma residual streams can exceed its range) so a rerun, or another notebook, reads it
back in milliseconds, and an interrupted extraction redoes one language at most.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cltrlib.embeddings.modeling import backbone
from cltrlib.embeddings.pooling import POOLINGS, pool_layers
from cltrlib.lengths import length_sorted_batches
from cltrlib.models import load, model_revision, position_ids_from_mask
from cltrlib.progress import tqdm
from cltrlib.store import RunStore

EXTRACT_VERSION = "1"


@torch.inference_mode()
def embed_texts(lm, tok, texts: list[str], max_length: int = 128, batch_size: int = 16,
                poolings: tuple[str, ...] = POOLINGS, skip_special: bool = True, progress: bool = True,
                desc: str = "embed", sort_by_length: bool = True) -> dict[str, np.ndarray]:
    """{pooling: float32 array [len(texts), n_layers + 1, hidden]} in the order of ``texts``."""
    if not texts:
        raise ValueError("embed_texts: no texts")
    enc_all = tok(list(texts), add_special_tokens=True, truncation=True, max_length=max_length,
                  return_special_tokens_mask=True)
    lengths = [len(x) for x in enc_all["input_ids"]]
    batches = (length_sorted_batches(lengths, batch_size) if sort_by_length
               else [list(range(k, min(k + batch_size, len(texts)))) for k in range(0, len(texts), batch_size)])
    net = backbone(lm)
    device = next(lm.parameters()).device
    out: dict[str, np.ndarray | None] = dict.fromkeys(poolings)
    bar = tqdm(total=len(texts), desc=desc, disable=not progress, leave=False)
    for idx in batches:
        feats = [{"input_ids": enc_all["input_ids"][i], "attention_mask": enc_all["attention_mask"][i],
                  "special_tokens_mask": enc_all["special_tokens_mask"][i]} for i in idx]
        batch = tok.pad(feats, return_tensors="pt")
        mask = batch["attention_mask"].to(device)
        ids = batch["input_ids"].to(device)
        special = batch["special_tokens_mask"].to(device)
        content = mask * (1 - special) if skip_special else mask
        # A sentence made only of special tokens (empty text) falls back to all its real tokens.
        content = torch.where(content.sum(1, keepdim=True) > 0, content, mask)
        hs = net(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                 output_hidden_states=True).hidden_states
        for p in poolings:
            pooled = pool_layers(hs, mask, p, content_mask=content).float().cpu().numpy()
            if out[p] is None:
                out[p] = np.zeros((len(texts), *pooled.shape[1:]), dtype=np.float32)
            out[p][idx] = pooled
        bar.update(len(idx))
    bar.close()
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class EmbeddingJob:
    """What identifies one cached embedding set (all fields go into the store key)."""

    model: str
    adapter: str | None  # adapter store key (see tuning.TunedAdapter.key) or None for the base model
    corpus: str
    lang: str
    pooling: str
    texts_sha: str
    max_length: int
    skip_special: bool = True

    def store(self) -> RunStore:
        cfg = {**self.__dict__, "revision": model_revision(self.model), "version": EXTRACT_VERSION}
        label = f"{self.model}-{self.adapter or 'base'}-{self.corpus}-{self.lang}-{self.pooling}"
        return RunStore("embeddings", cfg, label=label)


def texts_digest(texts: list[str] | tuple[str, ...]) -> str:
    return hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:16]


def cached_embeddings(model: str, corpus: str, texts_by_lang: dict[str, tuple[str, ...]],
                      adapter_key: str | None = None, adapter_dir: str | Path | None = None,
                      poolings: tuple[str, ...] = POOLINGS, max_length: int = 128, batch_size: int = 16,
                      skip_special: bool = True, device: str | None = None,
                      progress: bool = True) -> dict[tuple[str, str], np.ndarray]:
    """{(lang, pooling): [n, layers+1, hidden] float32}, computing only what the store lacks.

    The model is loaded lazily: if everything is cached, nothing is loaded.
    """
    result: dict[tuple[str, str], np.ndarray] = {}
    lm = tok = None
    for lang, texts in texts_by_lang.items():
        jobs = {p: EmbeddingJob(model, adapter_key, corpus, lang, p, texts_digest(texts), max_length, skip_special)
                for p in poolings}
        stores = {p: j.store() for p, j in jobs.items()}
        if all(s.is_complete() for s in stores.values()):
            for p, s in stores.items():
                result[(lang, p)] = np.load(s.path / "embeddings.npy").astype(np.float32)
            continue
        if lm is None:
            lm, tok = load(model, "embed", adapter_dir, device=device)
        start = time.monotonic()
        embs = embed_texts(lm, tok, list(texts), max_length=max_length, batch_size=batch_size, poolings=poolings,
                           skip_special=skip_special, progress=progress,
                           desc=f"{model}/{adapter_key or 'base'}/{corpus}/{lang}")
        seconds = time.monotonic() - start
        for p, s in stores.items():
            tmp = s.path / "embeddings.tmp.npy"
            np.save(tmp, embs[p])
            tmp.replace(s.path / "embeddings.npy")
            s.mark_complete({"n": len(texts), "shape": list(embs[p].shape), "seconds": round(seconds, 2),
                             "sentences_per_s": round(len(texts) / max(seconds, 1e-9), 3)})
            result[(lang, p)] = embs[p]
    return result

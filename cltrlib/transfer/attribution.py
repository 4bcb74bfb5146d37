"""LIME-style token attributions over tokenizer tokens (Paper B, Table 5).

LIME's text explainer removes whitespace-separated words; Japanese has no spaces, so
the features here are the model's own tokens. For one text: draw binary masks (the
first keeps everything; each other removes a uniformly drawn number of tokens), run
the classifier on the texts with those tokens removed, weight each sample by an
exponential kernel of its cosine distance to the full text (as LIME does), and fit a
weighted ridge regression of the target-class probability on the masks. A token's
coefficient is its attribution. ``aggregate_attributions`` averages per token string
over the texts (absent = 0), as the paper averages over the test set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge

from cltrlib.transfer.modeling import classifier_logits


def _token_strings(tok, ids: list[int]) -> list[str]:
    """Readable token strings: decode each id alone (byte-level pieces of a multi-byte character show as '�')."""
    return [tok.decode([i]).strip() or tok.convert_ids_to_tokens(i) for i in ids]


@torch.no_grad()
def _probs_for_ids(model, tok, rows: list[list[int]], batch_size: int, device: str) -> np.ndarray:
    pad = tok.pad_token_id
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(chunk):
            ids[i, : len(r)] = torch.as_tensor(r)
            mask[i, : len(r)] = 1
        logits = classifier_logits(model, ids.to(device), mask.to(device))
        out.append(torch.softmax(logits.float(), -1).cpu().numpy())
    return np.concatenate(out)


def lime_tokens(model, tok, text: str, target: int, n_samples: int = 64, max_length: int = 128, seed: int = 0,
                kernel_width: float = 0.25, batch_size: int = 16, device: str = "cpu") -> pd.DataFrame:
    """Per-token attributions of one text toward class ``target``: columns position, token, weight."""
    model.eval()
    ids = tok(text, truncation=True, max_length=max_length)["input_ids"]
    special = set(tok.all_special_ids)
    feats = [i for i, t in enumerate(ids) if t not in special]
    if not feats:
        return pd.DataFrame(columns=["position", "token", "weight"])
    d = len(feats)
    rng = np.random.default_rng(seed)
    masks = np.ones((max(2, n_samples), d), dtype=np.int8)
    for row in masks[1:]:
        off = rng.choice(d, size=rng.integers(1, d + 1) if d > 1 else 1, replace=False)
        row[off] = 0
    keep_always = [i for i, t in enumerate(ids) if t in special]
    rows = []
    for m in masks:
        kept = set(keep_always) | {feats[j] for j in np.flatnonzero(m)}
        rows.append([ids[i] for i in range(len(ids)) if i in kept])
    y = _probs_for_ids(model, tok, rows, batch_size, device)[:, target]
    norms = np.sqrt(masks.sum(1)).clip(min=1e-9)
    distance = 1.0 - masks.sum(1) / (norms * np.sqrt(d))  # cosine distance to the all-ones mask
    weights = np.exp(-(distance**2) / kernel_width**2)
    reg = Ridge(alpha=1.0).fit(masks, y, sample_weight=weights)
    strings = _token_strings(tok, [ids[i] for i in feats])
    return pd.DataFrame({"position": feats, "token": strings, "weight": reg.coef_})


def aggregate_attributions(per_text: pd.DataFrame, n_texts: int, top: int = 10) -> pd.DataFrame:
    """Mean attribution per token string over ``n_texts`` texts (0 where absent), top ``top`` by mean.

    ``per_text`` has columns text_id, token, weight (plus any grouping columns handled by the caller).
    A token appearing twice in one text counts with the sum of its weights there.
    """
    per_token = per_text.groupby(["text_id", "token"])["weight"].sum().reset_index()
    agg = per_token.groupby("token").agg(total=("weight", "sum"), n_texts_with=("text_id", "nunique"))
    agg["mean_weight"] = agg["total"] / max(1, n_texts)
    agg = agg[agg.index.str.len() > 0].sort_values("mean_weight", ascending=False).head(top)
    out = agg.reset_index()[["token", "mean_weight", "n_texts_with"]]
    out.insert(0, "rank", range(1, len(out) + 1))
    return out

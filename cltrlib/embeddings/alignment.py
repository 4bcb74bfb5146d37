"""Alignment measures beside Paper C's raw cosine, per layer: mean-centred cosine and bitext retrieval P@1.

Why: hidden states of small decoders are anisotropic. In SmolLM2's middle layers every mean-pooled sentence vector
shares one large common direction, so the cosine of *any* two sentences is ~0.99 and parallel (P) and random (R)
pairs look alike; the raw P-R gap is then a difference of two numbers near 1 and says little. The alignment
literature removes that common component before comparing:

- **centred cosine**: subtract each language's mean embedding at that layer (over the sentences embedded for the
  corpus), then take the cosine. Language-specific offsets and the shared anisotropic direction both go; what is
  left is whether a sentence sits nearer its translation than other sentences do.
- **retrieval P@1**: for each English sentence, is its translation the nearest of all X candidates (centred
  cosine), and the other way round? Chance is 1/n. It is a rank measure, so neither a common offset nor a global
  rescaling of cosines changes it.

Uncertainty: mean cosines and P-R gaps get a percentile bootstrap over pairs (P and R resampled *together*, pair i
keeps its parallel and its random partner), P@1 an exact Clopper-Pearson interval per direction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cltrlib.embeddings.pairs import PAIR_LANGS, PairSet
from cltrlib.metrics import bootstrap_means, clopper_pearson

MEASURES = ("raw_cosine", "centred_cosine", "retrieval_p1")


def centre(emb: np.ndarray) -> np.ndarray:
    """``emb`` ``[n, layers, hidden]`` minus its mean over sentences at each layer (one language's mean)."""
    return emb - emb.mean(axis=0, keepdims=True)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs cosines ``[layers, n_a, n_b]`` of ``[n_a, layers, hidden]`` and ``[n_b, layers, hidden]``."""
    return np.einsum("ilh,jlh->lij", _unit(a), _unit(b))


def retrieval_hits(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a->b hits, b->a hits), boolean ``[n, layers]``: row i of ``a`` is aligned with row i of ``b``.

    A hit means the translation has the strictly highest cosine among all candidates (a tie with another candidate
    counts as a miss, so constant vectors score 0, not 1)."""
    sim = cosine_matrix(a, b)  # [layers, n, n]
    diag = np.diagonal(sim, axis1=1, axis2=2)  # [layers, n]
    off = sim.copy()
    idx = np.arange(sim.shape[1])
    off[:, idx, idx] = -np.inf
    a2b = diag > off.max(axis=2)  # best other candidate for each a_i
    b2a = diag > off.max(axis=1)  # best other candidate for each b_j
    return a2b.T, b2a.T


def _rows_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (_unit(a) * _unit(b)).sum(-1)


def pair_measures(en: np.ndarray, x: np.ndarray, random_index: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pair values ``[n, layers]``: raw and centred cosine of parallel and random pairs, retrieval hits."""
    ce, cx = centre(en), centre(x)
    en2x, x2en = retrieval_hits(ce, cx)
    return {"raw_parallel": _rows_cos(en, x), "raw_random": _rows_cos(en, x[random_index]),
            "centred_parallel": _rows_cos(ce, cx), "centred_random": _rows_cos(ce, cx[random_index]),
            "hits_en2x": en2x, "hits_x2en": x2en}


def alignment_table(model: str, adapter: str, corpus: str, pairs: PairSet,
                    embeddings: dict[tuple[str, str], np.ndarray], poolings: tuple[str, ...],
                    langs: tuple[str, ...] = PAIR_LANGS, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Long table, one row per (lang pair, pooling, layer, measure): parallel, random and their gap, each with a
    95% interval, and n.

    measure ``raw_cosine`` (Paper C) and ``centred_cosine``: parallel / random = mean cosine of P / R pairs, gap =
    P - R (paired bootstrap). ``retrieval_p1``: parallel = mean of the two directions' P@1 (bootstrap over pairs),
    ``p1_en2x`` / ``p1_x2en`` with Clopper-Pearson intervals, random = chance 1/n, gap = P@1 - 1/n."""
    rows = []
    for pooling in poolings:
        en = embeddings[("en", pooling)]
        for lang in langs:
            m = pair_measures(en, embeddings[(lang, pooling)], pairs.random_index)
            n, n_layers = m["raw_parallel"].shape
            hits = (m["hits_en2x"].astype(float) + m["hits_x2en"]) / 2
            series = {
                "raw_P": m["raw_parallel"], "raw_R": m["raw_random"], "raw_gap": m["raw_parallel"] - m["raw_random"],
                "cen_P": m["centred_parallel"], "cen_R": m["centred_random"],
                "cen_gap": m["centred_parallel"] - m["centred_random"], "p1": hits}
            ci = bootstrap_means(series, n_boot=n_boot, seed=seed)
            mean = {k: v.mean(axis=0) for k, v in series.items()}
            for layer in range(n_layers):
                base = {"model": model, "adapter": adapter, "corpus": corpus, "lang_pair": f"en-{lang}",
                        "pooling": pooling, "layer": layer, "n": n}
                for measure, key in (("raw_cosine", "raw"), ("centred_cosine", "cen")):
                    rows.append({**base, "measure": measure, **{
                        f"{col}{suffix}": val for col, k in (("parallel", "P"), ("random", "R"), ("gap", "gap"))
                        for suffix, val in (("", mean[f"{key}_{k}"][layer]), ("_low", ci[f"{key}_{k}"][0][layer]),
                                            ("_high", ci[f"{key}_{k}"][1][layer]))}})
                e2x, x2e = int(m["hits_en2x"][:, layer].sum()), int(m["hits_x2en"][:, layer].sum())
                (e2x_lo, e2x_hi), (x2e_lo, x2e_hi) = clopper_pearson(e2x, n), clopper_pearson(x2e, n)
                rows.append({**base, "measure": "retrieval_p1", "parallel": mean["p1"][layer],
                             "parallel_low": ci["p1"][0][layer], "parallel_high": ci["p1"][1][layer],
                             "random": 1 / n, "random_low": np.nan, "random_high": np.nan,
                             "gap": mean["p1"][layer] - 1 / n, "gap_low": ci["p1"][0][layer] - 1 / n,
                             "gap_high": ci["p1"][1][layer] - 1 / n,
                             "p1_en2x": e2x / n, "p1_en2x_low": e2x_lo, "p1_en2x_high": e2x_hi,
                             "p1_x2en": x2e / n, "p1_x2en_low": x2e_lo, "p1_x2en_high": x2e_hi})
    return pd.DataFrame(rows)

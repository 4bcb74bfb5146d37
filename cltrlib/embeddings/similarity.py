"""Cosine similarity of parallel (P) and random (R) en-X pairs, per layer, and its link to transfer.

``similarity_table`` gives the long table committed as
``figures/tables/embedding_similarity.csv`` (model, adapter, corpus, lang_pair, pooling,
layer, pair_type, mean_cosine, ci_low, ci_high, n). ``spearman_exact`` is Paper C's Table 3 statistic
with an exact permutation p-value: with five languages there are only 120 rank
orders, so the smallest two-sided p-value any rho can reach is 2/120 = 0.017 and
the asymptotic t-approximation would be meaningless.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from cltrlib.embeddings.pairs import PAIR_LANGS, PairSet
from cltrlib.metrics import bootstrap_means


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of ``[n, layers, hidden]`` arrays → ``[n, layers]``."""
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, 1e-12)


def pair_cosines(emb: dict[str, np.ndarray], pairs: PairSet, lang: str) -> tuple[np.ndarray, np.ndarray]:
    """(parallel, random) cosines ``[n, layers]`` for en-``lang`` from per-language embeddings."""
    en, x = emb["en"], emb[lang]
    return cosine_rows(en, x), cosine_rows(en, x[pairs.random_index])


def similarity_table(model: str, adapter: str, corpus: str, pairs: PairSet,
                     embeddings: dict[tuple[str, str], np.ndarray], poolings: tuple[str, ...],
                     langs: tuple[str, ...] = PAIR_LANGS) -> pd.DataFrame:
    """Long table: one row per (lang pair, pooling, layer, pair type) with the mean cosine and its 95% bootstrap
    interval over pairs (``alignment.alignment_table`` has the paired intervals of P - R)."""
    rows = []
    for pooling in poolings:
        per_lang = {lang: embeddings[(lang, pooling)] for lang in ("en", *langs)}
        for lang in langs:
            par, rnd = pair_cosines(per_lang, pairs, lang)
            ci = bootstrap_means({"parallel": par, "random": rnd}, seed=pairs.seed)
            for layer in range(par.shape[1]):
                for kind, vals in (("parallel", par[:, layer]), ("random", rnd[:, layer])):
                    rows.append({"model": model, "adapter": adapter, "corpus": corpus, "lang_pair": f"en-{lang}",
                                 "pooling": pooling, "layer": layer, "pair_type": kind,
                                 "mean_cosine": float(vals.mean()), "ci_low": float(ci[kind][0][layer]),
                                 "ci_high": float(ci[kind][1][layer]), "n": int(len(vals))})
    return pd.DataFrame(rows)


def spearman_exact(x, y) -> tuple[float, float]:
    """Spearman rho and its exact two-sided permutation p-value (all n! orders, n <= 9).

    p = share of permutations of y whose |rho| >= the observed |rho| (ties ranked by
    their average, as scipy does). For n > 9 it falls back to scipy's t-approximation.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"spearman_exact needs two equal-length 1-D sequences of >= 3 values, got {x.shape}, "
                         f"{y.shape}")
    rx, ry = rankdata(x), rankdata(y)

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - a.mean(), b - b.mean()
        den = math.sqrt(float((a * a).sum() * (b * b).sum()))
        return float((a * b).sum() / den) if den > 0 else float("nan")

    observed = rho(rx, ry)
    if math.isnan(observed):
        return observed, float("nan")
    if len(x) > 9:
        from scipy.stats import spearmanr

        res = spearmanr(x, y)
        return float(res.statistic), float(res.pvalue)
    perms = np.array(list(itertools.permutations(ry)))
    a = rx - rx.mean()
    b = perms - perms.mean(axis=1, keepdims=True)
    rhos = (b @ a) / np.sqrt((a * a).sum() * (b * b).sum(axis=1))
    p = float(np.mean(np.abs(rhos) >= abs(observed) - 1e-12))
    return observed, p


def spearman_table(accuracy: pd.DataFrame, similarity: pd.DataFrame, alignment: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """Rho between fine-tuned accuracy in X and before-tuning en-X similarity, per model/task/corpus/pooling/layer
    and measure.

    ``accuracy``: model, adapter, task, lang, accuracy (fine-tuned rows only);
    ``similarity``: the long table restricted to the base model (adapter == 'base'): measure ``raw_cosine`` is the
    parallel-pair mean cosine (P), as in Paper C. ``alignment`` (``alignment.alignment_table``) adds one row per
    layer for ``centred_cosine`` (P after removing each language's mean) and ``retrieval_p1`` (both directions).
    """
    sim = similarity[(similarity.adapter == "base") & (similarity.pair_type == "parallel")]
    sources = [sim.assign(measure="raw_cosine", value=sim.mean_cosine)]
    if alignment is not None and len(alignment):
        al = alignment[(alignment.adapter == "base") & (alignment.measure != "raw_cosine")]
        sources.append(al.assign(value=al.parallel))
    values = pd.concat(sources, ignore_index=True)
    rows = []
    for (model, task), acc in accuracy.groupby(["model", "task"]):
        acc_by_lang = acc.set_index("lang")["accuracy"]
        for (measure, corpus, pooling, layer), s in values[values.model == model].groupby(
                ["measure", "corpus", "pooling", "layer"], sort=False):
            s = s.assign(lang=s.lang_pair.str.split("-").str[1]).set_index("lang")
            langs = [lang for lang in PAIR_LANGS if lang in s.index and lang in acc_by_lang.index]
            accs = acc_by_lang[langs].to_numpy()
            rho, p = spearman_exact(accs, s.loc[langs, "value"].to_numpy())
            # rho is undefined (NaN) when one side has no ranking at all; say why instead of leaving a bare NaN
            note = ("undefined: fine-tuned accuracy is the same in every language" if len(set(accs)) <= 1 else
                    "undefined: the measure is the same in every language" if np.isnan(rho) else "")
            rows.append({"model": model, "task": task, "corpus": corpus, "pooling": pooling, "layer": int(layer),
                         "measure": measure, "spearman_rho": rho, "p_value": p, "n_langs": len(langs),
                         "note": note})
    return pd.DataFrame(rows)

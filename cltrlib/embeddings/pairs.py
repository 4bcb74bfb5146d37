"""Parallel and random sentence pairs (en-X) from the aligned corpora.

Parallel pairs are translations: the same alignment id in English and in X
(PAWS-X sentence 1 by row, PUD by sent_id, SIB-200/FLORES by index_id). Random
pairs take the same English sentences and the same X sentences but pair English
item i with X item pi(i) for a seeded derangement pi (no fixed point), so a random
pair is never a translation and both pair types see exactly the same sentences:
P - R then measures alignment, not a difference in the sentences embedded.

One id set serves every language pair (ids present in all six languages), so each
language is embedded once and English is shared by all five pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cltrlib.data.multilingual import load_pawsx, load_pud, load_sib200

CORPORA = ("pawsx", "pud", "sib200")
PAIR_LANGS = ("fr", "de", "es", "zh", "ja")
ALL_LANGS = ("en", *PAIR_LANGS)


def corpus_sentences(corpus: str, lang: str) -> pd.Series:
    """Sentences of one corpus and language, indexed by alignment id (str)."""
    if corpus == "pawsx":
        from cltrlib.embeddings.tasks import pawsx_row_split

        df = load_pawsx(lang, "dev")
        df = df[df.row.isin(pawsx_row_split()[1])]  # test pool only: disjoint from tuning rows
        return pd.Series(df.sentence1.values, index=df.row.astype(str).values)
    if corpus == "pud":
        df = load_pud(lang)
        return pd.Series(df.text.values, index=df.sent_id.astype(str).values)
    if corpus == "sib200":
        df = pd.concat([load_sib200(lang, s) for s in ("train", "dev", "test")])
        return pd.Series(df.text.values, index=df.index_id.astype(str).values)
    raise ValueError(f"unknown corpus {corpus!r}; choose one of {CORPORA}")


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly drawn permutation of range(n) with no fixed point (n >= 2)."""
    if n < 2:
        raise ValueError(f"random pairs need at least 2 sentences, got {n}")
    while True:  # rejection sampling: ~1/e of permutations are derangements
        perm = rng.permutation(n)
        if not (perm == np.arange(n)).any():
            return perm


@dataclass(frozen=True)
class PairSet:
    """Aligned sentences of one corpus in every language plus the random pairing.

    ``texts[lang][i]`` are translations of each other for every lang; the random
    pair i is (``texts['en'][i]``, ``texts[X][random_index[i]]``).
    """

    corpus: str
    ids: tuple[str, ...]
    texts: dict[str, tuple[str, ...]]
    random_index: np.ndarray
    seed: int

    def parallel(self, lang: str) -> list[tuple[str, str]]:
        return list(zip(self.texts["en"], self.texts[lang], strict=True))

    def random(self, lang: str) -> list[tuple[str, str]]:
        return [(self.texts["en"][i], self.texts[lang][j]) for i, j in enumerate(self.random_index)]


def build_pairs(corpus: str, n: int | None, seed: int = 0, langs: tuple[str, ...] = ALL_LANGS) -> PairSet:
    """``n`` aligned items (seeded sample of the ids common to ``langs``) and a seeded random pairing.

    Items whose English sentence repeats (PAWS-X reuses source sentences across rows)
    are dropped first, so no "random" pair is secretly a translation of the same text.
    """
    series = {lang: corpus_sentences(corpus, lang) for lang in langs}
    common = set.intersection(*(set(s.index) for s in series.values()))
    en = series["en"]
    en = en[en.index.isin(common)]
    keep = en[~en.duplicated(keep="first")].index
    ids = sorted(keep, key=lambda x: (len(x), x))  # numeric-looking ids sort numerically
    if not ids:
        raise ValueError(f"{corpus}: no alignment id is present in all of {langs}")
    rng = np.random.default_rng(seed)
    if n is not None and n < len(ids):
        chosen = set(rng.choice(len(ids), size=n, replace=False).tolist())
        ids = [x for k, x in enumerate(ids) if k in chosen]
    texts = {lang: tuple(str(series[lang].loc[i]) for i in ids) for lang in langs}
    return PairSet(corpus, tuple(ids), texts, derangement(len(ids), rng), seed)

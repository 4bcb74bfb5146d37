"""Does a training corpus contain text the study tests on? n-gram overlap with every evaluation set.

Why: continual pre-training that has seen a benchmark's prompts or a test sentence measures memory, not transfer.
The check follows GPT-3's decontamination (Brown et al. 2020, appendix C): an evaluation item is contaminated when
any of its 13-grams occurs in the corpus, punctuation ignored. Japanese and Chinese have no spaces, so their units
are single characters, each weighing half a word (a Japanese word is about two characters): a gram is the shortest
run of units weighing 13 words. Counting a character as a word would flag stock phrases — measured on the manual
pages: 38 "contaminated" items, every one a phrase like 「なければならない。」 or 「を利用することができます。」;
at 13 words, none.

The evaluation side is deliberately wider than what a profile samples: every item of the splits the notebooks draw
from (HumanEval and JHumanEval prompts with their canonical solutions; SIB-200 test and dev, PAWS-X dev,
PUD — every language the notebooks use), so changing a profile's sample cannot make a corpus dirty.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from cltrlib.pretrain.corpus import JA_CHAR, JA_CHARS, Document, paragraphs

NGRAM = 13  # words per gram
CJK_WEIGHT = 0.5  # words per kana/kanji character
_UNIT = re.compile(f"[{JA_CHARS}]|[^\\W_]+")


class ContaminationError(RuntimeError):
    """A corpus overlaps evaluation data; the message lists the sets and items and how to proceed."""


def units(text: str) -> list[str]:
    """Single kana/kanji characters and words of other letters or digits, lower-cased; punctuation dropped."""
    return _UNIT.findall(text.lower())


def grams(toks: list[str], n: float = NGRAM) -> list[tuple[str, ...]]:
    """Every shortest run of units weighing ``n`` words, one per start position (a text lighter than ``n`` gives
    itself as its one gram). A run depends only on the units it covers, so equal text gives equal grams on both
    sides of the comparison."""
    weights = [CJK_WEIGHT if JA_CHAR.match(t) else 1.0 for t in toks]
    if sum(weights) < n:
        return [tuple(toks)] if toks else []
    out, end, acc = [], 0, 0.0
    for start in range(len(toks)):
        while end < len(toks) and acc < n:
            acc += weights[end]
            end += 1
        if acc < n:
            break
        out.append(tuple(toks[start:end]))
        acc -= weights[start]
    return out


def ngram_hashes(text: str, n: float = NGRAM) -> set[int]:
    """Hashes of the text's grams (see ``grams``)."""
    return {hash(g) for g in grams(units(text), n)}


@dataclass(frozen=True)
class EvalItem:
    """One evaluation text: which set it belongs to and a stable id within it."""

    eval_set: str
    item_id: str
    text: str


def evaluation_items() -> list[EvalItem]:
    """Every text the notebooks evaluate on (see the module docstring for which splits)."""
    from cltrlib.data import load_problems
    from cltrlib.data.multilingual import PAWSX_LANGS, PUD_LANGS, load_pawsx, load_pud, load_sib200

    items: list[EvalItem] = []
    for ds in ("humaneval", "jhumaneval"):
        items += [EvalItem(ds, p.task_id, p.prompt + p.canonical_solution) for p in load_problems(ds)]
    for lang in ("en", "ja", "fr", "de", "es", "zh"):
        for split in ("test", "dev"):
            df = load_sib200(lang, split)
            items += [EvalItem(f"sib200-{split}-{lang}", str(i), t) for i, t in zip(df["index_id"], df["text"], strict=True)]
    for lang in sorted(PAWSX_LANGS):
        for split in ("dev",):  # the mirror's PAWS-X test split has no labels; no notebook evaluates on it
            df = load_pawsx(lang, split)
            items += [EvalItem(f"pawsx-{split}-{lang}", str(i), f"{a}\n{b}")
                      for i, a, b in zip(df["row"], df["sentence1"], df["sentence2"], strict=True)]
    for lang in sorted(PUD_LANGS):
        df = load_pud(lang)
        items += [EvalItem(f"pud-{lang}", str(i), t) for i, t in zip(df["sent_id"], df["text"], strict=True)]
    return items


@dataclass
class ContaminationReport:
    """Which evaluation items share an n-gram with which corpus documents."""

    n: float
    n_documents: int
    n_items: int
    hits: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (eval set, item id) -> document ids
    items_per_set: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.hits

    def summary(self) -> pd.DataFrame:
        """Per evaluation set: items checked, items contaminated, their share, and the documents involved."""
        rows = []
        for eval_set, total in sorted(self.items_per_set.items()):
            dirty = {k: v for k, v in self.hits.items() if k[0] == eval_set}
            docs = sorted(set().union(*dirty.values())) if dirty else []
            rows.append({"eval_set": eval_set, "items": total, "contaminated": len(dirty),
                         "share": len(dirty) / total if total else 0.0, "documents": ", ".join(docs[:5])
                         + (f" (+{len(docs) - 5})" if len(docs) > 5 else "")})
        return pd.DataFrame(rows)

    def raise_if_dirty(self) -> None:
        if self.clean:
            return
        table = self.summary()
        dirty = table[table["contaminated"] > 0]
        lines = "\n".join(f"  {r.eval_set}: {r.contaminated}/{r.items} items (documents {r.documents})"
                          for r in dirty.itertuples())
        raise ContaminationError(f"the training corpus shares {self.n}-grams with evaluation data:\n{lines}\n"
                                 "drop those documents (`decontaminate`), or pass allow_contaminated=True to "
                                 "train anyway (the results then measure memory as much as transfer)")


def _owners(items: Sequence[EvalItem], n: float) -> dict[int, list[int]]:
    """Gram hash -> indices of the evaluation items that contain it."""
    owners: dict[int, list[int]] = defaultdict(list)
    for idx, item in enumerate(items):
        for h in ngram_hashes(item.text, n):
            owners[h].append(idx)
    return owners


def check(docs: Sequence[Document], items: Iterable[EvalItem] | None = None, n: float = NGRAM) -> ContaminationReport:
    """Overlap of ``docs`` with ``items`` (default: ``evaluation_items()``)."""
    items = list(evaluation_items() if items is None else items)
    owners = _owners(items, n)
    per_set: dict[str, int] = defaultdict(int)
    for item in items:
        per_set[item.eval_set] += 1
    report = ContaminationReport(n=n, n_documents=len(docs), n_items=len(items), items_per_set=dict(per_set))
    for doc in docs:
        for h in ngram_hashes(doc.text, n):
            for idx in owners.get(h, ()):
                report.hits.setdefault((items[idx].eval_set, items[idx].item_id), set()).add(doc.id)
    return report


def decontaminate(docs: Sequence[Document], items: Iterable[EvalItem] | None = None,
                  n: float = NGRAM) -> tuple[list[Document], int]:
    """``docs`` with every paragraph that shares an n-gram with evaluation data removed; (documents, paragraphs
    dropped). A document left empty is dropped."""
    dirty = _owners(list(evaluation_items() if items is None else items), n).keys()
    out, dropped = [], 0
    for doc in docs:
        kept = []
        for para in paragraphs(doc.text):
            if ngram_hashes(para, n) & dirty:
                dropped += 1
            else:
                kept.append(para)
        if kept:
            out.append(Document(doc.id, doc.language, "\n\n".join(kept), doc.source))
    return out, dropped

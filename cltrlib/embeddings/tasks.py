"""The two zero-shot tasks: English training examples, six-language test examples, prompts.

Prompts follow Paper C, Appendix B (Table 6, PromptSource-based), always in English
whatever the language of the input ("評価時は統一的に英語のプロンプトを使用した").
Paper C has no SIB-200 template; ours uses the same shape (inputs, a question, the
allowed answers, "The answer is") so both tasks are answered by one next token.

PAWS-X: only the dev split is labelled here (2000 rows, row-aligned across
languages), so a seeded permutation of row ids splits it once into a training pool
(English rows used for tuning) and a disjoint test pool (rows evaluated in every
language, and the rows whose sentence 1 feeds the embedding analysis, like the
paper's "PAWS-X test data").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cltrlib.data.multilingual import load_pawsx, load_sib200, sib200_labels

TASKS = ("sib200", "pawsx")
EVAL_LANGS = ("en", "fr", "de", "es", "zh", "ja")
PAWSX_SPLIT_SEED = 1234
PAWSX_TRAIN_POOL = 1000  # first 1000 rows of the permutation train, the other 1000 test

PAWSX_TEMPLATE = ("Sentence 1: {sentence1} Sentence 2: {sentence2} Question: Do Sentence 1 and Sentence 2 "
                  "express the same meaning? Only answer with Yes or No. The answer is")
SIB200_TEMPLATE = ("Text: {text} Question: What is the topic of the text? Only answer with one of: {options}. "
                   "The answer is")
PROMPT_VERSION = "1"


@dataclass(frozen=True)
class Example:
    """One prompt with its gold label index (into the task's label words)."""

    id: int
    lang: str
    prompt: str
    label: int


def label_words(task: str) -> list[str]:
    """Answer words in label-index order; the model is scored on ' ' + word."""
    if task == "pawsx":
        return ["No", "Yes"]  # PAWS-X label 1 = paraphrase
    if task == "sib200":
        return sib200_labels()
    raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")


def pawsx_row_split() -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a fixed, disjoint split of the 2000 PAWS-X dev rows."""
    perm = np.random.default_rng(PAWSX_SPLIT_SEED).permutation(2000)
    return np.sort(perm[:PAWSX_TRAIN_POOL]), np.sort(perm[PAWSX_TRAIN_POOL:])


def _prompt(task: str, row) -> str:
    if task == "pawsx":
        return PAWSX_TEMPLATE.format(sentence1=row.sentence1, sentence2=row.sentence2)
    return SIB200_TEMPLATE.format(text=row.text, options=", ".join(sib200_labels()))


def _sample(df: pd.DataFrame, n: int | None, seed: int, id_col: str) -> pd.DataFrame:
    """A seeded, label-stratified-by-chance sample of ``n`` rows, returned in id order."""
    if n is None or n >= len(df):
        return df.sort_values(id_col)
    return df.sample(n=n, random_state=seed).sort_values(id_col)


def train_examples(task: str, n: int | None, seed: int = 0) -> list[Example]:
    """English training examples (SIB-200 train split; PAWS-X training-pool rows)."""
    if task == "sib200":
        df, id_col = load_sib200("en", "train"), "index_id"
    elif task == "pawsx":
        df, id_col = load_pawsx("en", "dev"), "row"
        df = df[df.row.isin(pawsx_row_split()[0])]
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    df = _sample(df, n, seed, id_col)
    return [Example(int(getattr(r, id_col)), "en", _prompt(task, r), int(r.label)) for r in df.itertuples()]


def evaluation_ids(task: str, n: int | None, seed: int = 0) -> list[int]:
    """Test item ids present in every evaluation language (same items in all six)."""
    if task == "sib200":
        common = set.intersection(*(set(load_sib200(lang, "test").index_id) for lang in EVAL_LANGS))
    elif task == "pawsx":
        common = set(pawsx_row_split()[1])
        for lang in EVAL_LANGS:
            common &= set(load_pawsx(lang, "dev").row)
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    ids = sorted(int(i) for i in common)
    if n is not None and n < len(ids):
        ids = sorted(np.random.default_rng(seed).choice(ids, size=n, replace=False).tolist())
    return ids


def evaluation_examples(task: str, lang: str, ids: list[int]) -> list[Example]:
    """The test items ``ids`` in one language, prompted in English."""
    if task == "sib200":
        df, id_col = load_sib200(lang, "test"), "index_id"
    elif task == "pawsx":
        df, id_col = load_pawsx(lang, "dev"), "row"
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    df = df.set_index(id_col, drop=False).loc[ids]
    return [Example(int(getattr(r, id_col)), lang, _prompt(task, r), int(r.label)) for r in df.itertuples()]

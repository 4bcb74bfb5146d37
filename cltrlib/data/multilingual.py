"""Multilingual classification and parallel corpora: SIB-200, PAWS-X, PUD.

All three are read from the data directory (``CLTR_DATA_DIR`` or the mirror) through
``resolve_data_file``. Languages are addressed by the short codes the study uses
(en, ja, fr, de, es, zh); each loader maps them to the corpus's own names. Row
alignment across languages is part of each corpus and is what the loaders keep:

- SIB-200: ``index_id`` (FLORES-200 sentence id), identical across languages
- PAWS-X dev: row number (2000 rows per language); Japanese has 'NS' placeholders
  for sentences that were not translated — ``drop_untranslated`` removes those rows
- PUD: ``sent_id``, identical across languages
"""

from __future__ import annotations

import csv
import gzip

import pandas as pd

from cltrlib.data.problems import resolve_data_file

SIB200_LANGS = {"en": "eng_Latn", "ja": "jpn_Jpan", "fr": "fra_Latn", "de": "deu_Latn", "es": "spa_Latn",
                "zh": "zho_Hans", "zh-hant": "zho_Hant"}
PUD_LANGS = {"en", "ja", "fr", "de", "es", "zh"}
PAWSX_LANGS = {"en", "ja", "fr", "de", "es", "zh", "ko"}
PAWSX_PLACEHOLDER = "NS"


def _check_lang(lang: str, allowed, corpus: str) -> None:
    if lang not in allowed:
        raise ValueError(f"{corpus} has no language {lang!r}; available: {sorted(allowed)}")


def sib200_labels() -> list[str]:
    """The 7 SIB-200 topics in the corpus's own order (labels.txt)."""
    path = resolve_data_file("sib200/eng_Latn/labels.txt")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_sib200(lang: str, split: str = "train") -> pd.DataFrame:
    """SIB-200 rows for one language and split: index_id, category, text, label (int), lang."""
    _check_lang(lang, SIB200_LANGS, "SIB-200")
    if split not in ("train", "dev", "test"):
        raise ValueError(f"SIB-200 split must be train, dev or test, not {split!r}")
    path = resolve_data_file(f"sib200/{SIB200_LANGS[lang]}/{split}.tsv")
    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype={"index_id": int, "category": str, "text": str},
                     keep_default_na=False)
    missing = {"index_id", "category", "text"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    labels = sib200_labels()
    unknown = set(df["category"]) - set(labels)
    if unknown:
        raise ValueError(f"{path}: categories {sorted(unknown)} are not in labels.txt")
    df["label"] = df["category"].map({c: i for i, c in enumerate(labels)})
    df["lang"] = lang
    return df


def load_pawsx(lang: str, split: str = "dev", drop_untranslated: bool = True) -> pd.DataFrame:
    """PAWS-X rows: row (alignment id), sentence1, sentence2, label, lang.

    Only ``dev`` carries labels in the mirror (``test`` has none; there is no English
    train split), so experiments split the dev rows by row id.
    """
    _check_lang(lang, PAWSX_LANGS, "PAWS-X")
    path = resolve_data_file(f"pawsx/{split}-{lang}.tsv")
    df = pd.read_csv(path, sep="\t", header=None, quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    if df.shape[1] != 3:
        raise ValueError(f"{path}: expected 3 tab-separated columns (sentence1, sentence2, label), got {df.shape[1]}")
    df.columns = ["sentence1", "sentence2", "label"]
    df.insert(0, "row", range(len(df)))
    if split == "dev":
        df["label"] = df["label"].astype(int)
    if drop_untranslated:
        df = df[(df.sentence1 != PAWSX_PLACEHOLDER) & (df.sentence2 != PAWSX_PLACEHOLDER)]
    df["lang"] = lang
    return df.reset_index(drop=True)


def load_pud(lang: str) -> pd.DataFrame:
    """PUD sentences: sent_id, text, lang (from the '# text =' comment of each CoNLL-U block)."""
    _check_lang(lang, PUD_LANGS, "PUD")
    path = resolve_data_file(f"pud/{lang}_pud-ud-test.conllu.gz")
    rows, sent_id = [], None
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("# sent_id = "):
                sent_id = line.split("=", 1)[1].strip()
            elif line.startswith("# text = ") and sent_id is not None:
                rows.append({"sent_id": sent_id, "text": line.split("=", 1)[1].strip(), "lang": lang})
                sent_id = None
    if not rows:
        raise ValueError(f"{path}: no '# sent_id' / '# text' comment lines found")
    return pd.DataFrame(rows)

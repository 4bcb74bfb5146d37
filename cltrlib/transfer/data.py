"""Bilingual classification data and Paper B's data patterns (ja0 / ja16 / ja104).

A ``BilingualData`` holds four frames with the same columns (``id``, ``text``,
``label``, ``lang``): source-language training rows, target-language training rows
(the pool the few-shot examples come from) and the target-language test rows. ``id``
is the corpus's alignment id (SIB-200 ``index_id``, PAWS-X row number), so "no test
item or its translation is in training" is a set check on ids (``check_no_leakage``).

A pattern is built by ``make_pattern``: a fixed source subset (same for every seed, so
results differ across seeds only by the target examples and the training order, as
in the paper) plus ``n_target`` target examples chosen by the seed. Both are sampled
1:1 by label by default, as Paper B samples its training sets (``balance="natural"``
keeps the corpus's label rates, stratified). The target examples never share an id
with the source rows: SIB-200 rows are translations of each other across languages,
and Paper B's Japanese examples were independent headlines, not translations of
English rows already in training. ``condition="monolingual"`` keeps only the target
examples (the paper's Japanese-only models).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cltrlib.data.multilingual import load_pawsx, load_sib200, sib200_labels

PAWSX_SEP = " ||| "
CONDITIONS = ("crosslingual", "monolingual")
BALANCES = ("balanced", "natural")


@dataclass
class BilingualData:
    """One data set in source/target form; ``task`` is ``binary`` or ``multiclass`` (decides F1/AUROC averaging)."""

    name: str
    label_names: list[str]
    source_train: pd.DataFrame
    target_train: pd.DataFrame
    target_test: pd.DataFrame
    source_lang: str = "en"
    target_lang: str = "ja"

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def task(self) -> str:
        return "binary" if self.num_labels == 2 else "multiclass"


@dataclass
class Pattern:
    """Training and test rows of one (data set, condition, pattern, seed)."""

    data: BilingualData
    name: str
    condition: str
    n_target: int
    seed: int
    train: pd.DataFrame
    test: pd.DataFrame


def _frame(df: pd.DataFrame, text_col: str = "text", id_col: str = "id") -> pd.DataFrame:
    out = pd.DataFrame({"id": df[id_col].astype(int).to_numpy(), "text": df[text_col].astype(str).to_numpy(),
                        "label": df["label"].astype(int).to_numpy(), "lang": df["lang"].to_numpy()})
    return out.reset_index(drop=True)


def balance_binary(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Equal numbers of label 0 and 1 (down-sample the larger class): the paper's label-balanced test set."""
    n = int(df["label"].value_counts().min())
    parts = [g.sample(n=n, random_state=seed) for _, g in df.groupby("label")]
    return pd.concat(parts).sort_values("id").reset_index(drop=True)


def sib200_data(src: str = "en", tgt: str = "ja", topic: str | None = None, test_splits=("test", "dev"),
                balanced_test: bool = True) -> BilingualData:
    """SIB-200: 7-topic classification, or with ``topic`` a binary "topic vs rest" tagging task.

    The binary variant mirrors Paper B's ESG-or-not headline tagging; its test set is
    label-balanced like the paper's. Test rows come from SIB-200's dev+test splits,
    training rows from its train split: the splits share no ``index_id``, in any language.
    """
    labels = sib200_labels()
    src_train = load_sib200(src, "train")
    tgt_train = load_sib200(tgt, "train")
    tgt_test = pd.concat([load_sib200(tgt, s) for s in test_splits], ignore_index=True)
    name = "sib200"
    if topic is not None:
        if topic not in labels:
            raise ValueError(f"SIB-200 has no topic {topic!r}; topics: {labels}")
        for df in (src_train, tgt_train, tgt_test):
            df["label"] = (df["category"] == topic).astype(int)
        labels = [f"not {topic}", topic]
        name = f"sib200-{topic.split('/')[0]}"
    frames = [_frame(d, id_col="index_id") for d in (src_train, tgt_train, tgt_test)]
    if topic is not None and balanced_test:
        frames[2] = balance_binary(frames[2])
    return BilingualData(name, labels, *frames, source_lang=src, target_lang=tgt)


def pawsx_data(src: str = "en", tgt: str = "ja", n_test: int = 512, seed: int = 0) -> BilingualData:
    """PAWS-X paraphrase pairs (text = "sentence1 ||| sentence2").

    Only the dev split has labels here (2000 row-aligned pairs per language), so rows are
    split by row number: ``n_test`` target rows (label-balanced) are the test set, and
    neither the source training rows nor the target pool contain any of those row numbers,
    so no test pair's translation is trained on.
    """
    src_df, tgt_df = load_pawsx(src), load_pawsx(tgt)
    for df in (src_df, tgt_df):
        df["text"] = df["sentence1"] + PAWSX_SEP + df["sentence2"]
    tgt_all = _frame(tgt_df, id_col="row")
    per_label = n_test // 2
    rng = np.random.default_rng(seed)
    test_ids = []
    for _, g in tgt_all.groupby("label"):
        if len(g) < per_label:
            raise ValueError(f"PAWS-X {tgt}: only {len(g)} rows with one label; lower n_test (now {n_test})")
        test_ids.extend(rng.choice(g["id"].to_numpy(), size=per_label, replace=False).tolist())
    test_ids = set(test_ids)
    test = tgt_all[tgt_all["id"].isin(test_ids)].reset_index(drop=True)
    pool = tgt_all[~tgt_all["id"].isin(test_ids)].reset_index(drop=True)
    src_frame = _frame(src_df, id_col="row")
    src_frame = src_frame[~src_frame["id"].isin(test_ids)].reset_index(drop=True)
    return BilingualData("pawsx", ["not paraphrase", "paraphrase"], src_frame, pool, test, src, tgt)


def csv_data(path: str | Path, src: str = "en", tgt: str = "ja", n_test: int = 512, seed: int = 0,
             name: str | None = None) -> BilingualData:
    """Your own data: a CSV with columns ``text``, ``label`` and ``language`` (optional ``id`` and ``split``).

    Labels may be strings or ints (sorted to define the label order). Rows with
    ``split == "test"`` in the target language are the test set; without a ``split``
    column a label-balanced (binary) or random test set of ``n_test`` target rows is drawn.
    Rows sharing an ``id`` are treated as translations of each other (leakage check).
    """
    path = Path(path)
    df = pd.read_csv(path, keep_default_na=False)
    missing = {"text", "label", "language"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; need text, label, language")
    label_names = sorted(df["label"].astype(str).unique())
    df["label"] = df["label"].astype(str).map({n: i for i, n in enumerate(label_names)})
    df["lang"] = df["language"].astype(str)
    if "id" not in df.columns:
        df["id"] = range(len(df))
    for lang in (src, tgt):
        if not (df["lang"] == lang).any():
            raise ValueError(f"{path}: no rows with language {lang!r} (found {sorted(df['lang'].unique())})")
    src_df, tgt_df = _frame(df[df["lang"] == src]), _frame(df[df["lang"] == tgt])
    if "split" in df.columns:
        is_test = (df["lang"] == tgt) & (df["split"].astype(str) == "test")
        test_ids = set(df.loc[is_test, "id"].astype(int))
    else:
        test_ids = set(tgt_df.sample(n=min(n_test, len(tgt_df) // 2), random_state=seed)["id"])
    test = tgt_df[tgt_df["id"].isin(test_ids)]
    if len(label_names) == 2 and "split" not in df.columns:
        test = balance_binary(test, seed)
    data = BilingualData(name or path.stem, label_names, src_df[~src_df["id"].isin(test_ids)].reset_index(drop=True),
                         tgt_df[~tgt_df["id"].isin(test_ids)].reset_index(drop=True), test.reset_index(drop=True),
                         src, tgt)
    check_no_leakage(data)
    return data


def load_bilingual(name: str, **kwargs) -> BilingualData:
    """Built-in data sets by name: ``sib200``, ``sib200-<topic>`` (binary; e.g. ``sib200-science``), ``pawsx``,
    or a path to a CSV (see ``csv_data``)."""
    if name == "sib200":
        return sib200_data(**kwargs)
    if name.startswith("sib200-"):
        short = name.split("-", 1)[1]
        topics = {t.split("/")[0]: t for t in sib200_labels()}
        if short not in topics:
            raise ValueError(f"unknown SIB-200 topic {short!r}; use one of {sorted(topics)}")
        return sib200_data(topic=topics[short], **kwargs)
    if name == "pawsx":
        return pawsx_data(**kwargs)
    if name.endswith(".csv"):
        return csv_data(name, **kwargs)
    raise ValueError(f"unknown data set {name!r}: use sib200, sib200-<topic>, pawsx or a .csv path")


def stratified_sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows with label proportions as in ``df`` (at least one per label when n allows), chosen by ``seed``."""
    if n <= 0:
        return df.iloc[:0]
    if n >= len(df):
        return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    counts = df["label"].value_counts().sort_index()
    quota = np.floor(counts / counts.sum() * n).astype(int).clip(lower=min(1, n // len(counts)))
    rng = np.random.default_rng(seed)
    while quota.sum() < n:  # hand the remainder to labels at random, weighted by size
        quota[rng.choice(quota.index, p=(counts / counts.sum()).to_numpy())] += 1
    while quota.sum() > n:
        quota[quota.idxmax()] -= 1
    parts = [df[df["label"] == lab].sample(n=min(int(q), int(counts[lab])), random_state=seed)
             for lab, q in quota.items()]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def balanced_sample(df: pd.DataFrame, n: int, seed: int, labels: list[int] | None = None) -> pd.DataFrame:
    """``n`` rows with the same number of each label (``n // n_labels`` each; fewer when a label has fewer rows,
    every label then cut to the rarest one's count), chosen by ``seed``: Paper B's 1:1 training sets.
    ``labels``: every label of the task (default: those in ``df``); one missing from ``df`` gives no rows."""
    labels = sorted(df["label"].unique()) if labels is None else list(labels)
    if n <= 0 or not labels:
        return df.iloc[:0]
    counts = df["label"].value_counts()
    per = min(n // len(labels), *(int(counts.get(lab, 0)) for lab in labels))
    parts = [df[df["label"] == lab].sample(n=per, random_state=seed) for lab in labels]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _sample(df: pd.DataFrame, n: int, seed: int, balance: str, num_labels: int) -> pd.DataFrame:
    if balance == "balanced":
        return balanced_sample(df, n, seed, labels=list(range(num_labels)))
    return stratified_sample(df, n, seed)


def target_reserve_ids(data: BilingualData, per_label: int, data_seed: int = 0) -> set[int]:
    """Ids held back for the target-language examples: ``per_label`` target training rows of each label (fewer
    if a label has fewer), chosen by ``data_seed``. The source subset is drawn from the other ids, so even a
    source side that wants every row leaves the few-shot draws independent rows to choose from."""
    if per_label <= 0:
        return set()
    parts = [g.sample(n=min(per_label, len(g)), random_state=data_seed)["id"]
             for _, g in data.target_train.groupby("label")]
    return set(pd.concat(parts).astype(int))


def make_pattern(data: BilingualData, pattern: str, n_target: int, seed: int, condition: str = "crosslingual",
                 n_source: int | None = None, n_test: int | None = None, data_seed: int = 0,
                 balance: str = "balanced", target_reserve: int = 0) -> Pattern:
    """Training rows (source subset + ``n_target`` target rows) and the target test rows.

    The source subset and the test subset depend on ``data_seed`` only (fixed across
    seeds); the target examples depend on ``seed``. ``n_test`` caps the test set,
    keeping label balance for binary tasks. ``balance``: ``balanced`` samples source
    and target rows 1:1 by label (Paper B), ``natural`` keeps the corpus's label rates.
    Target rows come only from ids the source subset does not use (nor the test set,
    ``check_no_leakage``); ``target_reserve`` ids per label (``target_reserve_ids``) are
    kept from the source side first, so grids pass the same value for every pattern to
    keep one source subset across patterns.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, not {condition!r}")
    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {BALANCES}, not {balance!r}")
    if condition == "monolingual" and n_target == 0:
        raise ValueError("the monolingual condition needs target examples (n_target > 0)")
    reserved = target_reserve_ids(data, target_reserve, data_seed)
    candidates = data.source_train[~data.source_train["id"].isin(reserved)]
    source = candidates if n_source is None and balance == "natural" else _sample(
        candidates, len(candidates) if n_source is None else n_source, data_seed, balance, data.num_labels)
    pool = data.target_train[~data.target_train["id"].isin(set(source["id"]))]
    target = _sample(pool, n_target, seed, balance, data.num_labels)
    if len(target) < n_target:
        raise ValueError(f"{data.name}: only {len(target)} of {n_target} {balance} target rows left with ids the "
                         f"source side does not use; raise target_reserve or lower n_source")
    parts = [target] if condition == "monolingual" else [source, target]
    train = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    test = data.target_test
    if n_test is not None and n_test < len(test):
        test = stratified_sample(test, n_test, data_seed).sort_values("id").reset_index(drop=True)
    return Pattern(data, pattern, condition, n_target, seed, train, test)


def check_no_leakage(data: BilingualData) -> None:
    """Raise if any test id (or its translation, which shares the id) is among the training rows."""
    test_ids = set(data.target_test["id"])
    for part in ("source_train", "target_train"):
        overlap = test_ids & set(getattr(data, part)["id"])
        if overlap:
            raise ValueError(f"{data.name}: {len(overlap)} test id(s) also in {part}, e.g. {sorted(overlap)[:5]}")

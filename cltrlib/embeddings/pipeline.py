"""The two stages of Paper C as functions of ``EmbeddingSettings`` (``study(profile).embeddings``); notebooks 05
and 06 call these.

Every expensive step goes through the results store (adapters, zero-shot runs,
embeddings), so notebook 06 reuses what notebook 05 trained and evaluated, and a
rerun of either reads stored results in seconds.

Input lengths are fitted from the data (``cltrlib.lengths``) unless the settings force one: the embedding length per
model and corpus over all six languages, the evaluation prompt length per model and task over all six languages,
the tuning length per model and task over its English training prompts. The fitted length is part of every stored
result's key, and ``*_truncation`` return the per-language tables printed beside the results.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from cltrlib.embeddings.alignment import alignment_table
from cltrlib.embeddings.extract import cached_embeddings
from cltrlib.embeddings.pairs import ALL_LANGS, PairSet, build_pairs
from cltrlib.embeddings.pooling import POOLINGS
from cltrlib.embeddings.similarity import similarity_table
from cltrlib.embeddings.tasks import EVAL_LANGS, evaluation_examples, evaluation_ids, train_examples
from cltrlib.embeddings.tuning import TuneConfig, TunedAdapter, train_adapter
from cltrlib.embeddings.zeroshot import accuracy_by_lang, evaluate_zero_shot, majority_baseline
from cltrlib.lengths import fit_max_length, truncation_report
from cltrlib.models import load_tokenizer
from cltrlib.study import EmbeddingSettings


@cache
def _tokenizer(model: str):
    return load_tokenizer(model)


def _fitted(p_length: int | None, cap: int | None, model: str, texts_by_lang: dict) -> int:
    """The forced length if the settings give one, else the longest text of any language (bounded by ``cap``)."""
    return p_length if p_length is not None else fit_max_length(_tokenizer(model), texts_by_lang, cap=cap)


def training_prompts(p: EmbeddingSettings, task: str) -> dict[str, list[str]]:
    return {"en": [e.prompt for e in train_examples(task, p.n_train, seed=p.seed)]}


def evaluation_prompts(p: EmbeddingSettings, task: str) -> dict[str, list[str]]:
    ids = evaluation_ids(task, p.n_test, seed=p.seed)
    return {lang: [e.prompt for e in evaluation_examples(task, lang, ids)] for lang in EVAL_LANGS}


def prompt_length(p: EmbeddingSettings, model: str, task: str, stage: str = "evaluation") -> int:
    """Prompt length for ``stage`` ('tuning': English training prompts; 'evaluation': all six languages)."""
    texts = training_prompts(p, task) if stage == "tuning" else evaluation_prompts(p, task)
    return _fitted(p.prompt_max_length, p.prompt_length_cap, model, texts)


def similarity_pairs(p: EmbeddingSettings, corpus: str) -> PairSet:
    return build_pairs(corpus, p.n_pairs.get(corpus), seed=p.seed, langs=ALL_LANGS)


def embed_length(p: EmbeddingSettings, model: str, pairs: PairSet) -> int:
    """Embedding length for one model and corpus: the longest sentence of any language unless forced/capped."""
    return _fitted(p.embed_max_length, p.embed_length_cap, model, pairs.texts)


def generalization_truncation(p: EmbeddingSettings) -> pd.DataFrame:
    """Per model, task, stage (tuning | evaluation) and language: token lengths and the share truncated."""
    frames = []
    for model in p.models:
        for task in p.tasks:
            for stage, texts in (("tuning", training_prompts(p, task)), ("evaluation", evaluation_prompts(p, task))):
                n = prompt_length(p, model, task, stage)
                rep = truncation_report(_tokenizer(model), texts, n)
                frames.append(rep.assign(model=model, task=task, stage=stage))
    return _front(pd.concat(frames, ignore_index=True), ["model", "task", "stage"])


def embedding_truncation(p: EmbeddingSettings) -> pd.DataFrame:
    """Per model, corpus and language: token lengths of the embedded sentences and the share truncated."""
    frames = []
    for model in p.models:
        for corpus in p.similarity_corpora:
            pairs = similarity_pairs(p, corpus)
            rep = truncation_report(_tokenizer(model), pairs.texts, embed_length(p, model, pairs))
            frames.append(rep.assign(model=model, corpus=corpus))
    return _front(pd.concat(frames, ignore_index=True), ["model", "corpus"])


def _front(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df[cols + [c for c in df.columns if c not in cols]]


def tune_config(p: EmbeddingSettings, model: str, task: str) -> TuneConfig:
    return TuneConfig(model=model, task=task, n_train=p.n_train, epochs=p.epochs, lr=p.lr, batch_size=p.batch_size,
                      max_length=prompt_length(p, model, task, "tuning"), seed=p.seed)


def train_adapters(p: EmbeddingSettings, tasks: tuple[str, ...] | None = None) -> dict[tuple[str, str], TunedAdapter]:
    """{(model, task): adapter} for every model of the profile (trained once, then read back)."""
    device = p.device or "cpu"
    return {(m, t): train_adapter(tune_config(p, m, t), device=device) for m in p.models for t in (tasks or p.tasks)}


def generalization_accuracy(p: EmbeddingSettings, adapters: dict[tuple[str, str], TunedAdapter]) -> pd.DataFrame:
    """Long accuracy table: model, task, condition (base | fine-tuned), adapter, lang, accuracy, n."""
    frames = []
    for model in p.models:
        for task in p.tasks:
            ad = adapters[(model, task)]
            for condition, key, adir in (("base", None, None), ("fine-tuned", ad.key, ad.dir)):
                pred = evaluate_zero_shot(model, task, p.n_test, adapter_key=key, adapter_dir=adir,
                                          max_length=prompt_length(p, model, task), seed=p.seed,
                                          device=p.device)
                acc = accuracy_by_lang(pred)
                acc.insert(2, "condition", condition)
                frames.append(acc)
    return pd.concat(frames, ignore_index=True)


def embedding_alignment(p: EmbeddingSettings, adapters: dict[tuple[str, str], TunedAdapter]) -> pd.DataFrame:
    """Per layer: raw cosine, mean-centred cosine and bitext retrieval P@1 with intervals (issue 17 item 7)."""
    return embedding_similarity(p, adapters, measures="alignment")


def majority_baselines(p: EmbeddingSettings) -> pd.DataFrame:
    """Per task: the constant predictor's accuracy on exactly the evaluated items (the same items in every language,
    so one value per task)."""
    rows = []
    for task in p.tasks:
        ids = evaluation_ids(task, p.n_test, seed=p.seed)
        rows.append(majority_baseline(task, [e.label for e in evaluation_examples(task, "en", ids)]))
    return pd.DataFrame(rows)


def embedding_similarity(p: EmbeddingSettings, adapters: dict[tuple[str, str], TunedAdapter],
                         measures: str = "cosine") -> pd.DataFrame:
    """The long similarity table for every model × corpus × (base, after-tuning) × pooling × layer.

    ``measures='alignment'`` returns ``alignment.alignment_table`` instead (raw and centred cosine with paired
    P-R intervals, retrieval P@1) from the same stored embeddings."""
    frames = []
    for model in p.models:
        after = adapters[(model, p.after_task)]
        for corpus in p.similarity_corpora:
            pairs = similarity_pairs(p, corpus)
            length = embed_length(p, model, pairs)
            states = [("base", None, None)]
            if corpus in p.after_corpora:
                states.append((f"{p.after_task}-ft", after.key, after.dir))
            for name, key, adir in states:
                emb = cached_embeddings(model, corpus, pairs.texts, adapter_key=key, adapter_dir=adir,
                                        poolings=POOLINGS, max_length=length,
                                        batch_size=p.embed_batch_size, device=p.device)
                table = alignment_table if measures == "alignment" else similarity_table
                frames.append(table(model, name, corpus, pairs, emb, POOLINGS))
    return pd.concat(frames, ignore_index=True)


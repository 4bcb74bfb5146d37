"""The two stages of Paper C as functions of ``EmbeddingSettings`` (``study(profile).embeddings``); notebooks 05
and 06 call these.

Every expensive step goes through the results store (adapters, zero-shot runs,
embeddings), so notebook 06 reuses what notebook 05 trained and evaluated, and a
rerun of either reads stored results in seconds.
"""

from __future__ import annotations

import pandas as pd

from cltrlib.embeddings.extract import cached_embeddings
from cltrlib.embeddings.pairs import ALL_LANGS, build_pairs
from cltrlib.embeddings.pooling import POOLINGS
from cltrlib.embeddings.similarity import similarity_table
from cltrlib.embeddings.tuning import TuneConfig, TunedAdapter, train_adapter
from cltrlib.embeddings.zeroshot import accuracy_by_lang, evaluate_zero_shot
from cltrlib.study import EmbeddingSettings


def tune_config(p: EmbeddingSettings, model: str, task: str) -> TuneConfig:
    return TuneConfig(model=model, task=task, n_train=p.n_train, epochs=p.epochs, lr=p.lr, batch_size=p.batch_size,
                      max_length=p.prompt_max_length, seed=p.seed)


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
                                          max_length=p.prompt_max_length, seed=p.seed, device=p.device)
                acc = accuracy_by_lang(pred)
                acc.insert(2, "condition", condition)
                frames.append(acc)
    return pd.concat(frames, ignore_index=True)


def embedding_similarity(p: EmbeddingSettings, adapters: dict[tuple[str, str], TunedAdapter]) -> pd.DataFrame:
    """The long similarity table for every model × corpus × (base, after-tuning) × pooling × layer."""
    frames = []
    for model in p.models:
        after = adapters[(model, p.after_task)]
        for corpus in p.similarity_corpora:
            pairs = build_pairs(corpus, p.n_pairs.get(corpus), seed=p.seed, langs=ALL_LANGS)
            states = [("base", None, None)]
            if corpus in p.after_corpora:
                states.append((f"{p.after_task}-ft", after.key, after.dir))
            for name, key, adir in states:
                emb = cached_embeddings(model, corpus, pairs.texts, adapter_key=key, adapter_dir=adir,
                                        poolings=POOLINGS, max_length=p.embed_max_length,
                                        batch_size=p.embed_batch_size, device=p.device)
                frames.append(similarity_table(model, name, corpus, pairs, emb, POOLINGS))
    return pd.concat(frames, ignore_index=True)


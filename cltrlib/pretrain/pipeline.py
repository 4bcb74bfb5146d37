"""Notebook 07's stage: per (base model, condition), corpus → contamination check → training → evaluation.

``run_stage(study(profile).pretrain)`` does, for every model and condition of the settings:

1. the condition's corpus parts (``conditions``): each source's training documents (the held-out share split off
   by document id), checked for 13-gram overlap with every evaluation set (``contamination``) and decontaminated
   paragraph by paragraph; the check is repeated on the cleaned documents, and a corpus still dirty (or a dirty one
   with ``allow_contaminated``) is refused or trained on knowingly. Stored per source (``pretrain-corpus``), so the
   seconds of n-gram hashing are spent once;
2. for ``ja+vocab``: the base model with Japanese tokens learnt from the Japanese training documents added to its
   tokenizer (``vocab``; new rows the mean of their old subwords' rows), stored as a model folder
   (``pretrain-vocab``) that the condition then trains (under LoRA with the new rows trainable) and whose tokenizer
   every checkpoint carries, so every evaluation below tokenises with it;
3. packing to the token budget and training (``train.run_pretraining``: resumable, stored by configuration, a
   progress bar with loss and tokens/s);
4. every checkpoint along the run, the base model included (0 tokens): held-out Japanese and English perplexity
   and bits per character (comparable across tokenizers) with bootstrap CIs (``perplexity``), and the soft EN/JA
   measure (``cltrlib.codeeval.likelihood``: per-problem
   mean log-likelihood of the canonical solution after the HumanEval and the JHumanEval prompt; on the base and
   the final models only when ``soft_every_checkpoint`` is off);
5. the base and the final model of each condition in ``pass1_conditions``: pass@1 on HumanEval and JHumanEval
   through the normal code-eval path (``run_generation`` + ``run_evaluation`` in the sandbox), on the first
   ``pass1_limit`` problems.

Everything is stored by configuration, so a rerun reads it back in seconds. ``cltrlib.pretrain.report`` turns the
result into our own Paper A Table 2.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cltrlib.pretrain import conditions as cond_mod
from cltrlib.pretrain.corpus import Document
from cltrlib.pretrain.packing import Part, fingerprint, split_documents
from cltrlib.pretrain.train import PretrainRun, run_pretraining
from cltrlib.store import RunStore

CORPUS_VERSION = "1"  # bump when corpus preparation changes what a source yields
VOCAB_VERSION = "1"  # bump when vocabulary expansion changes what it produces


@dataclass
class PreparedSource:
    """One source's training documents after the contamination check, and the check before and after."""

    name: str
    docs: list[Document]
    held_out: list[Document]
    report: pd.DataFrame  # per evaluation set: items, contaminated before / after decontamination
    paragraphs_dropped: int
    raw_documents: int


@dataclass
class ConditionRun:
    """A trained (or read-back) condition: its run and what it trained on."""

    model: str
    condition: str
    run: PretrainRun
    parts: dict  # part name -> {documents, share}
    mixture: dict  # part name -> {blocks, tokens}


@dataclass
class StageResult:
    """Everything notebook 07 shows: runs, per-checkpoint evaluations, pass@1 summaries, soft-measure frames."""

    settings: object
    runs: list[ConditionRun]
    checkpoints: pd.DataFrame  # one row per (base, condition, checkpoint)
    pass1: dict = field(default_factory=dict)  # (base, condition) -> {"en": summary, "ja": summary}
    soft: dict = field(default_factory=dict)  # (base, condition, tokens) -> {"en": frame, "ja": frame}
    sources: dict = field(default_factory=dict)  # source name -> PreparedSource


def _eval_fingerprint() -> str:
    from cltrlib.pretrain.contamination import evaluation_items

    return fingerprint([Document(f"{i.eval_set}/{i.item_id}", "", i.text, "") for i in evaluation_items()])


@functools.lru_cache(maxsize=8)
def prepare_source(name: str, source: str = "manpages", allow_contaminated: bool = False) -> PreparedSource:
    """The training documents of one source (``ja``, ``en``, ``parallel``), decontaminated unless
    ``allow_contaminated``; raises ``ContaminationError`` if decontamination left an overlap (it should not)."""
    from cltrlib.pretrain import contamination
    from cltrlib.pretrain.corpus import read_documents, write_documents

    docs = cond_mod.source_documents(name, source)
    train, held = split_documents(docs)
    key = {"name": name, "source": source, "docs": fingerprint(train), "eval": _eval_fingerprint(),
           "ngram": contamination.NGRAM, "allow_contaminated": allow_contaminated, "version": CORPUS_VERSION}
    store = RunStore("pretrain-corpus", key, label=f"{name}-{Path(source).name}")
    clean_file = store.path / "documents.jsonl.gz"
    with store.lock():
        if not store.is_complete():
            before = contamination.check(train)
            if allow_contaminated:
                clean, dropped = list(train), 0
            else:
                clean, dropped = contamination.decontaminate(train)
            after = contamination.check(clean)
            if not allow_contaminated:
                after.raise_if_dirty()
            table = before.summary()[["eval_set", "items", "contaminated"]].rename(
                columns={"contaminated": "contaminated_before"})
            table["contaminated_after"] = after.summary()["contaminated"].to_numpy()
            write_documents(clean_file, clean)
            store.append(table.to_dict("records"))
            store.mark_complete({"paragraphs_dropped": dropped, "raw_documents": len(train),
                                 "documents": len(clean)})
    summary = store.summary()
    return PreparedSource(name, list(read_documents(clean_file)), held, pd.DataFrame(store.records()),
                          summary["paragraphs_dropped"], summary["raw_documents"])


def contamination_table(prepared: dict[str, PreparedSource]) -> pd.DataFrame:
    """One row per (source, evaluation set): items checked, items sharing a 13-gram with the source's training
    documents before and after decontamination, and the paragraphs dropped."""
    rows = []
    for name, p in prepared.items():
        t = p.report.assign(source=name, documents=len(p.docs), raw_documents=p.raw_documents,
                            paragraphs_dropped=p.paragraphs_dropped)
        rows.append(t[["source", "raw_documents", "documents", "paragraphs_dropped", "eval_set", "items",
                       "contaminated_before", "contaminated_after"]])
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


@dataclass(frozen=True)
class ExpandedModel:
    """A base model with Japanese tokens added (``vocab``), stored as a plain model folder with its tokenizer."""

    folder: str
    old_vocab_size: int
    new_tokens: int
    tokens_per_ja_char_before: float  # on the first 200 mostly-Japanese training documents
    tokens_per_ja_char_after: float


def expanded_model(model: str, docs: list[Document], n_new: int, bpe_size: int) -> ExpandedModel:
    """``model`` with up to ``n_new`` Japanese tokens learnt (BPE of ``bpe_size`` pieces) from ``docs`` added, new
    rows mean-initialised; stored by (model revision, documents, sizes), so the seconds of BPE training, and the
    folder every ``ja+vocab`` run starts from, are made once."""
    import torch
    from transformers import AutoModelForCausalLM

    from cltrlib.models import load_tokenizer, model_revision, resolve_model_path
    from cltrlib.pretrain import vocab

    key = {"model": model, "model_revision": model_revision(model), "docs": fingerprint(docs), "n_new": n_new,
           "bpe_size": bpe_size, "version": VOCAB_VERSION}
    store = RunStore("pretrain-vocab", key, label=f"{Path(model).name}-vocab")
    folder = store.path / f"{Path(model).name}+ja-vocab"
    with store.lock():
        if not store.is_complete():
            tok = load_tokenizer(model, padding_side="right")
            lm = AutoModelForCausalLM.from_pretrained(resolve_model_path(model), dtype=torch.float32)
            sample = docs[:200]
            before = vocab.tokens_per_japanese_char(tok, sample)
            new = vocab.learn_japanese_tokens(docs, tok, n_new, vocab_size=bpe_size)
            if not new:
                raise ValueError(f"no Japanese token to add: the {len(docs)} documents hold no multi-character "
                                 "kana/kanji piece the tokenizer lacks")
            exp = vocab.expand(lm, tok, new)
            after = vocab.tokens_per_japanese_char(tok, sample)
            tmp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            lm.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, folder)
            store.append([{"token": t, "id": tok.convert_tokens_to_ids(t)} for t in new])
            store.mark_complete({"old_vocab_size": exp.old_vocab_size, "new_tokens": len(new),
                                 "tokens_per_ja_char_before": before, "tokens_per_ja_char_after": after})
    summ = store.summary()
    return ExpandedModel(str(folder), summ["old_vocab_size"], summ["new_tokens"], summ["tokens_per_ja_char_before"],
                         summ["tokens_per_ja_char_after"])


def train_condition(model: str, condition: str, s, progress: bool = True) -> ConditionRun:
    """Pack the condition's mixture to the budget and train (or resume, or read back) its run; for a condition
    with vocabulary expansion, from the expanded model (``expanded_model``), packed with its tokenizer."""
    from cltrlib.models import load_tokenizer
    from cltrlib.pretrain.packing import mixture

    cond = cond_mod.condition(condition)
    parts = []
    for name, share in cond.parts:
        prepared = prepare_source(name, s.source, s.allow_contaminated)
        parts.append(Part(name, tuple(prepared.docs), share))
    cfg = s.train_config(model, condition)
    expansion = None
    if cond.expand_vocab:
        ja = prepare_source("ja", s.source, s.allow_contaminated)
        expansion = expanded_model(model, ja.docs, s.vocab_new_tokens, s.vocab_bpe_size)
        # LoRA leaves the embeddings frozen: the new rows must train, or the new tokens keep their initial rows
        cfg = dataclasses.replace(cfg, model=expansion.folder,
                                  trainable_from=expansion.old_vocab_size if s.method == "lora" else None)
    tok = load_tokenizer(cfg.model, padding_side="right")
    blocks, mix = mixture(parts, tok, s.seq_len, s.tokens, seed=s.seed)
    corpus_key = fingerprint([d for p in parts for d in p.docs]) + ":" + ",".join(
        f"{p.name}={p.share}" for p in parts)
    if expansion is not None:
        mix = {**mix, "vocabulary": dataclasses.asdict(expansion)}
    run = run_pretraining(cfg, blocks, corpus_key, mixture_summary=mix, progress=progress, bf16=s.bf16,
                          chunked_loss=s.chunked_loss)
    return ConditionRun(model, condition, run, {p.name: {"documents": len(p.docs), "share": p.share}
                                                  for p in parts}, mix)


def evaluate_checkpoint(folder: str, s, held_out: dict[str, list[Document]], progress: bool = True,
                        soft: bool = True) -> tuple[dict, dict]:
    """(perplexity and soft-measure numbers, the soft measure's per-problem frames) of one checkpoint; without
    ``soft`` the soft-measure numbers are NaN and the frames empty."""
    from cltrlib.codeeval.likelihood import score_canonical
    from cltrlib.metrics import bootstrap_diff_ci
    from cltrlib.pretrain.perplexity import held_out_perplexity

    row: dict = {}
    for lang, docs in held_out.items():
        ppl = held_out_perplexity(folder, docs, seq_len=s.seq_len, max_blocks=s.ppl_blocks, seed=s.seed)
        row.update({f"ppl_{lang}": ppl["perplexity"], f"ppl_{lang}_low": ppl["ppl_low"],
                    f"ppl_{lang}_high": ppl["ppl_high"], f"bpc_{lang}": ppl["bits_per_char"],
                    f"bpc_{lang}_low": ppl["bpc_low"], f"bpc_{lang}_high": ppl["bpc_high"],
                    f"ppl_{lang}_blocks": ppl["blocks"]})
    if not soft:
        return {**row, "soft_en": math.nan, "soft_ja": math.nan, "soft_gap": math.nan, "soft_gap_low": math.nan,
                "soft_gap_high": math.nan, "soft_problems": 0}, {}
    frames = {lang: score_canonical(folder, ds, limit=s.soft_limit, progress=progress)
              for lang, ds in (("en", "humaneval"), ("ja", "jhumaneval"))}
    both = frames["en"].merge(frames["ja"], on="task_id", suffixes=("_en", "_ja"))
    gap, low, high = bootstrap_diff_ci(both["mean_logprob_en"].to_numpy(), both["mean_logprob_ja"].to_numpy(),
                                       seed=s.seed)
    row.update({"soft_en": float(both["mean_logprob_en"].mean()), "soft_ja": float(both["mean_logprob_ja"].mean()),
                "soft_gap": gap, "soft_gap_low": low, "soft_gap_high": high, "soft_problems": len(both)})
    return row, frames


def pass1(model: str, s, progress: bool = True) -> dict:
    """pass@1 summaries of ``model`` (a name or a checkpoint folder) on HumanEval and JHumanEval, first
    ``pass1_limit`` problems, through notebook 02's stored generation and sandboxed evaluation."""
    from cltrlib.codeeval.runs import run_evaluation
    from cltrlib.codegen.run import GenerationConfig, run_generation

    out = {}
    for lang, ds in (("en", "humaneval"), ("ja", "jhumaneval")):
        cfg = GenerationConfig(model=model, dataset=ds, limit=s.pass1_limit, max_new_tokens=s.max_new_tokens,
                               batch_size=s.gen_batch_size)
        if progress:
            print(f"[pretrain] pass@1 {Path(model).name} / {ds}", flush=True)
        out[lang] = run_evaluation(run_generation(cfg, progress=progress), timeout=s.timeout, progress=progress)
    return out


def run_stage(s, progress: bool = True) -> StageResult:
    """Train every (model, condition) of the settings ``s`` and evaluate every checkpoint (see the module doc)."""
    sources = {name for c in s.conditions for name, _ in cond_mod.condition(c).parts}
    prepared = {name: prepare_source(name, s.source, s.allow_contaminated) for name in sorted(sources)}
    held = {lang: prepare_source(lang, s.source, s.allow_contaminated).held_out for lang in ("ja", "en")}
    runs, rows, soft, p1 = [], [], {}, {}
    for model in s.models:
        for c in s.conditions:
            if progress:
                print(f"[pretrain] {model} / {c}", flush=True)
            runs.append(train_condition(model, c, s, progress=progress))
        # The base by its name, so its stored perplexity, log-likelihood and pass@1 runs are shared with other stages
        base_row, base_frames = evaluate_checkpoint(model, s, held, progress)
        soft[(model, "base", 0)] = base_frames
        rows.append({"base": model, "condition": "base", "tokens": 0, "folder": model, **base_row})
        p1[(model, "base")] = pass1(model, s, progress)
        for cr in (r for r in runs if r.model == model):
            along = cr.run.checkpoints()[1:]
            for tokens, folder in along:
                with_soft = s.soft_every_checkpoint or tokens == along[-1][0]
                row, frames = evaluate_checkpoint(folder, s, held, progress, soft=with_soft)
                if with_soft:
                    soft[(model, cr.condition, tokens)] = frames
                log = [r for r in cr.run.log() if r["tokens"] <= tokens]
                rows.append({"base": model, "condition": cr.condition, "tokens": tokens, "folder": folder,
                             "train_loss": log[-1]["loss"] if log else float("nan"), **row})
            if s.pass1_conditions is None or cr.condition in s.pass1_conditions:
                p1[(model, cr.condition)] = pass1(cr.run.final, s, progress)
    return StageResult(s, runs, pd.DataFrame(rows), p1, soft, prepared)

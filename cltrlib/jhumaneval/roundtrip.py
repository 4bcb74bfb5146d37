"""The reference-free round-trip check: back-translate a Japanese set's docstring prose to English with the
translating model itself, and score the back-translation with chrF against HumanEval's English prose.

Why: chrF against the published JHumanEval needs a human-reviewed reference, which a new target language does not
have; the round trip needs only the English. It is computed the same way for the published set, the reference point
(a good translation should round-trip at least as well as the published one does through the same model).

What is back-translated: per task, the docstring prose (``quality.prose_lines``: docstring lines minus examples) in
paragraphs (blank-line separated, lines joined), one request per unique paragraph through llama.cpp's server (greedy,
cached like the forward translation: the cache key holds the direction), with an "Japanese: / English:" few-shot
prompt whose demonstrations are the published JHumanEval / HumanEval prose of ``SHOT_TASKS`` (the prompt builder the
forward translation uses). The shot tasks are neither back-translated nor scored. A paragraph with no Japanese
character (a segment the build left in English) is passed through unchanged, so it round-trips perfectly: the table
counts those, and the round-trip score must be read with the validator's ``no_japanese`` findings.

The back-translations are committed beside the builds (``data/builds/<source>.roundtrip-<model>.jsonl`` + a sidecar
with the configuration and the source file's sha256) and read back when both match, so ``make reproduce`` needs no
server. The file holds only the English side; the Japanese paragraphs are re-derived from the source on reading (the
sha256 guarantees they are the ones that were back-translated), so no text of the published set (a data-mirror file)
is copied into the repository.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cltrlib.data.problems import load_humaneval, normalise_task_id, read_jsonl
from cltrlib.jhumaneval.backends import SHOT_TASKS, ServedModelTranslator, translate_texts
from cltrlib.jhumaneval.cache import TranslationCache
from cltrlib.jhumaneval.mt import BUILDS_DIR, matching_build, offline_translator
from cltrlib.jhumaneval.quality import chrf_from_stats, chrf_stats, chrf_table, prose, prose_lines
from cltrlib.jhumaneval.validate import _JA_CHAR
from cltrlib.metrics import bootstrap_statistic

ROUNDTRIP_VERSION = "2"  # bump when the paragraphs, the pass-through rule or the stored rows change
# 2: the stored rows hold only the English back-translations; the Japanese paragraphs are re-derived from the source
# (the published set's text is the data mirror's, which the repository must not copy)


def paragraphs(prompt: str, reference) -> list[str]:
    """The prose paragraphs of ``prompt`` (a translation of ``reference``), each on one line."""
    out: list[list[str]] = [[]]
    for ln in prose_lines(prompt, reference):
        if ln:
            out[-1].append(ln)
        elif out[-1]:
            out.append([])
    return [" ".join(p) for p in out if p]


def roundtrip_path(source: Path, model: str, builds_dir: Path | None = None) -> Path:
    """Where the back-translation of ``source`` (a build or the published file) by ``model`` is committed."""
    stem = Path(source).name.removesuffix(".gz").removesuffix(".jsonl")
    return (Path(builds_dir) if builds_dir is not None else BUILDS_DIR) / f"{stem}.roundtrip-{model}.jsonl"


def roundtrip_config(model: str, source: Path) -> dict:
    """What a stored back-translation depends on: the translator's identity (served model, GGUF sha256, prompt hash),
    the direction, the shots, and the source file's bytes."""
    tr = offline_translator(model)
    return {"backend": "llama.cpp server (llama-cpp-python)", "model": model, "translator": tr.name,
            "mode": tr.mode, "prompt_id": tr.prompt_id, "direction": "ja->en", "shot_tasks": list(SHOT_TASKS),
            "source": Path(source).name, "source_sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
            "roundtrip_version": ROUNDTRIP_VERSION}


def back_translate(rows: Sequence[dict], translator, cache: TranslationCache | None = None,
                   exclude: Sequence[str] = SHOT_TASKS, progress: bool = True) -> list[dict]:
    """One row per task (``exclude`` left out): {"task_id", "ja": [paragraphs], "en": [back-translations]}."""
    refs = {p.task_id: p for p in load_humaneval()}
    excluded = {normalise_task_id(t) for t in exclude}
    tasks = []
    for r in rows:
        tid = normalise_task_id(str(r["task_id"]))
        if tid not in excluded:
            tasks.append((tid, paragraphs(r["prompt"], refs[tid])))
    todo = list(dict.fromkeys(p for _, paras in tasks for p in paras if _JA_CHAR.search(p)))
    done = dict(zip(todo, translate_texts(translator, todo, src="ja", tgt="en", cache=cache, progress=progress),
                    strict=True))
    return [{"task_id": tid, "ja": paras, "en": [done.get(p, p) for p in paras]} for tid, paras in tasks]


def with_paragraphs(rows: Sequence[dict], source: Path) -> list[dict]:
    """Stored rows ({"task_id", "en"}) with the Japanese paragraphs they translate, re-derived from ``source``."""
    refs = {p.task_id: p for p in load_humaneval()}
    prompts = {normalise_task_id(str(r["task_id"])): r["prompt"] for r in read_jsonl(source)}
    out = []
    for r in rows:
        paras = paragraphs(prompts[r["task_id"]], refs[r["task_id"]])
        if len(paras) != len(r["en"]):
            raise ValueError(f"{source}: {r['task_id']} has {len(paras)} prose paragraphs but its stored round trip "
                             f"{len(r['en'])}; delete the .roundtrip file to back-translate again")
        out.append({"task_id": r["task_id"], "ja": paras, "en": r["en"]})
    return out


def ensure_roundtrips(model: str, sources: Mapping[str, Path], builds_dir: Path | None = None, threads: int = 1,
                      cache: TranslationCache | None = None, force: bool = False,
                      progress: bool = True) -> dict[str, dict]:
    """The back-translation of each source ({label: path}) by ``model``: read when committed with this configuration,
    else made through one llama.cpp server. Returns {label: {"path", "meta", "rows", "built"}}."""
    out: dict[str, dict] = {}
    todo = {}
    for label, src in sources.items():
        path, cfg = roundtrip_path(src, model, builds_dir), roundtrip_config(model, src)
        meta = None if force else matching_build(path, cfg)
        if meta is not None:
            out[label] = {"path": path, "meta": meta, "rows": with_paragraphs(read_jsonl(path), src), "built": False}
        else:
            todo[label] = (src, path, cfg)
    if not todo:
        return out
    from cltrlib.providers.llamacpp import LlamaCppServer

    cache = cache if cache is not None else TranslationCache()
    with LlamaCppServer(model, threads=threads, n_ctx=2048) as srv:
        tr = ServedModelTranslator.for_server(srv)
        for label, (src, path, cfg) in todo.items():
            assert tr.name == cfg["translator"], (tr.name, cfg["translator"])
            t0, before, usage0 = time.monotonic(), tr.n_requests, dict(tr.usage)
            if progress:
                print(f"[roundtrip] {label}: back-translating with {model}", flush=True)
            rows = back_translate(read_jsonl(src), tr, cache=cache, progress=progress)
            path.write_text("".join(json.dumps({"task_id": r["task_id"], "en": r["en"]}, ensure_ascii=False) + "\n"
                                    for r in rows), encoding="utf-8")
            paras = [p for r in rows for p in r["ja"]]
            meta = {"config": cfg, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "n_tasks": len(rows),
                    "n_paragraphs": len(paras), "n_unique_paragraphs": len(set(paras)),
                    "n_passed_through": sum(not _JA_CHAR.search(p) for p in paras),
                    "cost": {"requests": tr.n_requests - before, "wall_s": round(time.monotonic() - t0, 1),
                             **{k: v - usage0.get(k, 0) for k, v in tr.usage.items()},
                             "note": "this run only (paragraphs already in the cache cost nothing); "
                                     f"{threads} llama.cpp thread(s)"}}
            Path(f"{path}.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
            out[label] = {"path": path, "meta": meta, "rows": rows, "built": True}
    return out


def english_prose() -> dict[str, str]:
    """HumanEval's English docstring prose per task (the round trip's reference)."""
    return {p.task_id: prose(p.prompt, p) for p in load_humaneval()}


def _task_stats(hyp: Mapping[str, str], ref: Mapping[str, str], tasks: Sequence[str]) -> np.ndarray:
    return chrf_stats([hyp[t] for t in tasks], [ref[t] for t in tasks])


def roundtrip_scores(roundtrips: Mapping[str, dict], exclude: Sequence[str] = SHOT_TASKS, reference: str = "published",
                     n_boot: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(corpus table, per-task table): chrF of each back-translation against HumanEval's English prose, corpus-level
    with a bootstrap CI over tasks (``quality.chrf_table``), over the tasks every source has; each build minus
    ``reference`` (the published set) with a paired bootstrap CI (tasks resampled jointly); how many paragraphs were
    passed through untranslated (no Japanese: they round-trip perfectly) and the chrF with those scored as empty
    (what the build's Japanese alone earns)."""
    hyps = {label: {r["task_id"]: "\n".join(r["en"]) for r in v["rows"]} for label, v in roundtrips.items()}
    common = set.intersection(*(set(h) for h in hyps.values())) if hyps else set()
    ref = {t: s for t, s in english_prose().items() if t in common}
    corpus, per_task = chrf_table(hyps, ref, exclude, n_boot, seed)
    if not corpus.empty:
        meta = {label: v["meta"] for label, v in roundtrips.items()}
        tasks = [t for t in ref if t not in {normalise_task_id(x) for x in exclude}]
        base = _task_stats(hyps[reference], ref, tasks) if reference in hyps else None
        diffs, empty = [], []
        for b in corpus["build"]:
            if base is None or b == reference:
                diffs.append((np.nan, np.nan, np.nan))
            else:
                diffs.append(bootstrap_statistic(lambda x, y: chrf_from_stats(x) - chrf_from_stats(y),
                                                 _task_stats(hyps[b], ref, tasks), base, n_boot=n_boot, seed=seed))
            own = {r["task_id"]: "\n".join(e if _JA_CHAR.search(j) else "" for j, e in zip(r["ja"], r["en"],
                                                                                          strict=True))
                   for r in roundtrips[b]["rows"]}
            empty.append(chrf_from_stats(_task_stats(own, ref, tasks)))
        corpus[f"minus {reference}"] = [d[0] for d in diffs]
        corpus["diff CI low"] = [d[1] for d in diffs]
        corpus["diff CI high"] = [d[2] for d in diffs]
        corpus["paragraphs"] = [meta[b]["n_paragraphs"] for b in corpus["build"]]
        corpus["passed through (no Japanese)"] = [meta[b]["n_passed_through"] for b in corpus["build"]]
        corpus["chrF, passed-through as empty"] = empty
        corpus["back-translator"] = [f"{meta[b]['config']['model']} ({meta[b]['config']['mode']}, ja->en)"
                                     for b in corpus["build"]]
    return corpus, per_task.rename(columns={"prose": "back-translation", "published": "English"})

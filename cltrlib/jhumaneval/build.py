"""HumanEval + a translation backend → a JHumanEval file in the published schema.

Only text segments are translated; code, examples and layout are HumanEval's own
bytes, so ``prompt`` differs from ``prompt_en`` only in prose, and ``prompt_en``,
``entry_point``, ``canonical_solution`` and ``test`` are HumanEval's exactly.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cltrlib.data.problems import Problem, load_humaneval, rebuilt_jhumaneval_path
from cltrlib.jhumaneval.backends import OpenAIRepairer, Translator, translate_texts
from cltrlib.jhumaneval.cache import TranslationCache
from cltrlib.jhumaneval.glossary import Glossary
from cltrlib.jhumaneval.memory import TranslationMemory
from cltrlib.jhumaneval.segment import reassemble, segment_prompt


def default_build_path() -> Path:
    """Where ``build`` writes by default and where the data set name ``jhumaneval-rebuilt`` points."""
    return rebuilt_jhumaneval_path()


@dataclass
class BuildReport:
    out: str
    backend: str
    n_tasks: int = 0
    n_text_segments: int = 0
    n_translated: int = 0
    n_parse_ok: int = 0
    untranslated: list[dict] = field(default_factory=list)  # task_id, segment, reason
    dropped: list[dict] = field(default_factory=list)  # memory paragraphs with no English counterpart
    glossary: list[dict] = field(default_factory=list)  # task_id, problem
    post_edited: list[dict] = field(default_factory=list)  # reviewed fixes applied: task_id, find, replace, note
    repair: dict | None = None  # findings per repair round and post-edits (``cltrlib.jhumaneval.repair.RepairLog``)
    translator_requests: int | None = None  # requests the translator sent (a build served from the cache: 0)

    def to_dict(self) -> dict:
        return asdict(self)


def _write_jsonl(rows: Sequence[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    if out.suffix == ".gz":
        data = gzip.compress(data, mtime=0)  # mtime 0: same content, same bytes, same fingerprint
    tmp.write_bytes(data)
    os.replace(tmp, out)


def _row(problem: Problem, prompt: str) -> dict:
    num = problem.task_id.rsplit("/", 1)[-1]
    return {"task_id": f"JHumanEval/{num}", "prompt_en": problem.prompt, "prompt": prompt,
            "entry_point": problem.entry_point, "canonical_solution": problem.canonical_solution,
            "test": problem.test}


def build_jhumaneval(backend: str | Translator = "memory", out: str | Path | None = None, *,
                     memory: TranslationMemory | None = None, glossary: Glossary | None = None,
                     cache: TranslationCache | None = None, repairer: OpenAIRepairer | None = None,
                     limit: int | None = None, src: str = "en", tgt: str = "ja",
                     progress: bool = True, repair_rounds: int | None = None) -> BuildReport:
    """Build and write the file; return what was (not) translated and why.

    ``repair_rounds`` (a translator with ``translate_one`` only): that many validator-driven repair rounds, then the
    deterministic post-edits (``cltrlib.jhumaneval.repair``); None builds the raw translation."""
    out = Path(out) if out is not None else default_build_path()
    problems = load_humaneval()[:limit] if limit else load_humaneval()
    glossary = glossary if glossary is not None else Glossary.load()
    name = backend if isinstance(backend, str) else backend.name
    report = BuildReport(str(out), name, n_tasks=len(problems))
    segmented = [segment_prompt(p.prompt) for p in problems]
    per_task: list[dict[int, str]] = []
    if backend == "memory":
        memory = memory or TranslationMemory.published()
        for p, sp in zip(problems, segmented, strict=True):
            al = memory.align(p.task_id, sp)
            per_task.append(al.translations)
            report.untranslated += [{"task_id": p.task_id, "segment": sp.segments[i].source[:120], "reason": r}
                                    for i, r in al.unaligned]
            report.dropped += [{"task_id": p.task_id, "text": d[:120]} for d in al.dropped]
    else:
        if isinstance(backend, str):
            raise ValueError(f"backend {backend!r}: pass a Translator (see cltrlib.jhumaneval.backends.make_translator)")
        cache = cache if cache is not None else TranslationCache()
        sources = [s.source for sp in segmented for _, s in sp.text_segments()]
        translated = translate_texts(backend, sources, src, tgt, cache=cache, progress=progress)
        it = iter(translated)
        for sp in segmented:
            per_task.append({i: next(it) for i, _ in sp.text_segments()})
        if repair_rounds is not None:
            from cltrlib.jhumaneval.repair import repair

            if not hasattr(backend, "translate_one"):
                raise ValueError(f"repair rounds need a translator that re-translates one segment with a finding "
                                 f"(llama.cpp-served or HF models); {name} has none: build without repair rounds, "
                                 "or use --repair with an OpenAI-compatible repair model")

            per_task, log = repair(backend, problems, segmented, per_task, rounds=repair_rounds, src=src, tgt=tgt,
                                   cache=cache, progress=progress)
            report.repair = log.to_dict()
        report.translator_requests = getattr(backend, "n_requests", None)
    if repairer is not None:
        items, where = [], []
        for k, sp in enumerate(segmented):
            code = sp.code_outside_docstrings()
            for i, tr in per_task[k].items():
                items.append(OpenAIRepairer.item(sp.segments[i].source, tr, code))
                where.append((k, i))
        fixed = translate_texts(repairer, items, src, tgt, cache=cache or TranslationCache(), progress=progress)
        for (k, i), tr in zip(where, fixed, strict=True):
            per_task[k][i] = tr
    rows = []
    for p, sp, trs in zip(problems, segmented, per_task, strict=True):
        edited = {}
        for i, tr in trs.items():
            fixed, probs = glossary.post_edit(sp.segments[i].source, tr)
            fixed, applied = glossary.apply_post_edits(p.task_id, fixed)
            report.post_edited += [{"task_id": p.task_id, "find": e.find, "replace": e.replace, "note": e.note}
                                   for e in applied]
            edited[i] = fixed
            report.glossary += [{"task_id": p.task_id, "problem": pr} for pr in probs]
        report.n_text_segments += len(sp.text_segments())
        report.n_translated += len(edited)
        prompt = reassemble(sp, edited)
        try:
            ast.parse(prompt + p.canonical_solution)
            report.n_parse_ok += 1
        except SyntaxError:
            pass
        rows.append(_row(p, prompt))
    _write_jsonl(rows, out)
    return report

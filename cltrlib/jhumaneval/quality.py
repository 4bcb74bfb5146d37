"""How good is a JHumanEval build's Japanese? chrF against the published, human-reviewed JHumanEval, per task and over
the corpus with a bootstrap CI over tasks; the worst tasks side by side.

What is compared, per task: the **prose** of the prompt's docstrings (the lines that are not examples, as the
validator finds them), joined; the same function extracts it from the build and from the published file, so layout
differences (line breaks, indentation) do not count (chrF ignores whitespace by default). The few-shot translator's
demonstration tasks (``SHOT_TASKS``) are left out of every score: their published prose was in the prompt.

chrF is sacrebleu's (character 6-grams, word order 0: chrF, not chrF++), on a 0-100 scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cltrlib.data.problems import Problem, load_humaneval, normalise_task_id
from cltrlib.jhumaneval.examples import match_examples
from cltrlib.jhumaneval.segment import defined_functions, segment_prompt
from cltrlib.metrics import bootstrap_statistic


def prose_lines(prompt: str, reference: Problem) -> list[str]:
    """The docstring lines of ``prompt`` (a translation of ``reference``) minus its examples, blank lines kept (they
    separate paragraphs)."""
    from cltrlib.jhumaneval.validate import _docstring_lines

    functions = defined_functions(reference.prompt)
    lines = [ln for doc in _docstring_lines(prompt) for ln in doc]
    used = {m.ja_index for m in match_examples(segment_prompt(reference.prompt).example_lines(), lines, functions)}
    return [ln for j, ln in enumerate(lines) if j not in used]


def prose(prompt: str, reference: Problem) -> str:
    """The docstring prose of ``prompt`` (a translation of ``reference``): docstring lines minus examples."""
    return "\n".join(ln for ln in prose_lines(prompt, reference) if ln)


def prose_by_task(rows: Sequence[dict], reference: Sequence[Problem] | None = None) -> dict[str, str]:
    refs = {p.task_id: p for p in (reference if reference is not None else load_humaneval())}
    out = {}
    for r in rows:
        tid = normalise_task_id(str(r["task_id"]))
        out[tid] = prose(r["prompt"], refs[tid])
    return out


def chrf_stats(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-task chrF n-gram match statistics (one row per hypothesis/reference pair): what ``chrf_from_stats``
    sums, so a bootstrap over tasks resamples rows."""
    from sacrebleu.metrics import CHRF

    return np.array(CHRF()._extract_corpus_statistics(list(hypotheses), [list(references)]), dtype=float)


def chrf_from_stats(stats: np.ndarray) -> float:
    """Corpus chrF from per-task n-gram match statistics (rows summed), as ``sacrebleu.corpus_chrf`` computes it:
    the bootstrap resamples rows instead of re-extracting n-grams 1000 times."""
    from sacrebleu.metrics import CHRF

    return float(CHRF()._compute_score_from_stats(list(stats.sum(axis=0))).score)


def chrf_scores(builds: Mapping[str, Sequence[dict]], published: Sequence[dict], exclude: Sequence[str] = (),
                n_boot: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(corpus table, per-task table) of each build's chrF against ``published``.

    The corpus table has one row per build: corpus chrF with a percentile bootstrap CI over tasks
    (``metrics.bootstrap_statistic``, tasks resampled), the mean of per-task chrF, n tasks. The per-task table has
    task_id, build, chrf, and each build's prose beside the published one."""
    return chrf_table({name: prose_by_task(build) for name, build in builds.items()}, prose_by_task(published),
                      exclude, n_boot, seed)


def chrf_table(hypotheses: Mapping[str, Mapping[str, str]], reference: Mapping[str, str], exclude: Sequence[str] = (),
               n_boot: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``chrf_scores`` on texts already extracted: {build: {task_id: text}} against {task_id: text} (the round-trip
    check scores back-translations against HumanEval's English prose with it)."""
    import sacrebleu

    excluded = {normalise_task_id(t) for t in exclude}
    tasks = [t for t in reference if t not in excluded]
    rows, per = [], []
    for name, hyp in hypotheses.items():
        common = [t for t in tasks if t in hyp]
        h = np.array([hyp[t] for t in common], dtype=object)
        r = np.array([reference[t] for t in common], dtype=object)
        stats = chrf_stats(h, r)
        assert abs(chrf_from_stats(stats) - sacrebleu.corpus_chrf(list(h), [list(r)]).score) < 1e-9
        point, low, high = bootstrap_statistic(chrf_from_stats, stats, n_boot=n_boot, seed=seed)
        sent = [sacrebleu.sentence_chrf(a, [b]).score for a, b in zip(h, r, strict=True)]
        rows.append({"build": name, "n_tasks": len(common), "chrF": point, "ci_low": low, "ci_high": high,
                     "mean_task_chrF": float(np.mean(sent))})
        per += [{"task_id": t, "build": name, "chrf": s, "prose": hyp[t], "published": reference[t]}
                for t, s in zip(common, sent, strict=True)]
    return pd.DataFrame(rows), pd.DataFrame(per)


def worst_tasks(per_task: pd.DataFrame, build: str, n: int = 10, others: Sequence[str] = ()) -> pd.DataFrame:
    """The ``n`` tasks with the lowest chrF in ``build``: English prose, published Japanese, the build's, and the
    same task in ``others`` (e.g. the repaired build) side by side."""
    en = {p.task_id: p for p in load_humaneval()}
    sub = per_task[per_task["build"] == build].nsmallest(n, "chrf")
    out = []
    for _, r in sub.iterrows():
        row = {"task_id": r["task_id"], "chrF": round(float(r["chrf"]), 1),
               "English": prose(en[r["task_id"]].prompt, en[r["task_id"]]), "published": r["published"],
               build: r["prose"]}
        for o in others:
            m = per_task[(per_task["build"] == o) & (per_task["task_id"] == r["task_id"])]
            if len(m):
                row[o] = f"{m['prose'].iloc[0]}  [chrF {m['chrf'].iloc[0]:.0f}]"
        out.append(row)
    return pd.DataFrame(out)


def side_by_side_html(frame: pd.DataFrame, title: str) -> str:
    """A standalone HTML page of ``frame`` with line breaks kept (for figures/tables)."""
    body = frame.to_html(index=False, escape=True).replace("\\n", "<br>")
    body = body.replace("&#10;", "<br>")
    style = ("body{font-family:sans-serif} table{border-collapse:collapse} td,th{border:1px solid #999;"
             "padding:4px;vertical-align:top;max-width:28em;white-space:pre-wrap}")
    return f"<!doctype html><meta charset='utf-8'><title>{title}</title><style>{style}</style><h1>{title}</h1>{body}"

"""Translation memory: align an existing translation (e.g. the published JHumanEval) to our segments.

The translated prompt is not trusted as a whole (its code, examples and layout may have
been changed); only its prose is reused. Examples are the anchors: each English
example line is found in the translated docstring (``examples.match_examples``), and
the translated prose between two anchors is the translation of the English text
segments between the same anchors. Inside such a gap, paragraphs are paired in order;
when the counts differ, a length-based dynamic programme (Gale & Church style) decides
which English segments share which translated paragraphs.
"""

from __future__ import annotations

import math
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, field

from cltrlib.jhumaneval.examples import match_examples
from cltrlib.jhumaneval.segment import _BULLET_RE, EXAMPLE, TEXT, SegmentedPrompt, find_docstrings


@dataclass
class Alignment:
    """Translations for one prompt's text segments, plus what could not be aligned and why."""

    translations: dict[int, str] = field(default_factory=dict)
    unaligned: list[tuple[int, str]] = field(default_factory=list)  # (segment index, reason)
    dropped: list[str] = field(default_factory=list)  # translated lines left over (no English counterpart)


def _paragraphs(lines: Sequence[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Group (line index, text) into paragraphs: consecutive lines, a bullet starts a new one."""
    paras: list[list[tuple[int, str]]] = []
    for j, ln in lines:
        if paras and paras[-1][-1][0] == j - 1 and not _BULLET_RE.match(ln):
            paras[-1].append((j, ln))
        else:
            paras.append([(j, ln)])
    return paras


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines)


def _split_into(text: str, weights: Sequence[int]) -> list[str]:
    """Split a translated paragraph into ``len(weights)`` contiguous parts whose lengths best match.

    Cuts fall between lines (between sentences when there are too few lines); the cut set
    minimises sum |log(part length / expected length)|, expected lengths being proportional
    to ``weights`` (the English segments' lengths).
    """
    from itertools import combinations

    k = len(weights)
    pieces = [p.strip() for p in text.split("\n") if p.strip()]
    if len(pieces) < k:
        pieces = [p for p in (s.strip() for s in re.split(r"\n|(?<=[。．！？])", text)) if p]
    if len(pieces) < k:
        return [text] + [""] * (k - 1)
    total_w = sum(weights) or 1
    total_len = sum(len(p) for p in pieces)
    best, best_cuts = float("inf"), None
    for cuts in combinations(range(1, len(pieces)), k - 1):
        bounds = (0, *cuts, len(pieces))
        cost = 0.0
        for n in range(k):
            length = sum(len(p) for p in pieces[bounds[n]:bounds[n + 1]])
            cost += abs(math.log((length + 1) / (total_len * weights[n] / total_w + 1)))
        if cost < best:
            best, best_cuts = cost, bounds
    assert best_cuts is not None
    return ["\n".join(pieces[best_cuts[n]:best_cuts[n + 1]]) for n in range(k)]


def _align_gap(en: Sequence[tuple[int, str]], ja: Sequence[str], ratio: float) -> list[tuple[list[int], list[int]]]:
    """Monotone alignment of English segments to translated paragraphs by length.

    Moves: 1-1, 1-2, 2-1, 1-3, 3-1, 1-0 and 0-1; cost |log(len_ja / (ratio * len_en))|,
    with a fixed penalty for the 1-0 / 0-1 moves. Returns (en indices, ja indices) groups.
    """
    m, n = len(en), len(ja)
    inf = float("inf")
    cost = [[inf] * (n + 1) for _ in range(m + 1)]
    back: list[list[tuple[int, int] | None]] = [[None] * (n + 1) for _ in range(m + 1)]
    cost[0][0] = 0.0
    moves = [(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 0), (0, 1)]
    for i in range(m + 1):
        for j in range(n + 1):
            if cost[i][j] == inf:
                continue
            for di, dj in moves:
                a, b = i + di, j + dj
                if a > m or b > n:
                    continue
                if di == 0 or dj == 0:
                    c = 4.0
                else:
                    le = sum(len(en[k][1]) for k in range(i, a))
                    lj = sum(len(ja[k]) for k in range(j, b))
                    c = abs(math.log((lj + 1) / (ratio * le + 1))) + 0.3 * (di + dj - 2)
                if cost[i][j] + c < cost[a][b]:
                    cost[a][b] = cost[i][j] + c
                    back[a][b] = (di, dj)
    groups = []
    i, j = m, n
    while i > 0 or j > 0:
        di, dj = back[i][j]  # type: ignore[misc]
        groups.append((list(range(i - di, i)), list(range(j - dj, j))))
        i, j = i - di, j - dj
    return groups[::-1]


def align_translation(en: SegmentedPrompt, translated_prompt: str) -> Alignment:
    """Translations of ``en``'s text segments taken from ``translated_prompt``."""
    out = Alignment()
    try:
        ja_docs = find_docstrings(translated_prompt)
    except (SyntaxError, tokenize.TokenError) as exc:  # not even lexically Python: nothing usable
        for i, _ in en.text_segments():
            out.unaligned.append((i, f"translated prompt cannot be tokenized: {exc}"))
        return out
    n_docs = 1 + max((s.docstring for s in en.segments), default=-1)
    ja_bodies = [translated_prompt[d.body_start:d.body_end] for d in ja_docs]
    en_text_len = sum(len(s.source) for _, s in en.text_segments()) or 1
    ja_text_len = sum(len(b) for b in ja_bodies) or 1
    ratio = max(0.2, min(2.0, ja_text_len / en_text_len))
    for d in range(n_docs):
        items = [(i, s) for i, s in enumerate(en.segments) if s.docstring == d and s.kind in (TEXT, EXAMPLE)]
        if d >= len(ja_bodies):
            out.unaligned += [(i, "no matching docstring in the translation") for i, s in items if s.kind == TEXT]
            continue
        ja_lines = [ln.strip() for ln in ja_bodies[d].split("\n")]
        examples = [(i, s) for i, s in items if s.kind == EXAMPLE]
        matches = match_examples([s.text for _, s in examples], ja_lines, en.functions)
        anchors = [(pos, m.ja_index) for pos, (_, m) in enumerate(zip(examples, matches, strict=True))
                   if m.ja_index >= 0]
        used = {j for _, j in anchors}
        # cut both sides at the anchors: gap g holds what lies between anchor g-1 and anchor g
        anchor_of_en = {examples[pos][0]: k for k, (pos, _) in enumerate(anchors)}
        en_gaps: list[list[tuple[int, str]]] = [[] for _ in range(len(anchors) + 1)]
        g = 0
        for i, s in items:
            if s.kind == EXAMPLE:
                if i in anchor_of_en:
                    g = anchor_of_en[i] + 1
                continue
            en_gaps[g].append((i, s.source))
        ja_gaps: list[list[tuple[int, str]]] = [[] for _ in range(len(anchors) + 1)]
        bounds = [j for _, j in anchors]
        for j, ln in enumerate(ja_lines):
            if not ln or j in used:
                continue
            gj = sum(1 for b in bounds if b < j)
            ja_gaps[gj].append((j, ln))
        for en_gap, ja_gap in zip(en_gaps, ja_gaps, strict=True):
            paras = [_join([ln for _, ln in p]) for p in _paragraphs(ja_gap)]
            if not en_gap:
                out.dropped += paras
                continue
            if not paras:
                out.unaligned += [(i, "no translated text where this segment should be") for i, _ in en_gap]
                continue
            if len(paras) == len(en_gap):
                groups = [([k], [k]) for k in range(len(paras))]
            else:
                groups = _align_gap(en_gap, paras, ratio)
            for en_idx, ja_idx in groups:
                if not ja_idx:
                    out.unaligned += [(en_gap[k][0], "the translation has no paragraph for it") for k in en_idx]
                    continue
                if not en_idx:  # a translated paragraph with no English counterpart (reported, not used)
                    out.dropped += [paras[k] for k in ja_idx]
                    continue
                text = "\n".join(paras[k] for k in ja_idx)
                parts = [text] if len(en_idx) == 1 else _split_into(text, [len(en_gap[k][1]) for k in en_idx])
                for k, part in zip(en_idx, parts, strict=True):
                    if part:
                        out.translations[en_gap[k][0]] = part
                    else:
                        out.unaligned.append((en_gap[k][0], "shares a translated sentence with its neighbour"))
    return out


class TranslationMemory:
    """Published translations keyed by task id; ``align(task_id, segmented)`` gives an ``Alignment``."""

    name = "memory"

    def __init__(self, prompts: dict[str, str], source: str = ""):
        self.prompts = prompts
        self.source = source

    @classmethod
    def from_rows(cls, rows: Sequence[dict], source: str = "") -> TranslationMemory:
        from cltrlib.data import normalise_task_id

        return cls({normalise_task_id(str(r["task_id"])): r["prompt"] for r in rows}, source)

    @classmethod
    def published(cls, path: str | None = None) -> TranslationMemory:
        """The mirror's (or a given) published JHumanEval file."""
        from pathlib import Path

        from cltrlib.data.problems import JHUMANEVAL_RELPATH, read_jsonl, resolve_data_file

        p = Path(path) if path else resolve_data_file(JHUMANEVAL_RELPATH)
        return cls.from_rows(read_jsonl(p), str(p))

    def align(self, task_id: str, segmented: SegmentedPrompt) -> Alignment:
        if task_id not in self.prompts:
            out = Alignment()
            out.unaligned = [(i, f"{task_id} is not in the memory {self.source}") for i, _ in segmented.text_segments()]
            return out
        return align_translation(segmented, self.prompts[task_id])

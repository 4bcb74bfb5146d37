"""Which parts of a JHumanEval prompt were translated: a line diff of the English and Japanese prompts.

JHumanEval translates only the natural language (docstring prose, some comments); the
signature, imports and doctest lines stay byte-identical. A line-level diff therefore
finds the translated blocks, and trimming each block's common prefix/suffix (the
indentation and the opening ``\"\"\"``) keeps the highlight on the prose itself, which is
what a class should look at.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """A run of text and whether it differs between the two prompts."""

    text: str
    changed: bool


def _common_prefix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _split_block(a: str, b: str) -> tuple[list[Segment], list[Segment]]:
    """Segments of two differing blocks: shared prefix, changed middle, shared suffix."""
    pre = _common_prefix_len(a, b)
    suf = _common_prefix_len(a[pre:][::-1], b[pre:][::-1])
    out = []
    for s in (a, b):
        segs = [Segment(s[:pre], False), Segment(s[pre:len(s) - suf], True), Segment(s[len(s) - suf:], False)]
        out.append([g for g in segs if g.text])
    return out[0], out[1]


def _merge(segs: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for s in segs:
        if merged and merged[-1].changed == s.changed:
            merged[-1] = Segment(merged[-1].text + s.text, s.changed)
        else:
            merged.append(s)
    return merged


def diff_segments(en: str, ja: str) -> tuple[list[Segment], list[Segment]]:
    """(English segments, Japanese segments); ``changed`` marks the translated spans.

    Joining each side's segment texts gives back the input exactly.
    """
    a_lines, b_lines = en.splitlines(keepends=True), ja.splitlines(keepends=True)
    sm = difflib.SequenceMatcher(a=a_lines, b=b_lines, autojunk=False)
    left: list[Segment] = []
    right: list[Segment] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        a, b = "".join(a_lines[i1:i2]), "".join(b_lines[j1:j2])
        if op == "equal":
            left.append(Segment(a, False))
            right.append(Segment(b, False))
        else:
            sa, sb = _split_block(a, b)
            left += sa
            right += sb
    return _merge(left), _merge(right)


HIGHLIGHT_STYLE = "background:#ffe58f;color:inherit;padding:0"


def segments_html(segments: list[Segment], css_class: str = "cltr-translated", style: str = HIGHLIGHT_STYLE) -> str:
    """Escaped HTML with changed spans wrapped in ``<mark class=css_class>`` (inline style: widget
    HTML and exported notebooks keep it without a stylesheet)."""
    parts = []
    for s in segments:
        text = html.escape(s.text)
        parts.append(f'<mark class="{css_class}" style="{style}">{text}</mark>' if s.changed else text)
    return "".join(parts)


def changed_fraction(segments: list[Segment]) -> float:
    """Share of characters that are translated (0 when the prompts are identical)."""
    total = sum(len(s.text) for s in segments)
    return sum(len(s.text) for s in segments if s.changed) / total if total else 0.0

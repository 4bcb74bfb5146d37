"""Split a HumanEval prompt into code, natural-language text and example segments.

Only the natural language may be translated: code (imports, helpers, decorators,
signatures, the docstring quotes and all layout) and examples (doctests and
``f(x) == y`` style lines, which a model reads as a specification) must survive a
translation byte for byte. Segments are verbatim slices of the prompt, so joining
them gives the prompt back exactly; a translation replaces only text segments.

Docstrings are found with ``tokenize`` rather than ``ast`` so that a prompt whose
translation broke the syntax (which happens in the published JHumanEval) can still
be segmented and compared with its English original.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cltrlib.jhumaneval.examples import bracket_depths

CODE, TEXT, EXAMPLE = "code", "text", "example"

_DEF_RE = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.M)
_BULLET_RE = re.compile(r"^(?:[-*•]\s|\d+[.)]\s)")
_CALL_PREFIX_RE = re.compile(r"^(?:[-*•]\s+|for\s+|assert\s+)?([A-Za-z_]\w*)\s*\(")
_DOCTEST_RE = re.compile(r"^(>>>|\.\.\.)(\s|$)")


@dataclass(frozen=True)
class Segment:
    """A verbatim slice of a prompt.

    ``indent`` is the indentation a translated text segment's continuation lines get,
    so a multi-line translation lines up with the docstring. ``docstring`` numbers the
    docstring the segment belongs to (-1 outside docstrings).
    """

    kind: str
    text: str
    indent: str = ""
    docstring: int = -1

    @property
    def source(self) -> str:
        """What a translator sees: the text's lines unwrapped into one line."""
        return " ".join(line.strip() for line in self.text.split("\n"))


@dataclass
class Docstring:
    """Where a docstring literal lies in a prompt: ``body`` is between the quotes."""

    start: int  # offset of the literal (prefix included)
    body_start: int
    body_end: int
    end: int  # offset just past the closing quotes
    function: str = ""


@dataclass
class SegmentedPrompt:
    """A prompt as segments; ``functions`` are the names defined in it (for example detection)."""

    prompt: str
    segments: list[Segment]
    functions: list[str] = field(default_factory=list)

    def text_segments(self) -> list[tuple[int, Segment]]:
        return [(i, s) for i, s in enumerate(self.segments) if s.kind == TEXT]

    def example_lines(self) -> list[str]:
        return [s.text for s in self.segments if s.kind == EXAMPLE]

    def code_outside_docstrings(self) -> str:
        """The prompt with each docstring body shown as ``…``: what translation must leave alone."""
        out: list[str] = []
        inside = False
        for s in self.segments:
            if s.docstring < 0:
                out.append(s.text)
                inside = False
            elif not inside:
                out.append("…")
                inside = True
        return "".join(out)


def defined_functions(prompt: str) -> list[str]:
    return _DEF_RE.findall(prompt)


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for m in re.finditer("\n", text):
        offsets.append(m.end())
    return offsets


def find_docstrings(prompt: str) -> list[Docstring]:
    """Docstring literals of the functions (and module) in ``prompt``, in order.

    A docstring here is a string literal that is a whole statement (HumanEval/115 puts
    ``import math`` before its "docstring", so "first statement" would miss it). Raises ``tokenize.TokenError`` /
    ``SyntaxError`` (IndentationError) when the prompt cannot be tokenized at all.
    """
    offsets = _line_offsets(prompt)
    toks = list(tokenize.generate_tokens(io.StringIO(prompt).readline))
    significant = [t for t in toks if t.type not in (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING)]
    found: list[Docstring] = []
    last_def = ""
    for k, tok in enumerate(significant):
        if tok.type == tokenize.NAME and tok.string == "def" and k + 1 < len(significant):
            last_def = significant[k + 1].string
        if tok.type != tokenize.STRING:
            continue
        prev = significant[k - 1] if k > 0 else None
        nxt = significant[k + 1] if k + 1 < len(significant) else None
        starts_statement = prev is None or prev.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
        if not (starts_statement and (nxt is None or nxt.type in (tokenize.NEWLINE, tokenize.ENDMARKER))):
            continue
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        literal = tok.string
        m = re.match(r"^[rRuUbB]*('''|\"\"\"|'|\")", literal)
        if not m:
            continue
        quote = m.group(1)
        found.append(Docstring(start, start + m.end(), end - len(quote), end, last_def))
    return found


def _is_literal_line(content: str) -> bool:
    """A data line such as ``[1, 2, 3],`` (continuation of a multi-line example)."""
    import ast

    body = content.rstrip(",").strip()
    if not body or body[0] not in "[({'\"-0123456789":
        return False
    try:
        ast.literal_eval(body)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


_JA_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef\u3000-\u303f]")
_QUOTED_RE = re.compile(r"'[^']*'|\"[^\"]*\"")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z_.]*")
_LABEL_RE = re.compile(r"^[A-Z][a-z]+\s*:\s*")


def _is_formula_line(content: str) -> bool:
    """``arr = [2, 1]``, ``-> sort arr -> [1, 2]``, ``Input: [4,2,3]``, ``= 2 + 3 = 5``: code, not prose.

    At most two bare words outside string literals (after a leading ``Label:``), some
    ``=``, ``->`` or ``[``, no Japanese, and not a heading (``Example 1:``).
    """
    if _JA_RE.search(content) or content.endswith(":"):
        return False
    content = _LABEL_RE.sub("", content, count=1)  # "Input: grid = [[1]], k = 3" is judged by what follows
    bare = _QUOTED_RE.sub("", content)
    if not re.search(r"[=\[]|->", bare):
        return False
    return len(_WORD_RE.findall(bare)) <= 2


def _bracket_depth(content: str) -> int:
    """Net bracket depth of a line (quotes skipped): how many brackets it leaves open."""
    depths = [d for _, d in bracket_depths(content)]
    return depths[-1] if depths else 0


def classify_lines(contents: Sequence[str], functions: Sequence[str]) -> list[str]:
    """Label each stripped docstring line ``blank``, ``example`` or ``text``.

    Examples: doctest lines (``>>>``/``...``) and the output lines after them (up to a
    blank line), lines that call a function defined in the prompt (``f(x) == y``,
    ``f(x) ➞ y``, ``* f(x) -> y``, ``for f(x) == y``), data literals, and the
    continuation lines of an example whose brackets are still open.
    """
    names = set(functions)
    labels: list[str] = []
    in_doctest = False
    open_depth = 0
    for content in contents:
        if not content:
            labels.append("blank")
            in_doctest = False
            open_depth = 0
            continue
        if _DOCTEST_RE.match(content):
            labels.append("example")
            in_doctest = True
            open_depth = 0
            continue
        if in_doctest or open_depth > 0:
            labels.append("example")
            open_depth = max(0, open_depth + _bracket_depth(content)) if open_depth > 0 else 0
            continue
        m = _CALL_PREFIX_RE.match(content)
        if (m and m.group(1) in names) or _is_literal_line(content) or _is_formula_line(content):
            labels.append("example")
            open_depth = max(0, _bracket_depth(content))
            continue
        labels.append("text")
    return labels


def _segment_docstring(body: str, base_indent: str, functions: Sequence[str], doc_index: int) -> list[Segment]:
    lines = body.split("\n")
    parts = []  # (lead, content, trail) per line; trail includes the newline except on the last line
    for n, line in enumerate(lines):
        stripped = line.strip()
        if stripped:
            lead_len = len(line) - len(line.lstrip())
            trail_start = lead_len + len(stripped)
            lead, content, trail = line[:lead_len], stripped, line[trail_start:]
        else:
            lead, content, trail = line, "", ""
        parts.append((lead, content, trail + ("\n" if n < len(lines) - 1 else "")))
    labels = classify_lines([p[1] for p in parts], functions)
    segs: list[Segment] = []
    code_buf: list[str] = []
    k = 0

    def flush_code() -> None:
        if code_buf:
            segs.append(Segment(CODE, "".join(code_buf), docstring=doc_index))
            code_buf.clear()

    while k < len(parts):
        lead, content, trail = parts[k]
        label = labels[k]
        if label == "blank":
            code_buf.append(lead + trail)
            k += 1
            continue
        code_buf.append(lead)
        flush_code()
        if label == "example":
            segs.append(Segment(EXAMPLE, content, docstring=doc_index))
            code_buf.append(trail)
            k += 1
            continue
        # a text segment: this line plus following text lines that are not new bullet items
        text = content
        indent = lead if lead.strip() == "" and k > 0 else base_indent
        j = k + 1
        while (j < len(parts) and labels[j] == "text" and not _BULLET_RE.match(parts[j][1])
               and parts[j - 1][2].endswith("\n") and parts[j - 1][2].strip() == ""):
            text += parts[j - 1][2] + parts[j][0] + parts[j][1]
            j += 1
        segs.append(Segment(TEXT, text, indent=indent, docstring=doc_index))
        code_buf.append(parts[j - 1][2])
        k = j
    flush_code()
    return segs


def segment_prompt(prompt: str, functions: Sequence[str] | None = None) -> SegmentedPrompt:
    """Segment ``prompt``; ``functions`` (default: those it defines) decide what is an example call."""
    functions = list(functions) if functions is not None else defined_functions(prompt)
    docs = find_docstrings(prompt)
    segs: list[Segment] = []
    pos = 0
    for i, d in enumerate(docs):
        if d.body_start > pos:
            segs.append(Segment(CODE, prompt[pos:d.body_start]))
        line_start = prompt.rfind("\n", 0, d.start) + 1
        base_indent = re.match(r"[ \t]*", prompt[line_start:d.start]).group(0)
        segs.extend(_segment_docstring(prompt[d.body_start:d.body_end], base_indent, functions, i))
        pos = d.body_end
    if pos < len(prompt):
        segs.append(Segment(CODE, prompt[pos:]))
    merged: list[Segment] = []
    for s in segs:  # adjacent code pieces in the same region become one segment
        if merged and s.kind == CODE and merged[-1].kind == CODE and merged[-1].docstring == s.docstring:
            merged[-1] = Segment(CODE, merged[-1].text + s.text, docstring=s.docstring)
        elif s.text or s.kind != CODE:
            merged.append(s)
    return SegmentedPrompt(prompt, merged, functions)


def render_translation(segment: Segment, translation: str) -> str:
    """A translation laid out like the segment: continuation lines get the docstring's indentation."""
    lines = [ln.strip() for ln in translation.strip().split("\n")]
    return ("\n" + segment.indent).join(ln for ln in lines if ln) or segment.text


def reassemble(segmented: SegmentedPrompt, translations: Mapping[int, str] | None = None) -> str:
    """Join the segments, replacing text segment ``i`` by ``translations[i]`` where given."""
    translations = translations or {}
    out = []
    for i, s in enumerate(segmented.segments):
        if s.kind == TEXT and i in translations:
            out.append(render_translation(s, translations[i]))
        else:
            out.append(s.text)
    return "".join(out)

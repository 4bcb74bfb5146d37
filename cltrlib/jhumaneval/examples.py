"""Is an example in a translated prompt the same example as in the English one?

A pure-code example line (``>>> f(1)``, ``f(x) ➞ y``) must be byte-identical after
translation (trailing whitespace aside). A line that mixes code and prose
(``f(x) should return 16.``, ``Input: arr = [1]``) may have its prose translated, so
it is compared on its code: calls, literals, brackets, operators and numbers, in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_KEEP_WORDS = {"True", "False", "None"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def _split_protected(line: str) -> list[tuple[bool, str]]:
    """Pieces of ``line``: (True, quoted string or bracketed group) or (False, bare text)."""
    pieces: list[tuple[bool, str]] = []
    buf = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if ch in "'\"" or ch in "([{":
            if buf:
                pieces.append((False, buf))
                buf = ""
            j = _span_end(line, i)
            pieces.append((True, line[i:j]))
            i = j
            continue
        buf += ch
        i += 1
    if buf:
        pieces.append((False, buf))
    return pieces


def _span_end(line: str, i: int) -> int:
    if line[i] in "'\"":
        j = line.find(line[i], i + 1)
        return len(line) if j < 0 else j + 1
    for j, depth in bracket_depths(line, i):
        if depth == 0:
            return j + 1
    return len(line)


def bracket_depths(text: str, start: int = 0) -> Iterator[tuple[int, int]]:
    """(position, nesting depth after it) for each bracket in ``text[start:]`` outside quotes; the one bracket
    scanner behind the segmenter's open-bracket tracking and the example parser's protected spans."""
    depth, quote = 0, ""
    for j in range(start, len(text)):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            yield j, depth
        elif ch in ")]}":
            depth -= 1
            yield j, depth


def prose_words(line: str, functions: Sequence[str]) -> list[str]:
    """Bare words outside strings/brackets that are not code (function names, True/False/None)."""
    words = []
    prev = ""
    for protected, piece in _split_protected(line):
        if protected and piece.startswith("(") and not re.search(r"[A-Za-z_0-9]\s*$", prev):
            words += prose_words(piece[1:].rstrip(")）"), functions)
        prev = piece
        if not protected:
            words += [w for w in _WORD.findall(piece) if w not in _KEEP_WORDS and w not in functions]
    return words


def _comment_start(line: str) -> int:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return i
    return -1


def code_skeleton(line: str, functions: Sequence[str], commas: bool = True) -> str:
    """The code of a line with its prose removed: what translation must not change.

    Commas count in code (``[1, 2], k = 3`` must not become ``[1, 2]. k = 3``) but not
    in a trailing ``# comment``, which is prose.
    """
    cut = _comment_start(line)
    if cut >= 0 and commas:
        return (code_skeleton(line[:cut], functions) + " " + code_skeleton(line[cut + 1:], functions, False)).strip()
    out = []
    prev = ""
    for protected, piece in _split_protected(line):
        if protected and piece.startswith("(") and not re.search(r"[A-Za-z_0-9]\s*$", prev):
            out.append("( " + code_skeleton(piece[1:].rstrip(")）"), functions, commas) + " )")  # a remark
            prev = piece
            continue
        prev = piece
        if protected:
            out.append(piece)
            continue
        for tok in re.findall(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?|==>|=>|==|->|<=|>=|!=|[=<>+\-*/%➞→,]", piece):
            if tok[0].isalpha() or tok[0] == "_":
                if tok in _KEEP_WORDS or tok in functions:
                    out.append(tok)
            elif tok != "=" and (commas or tok != ","):  # a lone '=' is pseudo-code prose ("return = x": "xを返す")
                out.append(tok)
    return " ".join(out)


def is_pure_code(line: str, functions: Sequence[str]) -> bool:
    return not prose_words(line, functions) and not re.search(r"[^\x00-\x7f➞→≤≥]", line)


@dataclass(frozen=True)
class ExampleMatch:
    """Where the English example line ``en`` went in the translation (``ja_index`` -1: nowhere)."""

    en: str
    ja_index: int
    how: str  # exact | code (prose translated, code equal) | changed | missing
    ja: str = ""


def match_examples(en_examples: Sequence[str], ja_lines: Sequence[str], functions: Sequence[str]) -> list[ExampleMatch]:
    """Find each English example line, in order, among the translated docstring's lines.

    Greedy and monotone: examples keep their order in a translation. An English line
    with no exact or code-equal counterpart is ``changed`` when a line whose skeleton
    is close exists where it should be (that is what a translator mangling an example
    looks like), else ``missing``.
    """
    import difflib

    matches = []
    pos = 0
    norm = [ln.rstrip() for ln in ja_lines]
    for en in en_examples:
        en_n = en.rstrip()
        pure = is_pure_code(en_n, functions)
        found = -1
        how = ""
        for j in range(pos, len(norm)):
            if norm[j] == en_n:
                found, how = j, "exact"
                break
        if found < 0 and not pure:
            skel = code_skeleton(en_n, functions)
            for j in range(pos, len(norm)):
                if norm[j] and code_skeleton(norm[j], functions) == skel:
                    found, how = j, "code"
                    break
        if found < 0:
            best, best_j = 0.0, -1
            for j in range(pos, len(norm)):
                r = difflib.SequenceMatcher(None, en_n, norm[j]).ratio()
                if r > best:
                    best, best_j = r, j
            if best >= 0.75:
                matches.append(ExampleMatch(en, best_j, "changed", norm[best_j]))
                pos = best_j + 1
            else:
                matches.append(ExampleMatch(en, -1, "missing"))
            continue
        matches.append(ExampleMatch(en, found, how, norm[found]))
        pos = found + 1
    return matches

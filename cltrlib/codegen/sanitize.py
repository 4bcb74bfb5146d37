"""Sanitize a chat reply that re-defines the function: keep the imports and the definitions the entry point needs.

Why: chat models often wrap their function in a script: ``print(f(3))``, ``assert f(2) == 5`` with a made-up value,
``n = int(input())``, an ``if __name__ == "__main__":`` block. Run whole, that code executes before the tests, so a
correct function can fail on the model's own wrong assert or on ``input()`` at end of file, and a program can print or
loop at import time. evalplus's ``sanitize`` is the reference behaviour followed here (facts, not code):

- the reply is parsed with ``ast``; if it does not parse (a reply cut at the token cap, prose after the code), the
  longest contiguous run of lines that does parse is used, as evalplus's ``code_extract`` does;
- every top-level ``import`` / ``from ... import`` is kept (except ``from __future__``: the problem's prompt precedes
  the reply, so a future import there would be a SyntaxError);
- of the top-level definitions (``def``, ``async def``, ``class``, assignments to plain names), only those reachable
  from the entry point are kept: the entry point, then, transitively, every definition whose name a kept definition
  uses (in its body, decorators, defaults or annotations);
- everything else at module level is dropped: calls, asserts, ``if``/``for``/``while``/``try``/``with`` blocks,
  bare expressions.

Unlike evalplus, which keeps the first definition of a name, every kept definition stays in its original order, so
the program binds each name as the model's own code would (Python keeps the last definition).

``SANITIZER_VERSION`` is recorded in every sample and in the evaluation runs' store key: a changed sanitizer gets new
evaluation runs instead of reusing verdicts of differently assembled programs.

Example:
    >>> print(sanitize("import math\\ndef f(x):\\n    return g(x)\\ndef g(x):\\n    return math.floor(x)\\n"
    ...                "def unused():\\n    pass\\nprint(f(2.5))\\nassert f(1) == 7\\n", "f"))
    import math
    def f(x):
        return g(x)
    def g(x):
        return math.floor(x)
    <BLANKLINE>
"""

from __future__ import annotations

import ast
import textwrap

SANITIZER_VERSION = "2"  # 2: a reply cut inside the entry point's definition is kept whole (was: emptied)

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: null bytes in the source
        return False
    return True


def longest_parsable(code: str) -> str:
    """``code`` if it parses, else its longest contiguous run of lines that parses (most non-blank lines; earliest
    on a tie); "" if no line parses. Quadratic in the number of lines, which replies capped at a few hundred
    tokens keep small."""
    if _parses(code):
        return code
    lines = code.splitlines(keepends=True)
    weight = [0]
    for line in lines:  # weight[j] - weight[i]: non-blank lines in lines[i:j]
        weight.append(weight[-1] + bool(line.strip()))
    best, best_weight = "", 0
    for i in range(len(lines)):
        if not lines[i].strip() or lines[i][:1].isspace():  # a top-level statement starts the segment
            continue
        for j in range(len(lines), i, -1):
            if weight[j] - weight[i] <= best_weight:
                break  # shorter segments from i cannot win
            segment = "".join(lines[i:j])
            if _parses(segment):
                best, best_weight = segment, weight[j] - weight[i]
                break
    return best


def _defined_names(node: ast.stmt) -> list[str]:
    """Names a top-level definition binds: the def/class name, or the plain names an assignment targets."""
    if isinstance(node, _DEFS):
        return [node.name]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names = []
    for target in targets:
        elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        names += [e.id for e in elts if isinstance(e, ast.Name)]
    return names


def _used_names(node: ast.AST) -> set[str]:
    """Every name a definition reads anywhere inside it (over-approximated: locals that shadow a global count too,
    which can only keep a definition that was not needed, never drop one that was)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_kept_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return True
    return isinstance(node, ast.ImportFrom) and node.module != "__future__"


def sanitize(code: str, entry_point: str) -> str:
    """The reply ``code`` reduced to its imports and the definitions ``entry_point`` needs (see the module doc).

    Returns source text ending in a newline ("" if nothing is kept). Statements are re-emitted from the original
    text (their source lines), not unparsed, so comments inside kept definitions and the model's formatting stay.
    """
    code = longest_parsable(textwrap.dedent(code))
    if not code.strip():
        return ""
    tree = ast.parse(code)
    body = tree.body
    defines: dict[str, list[int]] = {}
    for i, node in enumerate(body):
        for name in _defined_names(node):
            defines.setdefault(name, []).append(i)
    keep: set[int] = set()
    todo = [entry_point]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for i in defines.get(name, []):
            if i not in keep:
                keep.add(i)
                todo += sorted(_used_names(body[i]) - seen)
    kept = [i in keep or _is_kept_import(node) for i, node in enumerate(body)]
    dropped_lines = {ln for node, k in zip(body, kept, strict=True) if not k
                     for ln in range(node.lineno, node.end_lineno + 1)}
    lines = code.splitlines(keepends=True)
    out = []
    for node, k in zip(body, kept, strict=True):
        if not k:
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if dropped_lines.intersection(range(start, node.end_lineno + 1)):
            out.append(ast.unparse(node) + "\n")  # shares a line with dropped code (``x = 1; print(x)``)
            continue
        chunk = "".join(lines[start - 1:node.end_lineno])
        out.append(chunk if chunk.endswith("\n") else chunk + "\n")
    return "".join(out)


def defines_entry_point(code: str, entry_point: str) -> bool:
    """Whether ``code`` (a sanitized reply) defines ``entry_point`` at top level."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry_point for n in tree.body)

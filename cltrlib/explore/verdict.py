"""Run one sample in the sandbox and explain the outcome: verdict, failing assertion or error.

The verdict comes from exactly the program ``cltrlib.evaluate`` runs (``build_program``),
so the explorer never disagrees with the study. The sandbox reports only the exception's
last line (``AssertionError`` says nothing on its own), so for a failure we run a second,
instrumented copy that prints the line number of the deepest frame in the program; that
line (usually ``assert candidate(...) == ...``) is what a class wants to see.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from cltrlib.data import Problem
from cltrlib.evaluate import build_program
from cltrlib.execution import SandboxLimits, run_program

_MARK = "CLTR_FAIL_LINE"
_LOCATE = f"""
import sys as _cltr_sys, traceback as _cltr_tb
try:
    check({{entry}})
except BaseException:
    _cltr_lines = [f.lineno for f in _cltr_tb.extract_tb(_cltr_sys.exc_info()[2]) if f.filename == "program.py"]
    print("{_MARK}", _cltr_lines[-1] if _cltr_lines else -1, flush=True)
    raise
"""


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


def _locate_failure(sample: dict, problem: Problem, program: str, limits: SandboxLimits) -> tuple[int | None, str]:
    check_call = f"check({problem.entry_point})\n"
    if not program.endswith(check_call):
        return None, ""
    diag = program[: -len(check_call)] + _LOCATE.format(entry=problem.entry_point)
    res = run_program(diag, limits)
    m = re.search(rf"^{_MARK} (-?\d+)$", res.stdout, re.M)
    if not m or int(m.group(1)) < 1:
        return None, ""
    lineno = int(m.group(1))
    lines = diag.splitlines()
    return lineno, lines[lineno - 1].strip() if lineno <= len(lines) else ""


def run_sample(sample: dict, problem: Problem, timeout: float = 10.0) -> Verdict:
    """Run ``sample`` (``completion`` or ``solution``) against the problem's tests in the sandbox."""
    limits = SandboxLimits(timeout=timeout)
    program = build_program(sample, problem)
    res = run_program(program, limits)
    v = Verdict(res.status, res.result, res.duration, program, stdout=res.stdout)
    if res.status == "failed":
        v.failing_lineno, v.failing_line = _locate_failure(sample, problem, program, limits)
    return v


VERDICT_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "timeout": "#9a6700"}


def verdict_html(v: Verdict) -> str:
    """A self-contained HTML block; class ``cltr-verdict cltr-verdict-<status>`` for tests and styling."""
    colour = VERDICT_COLOURS.get(v.status, "#57606a")
    title = {"passed": "PASSED", "failed": "FAILED", "timeout": "TIMED OUT"}.get(v.status, v.status.upper())
    parts = [f'<div class="cltr-verdict cltr-verdict-{html.escape(v.status)}" data-status="{html.escape(v.status)}" '
             f'style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0">',
             f'<b style="color:{colour};font-size:1.2em">{title}</b> '
             f'<span style="color:#57606a">({v.duration:.2f} s in the sandbox)</span>']
    if not v.passed:
        parts.append(f'<div class="cltr-verdict-result"><code>{html.escape(v.result)}</code></div>')
    if v.failing_line:
        parts.append(f'<div class="cltr-failing-line">line {v.failing_lineno}: <code>{html.escape(v.failing_line)}'
                     "</code></div>")
    parts.append("</div>")
    return "".join(parts)

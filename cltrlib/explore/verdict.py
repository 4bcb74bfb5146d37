"""The explorer's view of a verdict: one HTML block per ``cltrlib.codeeval.Verdict``.

Running the sample (and finding its failing line) is ``cltrlib.codeeval.run_sample``,
the program ``evaluate_samples`` runs; this module only decides how the outcome looks.
"""

from __future__ import annotations

import html

from cltrlib.codeeval import Verdict

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

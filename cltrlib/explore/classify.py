"""The classification panel: one sentence, one fine-tuned classifier, its probabilities and why.

Pick a classifier saved by the transfer runs (``cltrlib.transfer.list_adapters``: the
base model fine-tuned on English plus 0 / 16 / 104 Japanese examples), type a sentence
in any language, and see the class probabilities and a token-attribution heat map
(``cltrlib.transfer.attribution.lime_tokens``, the attribution the study reports).
Attribution runs the classifier on tens of perturbed copies of the sentence, so it runs
in a background thread; the classifier is wrapped so every forward call reports
progress and a click on "Stop" ends the work before the next batch.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cltrlib.explore.jobs import BackgroundJob
from cltrlib.models import load
from cltrlib.study import study

PATTERN_ORDER = {"ja0": 0, "ja16": 1, "ja104": 2}


class ClassifyCancelled(Exception):
    """The user pressed Stop."""


class _StoppableModel:
    """A classifier that counts its forward calls and honours a stop flag; otherwise the model itself."""

    def __init__(self, model, stop: threading.Event, on_call: Callable[[], None]):
        self._model, self._stop, self._on_call = model, stop, on_call

    def __call__(self, *args, **kwargs):
        if self._stop.is_set():
            raise ClassifyCancelled
        out = self._model(*args, **kwargs)
        self._on_call()
        return out

    def __getattr__(self, name):
        return getattr(self._model, name)


def available_classifiers(root=None) -> pd.DataFrame:
    """Saved classifiers, ordered by base model, data set, condition, pattern (ja0, ja16, ja104), seed."""
    from cltrlib.transfer.adapters import list_adapters

    df = list_adapters(root)
    if df.empty:
        return df
    order = df["pattern"].map(lambda p: PATTERN_ORDER.get(p, 9))
    keys = ["base_model", "dataset", "condition", "_o", "seed"] + (["layers"] if "layers" in df else [])
    return (df.assign(_o=order).sort_values(keys, kind="stable")
            .drop(columns="_o").reset_index(drop=True))


def classifier_label(row) -> str:
    """One dropdown line; names what was trained, since a probe and a full-depth run may share pattern and seed."""
    trained = getattr(row, "layers", None)
    trained = f" · {trained}, {row.epochs} ep." if isinstance(trained, str) else ""
    return f"{row.base_model} · {row.dataset} · {row.condition} · {row.pattern} · seed {row.seed}{trained}"


def merge_pieces(tok, ids: list[int], weights: list[float]) -> list[tuple[str, float]]:
    """Join byte-level pieces that only decode together (one Japanese character can be 2-3 tokens in a
    byte-level BPE); a merged piece's weight is the sum of its tokens' weights."""
    out, buf, wsum = [], [], 0.0
    for i, w in zip(ids, weights, strict=True):
        buf.append(i)
        wsum += w
        text = tok.decode(buf)
        if "\ufffd" not in text:
            out.append((text, wsum))
            buf, wsum = [], 0.0
    if buf:
        out.append((tok.decode(buf), wsum))
    return out


def heatmap_html(pieces: list[tuple[str, float]]) -> str:
    """Tokens coloured by attribution: red pushes toward the predicted class, blue away; opacity = |weight|."""
    scale = max((abs(w) for _, w in pieces), default=0.0) or 1.0
    spans = []
    for text, w in pieces:
        a = min(abs(w) / scale, 1.0)
        rgb = "207,34,46" if w > 0 else "9,105,218"
        spans.append(f'<span class="cltr-attr" title="{w:+.4f}" style="background:rgba({rgb},{0.85 * a:.2f});'
                     f'padding:2px 1px;margin:0 1px;border-radius:3px">{html.escape(text)}</span>')
    return ('<div class="cltr-heatmap" style="font-size:18px;line-height:2.0;'
            'font-family:\'IPAexGothic\',\'IPAGothic\',\'Noto Sans CJK JP\',sans-serif">' + "".join(spans) + "</div>")


def probabilities_html(label_names: list[str], probs: np.ndarray) -> str:
    rows = []
    for name, p in zip(label_names, probs, strict=True):
        rows.append(f'<div style="display:flex;align-items:center;gap:6px;font-size:13px">'
                    f'<span style="width:190px">{html.escape(str(name))}</span>'
                    f'<span style="display:inline-block;height:14px;width:{300 * p:.0f}px;background:#0969da"></span>'
                    f"<span>{p:.1%}</span></div>")
    return '<div class="cltr-probs">' + "".join(rows) + "</div>"


@dataclass
class ClassifyJob(BackgroundJob):
    state: str = "pending"  # pending | loading | classifying | attributing | done | cancelled | error
    calls: int = 0
    total_calls: int = 1
    probs: np.ndarray | None = None
    label_names: list[str] = field(default_factory=list)
    pieces: list[tuple[str, float]] = field(default_factory=list)


class ClassifyPanel:
    """ipywidgets panel; ``widget`` is what to ``display``; ``classify`` is the button's code path."""

    BATCH = 8  # perturbed copies per forward call: the granularity of progress and of Stop

    def __init__(self, profile: str = "local", text: str | None = None, classifiers: pd.DataFrame | None = None,
                 loader: Callable[[str], tuple] | None = None):
        import ipywidgets as w

        self.settings = study(profile).explorer.override(classify_text=text or None)
        self.classifiers = available_classifiers() if classifiers is None else classifiers
        self.loader = loader
        self.job: ClassifyJob | None = None
        options = [(classifier_label(r), r.adapter_dir) for r in self.classifiers.itertuples()]
        self.adapter = w.Dropdown(options=options, value=self._preferred(), description="classifier",
                                  layout=w.Layout(width="640px"))
        self.text = w.Textarea(value=self.settings.classify_text, description="sentence",
                               layout=w.Layout(width="100%", height="56px"))
        self.classify_button = w.Button(description="Classify + explain", button_style="primary", icon="play",
                                        disabled=not options, layout=w.Layout(width="190px"))
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="batches", layout=w.Layout(width="420px"))
        self.status = w.HTML("idle" if options else
                             '<span class="cltr-clf-empty">No fine-tuned classifiers in the results store yet: run '
                             "the transfer notebook first.</span>")
        self.result = w.HTML()
        for widget, cls in [(self.adapter, "cltr-clf-adapter"), (self.text, "cltr-clf-text"),
                            (self.classify_button, "cltr-clf-run"), (self.stop_button, "cltr-clf-stop"),
                            (self.status, "cltr-clf-status"), (self.result, "cltr-clf-result")]:
            widget.add_class(cls)
        self.classify_button.on_click(lambda _: self.classify())
        self.stop_button.on_click(lambda _: self.job.cancel() if self.job else None)
        self.widget = w.VBox([
            w.HTML("<h3 style='margin:4px 0'>Classification: probabilities and token attributions</h3>"),
            self.adapter, self.text, w.HBox([self.classify_button, self.stop_button, self.progress, self.status]),
            self.result,
        ])
        self.widget.add_class("cltr-classify-panel")

    def _preferred(self) -> str | None:
        """The preferred model's classifier with the most Japanese training examples; among equals the full-depth
        run (Paper B's fine-tuning) before a probe, then the lowest seed — never a tie left to folder order."""
        df = self.classifiers
        if df.empty:
            return None
        prefer = self.settings.prefer_model
        mine = df[df["base_model"] == prefer] if prefer else df
        mine = mine if not mine.empty else df
        n = mine["n_target"] if "n_target" in mine else mine["pattern"].map(lambda p: PATTERN_ORDER.get(p, -1))
        deep = mine["layers"].eq("LoRA all") if "layers" in mine else False
        seed = mine["seed"] if "seed" in mine else 0
        order = mine.assign(_n=n, _deep=deep, _seed=seed).sort_values(["_n", "_deep", "_seed"],
                                                                      ascending=[False, False, True], kind="stable")
        return order.iloc[0]["adapter_dir"]

    def _status(self, job: ClassifyJob) -> None:
        label = {"loading": "loading classifier…", "classifying": "classifying…",
                 "attributing": "attributing (perturbed copies)…", "done": "done", "cancelled": "stopped",
                 "error": "error"}.get(job.state, job.state)
        self.progress.max, self.progress.value = max(job.total_calls, 1), min(job.calls, job.total_calls)
        text = f'<span class="cltr-clf-{job.state}">{label} {job.elapsed:.1f} s</span>'
        if job.error:
            text += f' <span style="color:#cf222e">{html.escape(job.error)}</span>'
        self.status.value = text

    def classify(self, wait: bool = False) -> ClassifyJob | None:
        """Probabilities + attributions for the text box with the chosen classifier, in a background thread."""
        from cltrlib.transfer.attribution import lime_tokens
        from cltrlib.transfer.train import predict_proba

        if self.adapter.value is None:
            return None
        if self.job is not None and self.job.running:
            return self.job
        text, adapter_dir, n_samples = self.text.value.strip(), self.adapter.value, self.settings.lime_samples
        job = ClassifyJob(total_calls=1 + -(-max(2, n_samples) // self.BATCH))
        self.job = job
        self.classify_button.disabled, self.stop_button.disabled = True, False

        def counted() -> None:
            job.calls += 1
            self._status(job)

        def work() -> None:
            if not text:
                raise ValueError("type a sentence to classify")
            job.state = "loading"
            self._status(job)
            model, tok, meta = (self.loader(adapter_dir) if self.loader
                                else load(adapter_dir, "classifier", device="cpu"))
            stoppable = _StoppableModel(model, job._stop, counted)
            job.state, job.label_names = "classifying", list(meta["label_names"])
            job.probs = predict_proba(stoppable, tok, [text], max_length=meta["max_length"])[0]
            target = int(np.argmax(job.probs))
            job.state = "attributing"
            attr = lime_tokens(stoppable, tok, text, target=target, n_samples=n_samples,
                               max_length=meta["max_length"], batch_size=self.BATCH)
            ids = tok(text, truncation=True, max_length=meta["max_length"])["input_ids"]
            job.pieces = merge_pieces(tok, [ids[p] for p in attr["position"]], attr["weight"].tolist())
            self.result.value = (probabilities_html(job.label_names, job.probs)
                                 + f"<div style='font-size:12px;color:#57606a'>attribution toward "
                                   f"<b>{html.escape(str(job.label_names[target]))}</b> (red: for, blue: against;"
                                   f" {n_samples} perturbed copies)</div>" + heatmap_html(job.pieces))

        def finish() -> None:
            self._status(job)
            self.classify_button.disabled, self.stop_button.disabled = False, True

        return job.start(work, ClassifyCancelled, finish, name="cltr-classify", wait=wait)

    def snapshot_html(self) -> str:
        """Static HTML of the panel's state (papermill runs, exported notebooks)."""
        chosen = html.escape(next((lbl for lbl, v in self.adapter.options if v == self.adapter.value), "none"))
        return ('<div class="cltr-snapshot cltr-clf-snapshot" style="border:1px solid #d0d7de;padding:8px">'
                "<h3 style='margin:4px 0'>Classification: probabilities and token attributions</h3>"
                f"<div>classifier: {chosen}</div><div>sentence: {html.escape(self.text.value)}</div>"
                f"<div>{self.status.value}</div>{self.result.value}</div>")

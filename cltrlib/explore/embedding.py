"""The embedding panel: how close are an English sentence and its Japanese translation, layer by layer?

Type a sentence and its translation (or pick a parallel pair from a corpus); the panel
embeds both with an embedded model (mean and last-token pooling at every layer, via
``cltrlib.embeddings``, the same extraction the similarity notebook uses) and plots
their cosine against two references computed from the same corpus sentences: the
average translation pair and the random-pair baseline (English i with Japanese π(i),
π a derangement). A translation pair that sits no higher than random pairs is a layer
where the model does not align the two languages.

Work runs in a background thread, in small chunks of sentences with a stop check
between them; the baseline is computed once per model and kept for the session.
"""

from __future__ import annotations

import base64
import html
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cltrlib.explore.jobs import BackgroundJob
from cltrlib.models import EMBEDDED, load
from cltrlib.study import study

POOLING_TITLES = {"mean": "mean pooling（平均）", "last": "last-token pooling（最終トークン）"}
CHUNK = 8  # sentences per forward pass between stop checks


class EmbeddingCancelled(Exception):
    """The user pressed Stop."""


def embed_in_chunks(lm, tok, texts: list[str], max_length: int, stop: threading.Event | None = None,
                    on_chunk: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """``cltrlib.embeddings.extract.embed_texts`` in chunks of ``CHUNK`` sentences, checking ``stop`` between
    chunks (one chunk is a second or two on a CPU). {pooling: [n, layers + 1, hidden]}."""
    from cltrlib.embeddings.extract import embed_texts

    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(texts), CHUNK):
        if stop is not None and stop.is_set():
            raise EmbeddingCancelled
        out = embed_texts(lm, tok, texts[start:start + CHUNK], max_length=max_length, batch_size=CHUNK,
                          progress=False)
        for pooling, arr in out.items():
            parts.setdefault(pooling, []).append(arr)
        if on_chunk is not None:
            on_chunk(min(start + CHUNK, len(texts)))
    return {p: np.concatenate(a) for p, a in parts.items()}


@dataclass
class SimilarityResult:
    """Per pooling: the pair's cosine per layer and the reference cosines ``[n_pairs, layers]``."""

    model: str
    en: str
    ja: str
    pair: dict[str, np.ndarray]
    parallel: dict[str, np.ndarray]
    random: dict[str, np.ndarray]

    def summary_rows(self) -> list[dict]:
        """One row per pooling: layer where the pair is most above the random baseline, and the values there."""
        rows = []
        for p in self.pair:
            gap = self.pair[p] - self.random[p].mean(0)
            best = int(np.argmax(gap))
            rows.append({"pooling": p, "layer": best, "pair": float(self.pair[p][best]),
                         "translation pairs": float(self.parallel[p][:, best].mean()),
                         "random pairs": float(self.random[p][:, best].mean()),
                         "random sd": float(self.random[p][:, best].std())})
        return rows


def similarity_figure(res: SimilarityResult):
    """Two panels (mean, last-token): cosine per layer of the pair vs translation and random pairs."""
    import matplotlib.pyplot as plt

    from cltrlib.plots import LANG_COLORS, setup_style

    setup_style(font_scale=1.0)
    poolings = list(res.pair)
    fig, axes = plt.subplots(1, len(poolings), figsize=(5.2 * len(poolings), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, p in zip(axes, poolings, strict=True):
        layers = np.arange(len(res.pair[p]))
        rnd, par = res.random[p], res.parallel[p]
        ax.fill_between(layers, rnd.mean(0) - rnd.std(0), rnd.mean(0) + rnd.std(0), color="0.8", alpha=0.7,
                        label="random pairs ±1 sd（ランダム）")
        ax.plot(layers, rnd.mean(0), color="0.45", lw=1.5)
        ax.plot(layers, par.mean(0), color=LANG_COLORS["en"], ls="--", lw=1.5, label="translation pairs（対訳平均）")
        ax.plot(layers, res.pair[p], color=LANG_COLORS["ja"], lw=2.5, marker="o", ms=3, label="this pair（この文）")
        ax.set_title(POOLING_TITLES.get(p, p))
        ax.set_xlabel("layer（層）")
    axes[0].set_ylabel("cosine similarity")
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{res.model}: English ↔ 日本語", fontsize=11)
    fig.tight_layout()
    return fig


def figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@dataclass
class EmbeddingJob(BackgroundJob):
    """One background similarity computation."""

    state: str = "pending"  # pending | loading | baseline | embedding | done | cancelled | error
    done_sentences: int = 0
    total_sentences: int = 0
    result: SimilarityResult | None = None


class EmbeddingPanel:
    """ipywidgets panel; ``widget`` is what to ``display``; ``compute`` is the button's code path."""

    def __init__(self, profile: str = "local", model: str | None = None, corpus: str | None = None,
                 loader: Callable[[str], tuple] | None = None, pairs_builder=None):
        import ipywidgets as w

        self.settings = study(profile).explorer.override(embedding_model=model or None, corpus=corpus or None)
        s = self.settings
        if pairs_builder is None:
            from cltrlib.embeddings.pairs import build_pairs as pairs_builder
        # Pick list and baseline come from disjoint seeds of the same corpus; both are en-ja aligned.
        self.pick_pairs = pairs_builder(s.corpus, s.n_pick, seed=0, langs=("en", "ja"))
        self.baseline_pairs = pairs_builder(s.corpus, s.n_baseline, seed=1, langs=("en", "ja"))
        self.loader = loader
        self._baselines: dict[str, tuple[dict, dict]] = {}
        self.job: EmbeddingJob | None = None

        options = [(f"{i + 1}. {en[:70]}", i) for i, en in enumerate(self.pick_pairs.texts["en"])]
        self.pick = w.Dropdown(options=options, value=0, description="pair", layout=w.Layout(width="520px"))
        self.model = w.Dropdown(options=list(dict.fromkeys([s.embedding_model, *EMBEDDED])), value=s.embedding_model,
                                description="model", layout=w.Layout(width="320px"))
        self.en = w.Textarea(description="English", layout=w.Layout(width="100%", height="56px"))
        self.ja = w.Textarea(description="日本語", layout=w.Layout(width="100%", height="56px"))
        self.compute_button = w.Button(description="Compare layers", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="sentences", layout=w.Layout(width="420px"))
        self.status = w.HTML("idle")
        self.plot = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.summary = w.HTML()
        for widget, cls in [(self.pick, "cltr-emb-pick"), (self.en, "cltr-emb-en"), (self.ja, "cltr-emb-ja"),
                            (self.compute_button, "cltr-emb-compute"), (self.stop_button, "cltr-emb-stop"),
                            (self.status, "cltr-emb-status"), (self.plot, "cltr-emb-plot"),
                            (self.summary, "cltr-emb-summary")]:
            widget.add_class(cls)
        self.pick.observe(lambda ch: self.choose_pair(ch["new"]), names="value")
        self.compute_button.on_click(lambda _: self.compute())
        self.stop_button.on_click(lambda _: self.job.cancel() if self.job else None)
        self.choose_pair(0)
        corpus_name = html.escape(s.corpus)
        self.widget = w.VBox([
            w.HTML("<h3 style='margin:4px 0'>Sentence embeddings: English vs Japanese, layer by layer</h3>"
                   f"<div style='color:#57606a;font-size:12px'>pick a parallel pair from {corpus_name} or type your "
                   f"own; references: {len(self.baseline_pairs.ids)} {corpus_name} translation pairs and the same "
                   "sentences paired at random</div>"),
            w.HBox([self.pick, self.model]), self.en, self.ja,
            w.HBox([self.compute_button, self.stop_button, self.progress, self.status]),
            self.plot, self.summary,
        ])
        self.widget.add_class("cltr-embedding-panel")

    def choose_pair(self, index: int) -> None:
        self.en.value = self.pick_pairs.texts["en"][index]
        self.ja.value = self.pick_pairs.texts["ja"][index]

    def _status(self, job: EmbeddingJob) -> None:
        label = {"loading": "loading model…", "baseline": "embedding the reference pairs…",
                 "embedding": "embedding your pair…", "done": "done", "cancelled": "stopped",
                 "error": "error"}.get(job.state, job.state)
        self.progress.max = max(job.total_sentences, 1)
        self.progress.value = job.done_sentences
        text = f'<span class="cltr-emb-{job.state}">{label} {job.elapsed:.1f} s</span>'
        if job.error:
            text += f' <span style="color:#cf222e">{html.escape(job.error)}</span>'
        self.status.value = text

    def _baseline(self, name: str, lm, tok, job: EmbeddingJob) -> tuple[dict, dict]:
        """(parallel, random) cosines ``{pooling: [n, layers]}`` of the reference pairs, once per model."""
        from cltrlib.embeddings.similarity import cosine_rows

        if name not in self._baselines:
            bp = self.baseline_pairs
            texts = list(bp.texts["en"]) + list(bp.texts["ja"])
            n = len(bp.texts["en"])

            def seen(k: int) -> None:
                job.done_sentences = k
                self._status(job)

            emb = embed_in_chunks(lm, tok, texts, self.settings.embed_max_length, job._stop, seen)
            par = {p: cosine_rows(e[:n], e[n:]) for p, e in emb.items()}
            rnd = {p: cosine_rows(e[:n], e[n:][bp.random_index]) for p, e in emb.items()}
            self._baselines[name] = (par, rnd)
        return self._baselines[name]

    def compute(self, wait: bool = False) -> EmbeddingJob:
        """Embed the two text boxes and the references in a background thread; update the plot when done."""
        from cltrlib.embeddings.similarity import cosine_rows

        if self.job is not None and self.job.running:
            return self.job
        en, ja, name = self.en.value.strip(), self.ja.value.strip(), self.model.value
        job = EmbeddingJob()
        self.job = job
        n_ref = 0 if name in self._baselines else 2 * len(self.baseline_pairs.ids)
        job.total_sentences = n_ref + 2
        self.compute_button.disabled, self.stop_button.disabled = True, False

        def work() -> None:
            if not en or not ja:
                raise ValueError("type an English sentence and its Japanese translation (or pick a pair)")
            job.state = "loading"
            self._status(job)
            lm, tok = self.loader(name) if self.loader else load(name, "embed", device="cpu")
            job.state = "baseline"
            par, rnd = self._baseline(name, lm, tok, job)
            job.state = "embedding"
            self._status(job)
            emb = embed_in_chunks(lm, tok, [en, ja], self.settings.embed_max_length, job._stop)
            job.done_sentences = job.total_sentences
            pair = {p: cosine_rows(e[:1], e[1:])[0] for p, e in emb.items()}
            job.result = SimilarityResult(name, en, ja, pair, par, rnd)
            self.plot.value = figure_png(similarity_figure(job.result))
            self.summary.value = summary_html(job.result)

        def finish() -> None:
            self._status(job)
            self.compute_button.disabled, self.stop_button.disabled = False, True

        return job.start(work, EmbeddingCancelled, finish, name="cltr-embedding", wait=wait)

    def snapshot_html(self) -> str:
        """Static HTML of the panel's state (papermill runs, exported notebooks)."""
        img = ""
        if self.plot.value:
            b64 = base64.b64encode(self.plot.value).decode("ascii")
            img = f'<img style="max-width:100%" src="data:image/png;base64,{b64}">'
        return ('<div class="cltr-snapshot cltr-emb-snapshot" style="border:1px solid #d0d7de;padding:8px">'
                "<h3 style='margin:4px 0'>Sentence embeddings: English vs Japanese, layer by layer</h3>"
                f"<div><b>English</b>: {html.escape(self.en.value)}<br><b>日本語</b>: {html.escape(self.ja.value)}</div>"
                f"<div>{self.status.value}</div>{img}{self.summary.value}</div>")


def summary_html(res: SimilarityResult) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r['pooling'])}</td><td>{r['layer']}</td><td><b>{r['pair']:.3f}</b></td>"
        f"<td>{r['translation pairs']:.3f}</td><td>{r['random pairs']:.3f} ± {r['random sd']:.3f}</td></tr>"
        for r in res.summary_rows())
    return ('<table class="cltr-emb-table" style="font-size:12px"><thead><tr><th>pooling</th>'
            "<th>layer with the largest gap over random</th><th>this pair</th><th>translation pairs</th>"
            f"<th>random pairs</th></tr></thead><tbody>{rows}</tbody></table>")

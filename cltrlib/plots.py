"""One plotting style for every figure: seaborn, paper-readable sizes, a real Japanese font.

``matplotlib_fontja`` registers IPAex Gothic; without it Japanese labels become tofu boxes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(("module://", "nbagg", "ipympl")) else None

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from cltrlib import config  # noqa: E402

PALETTE = "colorblind"
LANG_COLORS = {"en": "#0173b2", "ja": "#de8f05", "fr": "#029e73", "de": "#d55e00", "es": "#cc78bc", "zh": "#ca9161"}


def setup_style(context: str = "paper", font_scale: float = 1.3) -> None:
    """Apply the suite's style; call once at the top of a notebook (idempotent)."""
    import matplotlib_fontja  # noqa: F401  (registers the font family)

    sns.set_theme(context=context, style="whitegrid", palette=PALETTE, font_scale=font_scale)
    plt.rcParams["font.family"] = ["IPAexGothic", "sans-serif"]
    plt.rcParams["axes.unicode_minus"] = False
    plt.rcParams["figure.dpi"] = 110
    plt.rcParams["savefig.dpi"] = 200
    plt.rcParams["savefig.bbox"] = "tight"


def legend_beside(fig, axes, title: str, fontsize: int = 9) -> None:
    """One legend for a grid of panels, outside it on the right: inside a panel it hides curves wherever the data
    happen to lie. Handles come from the first panel that has labelled artists (panels may be empty)."""
    handles, labels = next(((h, lab) for ax in axes.flat for h, lab in [ax.get_legend_handles_labels()] if h),
                           ([], []))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=fontsize, title=title)


def save_figure(fig, name: str, out_dir: str | Path | None = None) -> Path:
    """Save ``fig`` as PNG and PDF under the figures folder; return the PNG path.

    The PDF carries no creation date, so regenerating an unchanged figure leaves the committed file as it was.
    """
    out = Path(out_dir) if out_dir is not None else config.figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    fig.savefig(png)
    fig.savefig(out / f"{name}.pdf", metadata={"CreationDate": None})
    return png

"""Writing tables: CSV (long format, machine-readable) plus Markdown (paper layout)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cltrlib import config


def tables_dir(out_dir: str | Path | None = None) -> Path:
    path = Path(out_dir) if out_dir is not None else config.figures_dir() / "tables"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_table(df: pd.DataFrame, name: str, out_dir: str | Path | None = None, markdown: pd.DataFrame | None = None,
                float_format: str = "%.4f") -> Path:
    """Write ``<name>.csv`` (and ``<name>.md`` from ``markdown`` or ``df``); return the CSV path."""
    out = tables_dir(out_dir)
    csv = out / f"{name}.csv"
    df.to_csv(csv, index=False, float_format=float_format)
    md = markdown if markdown is not None else df
    (out / f"{name}.md").write_text(md.to_markdown(index=False, floatfmt=".2f") + "\n", encoding="utf-8")
    return csv

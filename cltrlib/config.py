"""Where things live: data mirror, model cache, results store.

One place decides every path so that notebooks, the CLI and tests agree, and so a
user can move any of them with one environment variable:

- ``CLTR_DATA_DIR``    public data sets (default: the ``shared/data`` mirror beside
  the repository, if there is one)
- ``CLTR_CACHE_DIR``   converted models and other caches (default ``~/.cache/cltr``),
  always outside the repository because model folders are hundreds of MB
- ``CLTR_RESULTS_DIR`` the results store (default ``<repo>/results``, gitignored)
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _candidate_data_dirs() -> list[Path]:
    """Places the local mirror is looked for, in order, when CLTR_DATA_DIR is unset."""
    return [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]


def data_dir() -> Path | None:
    """The configured data directory, or the first mirror found; None if there is none.

    None is a legitimate answer: loaders then fall back to the public hub and, failing
    that, raise an error that lists every place they looked.
    """
    env = os.environ.get("CLTR_DATA_DIR")
    if env:
        return Path(env).expanduser()
    for cand in _candidate_data_dirs():
        if cand.is_dir():
            return cand
    return None


def data_dir_candidates() -> list[Path]:
    """Every directory a loader will look in, for error messages."""
    env = os.environ.get("CLTR_DATA_DIR")
    return [Path(env).expanduser()] if env else _candidate_data_dirs()


def cache_dir() -> Path:
    """Cache for converted models etc.; created on first use."""
    path = Path(os.environ.get("CLTR_CACHE_DIR", Path.home() / ".cache" / "cltr")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Root of the results store; created on first use."""
    path = Path(os.environ.get("CLTR_RESULTS_DIR", REPO_ROOT / "results")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    """Where notebooks write figures (PNG + PDF) and, under ``tables/``, CSV/Markdown."""
    path = Path(os.environ.get("CLTR_FIGURES_DIR", REPO_ROOT / "figures")).expanduser()
    (path / "tables").mkdir(parents=True, exist_ok=True)
    return path

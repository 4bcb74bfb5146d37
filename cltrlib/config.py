"""Where things live: data mirror, model cache, results store.

One place decides every path so that notebooks, the CLI and tests agree, and so a
user can move any of them with one environment variable:

- ``CLTR_DATA_DIR``    public data sets (default: the ``shared/data`` mirror beside
  the repository, if there is one)
- ``CLTR_CACHE_DIR``   converted models and other caches (default ``~/.cache/cltr``),
  always outside the repository because model folders are hundreds of MB
- ``CLTR_RESULTS_DIR`` the results store (default ``<repo>/results``, gitignored)
- ``CLTR_FIGURES_DIR`` figures and tables (default: ``<repo>/figures`` for the committed profile, ``local``;
  ``<results>/figures/<profile>`` for every other profile, so a smoke or paper run never overwrites them)
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMITTED_PROFILE = "local"  # the profile whose figures and tables are committed under figures/

_output_profile: str | None = None


def _candidate_data_dirs() -> list[Path]:
    """Places the local mirror is looked for, in order, when CLTR_DATA_DIR is unset."""
    return [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]


def data_dir_candidates() -> list[Path]:
    """Every directory ``cltrlib.data.resolve_data_file`` (the one resolver of data files) looks in, in order."""
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


def set_output_profile(profile: str | None) -> None:
    """Make ``profile`` the one whose folder ``figures_dir()`` returns (``cltrlib.study.study`` calls this, so a
    notebook's outputs follow its ``profile`` parameter without every save naming a folder)."""
    global _output_profile
    _output_profile = profile


def figures_dir(profile: str | None = None) -> Path:
    """Where figures (PNG + PDF) and, under ``tables/``, CSV/Markdown go for ``profile`` (default: the profile
    last resolved by ``study()``, else the committed one). ``CLTR_FIGURES_DIR`` overrides it for every profile."""
    profile = profile or _output_profile or COMMITTED_PROFILE
    env = os.environ.get("CLTR_FIGURES_DIR")
    if env:
        path = Path(env).expanduser()
    elif profile == COMMITTED_PROFILE:
        path = REPO_ROOT / "figures"
    else:
        path = results_dir() / "figures" / profile
    (path / "tables").mkdir(parents=True, exist_ok=True)
    return path

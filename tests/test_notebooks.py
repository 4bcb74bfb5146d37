"""Every notebook runs top to bottom under papermill on the `smoke` and `rehearsal` profiles (fresh kernel).

Figures and tables go to a temporary folder so a test run never overwrites the committed
outputs; the results store is shared across this test session so notebook 03 reads what
02 stored, exactly as in `make reproduce`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from cltrlib import config
from cltrlib.reproduce import notebook_paths, run_notebook

NOTEBOOKS = notebook_paths()


@pytest.fixture(scope="session")
def notebook_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb")
    return {"CLTR_FIGURES_DIR": str(root / "figures"), "CLTR_RESULTS_DIR": str(root / "results"), "root": root}


@pytest.mark.notebook
@pytest.mark.parametrize("profile", ["smoke", "rehearsal"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, profile, notebook_env, monkeypatch):
    """``smoke``: the embedded models on a handful of items; ``rehearsal``: the paper profile's models, settings
    and code paths on tiny stand-ins of their architectures (``cltrlib.standins``)."""
    for key in ("CLTR_FIGURES_DIR", "CLTR_RESULTS_DIR"):
        monkeypatch.setenv(key, f"{notebook_env[key]}/{profile}" if key == "CLTR_FIGURES_DIR" else notebook_env[key])
    out = run_notebook(path, profile, out_dir=notebook_env["root"] / "executed" / profile)
    assert out.exists()


def test_explorer_runs_after_the_notebooks_whose_results_it_shows():
    names = [p.name[:2] for p in NOTEBOOKS]
    assert names[-1] == "00"  # the explorer shows every other notebook's stored results
    assert names.index("03") > names.index("07")  # 03 shows the CLTR of the models 07 trains
    others = [n for n in names[:-1] if n != "03"]
    assert others == sorted(others)  # the rest keep reading order


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.notebook
def test_a_smoke_run_leaves_the_committed_figures_alone(tmp_path, monkeypatch):
    """Only the committed profile (``local``) writes ``figures/``: a smoke run of a notebook, with no folder given,
    writes under ``<results>/figures/smoke`` and leaves every committed file (and ``git status``) as it was."""
    monkeypatch.delenv("CLTR_FIGURES_DIR", raising=False)
    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path / "results"))
    committed = config.REPO_ROOT / "figures"
    before = _tree_digest(committed)
    status = ["git", "-C", str(config.REPO_ROOT), "status", "--porcelain", "--", "figures"]
    git_before = subprocess.run(status, capture_output=True, text=True).stdout if shutil.which("git") else None
    path = next(p for p in NOTEBOOKS if p.name.startswith("01_"))  # the cheapest notebook that writes both
    run_notebook(path, "smoke", out_dir=tmp_path / "executed")
    assert _tree_digest(committed) == before
    if git_before is not None:
        assert subprocess.run(status, capture_output=True, text=True).stdout == git_before
    smoke = tmp_path / "results" / "figures" / "smoke"
    assert (smoke / "jhumaneval_validation.png").is_file()
    assert (smoke / "tables" / "jhumaneval_validation.csv").is_file()

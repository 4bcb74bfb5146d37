"""Every notebook runs top to bottom under papermill on the `smoke` profile (fresh kernel).

Figures and tables go to a temporary folder so a test run never overwrites the committed
outputs; the results store is shared across this test session so notebook 03 reads what
02 stored, exactly as in `make reproduce`.
"""

from __future__ import annotations

import pytest

from cltrlib.reproduce import notebook_paths, run_notebook

NOTEBOOKS = notebook_paths()


@pytest.fixture(scope="session")
def notebook_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb")
    return {"CLTR_FIGURES_DIR": str(root / "figures"), "CLTR_RESULTS_DIR": str(root / "results"), "root": root}


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_smoke(path, notebook_env, monkeypatch):
    for key in ("CLTR_FIGURES_DIR", "CLTR_RESULTS_DIR"):
        monkeypatch.setenv(key, notebook_env[key])
    out = run_notebook(path, "smoke", out_dir=notebook_env["root"] / "executed")
    assert out.exists()


def test_explorer_runs_after_the_notebooks_whose_results_it_shows():
    names = [p.name for p in NOTEBOOKS]
    assert names[-1] == "00_explorer.ipynb"
    assert names[:-1] == sorted(names[:-1])  # the others keep reading order

"""Paper B tables: test-set intervals beside the std over seeds, the probe vs full-depth rows, reference rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from cltrlib.study import TransferSettings
from cltrlib.transfer.experiment import run_grid
from cltrlib.transfer.report import paper_layout, probe_vs_full_depth, summary_table
from cltrlib.transfer.scores import items_bootstrap_interval, seed_mean_metric
from tests.test_transfer_model import _tiny


def test_bootstrap_metrics_equal_sklearns_and_intervals_cover_the_seed_mean():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 40)
    p1 = np.round(rng.random((80, 3)) * 0.6 + y[:, None] * 0.3, 2)  # ties included
    probs = np.stack([1 - p1, p1], axis=2)
    f1 = np.mean([f1_score(y, probs[:, k].argmax(1)) for k in range(3)])
    auroc = np.mean([roc_auc_score(y, p1[:, k]) for k in range(3)])
    assert seed_mean_metric("f1", y, probs) == pytest.approx(f1)
    assert seed_mean_metric("auroc", y, probs) == pytest.approx(auroc)
    accuracy = np.mean([np.mean(probs[:, k].argmax(1) == y) for k in range(3)])
    assert seed_mean_metric("accuracy", y, probs) == pytest.approx(accuracy)
    low, high = items_bootstrap_interval("auroc", y, probs, n_boot=400)
    assert low < auroc < high and 0.05 < high - low < 0.4  # 80 items: an interval of about ±0.1
    perfect = np.stack([1 - y, y], axis=1)[:, None, :].astype(float)
    assert items_bootstrap_interval("auroc", y, perfect, n_boot=200) == (1.0, 1.0)
    assert items_bootstrap_interval("f1", y, perfect, n_boot=200) == (1.0, 1.0)


def test_grid_with_full_depth_runs_gives_separate_rows_intervals_and_reference_rows_by_condition(tmp_path):
    path = _tiny(tmp_path, "llama")
    s = TransferSettings(models=(path,), patterns={"ja0": 0, "ja4": 4}, seeds=(0, 1), n_source=8, n_test=12,
                         epochs=1, max_length=32, lora_layers=1, full_depth_models=(path,), attribution_model=None,
                         full_depth_patterns=("ja0", "ja4"))
    runs = run_grid(s, device="cpu", progress=False)
    assert sorted(runs["layers"].value_counts().items()) == [("LoRA all", 4), ("LoRA top 1", 6)]
    summary = summary_table(runs)
    assert summary["test_ci_low"].notna().all() and (summary["n_test"] == 12).all()
    assert (summary["test_ci_low"] <= summary["mean"] + 1e-9).all()
    assert (summary["mean"] <= summary["test_ci_high"] + 1e-9).all()
    table = paper_layout(summary, "auroc")
    assert "[" in table.loc[0, "ja0"] and set(table["layers"]) >= {"LoRA all", "LoRA top 1"}
    # Paper B's Japanese-only models are monolingual references, listed after our monolingual rows
    ref = table[table["model"].isin(["OpenCALM-7B", "bert-base-japanese-v2"])]
    assert set(ref["condition"]) == {"monolingual"}
    assert ref.index.min() > table[(table["condition"] == "monolingual") & table["source"].str.startswith("ours")
                                   ].index.max()
    assert not (table[table["condition"] == "crosslingual"]["source"].str.startswith("Paper B")
                & table["model"].isin(["OpenCALM-7B", "bert-base-japanese-v2"])).any()
    both = probe_vs_full_depth(summary)
    assert set(both["pattern"]) == {"ja0", "ja4"} and set(both["probe"]) == {"LoRA top 1"}

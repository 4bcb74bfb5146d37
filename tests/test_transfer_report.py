"""Paper B tables: test-set intervals beside the std over seeds, the probe vs full-depth rows, reference rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from cltrlib.study import TransferSettings
from cltrlib.transfer.experiment import run_grid
from cltrlib.transfer.report import (
    paper_layout,
    pattern_change,
    plot_transfer,
    probe_vs_full_depth,
    summary_table,
    write_full_depth_table,
)
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
    from cltrlib.transfer.adapters import load_classifier
    from cltrlib.transfer.train import load_run_probs, predict_proba

    path = _tiny(tmp_path, "llama")
    s = TransferSettings(models=(path,), patterns={"ja0": 0, "ja4": 4}, seeds=(0, 1), n_source=8, n_test=12,
                         epochs=1, max_length=32, lora_layers=1, full_depth_models=(path,), attribution_model=None,
                         full_depth_patterns=("ja0", "ja4"), full_depth_seeds=(0,), full_depth_epochs=2,
                         full_depth_bf16=True)
    runs = run_grid(s, device="cpu", progress=False)
    assert sorted(runs["layers"].value_counts().items()) == [("LoRA all", 2), ("LoRA top 1", 6)]
    deep = runs[runs["layers"] == "LoRA all"]
    # the full-depth knobs reach its runs only; the probe grid keeps its own epochs, in fp32
    assert set(deep["epochs"]) == {2} and deep["bf16"].all() and set(deep["seed"]) == {0}
    assert set(runs.loc[runs["layers"] != "LoRA all", "epochs"]) == {1} and not runs.loc[
        runs["layers"] != "LoRA all", "bf16"].any()
    # a bf16 classifier reloads and predicts (in bf16, as recorded) what its run stored
    row = deep.iloc[0]
    model, tok, meta = load_classifier(row["adapter_dir"])
    assert meta["bf16"] is True
    stored = load_run_probs(row.to_dict())
    probs = predict_proba(model, tok, [str(t) for t in _test_texts(s, row)], meta["max_length"], bf16=meta["bf16"])
    np.testing.assert_allclose(probs, np.array(stored["probs"].tolist()), atol=1e-4)
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
    # the full-depth row names its deviations and, with one seed, shows no std (its only interval: test items)
    deep_row = table[table["layers"] == "LoRA all"].iloc[0]
    assert "n_seeds=1" in deep_row["source"] and "2 epochs, bf16" in deep_row["source"]
    assert "(-) [" in deep_row["ja0"]
    assert "1 epochs)" in table[table["layers"] == "LoRA top 1"].iloc[0]["source"]
    both = probe_vs_full_depth(summary)
    assert set(both["pattern"]) == {"ja0", "ja4"} and set(both["probe"]) == {"LoRA top 1"}
    assert both["std_all_layers"].isna().all() and both["std_probe"].notna().all()
    assert (both["epochs_all_layers"] == 2).all() and both["test_ci_low_all_layers"].notna().all()
    # ja4 minus ja0 per setting: the seed means' difference, inside its paired interval over test items
    change = pattern_change(runs, n_boot=200)
    assert sorted(change["layers"].unique()) == ["LoRA all", "LoRA top 1"] and set(change["to"]) == {"ja4"}
    means = summary[summary["condition"] == "crosslingual"].set_index(["layers", "metric", "pattern"])["mean"]
    for r in change.itertuples():
        assert r.change == pytest.approx(means[r.layers, r.metric, "ja4"] - means[r.layers, r.metric, "ja0"])
        assert r.change_ci_low <= r.change + 1e-9 <= r.change_ci_high + 2e-9
    assert set(change["n_seeds"]) == {1, 2} and (change["n_test"] == 12).all()
    layout = write_full_depth_table(summary, change, out_dir=tmp_path / "tables")
    assert list(layout["layers"]) == ["LoRA all", "LoRA top 1"] and list(layout["n_seeds"]) == [1, 2]
    assert list(layout["precision"]) == ["bf16", "fp32"] and list(layout["epochs"]) == [2, 1]
    assert "(-) [" in layout.loc[0, "auroc ja0"] and layout.loc[1, "f1 ja4 - ja0"].count("[") == 1
    assert (tmp_path / "tables" / "transfer_probe_vs_full_depth.md").is_file()
    # the figure's full-depth line says in its legend what was cut
    fig = plot_transfer(summary, s.patterns)
    labels = [t.get_text() for ax in fig.axes for leg in [ax.get_legend(), *fig.legends] if leg for t in leg.get_texts()]
    assert any("LoRA all layers (1 seed, 2 epochs)" in t for t in labels), labels


def _test_texts(s: TransferSettings, row) -> list[str]:
    """The test texts of one run of the grid ``s``, in its stored order."""
    from cltrlib.transfer.data import load_bilingual
    from cltrlib.transfer.experiment import grid_pattern

    return grid_pattern(s, load_bilingual(s.dataset), row["pattern"], int(row["seed"]), row["condition"]
                        ).test["text"].tolist()

"""Training runs: same seed → same metrics; saved adapters reload to the same predictions; metric definitions."""

from __future__ import annotations

import numpy as np
import pytest

from cltrlib.models import load
from cltrlib.transfer import ClassifierConfig, TrainConfig, classification_scores, load_bilingual, make_pattern
from cltrlib.transfer.adapters import list_adapters, load_classifier
from cltrlib.transfer.scores import summarize_over_seeds
from cltrlib.transfer.train import _PREFIX_STORES, load_run_probs, predict_proba, run_transfer
from tests.test_transfer_model import _tiny


@pytest.fixture(scope="module")
def tiny_pattern():
    data = load_bilingual("sib200-science")
    return make_pattern(data, "ja4", 4, seed=0, n_source=12, n_test=8)


def _run(path, pattern, root):
    clf = ClassifierConfig(model=path, num_labels=2, lora_layers=1)
    return run_transfer(pattern, clf, TrainConfig(epochs=2, batch_size=4, max_length=16), progress=False, root=root)


def test_same_seed_gives_the_same_metrics_twice_and_the_adapter_reloads(tmp_path, tiny_pattern):
    path = _tiny(tmp_path, "llama")
    first = _run(path, tiny_pattern, tmp_path / "a")
    _PREFIX_STORES.clear()  # the second run recomputes everything, sharing nothing with the first
    second = _run(path, tiny_pattern, tmp_path / "b")
    for key in ("f1", "auroc", "accuracy"):
        assert first[key] == second[key], key
    assert first["epoch_losses"] == second["epoch_losses"]
    assert np.isfinite(first["epoch_losses"]).all()
    # stored run is read back, not retrained
    assert _run(path, tiny_pattern, tmp_path / "a")["train_s"] == first["train_s"]
    # the saved adapter (LoRA + trained head) reproduces the stored predictions
    listed = list_adapters(root=tmp_path / "a")
    assert len(listed) == 1 and listed.loc[0, "pattern"] == "ja4" and listed.loc[0, "label_names"][1].startswith("sci")
    assert listed.loc[0, "epochs"] == len(first["epoch_losses"]) and listed.loc[0, "layers"].startswith("LoRA")
    model, tok, meta = load_classifier(listed.loc[0, "adapter_dir"])
    assert meta["base_model"] == path and model.config.pad_token_id == tok.pad_token_id
    probs = predict_proba(model, tok, tiny_pattern.test["text"].tolist(), meta["max_length"])
    stored = np.array(load_run_probs(first)["probs"].tolist())
    np.testing.assert_allclose(probs, stored, atol=1e-4)
    # models.load caches the same classifier once per process
    cached = load(listed.loc[0, "adapter_dir"], "classifier", device="cpu")
    assert load(listed.loc[0, "adapter_dir"], "classifier", device="cpu") is cached
    np.testing.assert_array_equal(predict_proba(cached[0], cached[1], tiny_pattern.test["text"].tolist(),
                                                meta["max_length"]), probs)


def test_scores_binary_and_multiclass():
    s = classification_scores([0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    assert s["auroc"] == 1.0 and abs(s["f1"] - 2 / 3) < 1e-9 and abs(s["accuracy"] - 2 / 3) < 1e-9
    m = classification_scores([0, 1, 2], np.eye(3) * 0.8 + 0.1 / 1)
    assert m["f1"] == 1.0 and m["auroc"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        classification_scores([0, 1], [[0.5, 0.5]])


def test_summary_over_seeds_mean_and_sample_std():
    import pandas as pd

    runs = pd.DataFrame({"model": "m", "dataset": "d", "condition": "c", "pattern": "ja0", "seed": [0, 1, 2],
                         "f1": [0.5, 0.6, 0.7], "auroc": [0.9, 0.9, 0.9], "accuracy": [0.5, 0.5, 0.5]})
    out = summarize_over_seeds(runs).set_index("metric")
    assert out.loc["f1", "mean"] == pytest.approx(0.6) and out.loc["f1", "std"] == pytest.approx(0.1)
    assert out.loc["auroc", "std"] == 0.0 and out.loc["f1", "n_seeds"] == 3


def test_bf16_joins_the_store_key_only_when_on(tiny_pattern):
    from cltrlib.transfer.train import run_config

    clf = ClassifierConfig(model="smollm2-135m-instruct", num_labels=2, lora_layers=1)
    off = run_config(tiny_pattern, clf, TrainConfig())
    # the fields of runs stored before bf16 existed: their keys (and stored results) stay valid
    assert set(off["train"]) == {"epochs", "lr", "batch_size", "max_length", "weight_decay", "extra"}
    on = run_config(tiny_pattern, clf, TrainConfig(bf16=True))
    assert on["train"] == {**off["train"], "bf16": True}

"""Pooling, pairing, exact Spearman and label-word tuning for Paper C (cltrlib.embeddings).

Model tests use a tiny randomly initialised Llama with the real SmolLM2 tokenizer:
the properties tested (padding, positions, masks, the loss target) do not depend on
trained weights, and the tiny model runs in milliseconds on 2 CPU cores.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cltrlib.data.multilingual import load_pawsx, load_pud
from cltrlib.embeddings.extract import embed_texts
from cltrlib.embeddings.pairs import build_pairs, derangement
from cltrlib.embeddings.pooling import last_token_index, last_token_pool, mean_pool
from cltrlib.embeddings.scoring import encode_prompts, label_token_ids
from cltrlib.embeddings.similarity import cosine_rows, spearman_exact, spearman_table
from cltrlib.embeddings.tasks import evaluation_ids, label_words, pawsx_row_split
from cltrlib.lengths import length_sorted_batches
from cltrlib.models import load, load_tokenizer

SENTENCES = ["Hi.", "The quick brown fox jumps over the lazy dog near the river bank.", "日本語の文です。",
             "A medium length sentence here."]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, 32-wide Llama saved with the real SmolLM2 tokenizer (loads by path like any model)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer("smollm2-135m-instruct", padding_side="right")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def test_mean_pool_ignores_padding_whatever_it_holds():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    garbage = hidden.clone()
    garbage[mask == 0] = 1e6  # padded positions hold nonsense
    got = mean_pool(garbage, mask)
    for i in range(3):
        expected = hidden[i][mask[i].bool()].mean(0)
        torch.testing.assert_close(got[i], expected)


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_is_last_real_token(side):
    lengths = [2, 5, 3]
    T = 5
    rows = []
    for n in lengths:
        pad = [0] * (T - n)
        rows.append(pad + [1] * n if side == "left" else [1] * n + pad)
    mask = torch.tensor(rows)
    expected = [T - 1] * 3 if side == "left" else [n - 1 for n in lengths]
    assert last_token_index(mask).tolist() == expected
    hidden = torch.arange(3 * T * 2, dtype=torch.float32).reshape(3, T, 2)
    torch.testing.assert_close(last_token_pool(hidden, mask), hidden[torch.arange(3), torch.tensor(expected)])


def test_last_token_rejects_empty_row():
    with pytest.raises(ValueError, match="no real token"):
        last_token_pool(torch.zeros(1, 3, 2), torch.zeros(1, 3, dtype=torch.long))


@pytest.mark.parametrize("kind", ["generate", "embed"])  # left and right padding
def test_embeddings_do_not_depend_on_batch_or_padding_side(tiny_model_dir, kind):
    """A sentence's per-layer embedding is the same alone and padded inside a batch, for both poolings."""
    lm, tok = load(tiny_model_dir, kind, device="cpu")
    batched = embed_texts(lm, tok, SENTENCES, batch_size=4, progress=False)
    for i, text in enumerate(SENTENCES):
        alone = embed_texts(lm, tok, [text], batch_size=1, progress=False)
        for pooling in ("mean", "last"):
            assert batched[pooling].shape == (len(SENTENCES), 3, 32)  # embeddings + 2 layers
            np.testing.assert_allclose(batched[pooling][i], alone[pooling][0], rtol=1e-4, atol=1e-5)
    # and sorting by length (the fast path) returns rows in input order
    unsorted = embed_texts(lm, tok, SENTENCES, batch_size=2, progress=False, sort_by_length=False)
    np.testing.assert_allclose(unsorted["last"], batched["last"], rtol=1e-4, atol=1e-5)


def test_mean_and_last_differ_and_cosine_is_bounded(tiny_model_dir):
    lm, tok = load(tiny_model_dir, "embed", device="cpu")
    emb = embed_texts(lm, tok, SENTENCES, progress=False)
    assert not np.allclose(emb["mean"], emb["last"])
    cos = cosine_rows(emb["mean"], emb["mean"][::-1])
    assert cos.shape == (len(SENTENCES), 3) and np.all(np.abs(cos) <= 1 + 1e-6)
    np.testing.assert_allclose(cosine_rows(emb["last"], emb["last"]), 1.0, rtol=1e-5)


def test_load_caches_one_shared_copy_and_merges_adapters_into_private_ones(tiny_model_dir, tmp_path):
    """Both causal kinds share the cached weights; an adapter is merged into a copy, never into the cached model."""
    import copy

    from peft import LoraConfig, get_peft_model

    lm, left = load(tiny_model_dir, "generate", device="cpu")
    same, right = load(tiny_model_dir, "embed", device="cpu")
    assert same is lm and not lm.training and (left.padding_side, right.padding_side) == ("left", "right")
    assert load(tiny_model_dir, "embed", device="cpu")[1] is right
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    torch.manual_seed(0)
    lora = get_peft_model(copy.deepcopy(lm), LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path)
    merged, tok = load(tiny_model_dir, "embed", tmp_path, device="cpu")
    assert merged is not lm and tok is right and not merged.training
    assert not torch.equal(merged.state_dict()["model.layers.0.self_attn.q_proj.weight"],
                           before["model.layers.0.self_attn.q_proj.weight"])
    assert all(torch.equal(v, before[k]) for k, v in lm.state_dict().items())


def test_length_sorted_batches_cover_every_index_once():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    batches = length_sorted_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [lengths[i] for i in batches[0]] == [9, 8, 7]


def test_parallel_pairs_are_aligned_translations_pud():
    pairs = build_pairs("pud", 20, seed=0)
    assert len(pairs.ids) == 20
    for lang in ("en", "ja", "zh"):
        by_id = load_pud(lang).set_index("sent_id")["text"]
        assert list(pairs.texts[lang]) == [by_id[i] for i in pairs.ids]
    # a parallel pair shares its id; a random pair never does
    assert all(j != i for i, j in enumerate(pairs.random_index))
    assert pairs.random("ja")[0] == (pairs.texts["en"][0], pairs.texts["ja"][pairs.random_index[0]])


def test_pairs_are_reproducible_and_seed_dependent():
    a, b = build_pairs("pawsx", 30, seed=7), build_pairs("pawsx", 30, seed=7)
    assert a.ids == b.ids and a.texts == b.texts and np.array_equal(a.random_index, b.random_index)
    c = build_pairs("pawsx", 30, seed=8)
    assert c.ids != a.ids or not np.array_equal(c.random_index, a.random_index)


def test_pawsx_pairs_use_test_rows_present_in_every_language():
    pairs = build_pairs("pawsx", None, seed=0)
    test_rows = set(pawsx_row_split()[1].tolist())
    assert {int(i) for i in pairs.ids} <= test_rows
    ja = load_pawsx("ja").set_index("row")["sentence1"]  # 'NS' rows already dropped by the loader
    assert all(int(i) in ja.index for i in pairs.ids)
    assert len(set(pairs.texts["en"])) == len(pairs.ids)  # no repeated English sentence


def test_pawsx_train_and_test_rows_are_disjoint():
    train, test = pawsx_row_split()
    assert len(train) == len(test) == 1000 and not set(train) & set(test)
    assert set(evaluation_ids("pawsx", None)) <= set(test.tolist())


def test_derangement_has_no_fixed_point():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 100):
        perm = derangement(n, rng)
        assert sorted(perm.tolist()) == list(range(n)) and not (perm == np.arange(n)).any()


def test_spearman_exact_matches_brute_force():
    x = [0.71, 0.75, 0.86, 0.87, 0.87]  # a tie, like real accuracies
    y = [0.22, 0.26, 0.49, 0.54, 0.50]
    rho, p = spearman_exact(x, y)
    assert rho == pytest.approx(spearmanr(x, y).statistic)
    all_rhos = [spearmanr(x, perm).statistic for perm in itertools.permutations(y)]
    assert p == pytest.approx(np.mean([abs(r) >= abs(rho) - 1e-12 for r in all_rhos]))
    rho1, p1 = spearman_exact([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert rho1 == pytest.approx(1.0) and p1 == pytest.approx(2 / 120)


def test_spearman_table_explains_an_undefined_rho():
    """A fine-tuned model that answers the majority label everywhere has the same accuracy in every language."""
    import pandas as pd

    langs = ["fr", "de", "es", "zh", "ja"]
    sim = pd.DataFrame([{"model": "m", "adapter": "base", "corpus": "pud", "lang_pair": f"en-{x}", "pooling": "mean",
                         "layer": 3, "pair_type": "parallel", "mean_cosine": c, "n": 8}
                        for x, c in zip(langs, [0.9, 0.8, 0.85, 0.3, 0.2], strict=True)])
    acc = pd.DataFrame([{"model": "m", "adapter": "ft", "task": t, "lang": x, "accuracy": a}
                        for t, accs in [("flat", [0.53] * 5), ("ranked", [0.7, 0.6, 0.65, 0.4, 0.3])]
                        for x, a in zip(langs, accs, strict=True)])
    out = spearman_table(acc, sim).set_index("task")
    assert np.isnan(out.loc["flat", "spearman_rho"]) and "same in every language" in out.loc["flat", "note"]
    assert out.loc["ranked", "spearman_rho"] == pytest.approx(1.0) and out.loc["ranked", "note"] == ""


@pytest.mark.parametrize("model", ["smollm2-135m-instruct", "gemma3-270m"])
def test_label_words_have_distinct_first_tokens(model):
    tok = load_tokenizer(model)
    for task in ("sib200", "pawsx"):
        ids = label_token_ids(tok, label_words(task))
        assert len(set(ids)) == len(label_words(task))


@pytest.mark.parametrize("model", ["smollm2-135m-instruct", "gemma3-270m"])
def test_label_only_head_gives_the_full_heads_label_logits(model):
    """Scoring applies the LM head to the label tokens only; their logits must be the full head's columns."""
    from cltrlib.embeddings.scoring import next_token_logits

    lm, tok = load(model, "generate")
    targets = label_token_ids(tok, label_words("sib200"))
    enc = encode_prompts(tok, ["Text: Stars form in clouds of gas. The answer is", "Text: 東京の天気。 The answer is"],
                         max_length=64)
    with torch.inference_mode():
        full = next_token_logits(lm, enc["input_ids"], enc["attention_mask"])
        only = next_token_logits(lm, enc["input_ids"], enc["attention_mask"], token_ids=targets)
    assert only.shape == (2, len(targets))
    torch.testing.assert_close(only, full[:, targets], atol=1e-4, rtol=1e-5)


def test_prompt_truncation_keeps_the_question_end():
    tok = load_tokenizer("smollm2-135m-instruct")
    enc = encode_prompts(tok, ["word " * 300 + "The answer is", "short. The answer is"], max_length=32)
    assert enc["input_ids"].shape[1] == 32
    for row in enc["input_ids"]:
        assert tok.decode(row[-3:]).strip().endswith("answer is")


def test_tuning_lowers_label_loss_and_is_stored(tiny_model_dir, tmp_path, monkeypatch):
    """The LoRA loss (label word only) falls on repeated data; the adapter is reused, not retrained."""
    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path))
    from cltrlib.embeddings.tuning import TuneConfig, train_adapter, training_curve
    from cltrlib.embeddings.zeroshot import accuracy_by_lang, evaluate_zero_shot

    cfg = TuneConfig(model=tiny_model_dir, task="pawsx", n_train=8, epochs=6, lr=5e-2, batch_size=8, max_length=64,
                     lora_dropout=0.0)
    ad = train_adapter(cfg, progress=False)
    losses = [r["loss"] for r in training_curve(ad)]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert (ad.dir / "adapter_config.json").exists()
    again = train_adapter(cfg, progress=False)
    assert again.key == ad.key and again.summary == ad.summary
    pred = evaluate_zero_shot(tiny_model_dir, "pawsx", 3, adapter_key=ad.key, adapter_dir=ad.dir, langs=("en", "ja"),
                              max_length=64, progress=False)
    acc = accuracy_by_lang(pred)
    assert list(acc.lang) == ["en", "ja"] and list(acc.n) == [3, 3]
    assert set(pred.pred) <= {0, 1}

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


def test_local_lengths_truncate_no_language_more_than_another():
    """Issue 17 item 1: on ``local``'s own data every language keeps every token (embeddings and prompts)."""
    from cltrlib.embeddings import pipeline
    from cltrlib.study import PROFILES

    p = PROFILES["local"].embeddings
    assert p.embed_max_length is None and p.prompt_max_length is None  # fitted from the data
    emb = pipeline.embedding_truncation(p.override(models=p.models[:1]))
    gen = pipeline.generalization_truncation(p.override(models=p.models[:1]))
    for table, by in ((emb, ["model", "corpus"]), (gen, ["model", "task", "stage"])):
        assert set(table.language) >= ({"en"} if "stage" in table else {"en", "fr", "de", "es", "zh", "ja"})
        for _, g in table.groupby(by):
            assert g.truncated_share.max() == g.truncated_share.min() == 0.0, g
            assert (g.max_length == g.max_tokens.max()).all()  # the longest text of any language sets the length
    # the old fixed 48-token cap cut Japanese far more than English: the test above would have caught it
    ja, en = (emb[(emb.corpus == "pawsx") & (emb.language == x)].max_tokens.iloc[0] for x in ("ja", "en"))
    assert ja > 48 and ja > 2 * en


def test_a_length_cap_binds_and_the_report_shows_who_is_cut():
    from cltrlib.embeddings import pipeline
    from cltrlib.study import PROFILES

    p = PROFILES["local"].embeddings
    p = p.override(models=p.models[:1], similarity_corpora=("pawsx",), embed_length_cap=48)
    rep = pipeline.embedding_truncation(p).set_index("language")
    assert (rep.max_length == 48).all()
    assert rep.loc["ja", "truncated_share"] > rep.loc["en", "truncated_share"]


def test_majority_baseline_and_exact_intervals_on_known_counts():
    """Issue 17 item 6: the constant answer's accuracy, and Clopper-Pearson intervals for zero-shot accuracies."""
    import pandas as pd

    from cltrlib.embeddings.zeroshot import accuracy_by_lang, majority_baseline

    b = majority_baseline("sib200", [0, 3, 3, 1, 3, 2, 3, 5])  # label 3 is 4 of 8
    assert b["accuracy"] == 0.5 and b["correct"] == 4 and b["n"] == 8
    assert b["label"] == label_words("sib200")[3] and b["uniform_chance"] == pytest.approx(1 / 7)
    assert b["ci_low"] == pytest.approx(0.1570, abs=1e-4) and b["ci_high"] == pytest.approx(0.8430, abs=1e-4)
    pred = pd.DataFrame({"model": "m", "adapter": "base", "task": "pawsx", "lang": ["en"] * 20 + ["ja"] * 20,
                         "correct": [False] * 20 + [True] * 5 + [False] * 15})
    acc = accuracy_by_lang(pred).set_index("lang")
    assert acc.loc["en", "correct"] == 0 and acc.loc["en", "ci_low"] == 0.0
    assert acc.loc["en", "ci_high"] == pytest.approx(0.168, abs=1e-3)  # exact, not the bootstrap's [0, 0]
    assert acc.loc["ja", "accuracy"] == 0.25 and acc.loc["ja", "ci_low"] < 0.25 < acc.loc["ja", "ci_high"]


def test_sib200_majority_baseline_is_above_uniform_chance_on_the_local_items():
    from cltrlib.embeddings import pipeline
    from cltrlib.study import PROFILES

    base = pipeline.majority_baselines(PROFILES["local"].embeddings).set_index("task")
    assert base.loc["sib200", "accuracy"] > 1 / 7  # the old chance line was below a constant answer
    assert base.loc["sib200", "n"] == PROFILES["local"].embeddings.n_test


def _anisotropic_pairs(n: int = 6, offset: float = 100.0):
    """en_i = offset * c + u_i and x_i = offset * c' + u_i (u_i one-hot): every raw cosine is ~1, so raw P and R
    look alike; centring removes c and c' and leaves the one-hot structure with known cosines."""
    hidden = n + 2
    u = np.eye(n, hidden)
    c, c2 = np.zeros(hidden), np.zeros(hidden)
    c[n], c2[n + 1] = 1.0, 0.1
    c2 += c  # the two languages' offsets differ but share a direction
    en = offset * c + u
    x = offset * c2 + u
    return en[:, None, :], x[:, None, :]  # [n, 1 layer, hidden]


def test_centring_reveals_alignment_that_anisotropy_hides():
    """Issue 17 item 7: known answers on constructed vectors (parallel centred cosine 1, random -1/(n-1))."""
    from cltrlib.embeddings.alignment import centre, pair_measures

    n = 6
    en, x = _anisotropic_pairs(n)
    perm = derangement(n, np.random.default_rng(0))
    m = pair_measures(en, x, perm)
    raw_gap = m["raw_parallel"].mean() - m["raw_random"].mean()
    assert m["raw_random"].min() > 0.99 and 0 < raw_gap < 1e-3  # anisotropy: P and R both ~1
    assert np.allclose(centre(en).mean(axis=0), 0)
    assert np.allclose(m["centred_parallel"], 1.0)
    assert np.allclose(m["centred_random"], -1 / (n - 1))
    assert m["hits_en2x"].all() and m["hits_x2en"].all()


def test_retrieval_counts_misses_and_ties_in_both_directions():
    from cltrlib.embeddings.alignment import retrieval_hits

    en, x = _anisotropic_pairs(5)
    swapped = x.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # items 0 and 1 now sit next to each other's translation
    a2b, b2a = retrieval_hits(en, swapped)
    assert a2b[:, 0].tolist() == [False, False, True, True, True]
    assert b2a[:, 0].tolist() == [False, False, True, True, True]
    one_way = np.concatenate([x, x[:1]])  # a 6th candidate identical to x_0: en_0 ties, so it is a miss
    a2b, _ = retrieval_hits(np.concatenate([en, en[1:2] * 0 + 7.0]), one_way)
    assert not a2b[0, 0] and a2b[1:5, 0].all()
    const = np.ones((4, 1, 3))
    assert not retrieval_hits(const, const)[0].any()  # all candidates tie: no hit, not a perfect score


def test_alignment_table_intervals_are_paired_and_retrieval_chance_is_one_over_n():
    from cltrlib.embeddings.alignment import alignment_table
    from cltrlib.embeddings.pairs import PairSet
    from cltrlib.metrics import bootstrap_means

    rng = np.random.default_rng(1)
    p = rng.normal(size=(30, 2))
    ci = bootstrap_means({"P": p, "R": p - 0.25, "gap": p - (p - 0.25)})
    assert np.allclose(ci["gap"][0], 0.25) and np.allclose(ci["gap"][1], 0.25)  # paired: a constant gap is exact
    assert (ci["P"][0] < p.mean(0)).all() and (p.mean(0) < ci["P"][1]).all()
    n = 6
    en, x = _anisotropic_pairs(n)
    emb = {("en", "mean"): en, ("ja", "mean"): x}
    pairs = PairSet("toy", tuple(map(str, range(n))), {}, derangement(n, np.random.default_rng(0)), 0)
    t = alignment_table("m", "base", "toy", pairs, emb, ("mean",), langs=("ja",), n_boot=200).set_index("measure")
    assert t.loc["retrieval_p1", "parallel"] == 1.0 and t.loc["retrieval_p1", "random"] == pytest.approx(1 / n)
    assert t.loc["retrieval_p1", "p1_en2x_low"] == pytest.approx(0.5407, abs=1e-3)  # Clopper-Pearson 6/6
    assert t.loc["centred_cosine", "gap"] == pytest.approx(1 + 1 / (n - 1))
    assert t.loc["raw_cosine", "gap"] < 1e-3


def test_spearman_table_has_a_row_per_measure():
    import pandas as pd

    langs = ["fr", "de", "es", "zh", "ja"]
    sim = pd.DataFrame([{"model": "m", "adapter": "base", "corpus": "pud", "lang_pair": f"en-{x}", "pooling": "mean",
                         "layer": 3, "pair_type": "parallel", "mean_cosine": 0.99, "n": 8} for x in langs])
    al = pd.DataFrame([{"model": "m", "adapter": "base", "corpus": "pud", "lang_pair": f"en-{x}", "pooling": "mean",
                        "layer": 3, "measure": m, "parallel": v, "n": 8}
                       for m, vals in (("centred_cosine", [0.5, 0.4, 0.45, 0.2, 0.1]),
                                       ("retrieval_p1", [0.9, 0.8, 0.85, 0.3, 0.4]))
                       for x, v in zip(langs, vals, strict=True)])
    acc = pd.DataFrame([{"model": "m", "adapter": "ft", "task": "t", "lang": x, "accuracy": a}
                        for x, a in zip(langs, [0.7, 0.6, 0.65, 0.4, 0.3], strict=True)])
    out = spearman_table(acc, sim, al).set_index("measure")
    assert set(out.index) == {"raw_cosine", "centred_cosine", "retrieval_p1"}
    assert np.isnan(out.loc["raw_cosine", "spearman_rho"]) and "measure is the same" in out.loc["raw_cosine", "note"]
    assert out.loc["centred_cosine", "spearman_rho"] == pytest.approx(1.0)
    assert out.loc["retrieval_p1", "spearman_rho"] == pytest.approx(0.9)

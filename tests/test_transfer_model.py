"""Classifier building: pad id on the config, last-token pooling under both padding sides, the frozen-prefix
cache computing exactly what the full model computes, seeded runs reproducing, adapters reloading."""

from __future__ import annotations

import pytest
import torch

from cltrlib.transfer.modeling import ClassifierConfig, PrefixCache, build_classifier, classifier_logits

TEXTS = ["Solar panels cut emissions.", "東京で新しい電気自動車の工場が開業した。", "The match ended in a draw after extra time."]


def _tiny(tmp_path, kind: str) -> str:
    """A randomly initialised 3-layer decoder saved with a real embedded tokenizer (vocab matches the tokenizer)."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig

    from cltrlib.models import load_tokenizer

    name = "smollm2-135m-instruct" if kind == "llama" else "gemma3-270m"
    # gemma3: global top layer (as in Gemma-3-270M); gemma3-sliding: a sliding top layer, window 4 < text lengths
    tok = load_tokenizer(name)
    common = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=8, pad_token_id=tok.pad_token_id)
    if kind == "llama":
        cfg = LlamaConfig(**common)
    else:
        top = "sliding_attention" if kind == "gemma3-sliding" else "full_attention"
        cfg = Gemma3TextConfig(**common, sliding_window=4, layer_types=["sliding_attention", "full_attention", top])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    path = tmp_path / kind
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module", params=["llama", "gemma3", "gemma3-sliding"])
def tiny_model(request, tmp_path_factory):
    return _tiny(tmp_path_factory.mktemp("tiny"), request.param)


def test_pad_id_is_on_the_model_config(tiny_model):
    model, tok, method = build_classifier(ClassifierConfig(tiny_model, num_labels=2), seed=0)
    assert method == "lora"
    assert model.config.pad_token_id is not None
    assert model.config.pad_token_id == tok.pad_token_id


def test_left_and_right_padding_give_the_same_logits(tiny_model):
    model, tok, _ = build_classifier(ClassifierConfig(tiny_model, num_labels=2, lora_dropout=0.0), seed=0)
    model.eval()
    out = {}
    for side in ("left", "right"):
        tok.padding_side = side
        enc = tok(TEXTS, padding=True, return_tensors="pt")
        assert (enc["attention_mask"] == 0).any(), "the texts must differ in length for this test to mean anything"
        with torch.no_grad():
            out[side] = classifier_logits(model, enc["input_ids"], enc["attention_mask"])
    single = []
    for text in TEXTS:  # unpadded, one at a time: the reference
        enc = tok([text], return_tensors="pt")
        with torch.no_grad():
            single.append(classifier_logits(model, enc["input_ids"], enc["attention_mask"]))
    torch.testing.assert_close(out["left"], out["right"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["right"], torch.cat(single), atol=1e-5, rtol=1e-4)


def test_prefix_cache_matches_the_full_model_and_its_gradients(tiny_model):
    model, tok, _ = build_classifier(ClassifierConfig(tiny_model, num_labels=2, lora_layers=1, lora_dropout=0.0),
                                     seed=0)
    model.eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    full = classifier_logits(model, ids, mask)
    full.sum().backward()
    grads_full = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    cache = PrefixCache(model, n_frozen=2)
    assert cache.pooled_top, "the pooled-token top layer must be the path under test"
    cache.fill([(ids, mask)])
    assert len(cache.store) == len(TEXTS)
    with cache.active():
        cached = cache.logits(ids, mask)
    cached.sum().backward()
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-4)
    for n, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, grads_full[n], atol=1e-5, rtol=1e-4, msg=n)
    # the model is whole again outside the context
    torch.testing.assert_close(classifier_logits(model, ids, mask), full, atol=1e-6, rtol=1e-6)

"""Local HF backend: tiny randomly initialised models (causal with and without a chat template,
and seq2seq) built here with a real tokenizer; the plumbing is what is tested, not quality."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from cltrlib.jhumaneval.backends import HFTranslator, make_translator, translate_texts  # noqa: E402
from cltrlib.jhumaneval.cache import TranslationCache  # noqa: E402

TEXTS = ["Return the sum of the list.", "Check if the string is a palindrome.", "Return the sum of the list."]


def _tokenizer(chat: bool):
    from cltrlib.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    if not chat:
        tok.chat_template = None
    return tok


@pytest.fixture(scope="module")
def tiny_causal(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _tokenizer(chat=True)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    path = tmp_path_factory.mktemp("tiny-causal")
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    base = tmp_path_factory.mktemp("tiny-causal-base")
    LlamaForCausalLM(cfg).save_pretrained(base)
    _tokenizer(chat=False).save_pretrained(base)
    return str(path), str(base)


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory):
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(0)
    tok = _tokenizer(chat=False)
    cfg = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=tok.eos_token_id)
    path = tmp_path_factory.mktemp("tiny-s2s")
    BartForConditionalGeneration(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _check(tr: HFTranslator, tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    out = translate_texts(tr, TEXTS, cache=cache, progress=False)
    assert len(out) == 3 and all(isinstance(o, str) for o in out) and out[0] == out[2]
    assert cache.count(tr.name) == 2
    assert tr.translate_batch(TEXTS[:2], "en", "ja") == out[:2]  # greedy: deterministic, batch = cache
    again = HFTranslator(tr.path, max_new_tokens=tr.max_new_tokens)
    assert again.name == tr.name
    assert translate_texts(again, TEXTS, cache=cache, progress=False) == out
    assert again._model is None  # served from the cache: the model was never loaded


def test_hf_causal_chat_model(tiny_causal, tmp_path):
    tr = HFTranslator(tiny_causal[0], max_new_tokens=6)
    assert not tr.seq2seq and tr.tokenizer.padding_side == "left"
    assert "<|im_start|>" in tr._prompt("x", "en", "ja") and "Japanese" in tr._prompt("x", "en", "ja")
    _check(tr, tmp_path)


def test_hf_causal_base_model_one_shot_prompt(tiny_causal, tmp_path):
    tr = make_translator("hf", model=tiny_causal[1], max_new_tokens=6)
    assert tr._prompt("Hello.", "en", "ja").endswith("English: Hello.\nJapanese:")
    _check(tr, tmp_path)


def test_hf_seq2seq_model(tiny_seq2seq, tmp_path):
    tr = HFTranslator(tiny_seq2seq, max_new_tokens=6)
    assert tr.seq2seq and tr.name.startswith(f"hf:{tiny_seq2seq}:")
    _check(tr, tmp_path)


def test_make_translator_errors():
    with pytest.raises(ValueError, match="needs --model"):
        make_translator("hf")
    with pytest.raises(ValueError, match="unknown backend"):
        make_translator("babelfish")

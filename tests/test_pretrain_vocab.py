"""Vocabulary expansion on the embedded SmolLM2 (real tokenizer and weights), learnt on SIB-200's Japanese side."""

from __future__ import annotations

import pytest
import torch

from cltrlib.data.multilingual import load_sib200
from cltrlib.models import SMOLLM2, load_causal_lm
from cltrlib.pretrain import vocab
from cltrlib.pretrain.corpus import Document


@pytest.fixture(scope="module")
def docs():
    df = load_sib200("ja", "train")
    return [Document(f"sib200/{i}", "ja", t, "sib200") for i, t in zip(df["index_id"], df["text"], strict=True)]


def test_expansion_keeps_old_ids_and_rows_and_makes_japanese_cheaper(docs):
    model, tok = load_causal_lm(SMOLLM2)
    english = "Return the number of files in the directory."
    old_ids = tok(english, add_special_tokens=False).input_ids
    old_rows = model.get_input_embeddings().weight[: len(tok)].detach().clone()
    before = vocab.tokens_per_japanese_char(tok, docs[:100])
    new = vocab.learn_japanese_tokens(docs, tok, n_new=200, vocab_size=4000)
    assert len(new) == 200 and all(len(t) >= 2 for t in new)
    pieces = {t: tok(t, add_special_tokens=False).input_ids for t in new[:20]}
    exp = vocab.expand(model, tok, new)
    assert exp.old_vocab_size == len(old_rows) and len(tok) == len(old_rows) + 200
    assert tok(english, add_special_tokens=False).input_ids == old_ids  # English text is tokenised as before
    emb = model.get_input_embeddings().weight
    assert torch.equal(emb[: len(old_rows)], old_rows)  # old rows untouched
    for token, old in pieces.items():
        new_id = tok.convert_tokens_to_ids(token)
        assert new_id >= exp.old_vocab_size and tok.decode([new_id]) == token
        assert torch.allclose(emb[new_id], old_rows[old].mean(0))
    after = vocab.tokens_per_japanese_char(tok, docs[:100])
    assert after < 0.85 * before
    text = docs[0].text
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text
    out = model(input_ids=torch.tensor([tok(text, add_special_tokens=False).input_ids])).logits
    assert out.shape[-1] >= len(tok) and torch.isfinite(out).all()


@pytest.mark.usefixtures("standins_on")
@pytest.mark.parametrize("method", ["full", "lora", "lora-bf16"])
def test_the_ja_vocab_condition_trains_the_expanded_model_and_evaluates_with_its_tokenizer(method, tmp_path,
                                                                                           monkeypatch):
    """The pipeline end to end on the Llama-2 stand-in (untied head): expansion learnt from the Japanese training
    documents, the expanded tokenizer in every checkpoint, the new rows trained (under LoRA too, where the old rows
    stay as they were), perplexity and bits per character with the expanded tokenizer, and the soft measure's target
    tokens (the English canonical solutions) unchanged by the expansion."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cltrlib.codeeval.likelihood import TARGET_DATASET, target_ids
    from cltrlib.data import load_problems
    from cltrlib.models import load_tokenizer
    from cltrlib.pretrain import pipeline
    from cltrlib.pretrain.perplexity import held_out_perplexity
    from cltrlib.study import study

    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path))
    s = study("rehearsal").pretrain.override(conditions=("ja+vocab",), tokens=256, seq_len=64, checkpoints=1,
                                             method=method.split("-")[0], lora_r=4, lora_alpha=8, lr=1e-2,
                                             vocab_new_tokens=64, vocab_bpe_size=2000,
                                             base_dtype="bfloat16" if method.endswith("bf16") else "float32")
    cr = pipeline.train_condition(s.models[0], "ja+vocab", s, progress=False)
    exp = cr.mixture["vocabulary"]
    old = exp["old_vocab_size"]
    base_tok, tok = load_tokenizer(s.models[0]), AutoTokenizer.from_pretrained(cr.run.final)
    assert exp["new_tokens"] > 0 and len(tok) == old + exp["new_tokens"] == len(base_tok) + exp["new_tokens"]
    assert exp["tokens_per_ja_char_after"] < exp["tokens_per_ja_char_before"]
    assert all(len(tok.decode([i])) >= 2 for i in range(old, len(tok)))  # each new id decodes to its Japanese text
    init = AutoModelForCausalLM.from_pretrained(exp["folder"], dtype=torch.float32)
    after = AutoModelForCausalLM.from_pretrained(cr.run.final, dtype=torch.float32)
    for get in ("get_input_embeddings", "get_output_embeddings"):
        w0, w1 = getattr(init, get)().weight, getattr(after, get)().weight
        assert w1.shape[0] >= len(tok)
        moved = (w1[old:len(tok)] - w0[old:len(tok)]).abs().amax(1) > 0
        assert moved.float().mean() > 0.5, get  # the new rows trained (the head's all; the embedding's if seen)
        if method == "lora":
            assert torch.equal(w1[:old], w0[:old]), get  # LoRA: only the new rows of the embeddings change
        if method == "lora-bf16":  # the same, up to the one rounding of the frozen base to bf16
            assert torch.equal(w1[:old], w0[:old].bfloat16().float()), get
    held = pipeline.prepare_source("ja", s.source).held_out
    ppl = held_out_perplexity(cr.run.final, held, seq_len=64, max_blocks=2)
    base_ppl = held_out_perplexity(s.models[0], held, seq_len=64, max_blocks=2)
    assert ppl["chars"] > base_ppl["chars"]  # the same 2 blocks hold more text: the expanded tokenizer packed them
    assert ppl["bpc_low"] <= ppl["bits_per_char"] <= ppl["bpc_high"]
    for p in load_problems(TARGET_DATASET):
        assert target_ids(tok, p.canonical_solution) == target_ids(base_tok, p.canonical_solution), p.task_id

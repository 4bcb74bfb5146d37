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

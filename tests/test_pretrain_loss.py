"""The chunked LM-head loss (``cltrlib.pretrain.loss``) is the model's own loss: same value, same gradients, same
training curve — on the Llama-2 stand-in (untied head) and with LoRA plus trainable expanded rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cltrlib.pretrain import loss as chunked

STANDIN = "llama-2-7b-hf"

pytestmark = pytest.mark.usefixtures("standins_on")


def _model(name: str = STANDIN):
    from transformers import AutoModelForCausalLM

    from cltrlib.models import resolve_model_path

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(name), dtype=torch.float32).train()
    for m in model.modules():  # training mode (the chunked loss is a training path) without dropout's randomness
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def _grads(model, ids, labels, **kw) -> tuple[float, dict]:
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=labels, **kw)
    out.loss.backward()
    return float(out.loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("name", "num_items"), [(STANDIN, None), (STANDIN, 37), ("llm-jp-1.3b-v1.0", None)])
def test_chunked_loss_matches_the_models_loss_and_gradients(name, num_items):
    """Llama-2 (untied head) and llm-jp's GPT-2 (head tied to the input embedding: one parameter, two gradients)."""
    model = _model(name)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (2, 24), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[0, :5] = -100  # ignored positions count neither in the sum nor in the mean
    kw = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    ref_loss, ref = _grads(model, ids, labels, **kw)
    chunked.install(model, chunk=7)  # 46 shifted positions: chunks of 7 and a partial one
    got_loss, got = _grads(model, ids, labels, **kw)
    assert got_loss == pytest.approx(ref_loss, abs=1e-5)
    assert got.keys() == ref.keys() and any(n.endswith(("lm_head.weight", "wte.weight")) for n in got)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-5, rtol=1e-4, msg=name)
    model.eval()  # evaluation gets logits again
    assert model(input_ids=ids).logits.shape == (2, 24, vocab)


def test_chunked_loss_trains_lora_and_expanded_rows_like_the_models_loss(tmp_path):
    """LoRA on the top layer plus trainable rows (untied: the embedding's and the head's): same loss curve."""
    from cltrlib.models import load_tokenizer
    from cltrlib.pretrain import packing, train
    from cltrlib.pretrain.corpus import Document

    tok = load_tokenizer(STANDIN)
    docs = tuple(Document(f"d{i}", "ja", "日本語の文章です。" * (3 + i % 5) + str(i), "t") for i in range(60))
    blocks = packing.mixture([packing.Part("ja", docs, 1.0)], tok, 32, tokens=32 * 2 * 4)[0]
    n = len(tok)
    cfg = train.PretrainConfig(model=STANDIN, condition="t", tokens=32 * 2 * 4, seq_len=32, batch_size=2, lr=1e-2,
                               method="lora", lora_r=4, lora_alpha=8, lora_layers=1, checkpoints=1,
                               trainable_from=n - 16)
    logs = [train.run_pretraining(cfg, blocks, "c", root=tmp_path / str(flag), progress=False, bf16=False,
                                  chunked_loss=flag).log() for flag in (False, True)]
    np.testing.assert_allclose([r["loss"] for r in logs[1]], [r["loss"] for r in logs[0]], rtol=0, atol=1e-4)
    assert logs[0][0]["loss"] - logs[0][-1]["loss"] > 1e-3  # the curve moves: the comparison can fail

"""Held-out perplexity: did continual pre-training teach Japanese, and did it cost English?

Perplexity is exp(mean next-token loss) over packed blocks of held-out documents (``packing.split_documents``: never
trained on in any condition). Its interval is ``metrics.bootstrap_ci`` over blocks (of the mean loss, then exponentiated). Tokens are the *evaluated
model's* tokens, so perplexities of models with different tokenizers (vocabulary expansion) are not comparable;
``bits_per_char`` (summed loss over the characters the predicted tokens decode to, with its own bootstrap CI over
blocks) is, and is reported beside it. With a denser tokenizer the same number of blocks covers more text: the
documents are taken in the same seeded order, so one model's text is a prefix of the other's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cltrlib.metrics import bootstrap_ci, bootstrap_statistic
from cltrlib.pretrain.corpus import Document
from cltrlib.pretrain.packing import fingerprint, pack
from cltrlib.store import RunStore

PERPLEXITY_VERSION = "1"


def block_losses(model, blocks: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """Summed next-token loss (nats) of each block (``seq_len - 1`` predictions per block)."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(blocks), batch_size):
            ids = torch.from_numpy(blocks[i:i + batch_size]).to(model.device)
            logits = model(input_ids=ids).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            out.append(nll.sum(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def held_out_perplexity(model_path: str, docs: Sequence[Document], seq_len: int = 512, max_blocks: int = 64,
                        seed: int = 0) -> dict:
    """Perplexity and bits per character of ``model_path`` on ``docs`` (stored by model revision and documents)."""
    from cltrlib.models import load_tokenizer, model_revision

    tok = load_tokenizer(model_path, padding_side="right")
    cfg = {"model_revision": model_revision(model_path), "model": str(model_path), "docs": fingerprint(docs),
           "seq_len": seq_len, "max_blocks": max_blocks, "seed": seed, "version": PERPLEXITY_VERSION}
    store = RunStore("perplexity", cfg, label=Path(str(model_path)).name)
    with store.lock():
        if not store.is_complete():
            import torch
            from transformers import AutoModelForCausalLM

            from cltrlib.models import resolve_model_path

            blocks = pack(docs, tok, seq_len, seed=seed, max_blocks=max_blocks)
            if len(blocks) == 0:
                raise ValueError(f"the held-out documents hold fewer than one block of {seq_len} tokens")
            model = AutoModelForCausalLM.from_pretrained(resolve_model_path(model_path), dtype=torch.float32).eval()
            losses = block_losses(model, blocks)
            chars = [len(tok.decode(b[1:], skip_special_tokens=False)) for b in blocks]
            store.append([{"loss": float(x), "tokens": seq_len - 1, "chars": c}
                          for x, c in zip(losses, chars, strict=True)])
            store.mark_complete({"blocks": len(blocks)})
    recs = store.records()
    loss = np.array([r["loss"] for r in recs])
    n_tok = np.array([r["tokens"] for r in recs], dtype=float)
    n_chr = np.array([r["chars"] for r in recs], dtype=float)
    # Every block predicts seq_len - 1 tokens, so the pooled mean loss is the mean of per-block means.
    low, high = bootstrap_ci(loss / n_tok, seed=seed)
    bpc, bpc_low, bpc_high = bootstrap_statistic(lambda x, c: x.sum() / c.sum() / math.log(2), loss, n_chr, seed=seed)
    return {"perplexity": math.exp(loss.sum() / n_tok.sum()), "ppl_low": math.exp(low), "ppl_high": math.exp(high),
            "bits_per_char": bpc, "bpc_low": bpc_low, "bpc_high": bpc_high, "blocks": len(loss),
            "tokens": int(n_tok.sum()), "chars": int(n_chr.sum())}

"""Token streams for continual pre-training: documents → packed fixed-length blocks → a condition's mixture.

Why packing: causal-LM training on padded documents spends compute on pad tokens (most manual pages are longer or
shorter than a block); concatenating documents with the end-of-text token between them and cutting the stream into
``seq_len`` blocks wastes nothing, and is what Swallow and most continual pre-training recipes do. Attention then
crosses document boundaries inside a block, the usual accepted trade-off.

A mixture (e.g. Japanese with 10% English replay) is sized in *tokens*, not documents, so a condition's budget is
exact and the English control gets the same number of tokens as the Japanese condition. Held-out blocks for
perplexity come from documents never used for training (split by document id before packing).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cltrlib.pretrain.corpus import Document

HELD_OUT_SHARE = 0.05  # documents kept out of training, for held-out perplexity


def held_out(doc: Document, share: float = HELD_OUT_SHARE) -> bool:
    """Whether ``doc`` is a held-out document: a stable function of its id, the same for every model and run."""
    return zlib.crc32(doc.id.encode("utf-8")) % 10_000 < share * 10_000


def split_documents(docs: Sequence[Document], share: float = HELD_OUT_SHARE) -> tuple[list[Document], list[Document]]:
    """(training documents, held-out documents)."""
    train = [d for d in docs if not held_out(d, share)]
    return train, [d for d in docs if held_out(d, share)]


def pack(docs: Sequence[Document], tokenizer, seq_len: int, seed: int = 0, max_blocks: int | None = None) -> np.ndarray:
    """``[n_blocks, seq_len]`` token ids: the documents in a seeded order, each followed by the end-of-text token,
    concatenated and cut into blocks (the incomplete tail dropped). Stops tokenising once ``max_blocks`` are full."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("packing needs a tokenizer with an end-of-text token (eos_token_id is None)")
    order = np.random.default_rng(seed).permutation(len(docs))
    need = None if max_blocks is None else max_blocks * seq_len
    stream: list[int] = []
    for i in order:
        stream += tokenizer(docs[i].text, add_special_tokens=False).input_ids + [eos]
        if need is not None and len(stream) >= need:
            break
    n_blocks = len(stream) // seq_len if max_blocks is None else min(max_blocks, len(stream) // seq_len)
    return np.asarray(stream[: n_blocks * seq_len], dtype=np.int64).reshape(n_blocks, seq_len)


@dataclass(frozen=True)
class Part:
    """One source of a mixture: its documents and its share of the tokens (shares of a mixture sum to 1)."""

    name: str
    docs: tuple[Document, ...]
    share: float


def mixture(parts: Sequence[Part], tokenizer, seq_len: int, tokens: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Blocks for a budget of ``tokens``, each part contributing ``share`` of them (rounded to whole blocks),
    shuffled together; and a summary (blocks and tokens per part). Raises if a part has too little text."""
    total = sum(p.share for p in parts)
    if not np.isclose(total, 1.0):
        raise ValueError(f"mixture shares must sum to 1, got {total:.3f} ({', '.join(p.name for p in parts)})")
    n_blocks = max(tokens // seq_len, 1)
    counts = [int(round(p.share * n_blocks)) for p in parts]
    counts[int(np.argmax([p.share for p in parts]))] += n_blocks - sum(counts)
    blocks, summary = [], {}
    for part, count in zip(parts, counts, strict=True):
        if count == 0:
            continue
        got = pack(part.docs, tokenizer, seq_len, seed=seed, max_blocks=count)
        if len(got) < count:
            raise ValueError(f"corpus part {part.name!r} has {len(got) * seq_len:,} tokens, fewer than the "
                             f"{count * seq_len:,} its share needs: lower the token budget or add text")
        blocks.append(got)
        summary[part.name] = {"blocks": count, "tokens": count * seq_len}
    out = np.concatenate(blocks)
    out = out[np.random.default_rng(seed + 1).permutation(len(out))]
    return out, summary


def fingerprint(docs: Sequence[Document]) -> str:
    """Content hash of a document list (what a training run's store key records about its corpus)."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.id.encode("utf-8") + b"\0" + hashlib.sha256(d.text.encode("utf-8")).digest())
    return h.hexdigest()[:16]

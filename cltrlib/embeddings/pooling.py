"""Sentence embeddings from token hidden states: mean pooling and last-token pooling.

Both take hidden states ``[batch, seq, hidden]`` and the attention mask ``[batch, seq]``
(1 = real token, 0 = padding). Padding may sit on either side: tokenizers for
generation pad on the left, for training on the right, and an embedding must not
depend on that choice or on which other sentences share the batch.
"""

from __future__ import annotations

import torch

POOLINGS = ("mean", "last")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the real tokens' vectors; padded positions get weight 0 whatever they hold."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    total = (hidden * weights).sum(dim=1)
    # A row with no real token is an input error upstream; clamp only avoids 0/0 → NaN.
    return total / weights.sum(dim=1).clamp(min=1.0)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token in each row, correct for left and right padding.

    ``mask.sum() - 1`` is only right for right padding; with left padding the last
    real token is always the final column. Taking the largest position whose mask is 1
    covers both (and any mask shape in between).
    """
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.full_like(positions, -1)).max(dim=1).values


def last_token_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden vector of each row's last real token."""
    idx = last_token_index(mask)
    if (idx < 0).any():
        raise ValueError("last_token_pool: a row has no real token (attention mask all zero)")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Dispatch by name ('mean' or 'last')."""
    if pooling == "mean":
        return mean_pool(hidden, mask)
    if pooling == "last":
        return last_token_pool(hidden, mask)
    raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")


def pool_layers(hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor, pooling: str,
                content_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pool every layer: ``[batch, n_layers + 1, hidden]`` (index 0 = embedding output).

    ``content_mask`` (defaults to ``mask``) is what mean pooling averages over: the
    extractor passes the attention mask minus special tokens, because a BOS vector
    (an attention sink with a huge norm in Llama/Gemma) would otherwise dominate every
    mean and make all sentence pairs look alike. Last-token pooling always uses the
    attention mask: the last real token is the sentence's final token.
    """
    use = content_mask if (pooling == "mean" and content_mask is not None) else mask
    return torch.stack([pool(h, use, pooling) for h in hidden_states], dim=1)

"""What the embedding code needs of a loaded causal LM (``cltrlib.models.load`` loads it)."""

from __future__ import annotations


def backbone(lm):
    """The decoder stack without the LM head (hidden states only; skips a 262k-wide matmul on Gemma)."""
    return lm.base_model if hasattr(lm, "base_model") else lm

"""Label-word scoring: the next-token logits of the answer words after the prompt.

Paper C decodes one token greedily (max_new_tokens 1, top_k 1); restricting the argmax
to the task's label words is the same decision without the failure mode of an
off-label token, and it is the quantity the LoRA loss trains (cross-entropy of the
label word's first token at the position after the prompt; nothing else is trained).
"""

from __future__ import annotations

import torch

from cltrlib.embeddings.modeling import backbone
from cltrlib.models import position_ids_from_mask

# Every prompt ends with this (``tasks.PAWSX_TEMPLATE``, ``tasks.SIB200_TEMPLATE``): label words are tokenized after it.
ANSWER_CONTEXT = "The answer is"


def label_token_ids(tok, words: list[str], context: str = ANSWER_CONTEXT) -> list[int]:
    """The first token the model writes for each answer word after ``context``; they must differ or scoring is
    ambiguous.

    Tokenized in context, not as ``" " + word`` alone: a Metaspace tokenizer (Llama-2, ELYZA, Swallow) turns a
    lone leading space into a token of its own ("▁", then "▁Yes"), so every word would share the first token "▁",
    while after "is" the model writes "▁Yes" directly. Byte-level BPE (GPT-2, SmolLM2) gives the same ids either
    way."""
    head = tok.encode(context, add_special_tokens=False)
    ids = []
    for w in words:
        full = tok.encode(f"{context} {w}", add_special_tokens=False)
        if full[:len(head)] != head or len(full) == len(head):
            raise ValueError(f"label word {w!r} does not tokenize as a continuation of {context!r}: {full}")
        ids.append(full[len(head)])
    if len(set(ids)) != len(ids):
        raise ValueError(f"label words {words} share a first token under this tokenizer: {ids}; "
                         "choose words with distinct first tokens")
    return ids


def encode_prompts(tok, prompts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """Left-padded, left-truncated batch: the prompt's end ('The answer is') is always kept."""
    old_side, old_trunc = tok.padding_side, tok.truncation_side
    tok.padding_side, tok.truncation_side = "left", "left"
    try:
        return tok(prompts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
    finally:
        tok.padding_side, tok.truncation_side = old_side, old_trunc


def next_token_logits(lm, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      token_ids: list[int] | None = None) -> torch.Tensor:
    """[batch, vocab] logits for the token after each (left-padded) prompt; [batch, len(token_ids)] if given.

    Runs the decoder once and the LM head on the last position only (on Gemma the
    head is 262k wide; applying it to every position would dominate the cost). Scoring
    needs only the label words' logits, so ``token_ids`` restricts the head to those
    rows: the same dot products without the other 262k.
    """
    hidden = backbone(lm)(input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=position_ids_from_mask(attention_mask)).last_hidden_state[:, -1]
    head = lm.get_output_embeddings()
    if token_ids is None:
        logits = head(hidden).float()
    else:
        rows = torch.as_tensor(token_ids, device=hidden.device)
        bias = None if head.bias is None else head.bias[rows]
        logits = torch.nn.functional.linear(hidden, head.weight[rows], bias).float()
    cap = getattr(lm.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits

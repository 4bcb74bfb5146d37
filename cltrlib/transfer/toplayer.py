"""The top decoder layer computed for the pooled (last) token only.

A decoder classifier reads one position: the last non-pad token of the top layer. When
only the top layer is trained (``lora_layers=1``) and the layers below come from
``PrefixCache``, every other position of the top layer is wasted work: the pooled
token needs the keys and values of all positions, but its query, attention output,
output projection and MLP only at itself. Those are ~95% of a layer's matrix products,
so this computes the same logits (and gradients) as the full layer at a fraction of
the cost; ``tests/test_transfer_model.py`` checks both against the full model.

Written for the two attention layouts we run (Llama-style, and Gemma-3 with q/k norms,
sandwich norms and sliding windows); ``supports`` says when it applies, and callers
fall back to the full model otherwise.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.llama.modeling_llama import repeat_kv, rotate_half

from cltrlib.models import position_ids_from_mask

SUPPORTED_TYPES = {"llama", "gemma3_text"}


def supports(model_config) -> bool:
    """True when the pooled-token path knows this architecture (otherwise run the full layer)."""
    return getattr(model_config, "model_type", None) in SUPPORTED_TYPES


def last_token_index(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """The position transformers' ``*ForSequenceClassification`` pools: the rightmost non-pad token."""
    if pad_token_id is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, dtype=torch.long, device=input_ids.device)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    return (positions * (input_ids != pad_token_id).int()).argmax(-1)


def _rotary(backbone: nn.Module, layer_idx: int, hidden: torch.Tensor, position_ids: torch.Tensor):
    """(cos, sin) [batch, len, head_dim] for this layer (Gemma-3 keeps one rotary table per layer type)."""
    layer_types = getattr(backbone.config, "layer_types", None)
    if getattr(backbone.config, "model_type", None) == "gemma3_text" and layer_types:
        return backbone.rotary_emb(hidden, position_ids, layer_types[layer_idx])
    return backbone.rotary_emb(hidden, position_ids)


def _attention_at(attn: nn.Module, x: torch.Tensor, rows: torch.Tensor, last: torch.Tensor,
                  allowed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Self-attention output [batch, hidden] of the query at ``last`` over keys where ``allowed``."""
    b, n, _ = x.shape
    hd = attn.head_dim
    k = attn.k_proj(x).view(b, n, -1, hd).transpose(1, 2)
    v = attn.v_proj(x).view(b, n, -1, hd).transpose(1, 2)
    q = attn.q_proj(x[rows, last]).view(b, 1, -1, hd).transpose(1, 2)
    if hasattr(attn, "q_norm"):
        q, k = attn.q_norm(q), attn.k_norm(k)
    k = k * cos[:, None] + rotate_half(k) * sin[:, None]
    cq, sq = cos[rows, last][:, None, None], sin[rows, last][:, None, None]
    q = q * cq + rotate_half(q) * sq
    groups = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, groups), repeat_kv(v, groups)
    scores = (q @ k.transpose(2, 3)) * attn.scaling  # [batch, heads, 1, len]
    cap = getattr(attn, "attn_logit_softcapping", None)
    if cap:
        scores = torch.tanh(scores / cap) * cap
    scores = scores.masked_fill(~allowed[:, None, None, :], torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    weights = nn.functional.dropout(weights, p=getattr(attn, "attention_dropout", 0.0), training=attn.training)
    out = (weights @ v).transpose(1, 2).reshape(b, -1)
    return attn.o_proj(out)


def pooled_top_layer_logits(model: nn.Module, backbone: nn.Module, layer_idx: int, states: torch.Tensor,
                            input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Classifier logits [batch, labels] from the input states of the top layer ``layer_idx``.

    ``states`` are right-padded (batch, len, hidden) inputs to that layer; ``model`` is the
    sequence classifier (its ``score`` head and config), ``backbone`` its decoder stack.
    """
    layer = backbone.layers[layer_idx]
    attn = layer.self_attn
    b, n, _ = states.shape
    rows = torch.arange(b, device=states.device)
    last = last_token_index(input_ids, model.config.pad_token_id)
    position_ids = position_ids_from_mask(attention_mask)
    keys = torch.arange(n, device=states.device)[None, :]
    # What transformers' causal mask allows the last query to see: earlier, non-pad keys inside the window.
    allowed = (keys <= last[:, None]) & attention_mask.bool()
    window = getattr(attn, "sliding_window", None)
    if window:
        allowed &= keys > last[:, None] - window
    cos, sin = _rotary(backbone, layer_idx, states, position_ids)
    x = layer.input_layernorm(states)
    attn_out = _attention_at(attn, x, rows, last, allowed, cos, sin)
    h = states[rows, last]
    if hasattr(layer, "pre_feedforward_layernorm"):  # Gemma: norms around both sublayers
        h = h + layer.post_attention_layernorm(attn_out)
        h = h + layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(h)))
    else:
        h = h + attn_out
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    return model.score(backbone.norm(h))

"""Loading a causal LM with or without one of our LoRA adapters, for embedding or scoring.

The adapter is merged into the weights after loading: the merged model computes the
same function as the adapter-wrapped one and runs at base-model speed.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch

from cltrlib.models import default_device, load_tokenizer, resolve_model_path


@functools.lru_cache(maxsize=2)
def _cached_base(model: str, device: str):
    """One loaded copy of each base model per process: a notebook evaluates and embeds the same
    model several times (base, each adapter), and loading from disk costs seconds each time."""
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    lm = AutoModelForCausalLM.from_pretrained(resolve_model_path(model), dtype=dtype)
    return lm.to(device).eval()


def fresh_base(model: str, device: str | None = None):
    """A private copy of the base model (training and merging modify weights in place)."""
    return copy.deepcopy(_cached_base(model, device or default_device()))


def load_model(model: str, adapter_dir: str | Path | None = None, device: str | None = None,
               padding_side: str = "right"):
    """(causal LM in eval mode, tokenizer): fp32 on CPU, bf16 on GPU; LoRA merged if given.

    Without an adapter the shared cached base model is returned: callers must not modify it.
    """
    device = device or default_device()
    tok = load_tokenizer(model, padding_side=padding_side)
    lm = _cached_base(model, device) if adapter_dir is None else fresh_base(model, device)
    lm.config.pad_token_id = tok.pad_token_id
    if adapter_dir is not None:
        from peft import PeftModel

        adapter_dir = Path(adapter_dir)
        if not (adapter_dir / "adapter_config.json").exists():
            raise FileNotFoundError(f"{adapter_dir}: no adapter_config.json; train the adapter first "
                                    "(cltrlib.embeddings.tuning.train_adapter)")
        lm = PeftModel.from_pretrained(lm, str(adapter_dir)).merge_and_unload()
    return lm.to(device).eval(), tok


def backbone(lm):
    """The decoder stack without the LM head (hidden states only; skips a 262k-wide matmul on Gemma)."""
    return lm.base_model if hasattr(lm, "base_model") else lm

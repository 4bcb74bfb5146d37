"""Sequence classifiers: decoder LLMs with a classification head + LoRA, encoders fully fine-tuned.

Decoders pool the last non-pad token (transformers' ``*ForSequenceClassification``
finds it from ``input_ids`` and ``config.pad_token_id``), so the pad id must be set on
the model config, not only on the tokenizer: ``build_classifier`` does that and
``tests/test_transfer_model.py`` checks that left and right padding give the same logits.

``lora_layers`` restricts LoRA to the top-k decoder layers. Everything below them is
frozen, so their output for a text never changes during training: ``PrefixCache`` runs
the frozen bottom once per text and the training loop feeds the cached hidden states
to the top layers (exactly the same computation, far cheaper when epochs and seeds
reuse the same English rows). The saved adapter is an ordinary peft adapter.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from cltrlib.models import load_tokenizer, position_ids_from_mask, resolve_model_path

ENCODER_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "deberta-v2", "electra", "camembert"}


@dataclass
class ClassifierConfig:
    """How a classifier is built. ``method``: ``lora`` | ``full`` | ``auto`` (LoRA for decoders, full for encoders)."""

    model: str
    num_labels: int
    method: str = "auto"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    lora_layers: int | None = None  # None: all layers; k: only the top k layers
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return asdict(self)


def _base_and_backbone(model: nn.Module) -> tuple[nn.Module, nn.Module | None]:
    """(the classifier without a PEFT wrapper, its decoder stack: ``model.model`` for Llama/Gemma)."""
    base = getattr(model, "get_base_model", lambda: model)()
    return base, getattr(base, base.base_model_prefix, None)


def _decoder_layers(model: nn.Module) -> nn.ModuleList | None:
    """The decoder's layer list (``model.model.layers`` for Llama/Gemma-style classifiers)."""
    layers = getattr(_base_and_backbone(model)[1], "layers", None)
    return layers if isinstance(layers, nn.ModuleList) else None


def build_classifier(cfg: ClassifierConfig, device: str = "cpu", seed: int | None = None):
    """(model, tokenizer, method): head initialised from ``seed`` (so a seed fixes the whole run)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_model_path(cfg.model)
    hf_cfg = AutoConfig.from_pretrained(path)
    is_encoder = hf_cfg.model_type in ENCODER_TYPES
    method = cfg.method if cfg.method != "auto" else ("full" if is_encoder else "lora")
    tok = load_tokenizer(cfg.model, padding_side="right")
    if seed is not None:
        torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=cfg.num_labels,
                                                               dtype=getattr(torch, cfg.dtype))
    model.config.pad_token_id = tok.pad_token_id
    if method == "lora":
        model = _add_lora(model, cfg)
    elif method != "full":
        raise ValueError(f"method must be lora, full or auto, not {cfg.method!r}")
    return model.to(device), tok, method


# Paper B's LoRA targets the attention's query and value projections. Architectures that fuse them into one
# linear layer get LoRA on that layer (GPT-NeoX / OpenCALM: ``query_key_value``; GPT-2 / llm-jp: ``c_attn``).
FUSED_QKV = {"gpt_neox": ["query_key_value"], "gpt2": ["c_attn"], "bloom": ["query_key_value"],
             "falcon": ["query_key_value"]}


def lora_targets(model: nn.Module, wanted: list[str]) -> list[str]:
    """The module names LoRA goes on: ``wanted`` where the model has them, else its fused q/k/v projection."""
    # GPT-2's projections are transformers' Conv1D (a transposed linear layer), which peft handles as well.
    names = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
             if isinstance(mod, nn.Linear) or type(mod).__name__ == "Conv1D"}
    if set(wanted) <= names:
        return list(wanted)
    fused = FUSED_QKV.get(getattr(model.config, "model_type", ""))
    if fused and set(fused) <= names:
        return fused
    raise ValueError(f"LoRA targets {wanted} are not in {model.config.model_type} (its linear layers: "
                     f"{', '.join(sorted(names))}); pass target_modules for this architecture")


def _add_lora(model: nn.Module, cfg: ClassifierConfig):
    from peft import LoraConfig, get_peft_model

    layers = None
    if cfg.lora_layers is not None:
        n = model.config.num_hidden_layers
        if not 0 < cfg.lora_layers <= n:
            raise ValueError(f"lora_layers must be in 1..{n} for {cfg.model}, not {cfg.lora_layers}")
        layers = list(range(n - cfg.lora_layers, n))
    lcfg = LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lora_targets(model, cfg.target_modules), layers_to_transform=layers)
    # task_type SEQ_CLS marks the new head ("score"/"classifier") as modules_to_save: trained and saved.
    return get_peft_model(model, lcfg)


def classifier_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Logits of a sequence classifier for a padded batch (either padding side)."""
    kwargs = {}
    if getattr(model.config, "model_type", "") not in ENCODER_TYPES:
        kwargs["position_ids"] = position_ids_from_mask(attention_mask)
    return model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits


class _Passthrough(nn.Module):
    """Stands in for a frozen bottom layer: returns its input, or (first one) the cached hidden states."""

    def __init__(self, inject: dict):
        super().__init__()
        self.inject = inject

    def forward(self, hidden_states, *args, **kwargs):
        cached = self.inject.pop("hidden", None)
        return cached if cached is not None else hidden_states


class PrefixCache:
    """Hidden states after the frozen bottom ``n - k`` decoder layers, computed once per text.

    Valid only for right padding under causal attention (a real token never attends to a
    later pad), which is what the training loop uses; the cache stores each text's
    unpadded states so any batch composition reuses them.
    """

    def __init__(self, model: nn.Module, n_frozen: int, pooled_top: bool = True):
        from cltrlib.transfer import toplayer

        layers = _decoder_layers(model)
        if layers is None or not 0 < n_frozen < len(layers):
            raise ValueError("PrefixCache needs a decoder with a `layers` list and 0 < n_frozen < n_layers")
        self.model, self.layers, self.n_frozen = model, layers, n_frozen
        self._base, self._backbone = _base_and_backbone(model)
        # Only the top layer left and a known architecture: compute it for the pooled token alone (``toplayer``).
        # ``pooled_top=False`` keeps the full layer (the benchmark's baseline).
        self.pooled_top = pooled_top and n_frozen == len(layers) - 1 and toplayer.supports(model.config)
        self.store: dict[tuple[int, ...], torch.Tensor] = {}
        self._inject: dict = {}

    @contextlib.contextmanager
    def _bottom_only(self):
        """Run only the bottom layers: a forward hook on the last frozen layer captures its output and stops."""
        captured = {}

        class _Stop(Exception):
            pass

        def hook(_mod, _inp, out):
            captured["h"] = out[0] if isinstance(out, tuple) else out
            raise _Stop

        handle = self.layers[self.n_frozen - 1].register_forward_hook(hook)
        try:
            yield captured, _Stop
        finally:
            handle.remove()

    @torch.no_grad()
    def fill(self, batches) -> None:
        """Compute and store prefix states for (input_ids, attention_mask) right-padded batches not yet cached."""
        with self._bottom_only() as (captured, stop):
            for ids, mask in batches:
                keys = [tuple(row[m.bool()].tolist()) for row, m in zip(ids, mask, strict=True)]
                if all(k in self.store for k in keys):
                    continue
                try:
                    self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask))
                except stop:
                    pass
                for i, k in enumerate(keys):
                    self.store[k] = captured["h"][i, : len(k)].detach().clone()

    def batch_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Right-padded (batch, len, hidden) prefix states for a batch whose texts are all cached."""
        keys = [tuple(row[m.bool()].tolist()) for row, m in zip(ids, mask, strict=True)]
        first = self.store[keys[0]]
        out = first.new_zeros((ids.shape[0], ids.shape[1], first.shape[-1]))
        for i, k in enumerate(keys):
            out[i, : len(k)] = self.store[k]
        return out

    @contextlib.contextmanager
    def active(self):
        """Inside: the model's bottom layers are replaced by pass-throughs fed from the cache (use ``logits``)."""
        originals = [self.layers[i] for i in range(self.n_frozen)]
        for i in range(self.n_frozen):
            self.layers[i] = _Passthrough(self._inject) if i == 0 else _Passthrough({})
        try:
            yield self
        finally:
            for i, mod in enumerate(originals):
                self.layers[i] = mod
            self._inject.clear()

    def logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Classifier logits computed from cached prefix states (call inside ``active()``).

        When only the top layer is left, it is computed for the pooled token alone (``toplayer``):
        the same logits and gradients for a fraction of the work.
        """
        states = self.batch_states(ids, mask)
        if self.pooled_top:
            from cltrlib.transfer import toplayer

            return toplayer.pooled_top_layer_logits(self._base, self._backbone, self.n_frozen, states, ids, mask)
        self._inject["hidden"] = states
        return classifier_logits(self.model, ids, mask)

"""A chunked LM-head loss for training: the full ``[tokens, vocabulary]`` logits are never materialised.

Why: a causal LM's own loss computes every position's logits (4 x 512 tokens x 49,152 words for SmolLM2: 100 M
values, 400 MB in fp32 plus the bf16 copy under autocast), upcasts them to fp32 and keeps the softmax for the backward
pass. On a CPU with a few MB of cache that is several passes over memory per step, and for Gemma-3's 262k-word head it
dominates the step. Here the head runs on ``chunk`` positions at a time; each chunk's loss *and* its gradients (with
respect to the hidden states and the head's trainable parameters) are computed at once in the forward pass, so only
``chunk x vocabulary`` logits exist at any moment and nothing is recomputed in the backward pass (which only scales the
stored gradients by the incoming one). The loss is the model's own ``ForCausalLMLoss`` (shifted labels, -100 ignored,
summed over ``num_items_in_batch`` when the Trainer gives it, else the mean), so curves and store keys keep meaning.

How it plugs in without changing what is saved: the head module's ``forward`` is patched on the instance so that in
training mode it hands the hidden states through, and the model's ``loss_function`` is replaced by ``ChunkedHeadLoss``,
which applies the head chunk by chunk. The weights, their names and the saved checkpoints are those of the unpatched
model (in eval mode the head computes logits as usual). Everything runs inside the model's ``forward``, so DDP's
gradient hooks see it; it is not used under FSDP (the head's gathered weights live only during the root's forward and
the gradients computed in the forward would bypass its reduce-scatter bookkeeping) nor for models whose forward
post-processes the logits (Gemma-2's soft-capping).
"""

from __future__ import annotations

import torch

DEFAULT_CHUNK = 256  # positions per head chunk: 256 x 49k fp32 logits = 50 MB


class _HeadLoss(torch.autograd.Function):
    """Summed cross-entropy of ``head(hidden)`` against ``labels``; gradients computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx, hidden, labels, head, chunk, *params):
        grad_hidden = torch.zeros_like(hidden)
        grad_params = [torch.zeros_like(p) for p in params]
        total = hidden.new_zeros((), dtype=torch.float32)
        with torch.enable_grad():
            for start in range(0, hidden.shape[0], chunk):
                y = labels[start:start + chunk]
                if bool((y == -100).all()):
                    continue
                h = hidden[start:start + chunk].detach().requires_grad_(True)
                logits = head.call_head(h).float()
                loss = torch.nn.functional.cross_entropy(logits, y, ignore_index=-100, reduction="sum")
                grads = torch.autograd.grad(loss, [h, *params], allow_unused=True)
                grad_hidden[start:start + chunk] = grads[0]
                for acc, g in zip(grad_params, grads[1:], strict=True):
                    if g is not None:
                        acc += g
                total = total + loss.detach()
        ctx.save_for_backward(grad_hidden, *grad_params)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad_hidden, *grad_params = ctx.saved_tensors
        return (grad_hidden * grad_out.to(grad_hidden.dtype), None, None, None,
                *[g * grad_out.to(g.dtype) for g in grad_params])


class ChunkedHeadLoss:
    """The model's ``loss_function`` replacement; also owns the head patch (see the module doc)."""

    def __init__(self, head_module: torch.nn.Module, chunk: int = DEFAULT_CHUNK):
        self.module = head_module
        self.chunk = chunk
        self._forward = head_module.forward  # the module's own forward (bound), called chunk by chunk
        self._calling = False

        def forward(hidden, *args, **kwargs):
            if head_module.training and not self._calling:
                return hidden  # the loss applies the head; ``outputs.logits`` is then the hidden states
            return self._forward(hidden, *args, **kwargs)

        head_module.forward = forward

    def call_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The head on some positions, through the module's ``__call__`` (its hooks, e.g. a trainable-token
        wrapper's, run as usual)."""
        self._calling = True
        try:
            return self.module(hidden)
        finally:
            self._calling = False

    def __call__(self, logits, labels, vocab_size=None, num_items_in_batch=None, ignore_index: int = -100,
                 shift_labels=None, **kwargs) -> torch.Tensor:
        hidden = logits  # what the patched head handed through
        if shift_labels is None:
            labels = torch.nn.functional.pad(labels, (0, 1), value=ignore_index)
            shift_labels = labels[..., 1:]
        y = shift_labels.reshape(-1).to(hidden.device)
        if ignore_index != -100:
            y = torch.where(y == ignore_index, torch.full_like(y, -100), y)
        h = hidden.reshape(-1, hidden.shape[-1])
        params = [p for p in self.module.parameters() if p.requires_grad]
        total = _HeadLoss.apply(h, y, self, self.chunk, *params)
        if num_items_in_batch is not None:
            if torch.is_tensor(num_items_in_batch):
                num_items_in_batch = num_items_in_batch.to(total.device)
            return total / num_items_in_batch
        return total / (y != -100).sum().clamp(min=1)


def install(model, chunk: int = DEFAULT_CHUNK) -> ChunkedHeadLoss:
    """Patch ``model`` (a causal LM, or a PEFT model around one) to train with the chunked head loss; raises for
    models whose forward changes the logits after the head (the hand-through would then be wrong)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    text = base.config.get_text_config()
    if getattr(text, "final_logit_softcapping", None) is not None:
        raise ValueError(f"{type(base).__name__} soft-caps its logits after the head: the chunked loss does not "
                         "apply (train it with chunked_loss off)")
    head = getattr(base, "lm_head", None)
    if head is None:
        raise ValueError(f"{type(base).__name__} has no lm_head: the chunked loss does not apply")
    loss = ChunkedHeadLoss(head, chunk)
    base.loss_function = loss
    return loss

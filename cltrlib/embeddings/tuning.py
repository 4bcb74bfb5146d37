"""English-only instruction-style LoRA tuning of a causal LM (Paper C, section 3).

The model sees the task's fixed English prompt and learns to put the answer word
next: the loss is the cross-entropy of the label word's first token at the position
right after the prompt, and nothing else (no loss on the prompt tokens). Paper C:
LoRA rank 8, alpha 32, lr 2e-5, cosine schedule, 6 epochs on the full English
training set of LLaMA-7B; ``cltrlib.study`` says how the local run
deviates (far fewer examples and steps, so a larger learning rate).

The adapter and its configuration are stored in the results store
(``<results>/causal_lora/<label>-<hash>/adapter``); the same configuration is never
trained twice. An interrupted training run starts that adapter over (it is minutes).
"""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from cltrlib.embeddings.scoring import encode_prompts, label_token_ids, next_token_logits
from cltrlib.embeddings.tasks import PROMPT_VERSION, label_words, train_examples
from cltrlib.models import load, model_revision
from cltrlib.progress import tqdm
from cltrlib.store import RunStore

TUNING_VERSION = "1"


@dataclass(frozen=True)
class TuneConfig:
    """Everything that determines an adapter (all of it goes into the store key)."""

    model: str
    task: str
    n_train: int | None = 256
    epochs: float = 1.0
    lr: float = 1e-3
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = field(default=("q_proj", "k_proj", "v_proj", "o_proj",
                                                     "gate_proj", "up_proj", "down_proj"))
    batch_size: int = 8
    max_length: int = 160
    warmup_ratio: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class TunedAdapter:
    """A finished adapter: ``key`` names it in the embedding and evaluation caches."""

    config: TuneConfig
    key: str
    dir: Path
    summary: dict


def adapter_store(cfg: TuneConfig) -> RunStore:
    full = {**asdict(cfg), "revision": model_revision(cfg.model), "prompt_version": PROMPT_VERSION,
            "version": TUNING_VERSION}
    return RunStore("causal_lora", full, label=f"{cfg.model}-{cfg.task}")


def train_adapter(cfg: TuneConfig, device: str = "cpu", progress: bool = True) -> TunedAdapter:
    """Train (or read back) the LoRA adapter of ``cfg``."""
    store = adapter_store(cfg)
    adapter_dir = store.path / "adapter"
    if store.is_complete() and (adapter_dir / "adapter_config.json").exists():
        return TunedAdapter(cfg, store.key[:12], adapter_dir, store.summary() or {})
    from peft import LoraConfig, get_peft_model
    from transformers import get_cosine_schedule_with_warmup

    store.records_file.unlink(missing_ok=True)  # a half-finished run restarts from scratch
    shutil.rmtree(adapter_dir, ignore_errors=True)
    torch.manual_seed(cfg.seed)
    base, tok = load(cfg.model, "generate", device=device)
    lm = copy.deepcopy(base)  # a private copy: peft injects LoRA layers into the model it wraps
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    model = get_peft_model(lm, lora).to(device)
    model.train()
    inner = model.get_base_model()  # the causal LM with LoRA layers injected

    examples = train_examples(cfg.task, cfg.n_train, seed=cfg.seed)
    targets = label_token_ids(tok, label_words(cfg.task))
    rng = np.random.default_rng(cfg.seed)
    n_steps_per_epoch = -(-len(examples) // cfg.batch_size)
    total_steps = max(1, int(round(cfg.epochs * n_steps_per_epoch)))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, int(cfg.warmup_ratio * total_steps), total_steps)

    order: list[int] = []
    start = time.monotonic()
    n_tokens = 0
    losses = []
    for step in tqdm(range(total_steps), desc=f"LoRA {cfg.model}/{cfg.task}", disable=not progress, leave=False):
        if len(order) < cfg.batch_size:
            order += rng.permutation(len(examples)).tolist()
        idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
        batch = [examples[i] for i in idx]
        enc = encode_prompts(tok, [e.prompt for e in batch], cfg.max_length)
        enc = {k: v.to(device) for k, v in enc.items()}
        logits = next_token_logits(inner, enc["input_ids"], enc["attention_mask"])
        gold = torch.tensor([targets[e.label] for e in batch], device=device)
        loss = torch.nn.functional.cross_entropy(logits, gold)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        n_tokens += int(enc["attention_mask"].sum())
        losses.append(loss.item())
        store.append([{"step": step, "loss": losses[-1], "lr": sched.get_last_lr()[0]}])
    seconds = time.monotonic() - start
    model.save_pretrained(str(adapter_dir))
    summary = {"n_examples": len(examples), "steps": total_steps, "seconds": round(seconds, 1),
               "train_tokens_per_s": round(n_tokens / max(seconds, 1e-9), 1),
               "first_loss": losses[0], "last_loss_mean5": float(np.mean(losses[-5:]))}
    store.mark_complete(summary)
    return TunedAdapter(cfg, store.key[:12], adapter_dir, summary)


def training_curve(adapter: TunedAdapter) -> list[dict]:
    """The stored per-step losses of an adapter."""
    return adapter_store(adapter.config).records()

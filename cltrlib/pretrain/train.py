"""Causal-LM continual pre-training on packed blocks, stored by configuration and resumable after a kill.

Why the ecosystem's ``Trainer``: the same code then runs unchanged under ``accelerate launch`` / ``torchrun`` on many
GPUs (DDP, FSDP or DeepSpeed through ``TrainingArguments``), which a hand-written loop would have to re-implement.
What this module adds around it:

- one results-store run per ``PretrainConfig`` (+ the corpus fingerprint, the model revision): rerunning a finished
  configuration reads it back; an interrupted one resumes from the Trainer's last checkpoint (optimizer, scheduler,
  RNG and data position included), so a SIGKILL loses at most ``save_every`` steps;
- checkpoints *along* the run for evaluation, saved as plain model folders (LoRA merged) at evenly spaced token
  counts, so every later stage (code eval, log-likelihoods, perplexity) loads them like any model;
- a loss log (step, tokens seen, loss, learning rate, tokens/s) in the store, and a progress bar with loss and
  tokens/s that also reaches the terminal of ``make reproduce``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cltrlib.store import RunStore

TRAIN_VERSION = "2"  # bump when training changes what a configuration produces
# 2: LoRA init seeded by the configuration (9fb2316); runs stored under "1" had an unseeded, unreproducible init


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides a continual pre-training run's weights (device and logging do not)."""

    model: str
    condition: str  # a name for the data mixture (``cltrlib.pretrain.conditions``); part of the key
    tokens: int  # training token budget (whole blocks)
    seq_len: int = 512
    batch_size: int = 4  # blocks per optimizer step per process (times grad_accum)
    grad_accum: int = 1
    lr: float = 1e-4
    scheduler: str = "cosine"
    warmup: float = 0.05  # share of the steps
    weight_decay: float = 0.1
    method: str = "full"  # "full" fine-tuning or "lora" (merged into the saved checkpoints)
    lora_r: int = 64
    lora_alpha: int = 128
    lora_layers: int | None = None  # LoRA on the top k decoder layers only (None: all): no backward pass below them
    # Under LoRA, also train the input-embedding and LM-head rows of token ids >= this (the rows a vocabulary
    # expansion added, ``cltrlib.pretrain.vocab``; peft's trainable_token_indices). None: no such rows.
    trainable_from: int | None = None
    # Under LoRA, the dtype the frozen base weights are kept in. "bfloat16" (QLoRA-style, without the quantisation):
    # the base is loaded in bf16 and never cast again, while peft keeps the adapters (and expanded rows) in fp32;
    # under fp32 + autocast every weight is cast to bf16 on every forward and again in the backward pass, a large
    # share of a CPU step for a 135M model. Rounds the frozen weights once, so it is part of the key.
    base_dtype: str = "float32"
    checkpoints: int = 4  # evaluation checkpoints along the run (the last is the final model)
    seed: int = 0

    def steps(self, world_size: int = 1) -> int:
        per_step = self.batch_size * self.grad_accum * world_size * self.seq_len
        return max(self.tokens // per_step, 1)

    def validate(self) -> None:
        if self.method not in ("full", "lora"):
            raise ValueError(f"PretrainConfig.method must be 'full' or 'lora', not {self.method!r}")
        if self.tokens < self.seq_len:
            raise ValueError(f"PretrainConfig.tokens ({self.tokens}) is less than one block of seq_len "
                             f"{self.seq_len}")
        if self.base_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"PretrainConfig.base_dtype must be 'float32' or 'bfloat16', not {self.base_dtype!r}")
        if self.base_dtype != "float32" and self.method != "lora":
            raise ValueError("PretrainConfig.base_dtype='bfloat16' needs method='lora' (trained weights stay fp32)")
        if self.checkpoints < 1:
            raise ValueError("PretrainConfig.checkpoints must be at least 1 (the final model)")


@dataclass
class PretrainRun:
    """A finished (or read-back) run: its store, loss log and evaluation checkpoints."""

    cfg: PretrainConfig
    store: RunStore

    def log(self) -> list[dict]:
        """One record per logged step; a step logged again after a resume keeps its latest record."""
        by_step = {r["step"]: r for r in self.store.records() if r.get("kind") == "log"}
        return [by_step[s] for s in sorted(by_step)]

    def checkpoints(self) -> list[tuple[int, str]]:
        """(tokens seen, model folder) along the run, the base model first (0 tokens)."""
        from cltrlib.models import resolve_model_path

        out = [(0, resolve_model_path(self.cfg.model))]
        for rec in self.store.records():
            if rec.get("kind") == "checkpoint":
                out.append((rec["tokens"], str(self.store.path / rec["folder"])))
        return out

    @property
    def final(self) -> str:
        return self.checkpoints()[-1][1]

    def summary(self) -> dict:
        return self.store.summary() or {}


def store_for(cfg: PretrainConfig, corpus_key: str, root: Path | None = None) -> RunStore:
    import importlib.metadata

    from cltrlib.models import model_revision

    fields = asdict(cfg)
    if fields["trainable_from"] is None:
        del fields["trainable_from"]  # added later: runs without expanded rows keep their stored keys
    if fields["base_dtype"] == "float32":
        del fields["base_dtype"]  # added later: fp32-base runs keep their stored keys
    key = {**fields, "model_revision": model_revision(cfg.model), "corpus": corpus_key,
           "train_version": TRAIN_VERSION, "transformers": importlib.metadata.version("transformers")}
    return RunStore("pretrain", key, label=f"{Path(cfg.model).name}-{cfg.condition}", root=root)


class PackedBlocks:
    """A map-style dataset over ``[n, seq_len]`` blocks: labels are the inputs (the model shifts them)."""

    def __init__(self, blocks: np.ndarray):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict:
        import torch

        ids = torch.from_numpy(self.blocks[i].copy())
        return {"input_ids": ids, "labels": ids.clone()}


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (``avx512_bf16`` / ``amx_bf16``): there bf16 autocast about
    doubles training throughput; without them bf16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _checkpoint_steps(total: int, n: int) -> list[int]:
    """``n`` evenly spaced steps ending at ``total`` (deduplicated for short runs)."""
    return sorted({max(1, round(total * (i + 1) / n)) for i in range(n)})


def _latest_trainer_checkpoint(folder: Path) -> str | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]))
    return str(found[-1]) if found else None


def _load_model(cfg: PretrainConfig):
    """(model, tokenizer) ready to train: fp32 weights (or a bf16 frozen base under LoRA, ``cfg.base_dtype``), LoRA
    adapters (and trainable expanded rows) if asked; trained parameters are always fp32 (peft's
    ``autocast_adapter_dtype`` upcasts adapters and trainable-token deltas created on a bf16 base)."""
    import torch
    from transformers import AutoModelForCausalLM

    from cltrlib.models import load_tokenizer, resolve_model_path

    tok = load_tokenizer(cfg.model, padding_side="right")
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(cfg.model), dtype=getattr(torch, cfg.base_dtype))
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        top, targets = None, "all-linear"
        if cfg.lora_layers is not None:
            n_layers = model.config.get_text_config().num_hidden_layers
            top = list(range(max(0, n_layers - cfg.lora_layers), n_layers))
            # peft takes a layer selection only with named targets: every linear module of the decoder layers
            targets = sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
                              if isinstance(mod, torch.nn.Linear) and ".layers." in name})
        new_rows = None
        if cfg.trainable_from is not None:
            ids = list(range(cfg.trainable_from, model.get_input_embeddings().weight.shape[0]))
            if not ids:
                raise ValueError(f"trainable_from={cfg.trainable_from} but the model has only {len(tok)} token ids")
            tied = getattr(model.config.get_text_config(), "tie_word_embeddings", False) or model.get_output_embeddings() is None
            # Tied: peft ties the head's rows to the embedding's; untied: both modules train the same rows.
            new_rows = ids if tied else {"embed_tokens": ids, "lm_head": ids}
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                 lora_dropout=0.0, target_modules=targets,
                                                 layers_to_transform=top, trainable_token_indices=new_rows),
                               autocast_adapter_dtype=True)
        wrong = [n for n, p in model.named_parameters() if p.requires_grad and p.dtype != torch.float32]
        if wrong:  # AdamW on bf16 parameters would lose small updates to rounding
            raise RuntimeError(f"trainable parameters not in fp32: {wrong[:3]}")
    return model, tok


def _fsdp_launch() -> bool:
    """Whether ``accelerate launch`` started this process with an FSDP configuration."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")


def _shard_on_cpu(trainer) -> None:
    """Apply the launch's FSDP configuration on CPU processes (the rehearsal of the GPU path).

    Why: accelerate honours an FSDP configuration only on accelerators; with ``use_cpu`` it silently trains
    plain DDP (``MULTI_CPU``: the model is replicated, not sharded), so a CPU rehearsal would test nothing of FSDP.
    FSDP2 (``torch.distributed.fsdp.fully_shard``) itself runs on gloo, so the Trainer's own FSDP2 path is opted
    in here: the model is wrapped by accelerate's ``fsdp2_prepare_model``, checkpoints gathered as on GPUs. FSDP1
    cannot be rehearsed (accelerate: "no available devices found, must be one of XPU, CUDA, ...").
    """
    from accelerate import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables `accelerate launch` sets
    if plugin.fsdp_version != 2:
        raise RuntimeError("FSDP1 needs GPUs; rehearse on CPU with fsdp_version: 2 "
                           "(configs/accelerate_fsdp2_cpu_rehearsal.yaml)")
    state = trainer.accelerator.state
    state.fsdp_plugin = plugin
    # Both shared states: every later AcceleratorState() copies the process state's type over its own.
    PartialState().distributed_type = state.distributed_type = DistributedType.FSDP
    trainer.is_fsdp_enabled = True


def run_pretraining(cfg: PretrainConfig, blocks: np.ndarray, corpus_key: str, mixture_summary: dict | None = None,
                    save_every: int | None = None, progress: bool = True, root: Path | None = None,
                    bf16: bool | None = None, chunked_loss: bool = False, optim: str = "adamw_torch",
                    compile_model: bool = False) -> PretrainRun:
    """Train (or resume, or read back) the run of ``cfg`` on ``blocks`` (``packing.mixture``'s output).

    ``corpus_key`` identifies the blocks' content (``packing.fingerprint`` of the documents plus the mixture), so a
    different corpus is a different run. ``save_every``: Trainer checkpoint interval in steps (default: every
    evaluation checkpoint, at least every 50 steps). ``bf16``: autocast (default: on GPU, and on CPUs with bf16
    matrix instructions; others emulate it slowly). ``chunked_loss``: the LM-head loss a chunk of positions at a
    time (``cltrlib.pretrain.loss``: the same loss without the full fp32 logits; ignored under FSDP). ``optim``: the
    Trainer's optimizer name (``adamw_torch_fused``: the same AdamW update in one kernel per parameter group).
    ``compile_model``: ``torch.compile`` (inductor; needs a C compiler on CPU, and the first step pays the
    compilation). None of these is part of the store key (they change speed and memory, and the loss only by
    rounding).
    """
    import torch
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    cfg.validate()
    if blocks.ndim != 2 or blocks.shape[1] != cfg.seq_len:
        raise ValueError(f"blocks must be [n, {cfg.seq_len}], got {list(blocks.shape)}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps = cfg.steps(world)
    if len(blocks) < steps * cfg.batch_size * cfg.grad_accum * world:
        raise ValueError(f"{len(blocks)} blocks are fewer than the {steps} steps x "
                         f"{cfg.batch_size * cfg.grad_accum * world} blocks the budget needs")
    store = store_for(cfg, corpus_key, root)
    run = PretrainRun(cfg, store)
    if store.is_complete():
        return run
    rank0 = int(os.environ.get("RANK", "0")) == 0
    marks = _checkpoint_steps(steps, cfg.checkpoints)
    save_every = save_every or max(1, min(50, marks[0]))
    trainer_dir = store.path / "trainer"
    from transformers import set_seed

    set_seed(cfg.seed)  # LoRA's initial A matrices come from the global RNG: the configuration decides them
    model, tok = _load_model(cfg)
    if chunked_loss and not _fsdp_launch():
        from cltrlib.pretrain.loss import install

        install(model)
    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(trainer_dir), max_steps=steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, lr_scheduler_type=cfg.scheduler,
        warmup_steps=int(math.ceil(cfg.warmup * steps)), weight_decay=cfg.weight_decay, seed=cfg.seed,
        data_seed=cfg.seed, logging_steps=1, save_strategy="steps", save_steps=save_every, save_total_limit=1,
        report_to="none", disable_tqdm=True, bf16=(cuda or cpu_has_bf16()) if bf16 is None else bf16, use_cpu=not cuda,
        optim=optim, torch_compile=compile_model, dataloader_drop_last=True, remove_unused_columns=False,
        ddp_backend=None if cuda else ("gloo" if world > 1 else None))
    done_marks = {r["step"] for r in store.records() if r.get("kind") == "checkpoint"}
    tokens_per_step = cfg.batch_size * cfg.grad_accum * world * cfg.seq_len

    class Record(TrainerCallback):
        """Loss log and evaluation checkpoints into the store; the progress bar."""

        def __init__(self) -> None:
            from cltrlib.progress import tqdm

            self.bar = tqdm(total=steps, desc=f"pre-train {Path(cfg.model).name} {cfg.condition}",
                            disable=not (progress and rank0), unit="step")
            self.t0, self.step0 = time.perf_counter(), None

        def on_step_end(self, args, state, control, **kw):
            if self.step0 is None:
                self.step0 = state.global_step - 1
                self.bar.n = self.step0
            self.bar.update(state.global_step - self.bar.n)
            if state.global_step in marks and state.global_step not in done_marks:
                control.should_save = True  # a resume point at every evaluation checkpoint

        def on_log(self, args, state, control, logs=None, **kw):
            if not (rank0 and logs and "loss" in logs):
                return
            elapsed = time.perf_counter() - self.t0
            rate = (state.global_step - (self.step0 or 0)) * tokens_per_step / max(elapsed, 1e-9)
            store.append([{"kind": "log", "step": state.global_step, "tokens": state.global_step * tokens_per_step,
                           "loss": float(logs["loss"]), "lr": float(logs.get("learning_rate", 0.0)),
                           "tokens_per_s": rate}])
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", tok_s=f"{rate:,.0f}", refresh=False)

        def on_save(self, args, state, control, model=None, **kw):
            step = state.global_step
            if step not in marks or step in done_marks:
                return
            folder = f"step-{step:06d}"
            tmp = store.path / (folder + ".tmp")
            if rank0:
                shutil.rmtree(tmp, ignore_errors=True)
            if cfg.method == "lora":
                # Merge a copy (merging in place would end the adapter's training): the folder is a plain model.
                if rank0:
                    copy.deepcopy(trainer.accelerator.unwrap_model(model)).merge_and_unload().save_pretrained(tmp)
            else:
                # Every rank: under FSDP / DeepSpeed the full weights are gathered from the shards; rank 0 writes.
                trainer.save_model(str(tmp))
            if rank0:
                tok.save_pretrained(tmp)
                os.replace(tmp, store.path / folder)
                store.append([{"kind": "checkpoint", "step": step, "tokens": step * tokens_per_step,
                               "folder": folder}])
            done_marks.add(step)

        def on_train_end(self, args, state, control, **kw):
            self.bar.close()

    trainer = Trainer(model=model, args=args, train_dataset=PackedBlocks(blocks), callbacks=[Record()])
    if _fsdp_launch() and not cuda and world > 1:
        _shard_on_cpu(trainer)
    trainer.remove_callback(PrinterCallback)  # the loss goes to the store and the bar, not as dicts on stdout
    start = time.perf_counter()
    # One process per run takes the store's lock; under ``accelerate launch`` / ``torchrun`` only rank 0 does (the
    # other ranks waiting for it would never join the collectives rank 0 waits in).
    with store.lock() if world == 1 or rank0 else contextlib.nullcontext():
        trainer.train(resume_from_checkpoint=_latest_trainer_checkpoint(trainer_dir))
    wall = time.perf_counter() - start
    if rank0:
        log = run.log()
        store.mark_complete({"steps": steps, "tokens": steps * tokens_per_step, "world_size": world,
                             # NO, MULTI_CPU (DDP), MULTI_GPU, FSDP, ...: how the processes shared the model
                             "distributed_type": str(trainer.accelerator.distributed_type).split(".")[-1],
                             "wall_s_last_session": wall, "final_loss": log[-1]["loss"] if log else None,
                             "mixture": mixture_summary or {}, "marks": marks})
        shutil.rmtree(trainer_dir, ignore_errors=True)  # resume state is not needed once complete
    return run


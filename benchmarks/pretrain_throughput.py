"""Continual pre-training throughput on CPU: a plain eager loop vs our training path, side by side in one run.

Issue 18's anchor is a plain eager loop (fp32 weights, full fine-tuning, AdamW, 4 x 512 tokens per step); measured
there on 2 Zen-5 cores: SmolLM2 125 tokens/s and 8 GB, Gemma-3-270M 45 tokens/s and 16 GB. Our path
(``cltrlib.pretrain.train.run_pretraining``: the transformers ``Trainer`` on packed blocks) can add LoRA (frozen base
weights: no weight gradients or AdamW state for them, so the backward pass does about a third less work), bf16
autocast (only where the CPU has bf16 matrix instructions: ``avx512_bf16`` / ``amx_bf16``; elsewhere it is emulated
and slower), LoRA on the top half of the decoder layers only (``lora_layers``: nothing below them needs a gradient, so
the backward pass stops there), a chunked LM-head loss (``cltrlib.pretrain.loss``: the full fp32 logits never exist),
packing (no pad tokens; both sides here get the same packed blocks, so it is not part of the ratio), a larger
learning rate for the top-half variant, fused AdamW, a smaller LoRA rank, ``torch.compile`` (inductor; its
compilation falls in the first step, which the tokens/s leave out and the table shows as "step 1 s") and the frozen
base kept in bf16 (``PretrainConfig.base_dtype``: no per-step fp32 -> bf16 weight casts; adapters stay fp32).
Results: benchmarks/RESULTS.md, "Continual pre-training step".

Each variant runs in its own process (peak RSS is the process's own ``ru_maxrss``, and one variant's allocator does
not bias the next), on the same packed blocks of the Japanese manual pages (``source=mirror``: SIB-200's Japanese
training sentences when the pages are not installed). tokens/s is measured after the first step (warm-up); the loss
curves are printed side by side (the Trainer shuffles blocks with its seed, the plain loop takes them in order, so
the curves match in level and slope, not step by step). "Equal loss curves" is checked on one number that does not
depend on the order: every variant's model after the same steps is scored on the same held-out blocks (mean
next-token loss, nats; documents never trained on), beside the base model's.

    /work/briefs/cpu .venv/bin/python benchmarks/pretrain_throughput.py --steps 6   # DEFAULT_VARIANTS
    .venv/bin/python benchmarks/pretrain_throughput.py --steps 5 --variants plain ours-lora-bf16 \
        ours-lora-top-bf16 ours-lora-top-bf16-lr2x-fused
    .venv/bin/python benchmarks/pretrain_throughput.py --steps 6 --variants plain ours-lora-bf16 \
        ours-lora-bf16-chunked ours-lora-bf16base-chunked
    .venv/bin/python benchmarks/pretrain_throughput.py --model gemma3-270m --variants plain ours-lora-bf16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cltrlib.pretrain.train import cpu_has_bf16  # noqa: E402

VARIANTS: dict[str, dict | None] = {
    # name: our path's settings (method, bf16, chunked LM-head loss; optional rank, learning-rate factor over
    # --lr-lora, optimizer, torch.compile); "plain" is the hand-written loop
    "plain": None,
    "ours-full-fp32": dict(method="full", bf16=False),
    "ours-full-bf16": dict(method="full", bf16=True),
    "ours-lora-fp32": dict(method="lora", bf16=False),
    "ours-lora-bf16": dict(method="lora", bf16=True),
    "ours-lora-bf16-chunked": dict(method="lora", bf16=True, chunked=True),
    # LoRA on the top half of the decoder layers only (``top_share``): the backward pass stops there (about 40% fewer
    # FLOPs per step)
    "ours-lora-top-bf16": dict(method="lora-top", bf16=True),
    "ours-lora-top-bf16-chunked": dict(method="lora-top", bf16=True, chunked=True),
    # the same with rank 16 instead of 64: on a 576-wide model rank-64 adapters add ~35% to each adapted matmul
    "ours-lora-top-bf16-chunked-r16": dict(method="lora-top", bf16=True, chunked=True, rank=16),
    # half the layers adapted learn less per step at the same rate (held-out 1.889 vs plain 1.860 after 6 steps):
    # twice the learning rate, to reach the plain loop's held-out loss after the same tokens
    "ours-lora-top-bf16-lr2x": dict(method="lora-top", bf16=True, lr_factor=2.0),
    "ours-lora-top-bf16-lr2x-fused": dict(method="lora-top", bf16=True, lr_factor=2.0, optim="adamw_torch_fused"),
    "ours-lora-top-bf16-lr2x-fused-r16": dict(method="lora-top", bf16=True, lr_factor=2.0,
                                              optim="adamw_torch_fused", rank=16),
    # torch.compile (inductor, a C compiler on CPU): its compilation falls in the first step, reported apart
    "ours-lora-top-bf16-lr2x-fused-compile": dict(method="lora-top", bf16=True, lr_factor=2.0,
                                                  optim="adamw_torch_fused", compile=True),
    # The frozen base kept in bf16 (PretrainConfig.base_dtype): no fp32 -> bf16 weight casts in every forward and
    # backward; adapters stay fp32 (peft). "-noac": without the Trainer's autocast (the fp32 adapter matmuls then run
    # in fp32, the base's in bf16); with autocast the adapter matmuls run in bf16 too.
    "ours-lora-bf16base": dict(method="lora", bf16=True, base_dtype="bfloat16"),
    "ours-lora-bf16base-noac": dict(method="lora", bf16=False, base_dtype="bfloat16"),
    "ours-lora-bf16base-chunked": dict(method="lora", bf16=True, base_dtype="bfloat16", chunked=True),
    "ours-lora-bf16base-fused-compile": dict(method="lora", bf16=True, base_dtype="bfloat16",
                                             optim="adamw_torch_fused", compile=True),
    "ours-lora-top-bf16base-lr2x-fused": dict(method="lora-top", bf16=True, base_dtype="bfloat16", lr_factor=2.0,
                                              optim="adamw_torch_fused"),
    # Between the two: LoRA on the top two thirds of the layers (20 of SmolLM2's 30; the backward pass skips the lowest
    # third), bf16 base + chunked loss, at the default and a 1.5x learning rate: does it keep the all-layer loss?
    "ours-lora-top23-bf16base-chunked": dict(method="lora-top", top_share=2 / 3, bf16=True, base_dtype="bfloat16",
                                             chunked=True),
    "ours-lora-top23-bf16base-chunked-lr1.5x": dict(method="lora-top", top_share=2 / 3, bf16=True,
                                                    base_dtype="bfloat16", chunked=True, lr_factor=1.5),
    # Rank 16 instead of 64 (alpha = 2 x rank keeps the update's scale): rank-64 adapters on SmolLM2's 192-wide k/v
    # projections add ~44% to those matmuls
    "ours-lora-bf16base-chunked-r16": dict(method="lora", bf16=True, base_dtype="bfloat16", chunked=True, rank=16),
    "ours-lora-top23-bf16base-chunked-r16": dict(method="lora-top", top_share=2 / 3, bf16=True, base_dtype="bfloat16",
                                                 chunked=True, rank=16),
}
DEFAULT_VARIANTS = ("plain", "ours-lora-bf16", "ours-lora-top-bf16", "ours-lora-top-bf16-lr2x",
                    "ours-lora-top-bf16-lr2x-fused", "ours-lora-top-bf16-lr2x-fused-r16",
                    "ours-lora-top-bf16-lr2x-fused-compile")


def blocks_for(model: str, seq_len: int, n_blocks: int, source: str, held_out: int = 2):
    """(training blocks, held-out blocks) of the Japanese source: the held-out ones from documents never trained on."""
    from cltrlib.models import load_tokenizer
    from cltrlib.pretrain import packing
    from cltrlib.pretrain.conditions import source_documents

    train_docs, held = packing.split_documents(source_documents("ja", source))
    tok = load_tokenizer(model, padding_side="right")
    return (packing.pack(train_docs, tok, seq_len, seed=0, max_blocks=n_blocks),
            packing.pack(held, tok, seq_len, seed=0, max_blocks=held_out))


def held_out_loss(model, held) -> float:
    """Mean next-token loss (nats) of ``model`` on the held-out blocks."""
    from cltrlib.pretrain.perplexity import block_losses

    was = model.training
    model.eval()
    out = float(block_losses(model, held).sum() / (held.shape[0] * (held.shape[1] - 1)))
    model.train(was)
    return out


def run_plain(model_name: str, blocks, batch: int, lr: float, held) -> dict:
    """The anchor: fp32 weights, full fine-tuning, torch AdamW, eager mode, the model's own (full-logits) loss."""
    import torch
    from transformers import AutoModelForCausalLM

    from cltrlib.models import resolve_model_path

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(model_name), dtype=torch.float32)
    base_loss = held_out_loss(model, held)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    losses, times = [], []
    for i in range(0, len(blocks), batch):
        ids = torch.from_numpy(blocks[i:i + batch].copy())
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    return {"losses": losses, "step_s": times, "held_out_loss": held_out_loss(model, held),
            "base_held_out_loss": base_loss}


def run_ours(model_name: str, blocks, batch: int, lr: float, held, method: str, bf16: bool, chunked: bool = False,
             rank: int = 64, lr_factor: float = 1.0, optim: str = "adamw_torch", compile: bool = False,
             base_dtype: str = "float32", top_share: float = 0.5) -> dict:
    """``run_pretraining`` itself (Trainer, packed blocks), one evaluation checkpoint, in a scratch store."""
    from cltrlib.pretrain.train import PretrainConfig, run_pretraining

    seq_len = blocks.shape[1]
    top = None
    if method == "lora-top":
        from transformers import AutoConfig

        from cltrlib.models import resolve_model_path

        n_layers = AutoConfig.from_pretrained(resolve_model_path(model_name)).num_hidden_layers
        method, top = "lora", round(n_layers * top_share)
    cfg = PretrainConfig(model=model_name, condition="bench", tokens=len(blocks) * seq_len, seq_len=seq_len,
                         batch_size=batch, lr=lr * lr_factor, warmup=0.0, scheduler="constant", method=method,
                         lora_layers=top,
                         lora_r=rank, lora_alpha=2 * rank, base_dtype=base_dtype,
                         checkpoints=1)
    with tempfile.TemporaryDirectory(prefix="cltr-bench-") as root:
        run = run_pretraining(cfg, blocks, f"bench-{time.time()}", root=Path(root), progress=False, bf16=bf16,
                              save_every=10**9, chunked_loss=chunked, optim=optim, compile_model=compile)
        log = run.log()
        import torch
        from transformers import AutoModelForCausalLM

        after = held_out_loss(AutoModelForCausalLM.from_pretrained(run.final, dtype=torch.float32), held)
    # The log's tokens/s is cumulative since the Trainer started; step k's elapsed time is k * tokens / rate.
    per_step = batch * seq_len
    elapsed = [r["step"] * per_step / r["tokens_per_s"] for r in log]
    return {"losses": [r["loss"] for r in log], "step_s": [elapsed[0]] + list(map(float, __import__("numpy").diff(
        elapsed))), "held_out_loss": after}


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    blocks, held = np.load(args.blocks), np.load(args.held)
    spec = VARIANTS[args.child]
    out = (run_plain(args.model, blocks, args.batch, args.lr, held) if spec is None
           else run_ours(args.model, blocks, args.batch, args.lr_lora if spec["method"].startswith("lora") else args.lr,
                         held, **spec))
    steady = out["step_s"][1:] or out["step_s"]
    out.update(variant=args.child, tokens_per_s=args.batch * blocks.shape[1] / (sum(steady) / len(steady)),
               peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               threads=torch.get_num_threads())
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per variant (the first is warm-up)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-4, help="full fine-tuning learning rate")
    ap.add_argument("--lr-lora", type=float, default=1e-3, help="LoRA learning rate (adapters need a larger one)")
    ap.add_argument("--source", default="manpages", help="manpages | mirror")
    ap.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS),
                    help="default: plain and every variant of ours this CPU supports (bf16 only with bf16 units)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--blocks", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--held", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    import numpy as np

    variants = args.variants or [v for v in DEFAULT_VARIANTS if VARIANTS[v] is None or not VARIANTS[v]["bf16"]
                                 or cpu_has_bf16()]
    blocks, held = blocks_for(args.model, args.seq_len, args.steps * args.batch, args.source)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "blocks.npy", blocks)
        np.save(Path(tmp) / "held.npy", held)
        for v in variants:
            cmd = [sys.executable, __file__, "--child", v, "--blocks", str(Path(tmp) / "blocks.npy"), "--held",
                   str(Path(tmp) / "held.npy"), "--model",
                   args.model, "--batch", str(args.batch), "--lr", str(args.lr), "--lr-lora", str(args.lr_lora)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(f"{v}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            rows.append({**json.loads(line[len("RESULT "):]), "wall_s": wall})
            print(f"[bench] {v}: {rows[-1]['tokens_per_s']:.0f} tokens/s, {rows[-1]['peak_rss_gb']:.2f} GB",
                  flush=True)
    plain = next((r for r in rows if r["variant"] == "plain"), None)
    print(f"\n{args.model}, {args.steps} steps of {args.batch} x {args.seq_len} tokens, "
          f"{rows[0]['threads'] if rows else '?'} thread(s), bf16 units: {cpu_has_bf16()}")
    if plain:
        print(f"held-out loss of the base model: {plain['base_held_out_loss']:.3f} nats/token "
              f"({held.shape[0]} blocks of {held.shape[1]})")
    print("tokens/s: steady steps (the first, warm-up and any compilation, excluded; its time is 'step 1 s'); "
          "held-out: mean next-token loss after the same steps; equal loss = held-out no worse than plain's")
    print(f"{'variant':38s} {'tokens/s':>9s} {'x plain':>8s} {'peak RSS GB':>12s} {'held-out':>9s} {'step 1 s':>9s} "
          f"{'wall s':>7s}  training loss curve")
    for r in rows:
        ratio = r["tokens_per_s"] / plain["tokens_per_s"] if plain else float("nan")
        r["ratio"] = ratio
        r["equal_loss"] = bool(plain and r["held_out_loss"] <= plain["held_out_loss"])
        curve = " ".join(f"{x:.2f}" for x in r["losses"])
        print(f"{r['variant']:38s} {r['tokens_per_s']:9.1f} {ratio:8.2f} {r['peak_rss_gb']:12.2f} "
              f"{r['held_out_loss']:9.3f} {r['step_s'][0]:9.1f} {r['wall_s']:7.0f}  {curve}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

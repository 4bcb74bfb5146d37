"""GPU benchmark: LoRA sequence-classification training of a Llama-2-7B-shaped model (random weights, bf16).

Side by side in one process, on the same model:

- ``eager``   the anchor: plain eager PyTorch loop, fixed (batch, seq) padded batches, peft LoRA r=8 on q/v,
              AdamW, last-token pooling head — what a straightforward script does.
- ``fast``    our training path: the same LoRA model and loss, plus SDPA (flash) attention, a fused AdamW,
              ``torch.compile`` of the model, length-bucketed batches under a token budget (headlines are short
              and uneven: padding to the longest wastes most of a fixed batch), and activation checkpointing
              for long sequences so 512-token batches fit in 40 GB.

Reported per configuration: real (non-pad) tokens/s, MFU = 4·N·tokens/s / peak (4·N: forward 2N plus the
activation backward 2N; frozen weights get no weight gradients), peak GPU memory, and the wall time of Paper B's
full protocol for one 7B model (3 patterns × 3 seeds × 10 epochs) estimated from the measured throughput.

Anchor measured by the issue on an H100 (eager, LoRA r=8 q/v, AdamW, MFU vs 785 TFLOP/s bf16 matmul peak):
batch 8 × 128 → 7.0k tok/s, MFU 0.24, 18.8 GB; 16 × 256 → 13.1k tok/s, MFU 0.44, 35.2 GB; 32 × 512 → OOM (80 GB).
Goal: MFU ≥ 0.55 at 128 tokens, 512-token sequences within 40 GB.

The model is built directly on the GPU (``torch.device("cuda")`` context): no 13 GB host copy, no hub access.

    python benchmarks/gpu_lora_train.py                      # H100: all configurations, prints a table
    python benchmarks/gpu_lora_train.py --preset tiny --device cpu --steps 2   # logic check without a GPU
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import torch

PRESETS = {
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=1000),
}
PEAK_FLOPS = {"cuda": 785e12, "cpu": 40e9}  # measured bf16 matmul peak of the H100 (issue); ~2-core CPU fp32
# Paper B protocol: (1024 en + n ja) rows per pattern, 10 epochs, 3 seeds.
PAPER_ROWS = {"ja0": 1024, "ja16": 1040, "ja104": 1128}


def build_model(preset: str, device: str, attn: str, dtype: torch.dtype):
    """Random-weight Llama classifier with LoRA r=8 on q/v (head trained), created directly on ``device``."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForSequenceClassification

    cfg = LlamaConfig(**PRESETS[preset], num_labels=2, pad_token_id=0, attn_implementation=attn,
                      max_position_embeddings=4096)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForSequenceClassification(cfg)
    finally:
        torch.set_default_dtype(prev)
    n_params = sum(p.numel() for p in model.parameters())
    lcfg = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(model, lcfg)
    return model, n_params


def headline_lengths(n: int, max_len: int, seed: int = 0) -> torch.Tensor:
    """Uneven lengths like news headlines: most short, a tail up to ``max_len`` (log-normal, clipped)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.exp(torch.randn(n, generator=g) * 0.45 + torch.log(torch.tensor(max_len * 0.35)))
    return lengths.round().clamp(8, max_len).long()


def make_batches(lengths: torch.Tensor, batch: int, max_len: int, bucketed: bool, token_budget: int | None):
    """Padded (ids, mask) batches. Fixed: ``batch`` rows padded to ``max_len``. Bucketed: rows sorted by length,
    as many per batch as fit ``token_budget`` (rows × longest row), padded only to that batch's longest row."""
    order = torch.argsort(lengths) if bucketed else torch.arange(len(lengths))
    out, cur = [], []
    for i in order.tolist():
        if bucketed and token_budget:
            longest = max([int(lengths[j]) for j in cur] + [int(lengths[i])])
            if cur and longest * (len(cur) + 1) > token_budget:
                out.append(cur)
                cur = []
        cur.append(i)
        if not bucketed and len(cur) == batch:
            out.append(cur)
            cur = []
    if cur and bucketed:
        out.append(cur)
    batches = []
    g = torch.Generator().manual_seed(1)
    for rows in out:
        width = max_len if not bucketed else int(max(lengths[j] for j in rows))
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, j in enumerate(rows):
            n = int(lengths[j])
            ids[r, :n] = torch.randint(1, 1000, (n,), generator=g)
            mask[r, :n] = 1
        batches.append((ids, mask))
    if bucketed:  # shuffle batch order (as training would), keep each batch homogeneous
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[k] for k in perm]
    return batches


def run_config(name: str, args, batch: int, seq: int, fast: bool) -> dict:
    from cltrlib.models import position_ids_from_mask

    device = args.device
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model, n_params = build_model(args.preset, device, "sdpa" if fast else args.eager_attn, dtype)
    if fast and seq >= args.checkpoint_from:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, fused=(fast and device == "cuda"))
    forward = torch.compile(model, dynamic=True) if (fast and args.compile) else model
    lengths = headline_lengths(args.rows, seq) if args.uneven else torch.full((args.rows,), seq)
    budget = batch * seq * (args.budget_factor if fast else 1)
    batches = make_batches(lengths, batch, seq, bucketed=fast, token_budget=budget)

    def step(ids, mask):
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        labels = torch.randint(0, 2, (ids.shape[0],), device=device)
        logits = forward(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return int(mask.sum())

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = {"config": name, "mode": "fast" if fast else "eager", "batch": batch, "seq": seq,
              "uneven_lengths": bool(args.uneven), "n_params": n_params}
    try:
        for ids, mask in batches[: args.warmup]:
            step(ids, mask)
        sync()
        t0, tokens, steps = time.perf_counter(), 0, 0
        for ids, mask in batches[args.warmup : args.warmup + args.steps]:
            tokens += step(ids, mask)
            steps += 1
        sync()
        dt = time.perf_counter() - t0
        tps = tokens / dt
        result.update(steps=steps, tokens_per_s=round(tps, 1), mfu=round(4 * n_params * tps / PEAK_FLOPS[device], 3),
                      pad_fraction=round(1 - float(lengths.sum()) / sum(int(ids.numel()) for ids, _ in batches), 3))
        if device == "cuda":
            result["peak_mem_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
        # Paper B protocol estimate: rows × mean real tokens per row × 10 epochs × 3 seeds, summed over patterns.
        mean_len = float(lengths.float().mean())
        proto_tokens = sum(PAPER_ROWS.values()) * mean_len * 10 * 3
        result["paper_protocol_h"] = round(proto_tokens / tps / 3600, 2)
    except torch.OutOfMemoryError:
        result.update(error="out of memory")
    return result  # model, optimizer and closures go out of scope here; main() frees the memory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama2-7b", choices=sorted(PRESETS))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--configs", default="8x128,16x256,32x512", help="comma-separated BATCHxSEQ")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5, help="steps before timing (torch.compile compiles here)")
    ap.add_argument("--rows", type=int, default=2048, help="synthetic rows to draw batches from")
    ap.add_argument("--uneven", action=argparse.BooleanOptionalAction, default=True,
                    help="headline-like uneven lengths (default) or every row exactly SEQ tokens")
    ap.add_argument("--budget-factor", type=int, default=4, help="fast mode: tokens per batch = factor·B·SEQ")
    ap.add_argument("--checkpoint-from", type=int, default=512, help="fast mode: activation checkpointing at SEQ ≥")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--eager-attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()}  torch {torch.__version__}", flush=True)
    results = []
    for spec in args.configs.split(","):
        batch, seq = (int(x) for x in spec.lower().split("x"))
        for fast in (False, True):
            r = run_config(spec, args, batch, seq, fast)
            gc.collect()
            if args.device == "cuda":
                torch.cuda.empty_cache()
            print(json.dumps(r), flush=True)
            results.append(r)
    print(f"\n{'config':>8} {'mode':>5} {'tok/s':>9} {'MFU':>6} {'mem GB':>7} {'pad':>5} {'protocol h':>10}  fast/eager")
    by = {(r["config"], r["mode"]): r for r in results}
    for r in results:
        ratio = ""
        if r["mode"] == "fast" and "tokens_per_s" in r and "tokens_per_s" in by[(r["config"], "eager")]:
            ratio = f"{r['tokens_per_s'] / by[(r['config'], 'eager')]['tokens_per_s']:.2f}x"
        print(f"{r['config']:>8} {r['mode']:>5} {r.get('tokens_per_s', r.get('error', '')):>9} {r.get('mfu', ''):>6} "
              f"{r.get('peak_mem_gb', '-'):>7} {r.get('pad_fraction', ''):>5} {r.get('paper_protocol_h', ''):>10}  {ratio}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()

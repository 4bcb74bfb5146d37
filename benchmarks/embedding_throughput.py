"""Embedding extraction throughput (sentences/s): length-sorted vs input-order batches.

CPU: both embedded models on real PAWS-X English sentence-1 texts, every layer, both
poolings, under ``torch.inference_mode()`` (what notebook 06 runs). GPU (``--gpu-7b``):
a randomly initialised model of LLaMA-7B's shape (hidden 4096, 32 layers, 32 heads,
MLP 11008; bf16) on the same texts, for the ``paper`` profile's scale; it needs a CUDA
device and says so instead of printing a number when there is none.

Both orders run side by side in one process, so the printed ratio is measured under
the same machine load (this machine is shared; absolute numbers move with it).

    nice -n 10 .venv/bin/python benchmarks/embedding_throughput.py --n 64
    .venv/bin/python benchmarks/embedding_throughput.py --gpu-7b --n 512   # on an H100
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from cltrlib.data.multilingual import load_pawsx  # noqa: E402
from cltrlib.embeddings.extract import embed_texts  # noqa: E402
from cltrlib.models import load, load_tokenizer  # noqa: E402


def measure(lm, tok, texts: list[str], batch_size: int, max_length: int, sort_by_length: bool, repeats: int) -> dict:
    embed_texts(lm, tok, texts[:batch_size], batch_size=batch_size, max_length=max_length, progress=False)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        embed_texts(lm, tok, texts, batch_size=batch_size, max_length=max_length, progress=False,
                    sort_by_length=sort_by_length)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return {"seconds": round(best, 3), "sentences_per_s": round(len(texts) / best, 2)}


def shuffled_texts(n: int) -> list[str]:
    """Real English sentences in a fixed random order (the order a corpus arrives in)."""
    df = load_pawsx("en", "dev").sample(frac=1.0, random_state=0)
    texts = list(dict.fromkeys(df.sentence1))
    return (texts * (n // len(texts) + 1))[:n]


def bench_cpu(models: list[str], n: int, batch_size: int, max_length: int, repeats: int) -> list[dict]:
    rows = []
    texts = shuffled_texts(n)
    for name in models:
        lm, tok = load(name, "embed", device="cpu")
        res = {o: measure(lm, tok, texts, batch_size, max_length, o == "sorted", repeats)
               for o in ("input-order", "sorted")}
        rows.append({"device": "cpu", "model": name, "n": n, "batch_size": batch_size, "max_length": max_length,
                     "threads": torch.get_num_threads(), **{f"{o} s/s": r["sentences_per_s"] for o, r in res.items()},
                     "sorted/input ratio": round(res["sorted"]["sentences_per_s"]
                                                 / res["input-order"]["sentences_per_s"], 2)})
    return rows


def bench_gpu_7b(n: int, batch_size: int, max_length: int, repeats: int) -> list[dict]:
    if not torch.cuda.is_available():
        print("gpu-7b: no CUDA device on this machine; the GPU variant was NOT run (no number to report).")
        return []
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer("smollm2-135m-instruct", padding_side="right")  # real tokenizer, offline
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            lm = LlamaForCausalLM(cfg).eval()  # random weights: throughput does not depend on their values
    finally:
        torch.set_default_dtype(default)
    texts = shuffled_texts(n)
    res = {o: measure(lm, tok, texts, batch_size, max_length, o == "sorted", repeats) for o in ("input-order", "sorted")}
    return [{"device": torch.cuda.get_device_name(0), "model": "llama-7b-shape (random, bf16)", "n": n,
             "batch_size": batch_size, "max_length": max_length,
             **{f"{o} s/s": r["sentences_per_s"] for o, r in res.items()},
             "sorted/input ratio": round(res["sorted"]["sentences_per_s"] / res["input-order"]["sentences_per_s"], 2),
             "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1)}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["smollm2-135m-instruct", "gemma3-270m"])
    ap.add_argument("--n", type=int, default=64, help="sentences per measurement")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--gpu-7b", action="store_true", help="run only the 7B-shaped GPU variant")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    if args.gpu_7b:
        rows = bench_gpu_7b(args.n, args.batch_size, args.max_length, args.repeats)
    else:
        rows = bench_cpu(args.models, args.n, args.batch_size, args.max_length, args.repeats)
    print(f"load average at end: {os.getloadavg()[0]:.1f} (shared machine)")
    for r in rows:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

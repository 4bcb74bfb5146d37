"""Code-generation throughput: our decoding engine vs transformers' ``generate``, side by side.

Both run the same greedy requests (real HumanEval/JHumanEval prompts in the model's prompt
mode, the profile's stop sequences and token cap) in one process, so the ratio is measured
under the same machine load. The baseline is what most harnesses do: length-sorted batches
of ``--batch-size`` through ``model.generate`` with ``stop_strings`` (a batch runs until its
last row stops). Ours is ``cltrlib.codegen.generate_many`` as ``run_generation`` calls it.
The script also prints how many texts are identical (greedy: they should all be).

    .venv/bin/python benchmarks/codegen_throughput.py --model gemma3-270m --limit 32
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from cltrlib.codegen.engine import (  # noqa: E402
    GenRequest,
    SamplingConfig,
    generate_batch_hf,
    generate_many,
    plan_batches,
)
from cltrlib.codegen.prompts import build_prompt_text, stops_for  # noqa: E402
from cltrlib.data import load_problems  # noqa: E402
from cltrlib.models import default_prompt_mode, load_causal_lm  # noqa: E402


def hf_generate(model, tok, requests: list[GenRequest], cfg: SamplingConfig, stops: tuple[str, ...],
                batch_size: int) -> list[str]:
    """The baseline: length-sorted batches through transformers' ``generate`` with ``stop_strings``."""
    lengths = [len(tok(r.text, add_special_tokens=r.add_special_tokens).input_ids) for r in requests]
    out: list[str] = [""] * len(requests)
    for batch in plan_batches(lengths, batch_size):
        for i, text in zip(batch, generate_batch_hf(model, tok, [requests[i] for i in batch], cfg, stops),
                           strict=True):
            out[i] = text
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--dataset", default="humaneval")
    ap.add_argument("--mode", default="auto", help="prompt mode (auto: the model's default)")
    ap.add_argument("--limit", type=int, default=32, help="first N problems")
    ap.add_argument("--batch-size", type=int, default=16, help="baseline batch size (ours decodes all as one group)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    args = ap.parse_args()

    model, tok = load_causal_lm(args.model, device="cpu")
    mode = default_prompt_mode(args.model, tok) if args.mode == "auto" else args.mode
    problems = load_problems(args.dataset)[: args.limit]
    requests = [GenRequest(*build_prompt_text(p, mode, tok)) for p in problems]
    cfg, stops = SamplingConfig(max_new_tokens=args.max_new_tokens), stops_for(mode)

    timings, texts = {}, {}
    for name, run in [("transformers_generate", lambda: hf_generate(model, tok, requests, cfg, stops, args.batch_size)),
                      ("cltrlib", lambda: generate_many(model, tok, requests, cfg, stops, batch_size=len(requests),
                                                        progress=False))]:
        start = time.perf_counter()
        texts[name] = run()
        timings[name] = time.perf_counter() - start
    new_tokens = sum(len(tok(t, add_special_tokens=False).input_ids) for t in texts["cltrlib"])
    same = sum(a == b for a, b in zip(texts["transformers_generate"], texts["cltrlib"], strict=True))
    print(json.dumps({
        "model": args.model, "dataset": args.dataset, "mode": mode, "problems": len(problems),
        "max_new_tokens": args.max_new_tokens, "baseline_batch_size": args.batch_size, "new_tokens": new_tokens,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "new_tokens_per_s": {k: round(new_tokens / v, 1) for k, v in timings.items()},
        "speedup": round(timings["transformers_generate"] / timings["cltrlib"], 2),
        "identical_texts": f"{same}/{len(problems)}", "threads": torch.get_num_threads(),
    }, indent=1))


if __name__ == "__main__":
    main()

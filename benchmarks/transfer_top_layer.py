"""Notebook 04's training step: the top layer for the pooled token only vs the full top layer, side by side.

With ``lora_layers=1`` the frozen bottom layers come from ``PrefixCache`` and only the top
layer is trained. ``cltrlib.transfer.toplayer`` computes that layer for the pooled token
alone; the baseline runs the whole top layer (what ``PrefixCache`` did before). Both take
the same cached states, the same batch and the same weights in one process, so the ratio
is measured under the same load. Printed per model: forward + backward seconds per step
(median of ``--repeats``), the ratio, and the largest logit and gradient differences.

    .venv/bin/python benchmarks/transfer_top_layer.py --batch 16 --max-length 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from cltrlib.transfer.data import load_bilingual  # noqa: E402
from cltrlib.transfer.modeling import ClassifierConfig, PrefixCache, build_classifier  # noqa: E402


def step(model, cache: PrefixCache, ids, mask, pooled: bool) -> tuple[float, torch.Tensor, dict]:
    """One forward + backward through the cached prefix; (seconds, logits, gradients)."""
    model.zero_grad(set_to_none=True)
    cache.pooled_top = pooled
    start = time.perf_counter()
    with cache.active():
        logits = cache.logits(ids, mask)
    logits.sum().backward()
    seconds = time.perf_counter() - start
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return seconds, logits.detach(), grads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["smollm2-135m-instruct", "gemma3-270m"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    data = load_bilingual("sib200-science")
    half = args.batch // 2  # English and Japanese rows mixed, as in the ja16/ja104 patterns
    texts = list(data.source_train["text"][:half]) + list(data.target_train["text"][: args.batch - half])
    print(f"{'model':24s} {'full top layer s':>16s} {'pooled token s':>15s} {'speed-up':>9s} "
          f"{'max |dlogit|':>12s} {'max |dgrad|':>12s}")
    for name in args.models:
        clf = ClassifierConfig(name, num_labels=2, lora_layers=1, lora_dropout=0.0)  # no dropout: comparable grads
        model, tok, _ = build_classifier(clf, seed=0)
        model.train()
        enc = tok(texts, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        cache = PrefixCache(model, model.config.num_hidden_layers - 1)
        cache.fill([(ids, mask)])
        assert cache.pooled_top, f"{name}: the pooled-token top layer does not apply"
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):  # alternate, so drifts in machine load hit both alike
            for pooled in (False, True):
                seconds, logits, grads = step(model, cache, ids, mask, pooled)
                times[pooled].append(seconds)
                if pooled:
                    fast_logits, fast_grads = logits, grads
                else:
                    full_logits, full_grads = logits, grads
        full, fast = statistics.median(times[False]), statistics.median(times[True])
        dlogit = (fast_logits - full_logits).abs().max().item()
        dgrad = max((fast_grads[n] - full_grads[n]).abs().max().item() for n in full_grads)
        print(f"{name:24s} {full:16.4f} {fast:15.4f} {full / fast:8.1f}x {dlogit:12.2e} {dgrad:12.2e}")


if __name__ == "__main__":
    main()

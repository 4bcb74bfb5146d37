"""What one full-depth LoRA run (q/v on every layer, Paper B's setting) of notebook 04 costs on this machine.

Sizes the ``full_depth_*`` settings of the ``local`` profile without running a whole run: it builds the real
training rows of the ja0 and ja104 patterns (seed 0, ``study(profile).transfer``), times ``--steps`` training
steps (forward + backward + AdamW, after one untimed warm-up step) on batches of the real shuffled rows, in fp32
and with bf16 autocast, and one prediction batch of the longest test texts. Cost is taken as proportional to the
padded tokens of a batch (each batch pads to its own longest text, at most the fitted length), so the seconds per
padded token times the padded tokens of every batch of every epoch (the training loop's own shuffling) predicts a
run; prediction adds the 100 test texts in length-sorted batches.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transfer_full_depth_cost.py --model gemma3-270m --steps 3
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cltrlib.study import study  # noqa: E402
from cltrlib.transfer.data import load_bilingual  # noqa: E402
from cltrlib.transfer.experiment import fitted_max_length, grid_pattern  # noqa: E402
from cltrlib.transfer.modeling import ClassifierConfig, build_classifier  # noqa: E402
from cltrlib.transfer.train import TrainConfig, _logits, _tokenize  # noqa: E402


def padded_tokens_per_epoch(lengths: np.ndarray, batch: int, max_length: int, seed: int, epochs: int) -> list[int]:
    """Padded tokens of every training batch, epoch after epoch, drawn as ``train_classifier`` draws them."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        order = rng.permutation(len(lengths))
        out.append(sum(len(order[i:i + batch]) * min(max_length, int(lengths[order[i:i + batch]].max()))
                       for i in range(0, len(order), batch)))
    return out


def time_steps(model, tok, texts: list[str], labels: np.ndarray, cfg: TrainConfig, steps: int, seed: int
               ) -> tuple[float, int]:
    """(seconds, padded tokens) of ``steps`` timed training steps on the seed's shuffled rows (one warm-up first)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate("lora"))
    order = np.random.default_rng(seed).permutation(len(texts))
    seconds, tokens = 0.0, 0
    model.train()
    for k in range(steps + 1):
        idx = order[(k * cfg.batch_size) % len(order):][: cfg.batch_size]
        ids, mask = _tokenize(tok, [texts[i] for i in idx], cfg.max_length)
        y = torch.as_tensor(labels[idx].astype("int64"))
        start = time.perf_counter()
        with cfg.autocast():
            logits = _logits(model, ids, mask, None)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if k:  # the first step allocates and warms up
            seconds += time.perf_counter() - start
            tokens += ids.numel()
    return seconds, tokens


@torch.no_grad()
def time_predict(model, tok, texts: list[str], cfg: TrainConfig) -> tuple[float, int]:
    """(seconds, padded tokens) of one prediction batch of the longest test texts."""
    from cltrlib.lengths import length_sorted_batches, token_lengths

    model.eval()
    idx = length_sorted_batches(token_lengths(tok, texts).tolist(), cfg.eval_batch_size)[0]
    ids, mask = _tokenize(tok, [texts[i] for i in idx], cfg.max_length)
    start = time.perf_counter()
    with cfg.autocast():
        _logits(model, ids, mask, None)
    return time.perf_counter() - start, ids.numel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="local")
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per pattern and precision")
    ap.add_argument("--modes", nargs="*", default=["fp32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from cltrlib.lengths import length_sorted_batches, token_lengths

    s = study(args.profile).transfer
    data = load_bilingual(s.dataset)
    max_length = fitted_max_length(args.model, data, s.max_length)[0]
    print(f"{args.model}: fitted max_length {max_length}, torch threads {torch.get_num_threads()}, "
          f"batch {s.batch_size}, grid epochs {s.epochs}")
    patterns = {p: grid_pattern(s, data, p, args.seed, "crosslingual") for p in ("ja0", "ja104") if p in s.patterns}
    for mode in args.modes:
        cfg = TrainConfig(epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, max_length=max_length,
                          bf16=mode == "bf16")
        model, tok, _ = build_classifier(ClassifierConfig(args.model, num_labels=data.num_labels), seed=args.seed)
        per_token = {}
        for name, pat in patterns.items():
            texts, labels = pat.train["text"].tolist(), pat.train["label"].to_numpy()
            sec, tok_n = time_steps(model, tok, texts, labels, cfg, args.steps, args.seed)
            per_token[name] = sec / tok_n
            print(f"  {mode} {name}: {sec / args.steps:.2f} s per step ({tok_n / args.steps:.0f} padded tokens), "
                  f"{1e3 * sec / tok_n:.2f} ms per padded token")
        psec, ptok = time_predict(model, tok, next(iter(patterns.values())).test["text"].tolist(), cfg)
        rate = float(np.mean(list(per_token.values())))
        for name, pat in patterns.items():
            lengths = token_lengths(tok, pat.train["text"].tolist())
            epoch_tokens = padded_tokens_per_epoch(np.asarray(lengths), s.batch_size, max_length, args.seed,
                                                   s.epochs)
            test_len = token_lengths(tok, pat.test["text"].tolist())
            test_tokens = sum(len(b) * min(max_length, int(max(test_len[i] for i in b)))
                              for b in length_sorted_batches(list(test_len), cfg.eval_batch_size))
            predict_s = psec / ptok * test_tokens
            steps = -(-len(pat.train) // s.batch_size)
            per_epoch = [t * rate for t in epoch_tokens]
            print(f"  {mode} {name}: {len(pat.train)} rows, {steps} steps per epoch, ~{np.mean(epoch_tokens):.0f} "
                  f"padded tokens per epoch -> {np.mean(per_epoch):.0f} s per epoch; prediction ~{predict_s:.0f} s; "
                  + ", ".join(f"{e} ep {sum(per_epoch[:e]) + predict_s:.0f} s" for e in (1, 2, 3, 4, 5, 10)
                              if e <= s.epochs))


if __name__ == "__main__":
    main()

"""Batched decoding for code generation: greedy or sampling, stop sequences, finished rows dropped.

Why our own loop rather than ``model.generate``: on a CPU the step cost grows with the
number of rows, and ``generate`` keeps computing rows that already hit a stop sequence
until the whole batch is done. Here a finished row leaves the batch (its KV cache rows
are dropped), so a batch costs what its still-running rows cost. Greedy outputs match
``model.generate`` (tested), and do not depend on batch size or padding (tested).

Sampling draws each row from its own ``torch.Generator`` seeded per sample, so a
sample's text does not depend on which other samples share its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings. ``temperature == 0`` means greedy (then ``n`` should be 1)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 512

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class GenRequest:
    """One sequence to generate: prompt text, whether to add special tokens, and its RNG seed."""

    text: str
    add_special_tokens: bool = True
    seed: int = 0


def _eos_ids(model, tokenizer) -> set[int]:
    ids = set()
    for src in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if src is None:
            continue
        ids.update(src if isinstance(src, list | tuple) else [src])
    return ids


def _select(logits: torch.Tensor, cfg: SamplingConfig, gens: list[torch.Generator]) -> torch.Tensor:
    """Next token per row: argmax, or temperature + nucleus sampling with each row's generator."""
    if cfg.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / cfg.temperature, dim=-1)
    if cfg.top_p < 1.0:
        sorted_p, sorted_i = probs.sort(dim=-1, descending=True)
        cum = sorted_p.cumsum(dim=-1)
        sorted_p[(cum - sorted_p) > cfg.top_p] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, sorted_i, sorted_p)
    out = [torch.multinomial(probs[i].cpu(), 1, generator=gens[i]) for i in range(probs.shape[0])]
    return torch.cat(out).to(logits.device)


def _left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = 1
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def generate_batch(
    model, tokenizer, requests: Sequence[GenRequest], cfg: SamplingConfig, stops: Sequence[str] = ()
) -> list[str]:
    """Generate one continuation per request (one batch). Returns decoded new text, cut at stops."""
    device = next(model.parameters()).device
    seqs = [tokenizer(r.text, add_special_tokens=r.add_special_tokens).input_ids for r in requests]
    ids, mask = _left_pad(seqs, tokenizer.pad_token_id, device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True,
                logits_to_keep=1)
    eos = _eos_ids(model, tokenizer)
    gens = []
    for r in requests:
        g = torch.Generator()
        g.manual_seed(r.seed)
        gens.append(g)
    active = list(range(len(requests)))  # original row index of each cache row
    tokens: list[list[int]] = [[] for _ in requests]
    last_pos = pos[:, -1]
    tail = max((len(s) for s in stops), default=0) + 8
    for _ in range(cfg.max_new_tokens):
        nxt = _select(out.logits[:, -1, :], cfg, [gens[r] for r in active])
        nxt_list = nxt.tolist()
        keep = []
        for j, (row, tok) in enumerate(zip(active, nxt_list, strict=True)):
            if tok in eos:
                continue
            tokens[row].append(tok)
            if stops:
                # A stop string can only newly appear in the last few tokens.
                recent = tokenizer.decode(tokens[row][-tail:], skip_special_tokens=True)
                if any(s in recent for s in stops):
                    continue
            keep.append(j)
        if not keep:
            break
        if len(keep) < len(active):
            idx = torch.tensor(keep, device=device)
            for layer in cache.layers:
                layer.batch_select_indices(idx)
            mask, last_pos, nxt = mask[idx], last_pos[idx], nxt[idx]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        last_pos = last_pos + 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last_pos[:, None],
                    past_key_values=cache, use_cache=True)
    texts = []
    for row in range(len(requests)):
        text = tokenizer.decode(tokens[row], skip_special_tokens=True)
        for s in stops:
            i = text.find(s)
            if i != -1:
                text = text[:i] + s  # keep the stop so callers can see why it ended
                break
        texts.append(text)
    return texts


@torch.inference_mode()
def generate_batch_hf(model, tokenizer, requests: Sequence[GenRequest], cfg: SamplingConfig) -> list[str]:
    """Reference path: transformers' own ``generate`` (greedy only; used to test equivalence)."""
    device = next(model.parameters()).device
    seqs = [tokenizer(r.text, add_special_tokens=r.add_special_tokens).input_ids for r in requests]
    ids, mask = _left_pad(seqs, tokenizer.pad_token_id, device)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return [tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True) for row in out]


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Group request indices by prompt length (longest first) so padding stays small."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, cur = [], []
    for i in order:
        width = max([lengths[j] for j in cur] + [lengths[i]])
        if cur and (len(cur) >= batch_size or (max_batch_tokens and width * (len(cur) + 1) > max_batch_tokens)):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def generate_many(
    model,
    tokenizer,
    requests: Sequence[GenRequest],
    cfg: SamplingConfig,
    stops: Sequence[str] = (),
    batch_size: int = 16,
    on_batch: Callable[[list[int], list[str]], None] | None = None,
    progress: bool = True,
) -> list[str]:
    """Generate for all requests in length-bucketed batches; ``on_batch(indices, texts)`` after each."""
    from tqdm.auto import tqdm

    lengths = [len(tokenizer(r.text, add_special_tokens=r.add_special_tokens).input_ids) for r in requests]
    results: list[str] = [""] * len(requests)
    bar = tqdm(total=len(requests), desc="generate", disable=not progress)
    for batch in plan_batches(lengths, batch_size, max_batch_tokens=batch_size * 512):
        texts = generate_batch(model, tokenizer, [requests[i] for i in batch], cfg, stops)
        for i, t in zip(batch, texts, strict=True):
            results[i] = t
        if on_batch is not None:
            on_batch(batch, texts)
        bar.update(len(batch))
    bar.close()
    return results

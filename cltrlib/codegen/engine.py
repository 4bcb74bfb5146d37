"""Batched decoding for code generation: greedy or sampling, stop sequences, finished rows dropped.

Why our own loop rather than ``model.generate``: on a CPU the step cost grows with the
number of rows, and ``generate`` keeps computing rows that already hit a stop sequence
until the whole batch is done. Here a finished row leaves the batch (its KV cache rows
are dropped), so a batch costs what its still-running rows cost. Greedy outputs match
``model.generate`` (tested), and do not depend on batch size or padding (tested).

How a run is scheduled (``generate_many``): requests are sorted by prompt length and cut
into *decode groups* as large as a KV-cache memory budget allows. A group's prompts are
prefilled in small length buckets (little padding), then placed right-aligned into one
preallocated KV cache and decoded together, so the few rows that run to the token cap
share their steps with many others instead of each small batch paying its own long tail.

Two CPU-specific costs are removed in the decode loop (measured on 2 Zen-1 cores, see
``benchmarks/RESULTS.md``): the KV cache is written in place instead of concatenated
(``DynamicCache`` copies the whole cache every step), and each linear layer computes
``W @ x^T`` instead of ``x @ W^T`` when it sees few rows, which MKL runs 1.2-3.5x faster
(Gemma's 262k-row output layer most of all).

Sampling draws each row from its own ``torch.Generator`` seeded per sample, so a
sample's text does not depend on which other samples share its batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

# A decode group's KV cache (prompt + new tokens, every row) stays under this many bytes.
DEFAULT_KV_CACHE_BYTES = 4 * 2**30
# Prompts are prefilled in buckets of at most this many rows / tokens (padding included).
PREFILL_ROWS = 16
PREFILL_TOKENS = 4096
# A prefix all prompts of a group share (a chat template) is computed once when at least this long.
MIN_SHARED_PREFIX = 16
# Linear layers that see at most this many rows take the row-oriented CPU path.
_ROW_ORIENTED_MAX_ROWS = 256


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


def prompt_ids(tokenizer, request: GenRequest) -> list[int]:
    """The prompt's token ids: special tokens the tokenizer puts *before* the text (BOS) when asked, never an EOS
    after it. Some tokenizers append an end-of-document token to every encoding (llm-jp's post-processor adds
    ``<EOD|LLM-jp>``); a model prompted with it sees a finished document and stops at once."""
    ids = tokenizer(request.text, add_special_tokens=request.add_special_tokens).input_ids
    eos = tokenizer.eos_token_id
    if request.add_special_tokens and eos is not None and len(ids) > 1 and ids[-1] == eos:
        bare = tokenizer(request.text, add_special_tokens=False).input_ids
        if not bare or bare[-1] != eos:  # the EOS was added by the tokenizer, not written in the text
            ids = ids[:-1]
    return ids


# Prompt tokens decoded together with the new ones: enough for a character split over byte-fallback tokens.
DECODE_CONTEXT_TOKENS = 4


def decode_continuation(tokenizer, prompt: Sequence[int], new: Sequence[int]) -> str:
    """Exactly the text the ``new`` tokens add after ``prompt``.

    Decoding the new ids on their own is wrong for decoders that depend on position: Llama-family tokenizers
    (Metaspace + ``Strip(left=1)``, e.g. Llama-2, CodeLlama, ELYZA, Swallow) strip the first space of any decoded
    text, so a completion ``"▁▁▁▁return x"`` would come back as ``"   return x"`` and fail with an
    IndentationError. So the last few prompt tokens are decoded with the new ones and their own text is cut off.
    """
    context = list(prompt[-DECODE_CONTEXT_TOKENS:])
    head = tokenizer.decode(context, skip_special_tokens=True)
    full = tokenizer.decode(context + list(new), skip_special_tokens=True)
    if full.startswith(head):
        return full[len(head):]
    # The prompt ended inside a character the new tokens complete (byte fallback): cut where the texts part.
    return full[len(os.path.commonprefix([head, full])):]


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


# --- the CPU fast paths ------------------------------------------------------------------

def _row_oriented_linear(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``nn.Linear.forward`` as ``(W @ x^T)^T`` when ``x`` has few rows (same maths, faster GEMM on CPU)."""
    rows = x.numel() // x.shape[-1]
    if rows > _ROW_ORIENTED_MAX_ROWS:
        return nn.functional.linear(x, self.weight, self.bias)
    y = (self.weight @ x.reshape(rows, x.shape[-1]).t()).t().contiguous()
    if self.bias is not None:
        y = y + self.bias
    return y.view(*x.shape[:-1], y.shape[-1])


@contextmanager
def _row_oriented_linears(model, device: torch.device) -> Iterator[None]:
    """While decoding on a CPU, route the model's plain ``nn.Linear`` layers through the row-oriented GEMM."""
    layers = [m for m in model.modules() if type(m) is nn.Linear] if device.type == "cpu" else []
    for m in layers:
        m.forward = _row_oriented_linear.__get__(m)
    try:
        yield
    finally:
        for m in layers:
            del m.forward


class _InPlaceKV:
    """Keys and values written in place into a buffer sized for the whole decode.

    ``DynamicLayer`` concatenates, i.e. copies the whole cache, at every step. Here a group's
    cache is allocated once (zeros: left-padding columns must hold finite numbers, since a
    masked NaN would still poison the softmax) and each step writes one column.
    """

    length: int = 0

    def allocate(self, like: torch.Tensor, rows: int, capacity: int) -> None:
        self.dtype, self.device = like.dtype, like.device
        shape = (rows, like.shape[1], capacity, like.shape[3])
        self.kbuf, self.vbuf = like.new_zeros(shape), like.new_zeros(shape)
        self.is_initialized = True

    def place(self, rows: slice, keys: torch.Tensor, values: torch.Tensor, end: int) -> None:
        """Copy one prefill bucket's states into ``rows``, right-aligned to column ``end``."""
        width = keys.shape[-2]
        self.kbuf[rows, :, end - width:end] = keys
        self.vbuf[rows, :, end - width:end] = values

    def _append(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        q = keys.shape[-2]
        if self.length + q > self.kbuf.shape[-2]:
            raise RuntimeError(f"KV cache capacity {self.kbuf.shape[-2]} exceeded; allocate more room")
        self.kbuf[:, :, self.length:self.length + q] = keys
        self.vbuf[:, :, self.length:self.length + q] = values
        self.length += q

    def _first_kept(self) -> int:
        return 0

    def _refresh(self) -> None:
        start = self._first_kept()
        self.keys, self.values = self.kbuf[:, :, start:self.length], self.vbuf[:, :, start:self.length]

    def set_length(self, length: int) -> None:
        self.length = length
        self._refresh()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.kbuf, self.vbuf = self.kbuf[indices], self.vbuf[indices]
        self._refresh()


class _InPlaceLayer(_InPlaceKV, DynamicLayer):
    """Full attention: every cached column is visible."""

    def update(self, key_states, value_states, *args, **kwargs):
        self._append(key_states, value_states)
        self._refresh()
        return self.keys, self.values


class _InPlaceSlidingLayer(_InPlaceKV, DynamicSlidingWindowLayer):
    """Sliding-window attention with the same visible states and mask sizes as ``DynamicSlidingWindowLayer``."""

    def _first_kept(self) -> int:
        return max(0, self.length - (self.sliding_window - 1))

    def set_length(self, length: int) -> None:
        self.cumulative_length = length
        super().set_length(length)

    def update(self, key_states, value_states, *args, **kwargs):
        start = self._first_kept()
        self._append(key_states, value_states)
        self.cumulative_length += key_states.shape[-2]
        self._refresh()
        return self.kbuf[:, :, start:self.length], self.vbuf[:, :, start:self.length]


def _in_place_cache(model) -> DynamicCache:
    cache = DynamicCache(config=model.config)
    cache.layers = [_InPlaceSlidingLayer(sliding_window=layer.sliding_window)
                    if isinstance(layer, DynamicSlidingWindowLayer) else _InPlaceLayer() for layer in cache.layers]
    return cache


GPU_KV_CACHE_SHARE = 0.4  # of a GPU's memory, for the default budget (a 7B model's bf16 weights take 13.5 GB)


def kv_cache_budget(model, requested: int | None) -> int | None:
    """The KV-cache cap of a decode group: as requested, except that the default grows to ``GPU_KV_CACHE_SHARE``
    of the memory of the GPU the model is on (4 GiB would hold only about 11 rows of a 7B model's 700 tokens)."""
    device = next(model.parameters()).device
    if requested != DEFAULT_KV_CACHE_BYTES or device.type != "cuda":
        return requested
    total = torch.cuda.get_device_properties(device).total_memory
    return max(requested, int(GPU_KV_CACHE_SHARE * total))


def kv_bytes_per_token(model) -> int:
    """Bytes of KV cache one token of one row takes (all layers, keys and values)."""
    cfg = model.config.get_text_config(decoder=True)
    heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    dtype = next(model.parameters()).dtype
    return 2 * cfg.num_hidden_layers * heads * head_dim * torch.finfo(dtype).bits // 8


# --- decoding ---------------------------------------------------------------------------

class _Rows:
    """Per-request decoding state: new tokens, stop detection, finished texts."""

    def __init__(self, tokenizer, eos: set[int], stops: Sequence[str], prompts: Sequence[Sequence[int]]):
        self.tokenizer, self.eos, self.stops, self.prompts = tokenizer, eos, tuple(stops), prompts
        self.tail = max((len(s) for s in self.stops), default=0) + 8
        self.tokens: list[list[int]] = [[] for _ in prompts]

    def push(self, row: int, tok: int) -> bool:
        """Record one chosen token; True when the row is finished (EOS or a stop sequence)."""
        if tok in self.eos:
            return True
        self.tokens[row].append(tok)
        if self.stops:
            # A stop string can only newly appear in the last few tokens (decoded after the one before them).
            toks = self.tokens[row]
            before = toks[-self.tail - 1:-self.tail] if len(toks) > self.tail else self.prompts[row][-1:]
            recent = decode_continuation(self.tokenizer, before, toks[-self.tail:])
            return any(s in recent for s in self.stops)
        return False

    def text(self, row: int) -> str:
        return cut_after_stop(decode_continuation(self.tokenizer, self.prompts[row], self.tokens[row]), self.stops)


def cut_after_stop(text: str, stops: Sequence[str]) -> str:
    """Text up to and including the first listed stop found (kept so callers can see why it ended)."""
    for s in stops:
        i = text.find(s)
        if i != -1:
            return text[:i] + s
    return text


def _shared_prefix(seqs: list[list[int]], cache: DynamicCache) -> int:
    """Tokens every prompt of the group starts with (chat template, instruction), if worth sharing.

    Each row keeps at least one token of its own. Not used with sliding-window layers: their
    window is counted in cache columns, and the padding between prefix and suffix would shift it.
    """
    if len(seqs) < 2 or any(layer.is_sliding for layer in cache.layers):
        return 0
    n, limit = 0, min(len(s) for s in seqs) - 1
    while n < limit and all(s[n] == seqs[0][n] for s in seqs):
        n += 1
    return n if n >= MIN_SHARED_PREFIX else 0


def _prefill_group(model, tokenizer, seqs: list[list[int]], cfg: SamplingConfig, gens: list[torch.Generator],
                   device) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """Prefill a group (sorted longest first) bucket by bucket into one in-place cache.

    Row layout in the cache: the shared prefix (computed once), left padding, then the row's
    own tokens right-aligned, so every row's next token lands in the same column. Returns the
    cache, the group's attention mask and each row's first chosen token.
    """
    width = len(seqs[0])
    cache = _in_place_cache(model)
    p = _shared_prefix(seqs, cache)
    prefix = DynamicCache(config=model.config)
    if p:
        model(input_ids=torch.tensor([seqs[0][:p]], device=device), past_key_values=prefix, use_cache=True,
              logits_to_keep=1)
    first = torch.empty(len(seqs), dtype=torch.long, device=device)
    mask = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
    mask[:, :p] = 1
    for bucket in plan_batches([len(s) for s in seqs], PREFILL_ROWS, PREFILL_TOKENS, sort=False):
        rows = slice(bucket[0], bucket[-1] + 1)
        ids, own = _left_pad([s[p:] for s in seqs[rows]], tokenizer.pad_token_id, device)
        mask[rows, width - own.shape[1]:] = own
        part = DynamicCache(config=model.config)
        for layer, pre in zip(part.layers, prefix.layers, strict=True):
            if p:
                layer.update(pre.keys.expand(len(bucket), -1, -1, -1), pre.values.expand(len(bucket), -1, -1, -1))
        out = model(input_ids=ids, attention_mask=torch.cat([own.new_ones((len(bucket), p)), own], dim=-1),
                    position_ids=p + (own.cumsum(-1) - 1).clamp(min=0), past_key_values=part, use_cache=True,
                    logits_to_keep=1)
        first[rows] = _select(out.logits[:, -1, :], cfg, gens[rows])
        for layer, src in zip(cache.layers, part.layers, strict=True):
            if not layer.is_initialized:
                layer.allocate(src.keys, len(seqs), width + cfg.max_new_tokens)
            if p:
                layer.place(rows, src.keys[:, :, :p], src.values[:, :, :p], p)
            layer.place(rows, src.keys[:, :, p:], src.values[:, :, p:], width)
    for layer in cache.layers:
        layer.set_length(width)
    return cache, mask, first


@torch.inference_mode()
def _decode_group(model, tokenizer, seqs: list[list[int]], seeds: list[int], cfg: SamplingConfig,
                  stops: Sequence[str], on_done: Callable[[list[int], list[str]], None]) -> None:
    """Generate for one group of prompts (sorted longest first); ``on_done(rows, texts)`` as rows finish."""
    device = next(model.parameters()).device
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    cache, mask, nxt = _prefill_group(model, tokenizer, seqs, cfg, gens, device)
    last_pos = mask.sum(-1) - 1
    state = _Rows(tokenizer, _eos_ids(model, tokenizer), stops, seqs)
    active = list(range(len(seqs)))  # group row of each cache row
    alive = [True] * len(seqs)
    with _row_oriented_linears(model, device):
        for step in range(cfg.max_new_tokens):
            done = []
            for j, tok in enumerate(nxt.tolist()):
                row = active[j]
                if alive[j] and (state.push(row, tok) or step == cfg.max_new_tokens - 1):
                    alive[j] = False
                    done.append(row)
            if done:
                on_done(done, [state.text(r) for r in done])
            n_alive = sum(alive)
            if n_alive == 0:
                break
            # Finished rows keep riding along until enough of them pay for copying the cache.
            if len(active) - n_alive >= max(1, len(active) // 8):
                idx = torch.tensor([j for j, a in enumerate(alive) if a], device=device)
                for layer in cache.layers:
                    layer.batch_select_indices(idx)
                mask, last_pos, nxt = mask[idx], last_pos[idx], nxt[idx]
                active = [active[j] for j in idx.tolist()]
                alive = [True] * len(active)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            last_pos = last_pos + 1
            out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last_pos[:, None],
                        past_key_values=cache, use_cache=True)
            nxt = _select(out.logits[:, -1, :], cfg, [gens[r] for r in active])


def generate_batch(
    model, tokenizer, requests: Sequence[GenRequest], cfg: SamplingConfig, stops: Sequence[str] = ()
) -> list[str]:
    """Generate one continuation per request, all decoded together. Returns new text, cut at stops."""
    texts: list[str] = [""] * len(requests)

    def keep(indices: list[int], out: list[str]) -> None:
        for i, t in zip(indices, out, strict=True):
            texts[i] = t

    generate_many(model, tokenizer, requests, cfg, stops, batch_size=len(requests) or 1, on_batch=keep,
                  progress=False, kv_cache_bytes=None)
    return texts


@torch.inference_mode()
def generate_batch_hf(model, tokenizer, requests: Sequence[GenRequest], cfg: SamplingConfig,
                      stops: Sequence[str] = ()) -> list[str]:
    """Reference path: transformers' own ``generate`` (greedy only), one batch; with ``stops``, its
    ``stop_strings`` and the same cut as ours. Used to test equivalence and as the benchmark baseline."""
    device = next(model.parameters()).device
    seqs = [prompt_ids(tokenizer, r) for r in requests]
    ids, mask = _left_pad(seqs, tokenizer.pad_token_id, device)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id, stop_strings=list(stops) or None,
                         tokenizer=tokenizer if stops else None)
    return [cut_after_stop(decode_continuation(tokenizer, seq, row[ids.shape[1]:].tolist()), stops)
            for seq, row in zip(seqs, out, strict=True)]


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None,
                 reserve: int = 0, sort: bool = True) -> list[list[int]]:
    """Group request indices by length (longest first) so padding stays small.

    A batch holds at most ``batch_size`` rows and, with ``max_batch_tokens``, at most that many
    tokens counting padding and ``reserve`` more tokens per row (room for generated tokens).
    ``sort=False`` keeps the given order (already sorted).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if sort else list(range(len(lengths)))
    batches, cur = [], []
    for i in order:
        width = max([lengths[j] for j in cur] + [lengths[i]]) + reserve
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
    kv_cache_bytes: int | None = DEFAULT_KV_CACHE_BYTES,
) -> list[str]:
    """Generate for all requests in decode groups of at most ``batch_size`` rows.

    ``on_batch(indices, texts)`` is called as requests finish (so a caller can store them at
    once); ``kv_cache_bytes`` caps a group's KV cache (``None``: no cap).
    """
    from cltrlib.progress import tqdm

    seqs = [prompt_ids(tokenizer, r) for r in requests]
    kv_cache_bytes = kv_cache_budget(model, kv_cache_bytes)
    budget = kv_cache_bytes // kv_bytes_per_token(model) if kv_cache_bytes else None
    results: list[str] = [""] * len(requests)
    bar = tqdm(total=len(requests), desc="generate", disable=not progress)
    for group in plan_batches([len(s) for s in seqs], batch_size, budget, reserve=cfg.max_new_tokens):

        def done(rows: list[int], texts: list[str], group=group) -> None:
            indices = [group[r] for r in rows]
            for i, t in zip(indices, texts, strict=True):
                results[i] = t
            if on_batch is not None:
                on_batch(indices, texts)
            bar.update(len(rows))

        _decode_group(model, tokenizer, [seqs[i] for i in group], [requests[i].seed for i in group], cfg, stops, done)
    bar.close()
    return results

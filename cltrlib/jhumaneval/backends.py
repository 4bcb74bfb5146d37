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


# One demonstration for base (non-chat) causal models, so they continue in the target language.
ONE_SHOT = {"ja": ("Return the sum of the list.", "リストの合計を返す。")}


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


class OpenAIChatTranslator(Translator):
    """Any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, llama.cpp server, ...)."""

    batch_size = 20
    system_template = TRANSLATE_SYSTEM
    kind = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY, glossary_lines: Sequence[str] = (), temperature: float = 0.0):
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.policy = policy
        self.glossary_lines = list(glossary_lines)
        self.temperature = temperature
        prompt_id = hashlib.sha256((self.system_template + "\n".join(self.glossary_lines)).encode()).hexdigest()[:8]
        self.name = f"{self.kind}:{model}:{prompt_id}"

    def _system(self, src: str, tgt: str) -> str:
        sys_prompt = self.system_template.format(src=LANG_NAMES.get(src, src), tgt=LANG_NAMES.get(tgt, tgt))
        if self.glossary_lines:
            sys_prompt += "\nUse these renderings:\n" + "\n".join(self.glossary_lines)
        return sys_prompt

    def _user(self, texts: Sequence[str]) -> str:
        return json.dumps(list(texts), ensure_ascii=False)

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        url = f"{self.base_url}/chat/completions"
        payload = {"model": self.model, "temperature": self.temperature,
                   "messages": [{"role": "system", "content": self._system(src, tgt)},
                                {"role": "user", "content": self._user(texts)}]}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        data = post_json(url, payload, headers, self.policy, what=f"chat completion ({self.model})")
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise TranslationError(f"chat completion response from {url} is malformed: "
                                   f"no choices[0].message.content in {str(data)[:200]}") from None
        if not isinstance(content, str):
            raise TranslationError(f"chat completion response from {url}: content is not a string")
        return _parse_json_array(content, len(texts), f"chat completion from {url}")


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


class HFTranslator(Translator):
    """A local Hugging Face model: seq2seq (Marian, NLLB, T5, ...) or causal (instruct or base).

    Causal models get the chat template when the tokenizer has one, else a one-shot
    "English: ... / Japanese:" completion cut at the first newline. Greedy decoding, so a
    rebuild is deterministic and the cache is valid.
    """

    batch_size = 8

    def __init__(self, model: str, max_new_tokens: int = 256, device: str = "cpu", prefix: str = "",
                 batch_size: int = 8):
        from transformers import AutoConfig

        from cltrlib.models import model_revision, resolve_model_path

        self.path = resolve_model_path(model)
        cfg = AutoConfig.from_pretrained(self.path)
        self.seq2seq = bool(getattr(cfg, "is_encoder_decoder", False))
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.prefix = prefix
        self.batch_size = batch_size
        self.name = f"hf:{model}:{model_revision(model)}:{'s2s' if self.seq2seq else 'causal'}:{max_new_tokens}:{prefix}"
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
    def model(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

            cls = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
            self._model = cls.from_pretrained(self.path, dtype=torch.float32).to(self.device).eval()
        return self._model

    def _prompt(self, text: str, src: str, tgt: str) -> str:
        s, t = LANG_NAMES.get(src, src), LANG_NAMES.get(tgt, tgt)
        if self.seq2seq:
            return self.prefix + text
        if getattr(self.tokenizer, "chat_template", None):
            msgs = [{"role": "user", "content": f"Translate this {s} text to {t}. Answer with the translation only.\n\n"
                                                 f"{text}"}]
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        shot = ONE_SHOT.get(tgt)
        demo = f"{s}: {shot[0]}\n{t}: {shot[1]}\n" if shot and src == "en" else ""
        return f"{demo}{s}: {text}\n{t}:"

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        import torch

        prompts = [self._prompt(t, src, tgt) for t in texts]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=self.seq2seq or
                             not getattr(self.tokenizer, "chat_template", None)).to(self.device)
        plain_causal = not self.seq2seq and not getattr(self.tokenizer, "chat_template", None)
        stop = {"stop_strings": ["\n"], "tokenizer": self.tokenizer} if plain_causal else {}  # one line = done
        with torch.no_grad():
            gen = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
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

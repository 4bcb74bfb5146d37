"""Tiny random-weight stand-ins of the papers' hub models, and a name → local folder map.

Why stand-ins: the papers' models (Llama-2-7B, CodeLlama, ELYZA, Swallow, phi-1, llm-jp, OpenCALM, mBERT,
Japanese BERT) are gigabytes each and live on a model hub this suite cannot reach in CI. The ``rehearsal``
profile still has to run every code path those models take: the Llama tokenizer's byte fallback and its
``Strip`` decoder step, the Llama-2 chat template, llm-jp's appended ``<EOD|LLM-jp>``, phi-1's whitespace
tokens, BERT's MeCab word splitting, embedding matrices larger than the tokenizer, ... So each paper model
gets a *recipe*: the same architecture class and the same tokenizer class and pipeline as the real one,
with a vocabulary of ~1-2k entries trained here on local text (HumanEval, JHumanEval, SIB-200, PAWS-X) and
2-layer random weights. Scores of stand-ins mean nothing; the point is that nothing crashes, mis-decodes or
mis-pairs when the real models are swapped in.

Stand-ins are built once under ``config.cache_dir() / "standins" / <name>`` (seconds for the whole set) and
rebuilt when the recipe, the training text or the libraries that shape them change (``standin_revision``).

Enabling them: ``use_standins(True)`` (for the study to call under the ``rehearsal`` profile) or the
environment variable ``CLTR_STANDINS=1``; ``use_standins`` sets that variable, so papermill kernels and
subprocesses started afterwards inherit the choice.

The model map (``CLTR_MODEL_MAP``) is the user-facing sibling: a JSON file mapping model names or hub ids to
local folders, for machines that hold real copies of hub models but cannot reach the hub. It wins over
stand-ins, so a user can rehearse with some real models and stand-ins for the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cltrlib import config
from cltrlib.models import EMBEDDED_MODELS, LLAMA2_CHAT_TEMPLATE, PAPER_MODELS

if TYPE_CHECKING:  # heavy imports stay lazy: resolving a name must not import torch
    from tokenizers.pre_tokenizers import PreTokenizer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The version in every stand-in revision; bump it when stand-ins change meaning (the fingerprint beside it
# already changes with any recipe, size, training text, library version or edit of this file).
RECIPE_VERSION = "1"
STANDINS_ENV = "CLTR_STANDINS"
MODEL_MAP_ENV = "CLTR_MODEL_MAP"
SOURCE_FILE = "cltr_source.json"
SEED = 20240601  # fixed so a build is byte-for-byte repeatable; each model adds crc32(name)

# One size for every stand-in, small enough that the whole set builds in seconds. Decoders get 2048 positions
# (phi-1, llm-jp and OpenCALM have 2048): a ~1.5k-piece vocabulary spends up to ~660 tokens on the longest
# HumanEval prompt, and a 512-token completion must still fit (GPT-2 and BERT position tables are learned, so
# running past them is an index error, not a quality loss). BERTs keep the real 512.
SIZES: dict[str, int] = {"hidden": 64, "layers": 2, "heads": 4, "intermediate": 128, "positions": 2048,
                         "bert_positions": 512}

# How much local text trains the vocabularies: enough for realistic pieces, small enough to train in ~1 s.
CORPUS_ROWS = {"sib200": 200, "pawsx": 300}

# Always part of the corpus, so every vocabulary has some English and Japanese even without the data mirror.
_SEED_TEXT_EN = (
    "Write a function that returns the sum of a list of integers. The quick brown fox jumps over the lazy dog.",
    "Tokyo is the capital of Japan. Researchers study how knowledge transfers between languages.",
)
_SEED_TEXT_JA = (
    "与えられた整数のリストの合計を返す関数を書いてください。今日は天気が良いので、公園を散歩しました。",
    "東京は日本の首都です。研究者は言語の間で知識がどのように転移するかを調べています。",
)


CODELLAMA_INFILL_TOKENS = ("▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>")
LLMJP_SPECIALS = ("<unk|LLM-jp>", "<s|LLM-jp>", "</s|LLM-jp>", "<mask|LLM-jp>", "<pad|LLM-jp>", "<CLS|LLM-jp>",
                  "<SEP|LLM-jp>", "<EOD|LLM-jp>")
LLMJP_SPACE_RUN = 24  # the real vocabulary holds "▁" * 1..24 right after its special tokens
CODEGEN_SPACE_RUNS = range(31, 1, -1)  # phi-1 / CodeGen add runs of 31..2 spaces and 9..2 tabs as tokens
CODEGEN_TAB_RUNS = range(9, 1, -1)
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class StandinUnavailable(ValueError):
    """A name that has no stand-in (an API model, or a name the registry does not know)."""


@dataclass(frozen=True)
class Recipe:
    """How one paper model is imitated.

    ``tokenizer`` names a builder below; the builders reproduce the real tokenizer's class and pipeline (see the
    module docstring and each builder for what was checked against the real files). ``vocab`` is the size of the
    trained vocabulary, before CodeLlama's infill tokens, phi-1's whitespace tokens or a Japanese extension;
    ``extend_ja`` is the number of Japanese pieces appended to it, the way Swallow and ELYZA-fast extend Llama-2's
    32k vocabulary while keeping its ids. ``pad_vocab_to`` rounds the embedding matrix up the way the real
    checkpoints do (phi-1: 51200 rows for ~50.3k tokens), so code that sizes things by ``config.vocab_size``
    meets ids the tokenizer cannot decode.
    """

    name: str
    architecture: str
    tokenizer: str
    vocab: int
    chat_template: bool = False
    infill_tokens: bool = False
    extend_ja: int = 0
    rope_theta: float = 10000.0
    pad_vocab_to: int = 1
    real: str = ""

    @property
    def hub_id(self) -> str:
        return PAPER_MODELS[self.name].hub_id


_LLAMA_REAL = "LlamaTokenizer, BPE + byte fallback, 32000 pieces"
RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("llama-2-7b-hf", "LlamaForCausalLM", "llama", 1536, real=_LLAMA_REAL + ", no chat template"),
    Recipe("codellama-7b-instruct-hf", "LlamaForCausalLM", "llama", 1536, chat_template=True, infill_tokens=True,
           rope_theta=1_000_000.0, real="LlamaTokenizer, 32016 ids incl. infill tokens, Llama-2 chat template"),
    Recipe("elyza-japanese-llama-2-7b-instruct", "LlamaForCausalLM", "llama", 1536, chat_template=True,
           real=_LLAMA_REAL + " (Llama-2's vocabulary), Llama-2 chat format"),
    Recipe("elyza-japanese-llama-2-7b-fast-instruct", "LlamaForCausalLM", "llama", 1536, chat_template=True,
           extend_ja=512, real="LlamaTokenizer, Llama-2 vocabulary extended with Japanese to 45043"),
    Recipe("elyza-japanese-codellama-7b-instruct", "LlamaForCausalLM", "llama", 1536, chat_template=True,
           infill_tokens=True, rope_theta=1_000_000.0, real="CodeLlama's tokenizer, Llama-2 chat format"),
    Recipe("swallow-7b-instruct-hf", "LlamaForCausalLM", "llama", 1536, chat_template=True, extend_ja=512,
           real="LlamaTokenizer, Llama-2 vocabulary extended with Japanese to 43176"),
    Recipe("japanese-stablelm-instruct-beta-7b", "LlamaForCausalLM", "llama", 1536, chat_template=True,
           real=_LLAMA_REAL + " (Llama-2's vocabulary), Llama-2 chat format"),
    Recipe("phi-1", "PhiForCausalLM", "codegen", 1536, pad_vocab_to=64,
           real="CodeGenTokenizer (GPT-2 byte-level BPE + whitespace-run tokens), 51200-row embedding"),
    Recipe("llm-jp-1.3b-v1.0", "GPT2LMHeadModel", "llmjp", 1536, pad_vocab_to=128,
           real="PreTrainedTokenizerFast, Unigram + byte fallback (llm-jp-tokenizer v2.1 50k), appends EOD"),
    Recipe("open-calm-7b", "GPTNeoXForCausalLM", "neox", 1536, pad_vocab_to=128,
           real="GPTNeoXTokenizerFast, byte-level BPE, 52000 pieces"),
    Recipe("bert-base-multilingual-cased", "BertForMaskedLM", "mbert", 2048,
           real="BertTokenizer(Fast), cased WordPiece, 119547 pieces"),
    Recipe("bert-base-japanese-v2", "BertForMaskedLM", "jbert", 2048,
           real="BertJapaneseTokenizer, MeCab (fugashi + unidic-lite) then WordPiece, 32768 pieces"),
]}
_BY_HUB_ID = {r.hub_id: r.name for r in RECIPES.values()}


# --------------------------------------------------------------------------------------------- enabling

def use_standins(enabled: bool) -> None:
    """Resolve paper models to stand-ins (True) or to their hub ids / mapped folders (False).

    Stored in the environment (``CLTR_STANDINS``), not a module flag, so kernels and subprocesses started
    afterwards resolve the same way. Clears ``cltrlib.models``' loaded-model cache, whose keys are names: a
    model loaded before the switch must not answer for the other kind.
    """
    if enabled:
        os.environ[STANDINS_ENV] = "1"
    else:
        os.environ.pop(STANDINS_ENV, None)
    from cltrlib.models import clear_cache

    clear_cache()


def standins_enabled() -> bool:
    """True when ``CLTR_STANDINS`` is set to 1/true/yes/on."""
    return os.environ.get(STANDINS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def recipe(name_or_hub_id: str) -> Recipe:
    """The recipe of a paper model, by registry name or hub id; API models and unknown names raise."""
    name = _BY_HUB_ID.get(name_or_hub_id, name_or_hub_id)
    if name in RECIPES:
        return RECIPES[name]
    spec = PAPER_MODELS.get(name)
    if spec is not None and spec.hub_id.startswith("openai:"):
        raise StandinUnavailable(f"{name} is an API model ({spec.hub_id}): it has no weights to imitate, so there "
                                 "is no stand-in; runs that need it must skip it offline")
    raise StandinUnavailable(f"no stand-in recipe for {name_or_hub_id!r}; recipes exist for {sorted(RECIPES)}")


def has_standin(name_or_hub_id: str) -> bool:
    """Whether ``name_or_hub_id`` (registry name or hub id) has a recipe."""
    return _BY_HUB_ID.get(name_or_hub_id, name_or_hub_id) in RECIPES


def active_standin(name_or_hub_id: str) -> str | None:
    """Registry name of the stand-in that ``name_or_hub_id`` resolves to now (None: stand-ins off or no recipe)."""
    if not standins_enabled() or not has_standin(name_or_hub_id):
        return None
    return _BY_HUB_ID.get(name_or_hub_id, name_or_hub_id)


# --------------------------------------------------------------------------------------------- model map

def model_map() -> dict[str, str]:
    """The ``CLTR_MODEL_MAP`` file as {name or hub id: absolute folder}; {} when the variable is unset.

    The file is one JSON object of strings, e.g. ``{"llama-2-7b-hf": "/models/Llama-2-7b-hf",
    "microsoft/phi-1": "phi-1"}``; relative folders are taken relative to the file, so a map can travel with
    the models it describes. A malformed file is an error naming it, never silently ignored: the user asked
    for local models, and falling through to the hub would hide the mistake.
    """
    env = os.environ.get(MODEL_MAP_ENV, "").strip()
    if not env:
        return {}
    path = Path(env).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{MODEL_MAP_ENV}={env}: no such file")
    stat = path.stat()
    return dict(_read_model_map(str(path), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=8)
def _read_model_map(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """Parsed map, cached per file version (mtime and size are part of the key so an edit is seen)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{MODEL_MAP_ENV} file {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{MODEL_MAP_ENV} file {path}: expected one JSON object mapping model names or hub ids "
                         'to folders, e.g. {"llama-2-7b-hf": "/models/Llama-2-7b-hf"}')
    base = Path(path).parent
    return tuple((k, str((base / Path(v).expanduser()).resolve())) for k, v in data.items())


def mapped_folder(name_or_hub_id: str) -> str | None:
    """The user's local folder for a model, looked up by the name given and by its registry alias (a registry
    name's hub id, or a hub id's registry name), so either spelling in the map serves both; None if unmapped."""
    entries = model_map()
    if not entries:
        return None
    keys = [name_or_hub_id]
    spec = PAPER_MODELS.get(name_or_hub_id) or EMBEDDED_MODELS.get(name_or_hub_id)
    if spec is not None:
        keys.append(spec.hub_id)
    keys += [n for n, s in {**PAPER_MODELS, **EMBEDDED_MODELS}.items() if s.hub_id == name_or_hub_id]
    for key in keys:
        if key in entries:
            folder = entries[key]
            if not Path(folder).is_dir():
                raise FileNotFoundError(f"{MODEL_MAP_ENV} maps {key!r} to {folder}, which is not a folder")
            return folder
    return None


# --------------------------------------------------------------------------------------------- corpus

@dataclass(frozen=True)
class Corpus:
    """The local text the vocabularies are trained on. ``code`` holds whole programs (newlines kept);
    ``en``/``ja`` hold sentences. ``sources`` records what was found, since a missing data set changes the
    vocabulary and therefore the revision."""

    code: tuple[str, ...]
    en: tuple[str, ...]
    ja: tuple[str, ...]
    sources: tuple[str, ...]

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for part in (self.code, self.en, self.ja, self.sources):
            h.update(json.dumps(part, ensure_ascii=False).encode())
        return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def training_corpus() -> Corpus:
    """HumanEval prompts and solutions, JHumanEval prompts, and the first SIB-200 / PAWS-X rows in English and
    Japanese, read through the project's loaders (no hub). A data set that is not on this machine is left out."""
    from cltrlib.data import DataNotFoundError, load_humaneval, load_jhumaneval
    from cltrlib.data.multilingual import load_pawsx, load_sib200

    code: list[str] = [p.prompt + p.canonical_solution for p in load_humaneval()]
    en, ja = list(_SEED_TEXT_EN), list(_SEED_TEXT_JA)
    sources = ["humaneval"]
    try:
        code += [p.prompt for p in load_jhumaneval()]
        sources.append("jhumaneval")
    except DataNotFoundError:
        pass
    for lang, bucket in (("en", en), ("ja", ja)):
        try:
            bucket += load_sib200(lang, "train")["text"].head(CORPUS_ROWS["sib200"]).tolist()
            sources.append(f"sib200-{lang}")
        except DataNotFoundError:
            pass
        try:
            bucket += load_pawsx(lang, "dev")["sentence1"].head(CORPUS_ROWS["pawsx"]).tolist()
            sources.append(f"pawsx-{lang}")
        except DataNotFoundError:
            pass
    # Paper C's answer words after its prompts' last words: a real vocabulary has each as one word piece
    # ("▁geography"); without them a tiny vocabulary spells them letter by letter and two share a first token.
    from cltrlib.embeddings.tasks import TASKS, label_words

    for task in TASKS:
        try:
            en += [f"The answer is {w}." for w in label_words(task)] * 20
            sources.append(f"answers-{task}")
        except DataNotFoundError:
            pass
    return Corpus(tuple(code), tuple(en), tuple(ja), tuple(sources))


def _lines(texts: Iterable[str]) -> list[str]:
    """Non-empty lines: SentencePiece-style vocabularies never contain a newline piece (it is byte-encoded)."""
    return [line for text in texts for line in text.split("\n") if line.strip()]


def _common_chars_only(texts: Iterable[str], limit: int, always: Iterable[str] = ()) -> list[str]:
    """Training text cut at every character outside the ``limit`` most frequent ones (plus ``always``).

    Small vocabularies cannot hold every kanji; the rare ones are left to byte fallback or [UNK] at run time, as
    in the real vocabularies. The trainers' own ``limit_alphabet`` breaks ties between equally frequent
    characters in hash order, which made builds differ between processes; ranking here by (count, code point)
    keeps a build byte-for-byte repeatable. Cutting rather than deleting keeps the neighbours of a dropped
    character from being learned as adjacent."""
    texts = list(texts)
    counts = Counter(ch for text in texts for ch in text)
    keep = {ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]} | set(always)
    out: list[str] = []
    for text in texts:
        part: list[str] = []
        for ch in text:
            if ch in keep:
                part.append(ch)
            elif part:
                out.append("".join(part))
                part = []
        if part:
            out.append("".join(part))
    return [t for t in out if t.strip()]


# --------------------------------------------------------------------------------------------- revision / cache

@lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    """Versions that shape a build (trainer output, weight init, file format)."""
    return {dist: importlib.metadata.version(dist) for dist in ("tokenizers", "transformers", "torch")}


@lru_cache(maxsize=1)
def _builder_digest() -> str:
    """Hash of this module's source: a change to any builder rebuilds the stand-ins without anyone having to
    remember to bump ``RECIPE_VERSION`` (stand-ins are cheap to rebuild and their results cheap to redo)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def standin_revision(name_or_hub_id: str) -> str:
    """``standin:<RECIPE_VERSION>-<fingerprint>``: what result stores record as the model's revision, so results
    of a stand-in never mix with a real model's (``hub:main``, ``local:...``) or with an older stand-in's. The
    fingerprint covers the recipe, the sizes, the training text, the library versions and the builders' code."""
    r = recipe(name_or_hub_id)
    payload = {"version": RECIPE_VERSION, "recipe": asdict(r), "sizes": SIZES, "seed": SEED,
               "corpus": training_corpus().fingerprint(), "libraries": dict(_library_versions()),
               "builders": _builder_digest()}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"standin:{RECIPE_VERSION}-{digest}"


def standins_root() -> Path:
    """All stand-ins live here: under the cache, never in the repository (``CLTR_CACHE_DIR`` moves it)."""
    return config.cache_dir() / "standins"


def standin_dir(name_or_hub_id: str) -> Path:
    """Where the stand-in lives (built or not)."""
    return standins_root() / recipe(name_or_hub_id).name


def _built_revision(folder: Path) -> str | None:
    try:
        return json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8")).get("revision")
    except (OSError, ValueError):
        return None


_build_lock = threading.Lock()


@contextlib.contextmanager
def _interprocess_lock(path: Path) -> Iterator[None]:
    """Serialise builds of one stand-in across processes (parallel notebook kernels), where ``fcntl`` exists."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the rename at the end still keeps readers safe
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prepare_standin(name_or_hub_id: str, force: bool = False) -> Path:
    """Build the stand-in once (or again when its revision changed) and return its folder.

    The folder is an ordinary Hugging Face folder: ``AutoTokenizer``, ``AutoModelForCausalLM`` (decoders) and
    ``AutoModelForSequenceClassification`` (all) load it, and ``cltr_source.json`` says which hub model it
    imitates. Written to a temporary folder and renamed at the end, as ``models.prepare_embedded`` does, so an
    interrupted build never leaves a half-written model that later loads would trust.
    """
    r = recipe(name_or_hub_id)
    out = standin_dir(r.name)
    revision = standin_revision(r.name)
    if not force and _built_revision(out) == revision:
        return out
    with _build_lock, _interprocess_lock(standins_root() / f".{r.name}.lock"):
        if not force and _built_revision(out) == revision:  # another thread or process built it meanwhile
            return out
        tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            _build(r, tmp, revision)
            if out.exists():
                stale = out.with_name(f"{out.name}.stale-{os.getpid()}")
                os.replace(out, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def prepare_all(names: Iterable[str] | None = None, force: bool = False) -> dict[str, Path]:
    """Build every stand-in (or ``names``); returns {name: folder}."""
    return {n: prepare_standin(n, force=force) for n in (names or RECIPES)}


def describe(names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per stand-in (building any that are missing): name, hub id, architecture, tokenizer class,
    vocabulary, parameters, seconds the build took, MB on disk. For reports and the README."""
    rows = []
    for name in names or RECIPES:
        folder = prepare_standin(name)
        meta = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        rows.append({k: meta[k] for k in ("name", "standin_of", "architecture", "tokenizer_class", "tokenizer_size",
                                          "embedding_rows", "params", "build_seconds")}
                    | {"disk_mb": round(size / 2**20, 2)})
    return rows


# --------------------------------------------------------------------------------------------- building

def _build(r: Recipe, folder: Path, revision: str) -> None:
    import torch
    from transformers.utils import logging as hf_logging

    started = time.perf_counter()
    corpus = training_corpus()
    tok = _TOKENIZER_BUILDERS[r.tokenizer](r, corpus, folder)
    # Padded checkpoints have rows no token maps to (phi-1: 51200 rows, ~50.3k tokens): keep at least one.
    rows = _round_up(len(tok) + 1, r.pad_vocab_to) if r.pad_vocab_to > 1 else len(tok)
    torch.manual_seed(SEED + zlib.crc32(r.name.encode()))
    model = _model(r, tok, rows)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar per tiny model is noise in notebook output
    try:
        model.save_pretrained(folder)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    tok.save_pretrained(folder)
    if r.tokenizer == "llmjp":
        _set_tokenizer_class(folder, "PreTrainedTokenizerFast")
    meta = {
        "name": r.name, "standin_of": r.hub_id, "revision": revision, "recipe": asdict(r),
        "architecture": type(model).__name__, "tokenizer_class": type(tok).__name__,
        "tokenizer_size": len(tok), "embedding_rows": rows, "params": sum(p.numel() for p in model.parameters()),
        "corpus_sources": list(corpus.sources), "libraries": dict(_library_versions()),
        "build_seconds": round(time.perf_counter() - started, 2),
        "note": "random weights: a stand-in for rehearsing code paths, not for scores",
    }
    (folder / SOURCE_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _set_tokenizer_class(folder: Path, name: str) -> None:
    """Write the class name the real tokenizer_config.json names (transformers 5 saves its own alias)."""
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = name
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _model(r: Recipe, tok: PreTrainedTokenizerBase, rows: int) -> PreTrainedModel:
    """A randomly initialised model of the recipe's class with the shared tiny sizes."""
    import transformers

    s = SIZES
    common = {"vocab_size": rows, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
              "pad_token_id": tok.pad_token_id}
    if r.architecture == "LlamaForCausalLM":
        cfg = transformers.LlamaConfig(
            hidden_size=s["hidden"], intermediate_size=s["intermediate"], num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"], num_key_value_heads=s["heads"], max_position_embeddings=s["positions"],
            rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": r.rope_theta}, **common)
    elif r.architecture == "PhiForCausalLM":
        cfg = transformers.PhiConfig(
            hidden_size=s["hidden"], intermediate_size=s["intermediate"], num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"], max_position_embeddings=s["positions"], hidden_act="gelu_new",
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}, **common)
    elif r.architecture == "GPT2LMHeadModel":
        cfg = transformers.GPT2Config(n_embd=s["hidden"], n_inner=s["intermediate"], n_layer=s["layers"],
                                      n_head=s["heads"], n_positions=s["positions"], activation_function="gelu",
                                      **common)
    elif r.architecture == "GPTNeoXForCausalLM":
        cfg = transformers.GPTNeoXConfig(
            hidden_size=s["hidden"], intermediate_size=s["intermediate"], num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"], max_position_embeddings=s["positions"], tie_word_embeddings=False,
            **common)
    elif r.architecture == "BertForMaskedLM":
        cfg = transformers.BertConfig(
            hidden_size=s["hidden"], intermediate_size=s["intermediate"], num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"], max_position_embeddings=s["bert_positions"], **common)
    else:  # pragma: no cover - guarded by the recipe table
        raise ValueError(f"no builder for architecture {r.architecture}")
    return getattr(transformers, r.architecture)(cfg).eval()


# Tokenizer builders. Each returns a transformers tokenizer of the real model's class; the facts each one
# reproduces are listed in its docstring.

def _spm_words() -> PreTokenizer:
    """Training-time word splitter for SentencePiece-style vocabularies: spaces become ``▁`` (one prepended at
    the start) and each word keeps the run of ``▁`` before it."""
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
        pre_tokenizers.Split(Regex("▁*[^▁]+|▁+"), behavior="isolated"),
    ])


def _bpe_train(lines: list[str], vocab_size: int, specials: list[str], alphabet: int) -> tuple[dict, list]:
    """Train SentencePiece-style BPE pieces (``▁`` marks a space; a run of spaces stays with the word after it,
    as in ``▁▁▁▁return``) over the ``alphabet`` most frequent characters; return (vocab, merges)."""
    from tokenizers import Tokenizer, models, trainers

    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.pre_tokenizer = _spm_words()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    t.train_from_iterator(_common_chars_only(lines, alphabet), trainer)
    model = json.loads(t.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


@lru_cache(maxsize=4)
def _llama_pieces(corpus_fp: str, vocab: int, extend_ja: int) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(pieces in id order, merges) of the Llama-family vocabulary: ``<unk> <s> </s>``, the 256 byte tokens
    ``<0x00>``..``<0xFF>`` (ids 3..258, as in Llama-2), then trained pieces; with ``extend_ja`` Japanese pieces
    appended after them, so an extended vocabulary keeps every base id (as Swallow's and ELYZA-fast's do).
    Cached because six recipes share the base vocabulary."""
    corpus = training_corpus()
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    learned, merges = _bpe_train(_lines(corpus.code + corpus.en + corpus.ja), vocab - 256,
                                 ["<unk>", "<s>", "</s>"], alphabet=300)
    pieces += [p for p, _ in sorted(learned.items(), key=lambda kv: kv[1]) if p not in pieces]
    if extend_ja:
        # Japanese merges in the order learned (most frequent first), each with the pieces it needs, until the
        # budget is spent: every added piece is reachable, and the budget goes to frequent words and characters.
        ja_text = list(corpus.ja) + [line for line in _lines(corpus.code) if _has_japanese(line)]
        _, ja_merges = _bpe_train(_lines(ja_text), extend_ja * 2 + 600, ["<unk>"], alphabet=600)
        seen, have = set(pieces), set(merges)
        budget = extend_ja
        for left, right in ja_merges:
            new_pieces = [p for p in dict.fromkeys((left, right, left + right)) if p not in seen]
            if len(new_pieces) > budget:
                break
            pieces += new_pieces
            seen.update(new_pieces)
            budget -= len(new_pieces)
            if (left, right) not in have:
                merges.append((left, right))
                have.add((left, right))
    return tuple(pieces), tuple(merges)


def _has_japanese(text: str) -> bool:
    """Any hiragana, katakana or CJK ideograph (the corpus mixes JHumanEval's Japanese with HumanEval's English)."""
    return any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text)


def _llama_tokenizer(r: Recipe, corpus: Corpus, folder: Path) -> PreTrainedTokenizerBase:
    """transformers' ``LlamaTokenizer`` (in 5.x the tokenizers-backed class, as the real repos load): BPE with
    ``byte_fallback=True`` over ``<0x00>``..``<0xFF>``, Metaspace pre-tokenizer (prepend_scheme "first"), decoder
    Replace("▁", " ") + ByteFallback + Fuse + Strip(left=1), BOS added and EOS not (add_bos_token true,
    add_eos_token false in the real tokenizer_config.json), ``add_prefix_space`` left unset (None, as Llama-2's
    config leaves it, which the class reads as True). Instruct/chat models carry the Llama-2 chat template;
    CodeLlama's add its infill tokens."""
    from transformers import LlamaTokenizer

    pieces, merges = _llama_pieces(corpus.fingerprint(), r.vocab, r.extend_ja)
    tok = LlamaTokenizer(vocab={p: i for i, p in enumerate(pieces)}, merges=list(merges), add_bos_token=True,
                         add_eos_token=False, legacy=False)
    if r.infill_tokens:
        tok.add_special_tokens({"additional_special_tokens": list(CODELLAMA_INFILL_TOKENS)})
    if r.chat_template:
        tok.chat_template = LLAMA2_CHAT_TEMPLATE
    return tok


def _byte_level_train(texts: list[str], vocab_size: int, specials: list[str]) -> tuple[dict, list]:
    """GPT-2-style byte-level BPE (ByteLevel pre-tokenizer without a prefix space, all 256 byte symbols)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t.train_from_iterator(texts, trainer)
    model = json.loads(t.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def _codegen_tokenizer(r: Recipe, corpus: Corpus, folder: Path) -> PreTrainedTokenizerBase:
    """phi-1 ships ``CodeGenTokenizer``: GPT-2 byte-level BPE, ``<|endoftext|>`` as bos/eos/unk and last piece,
    no BOS added, ``add_prefix_space`` false, and added tokens for runs of 2..31 spaces and 2..9 tabs (ids
    50257..50294 in the real vocabulary), which change how indentation is tokenized and decoded."""
    from transformers import CodeGenTokenizer

    learned, merges = _byte_level_train(list(corpus.code + corpus.en), r.vocab, [])
    vocab = {p: i for i, (p, _) in enumerate(sorted(learned.items(), key=lambda kv: kv[1]))}
    vocab["<|endoftext|>"] = len(vocab)
    tok = CodeGenTokenizer(vocab=vocab, merges=merges, add_prefix_space=False, add_bos_token=False)
    tok.add_tokens([" " * n for n in CODEGEN_SPACE_RUNS] + ["\t" * n for n in CODEGEN_TAB_RUNS])
    return tok


def _unigram_pieces(lines: list[str], size: int, alphabet: int) -> list[tuple[str, float]]:
    """``size`` (piece, log-probability) pairs for a Unigram model, best first.

    tokenizers' UnigramTrainer is not repeatable between processes (hash-ordered ties, float noise in its EM
    sums, re-appended characters with made-up scores), so the pieces come from the deterministic BPE trainer
    and each score is the log of the piece's share of all pieces when the training text is segmented with it:
    the same kind of model (a piece inventory with log-probabilities, decoded by Viterbi), built repeatably."""
    from tokenizers import Tokenizer, models

    lines = _common_chars_only(lines, alphabet)
    vocab, merges = _bpe_train(lines, size, [], alphabet)
    segmenter = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    segmenter.pre_tokenizer = _spm_words()
    counts = Counter(piece for enc in segmenter.encode_batch(lines) for piece in enc.tokens)
    total = sum(counts.values())
    scored = [(p, round(math.log(counts[p] / total) if counts[p] else math.log(0.5 / total), 6)) for p in vocab]
    return sorted(scored, key=lambda ps: (-ps[1], ps[0]))


def _llmjp_tokenizer(r: Recipe, corpus: Corpus, folder: Path) -> PreTrainedTokenizerBase:
    """llm-jp-1.3b-v1.0 ships a generic ``PreTrainedTokenizerFast`` over a tokenizer.json converted from
    llm-jp-tokenizer v2.1 (SentencePiece Unigram). Reproduced from that file's layout: 8 ``<...|LLM-jp>``
    special tokens (ids 0..7; eos = ``<EOD|LLM-jp>``, pad = ``<pad|LLM-jp>``), then ``▁``-runs of 24..1, ``\\n``,
    the 256 byte pieces, local pieces (``_unigram_pieces``); Unigram with ``byte_fallback``; normalizer: ``▁`` prepended at the start
    and spaces replaced by ``▁``; no pre-tokenizer; decoder ByteFallback + Replace + Fuse + drop the leading
    space; post-processor appending ``<EOD|LLM-jp>`` to every encoded text (the real model card therefore
    encodes prompts with ``add_special_tokens=False``)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    fixed = list(LLMJP_SPECIALS) + ["▁" * n for n in range(LLMJP_SPACE_RUN, 0, -1)] + ["\n"]
    fixed += [f"<0x{b:02X}>" for b in range(256)]
    learned = _unigram_pieces(_lines(corpus.code + corpus.en + corpus.ja), r.vocab - len(fixed), 700)
    vocab = [(p, 0.0) for p in LLMJP_SPECIALS] + [("▁" * n, -1.0) for n in range(LLMJP_SPACE_RUN, 0, -1)]
    vocab += [("\n", 0.0)] + [(f"<0x{b:02X}>", 0.0) for b in range(256)]
    seen = {p for p, _ in vocab}
    vocab += [(p, s) for p, s in learned if p not in seen]
    backend = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    backend.normalizer = normalizers.Sequence([normalizers.Replace(Regex("(?<!\\n)^"), "▁"),
                                               normalizers.Replace(Regex(" "), "▁")])
    backend.pre_tokenizer = None
    backend.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Replace(Regex("▁"), " "),
                                         decoders.Fuse(), decoders.Replace(Regex("(?<!\\n)^ "), "")])
    eod = LLMJP_SPECIALS[7]
    backend.post_processor = processors.TemplateProcessing(single=f"$A {eod}", pair=f"$A {eod} $B:1 {eod}:1",
                                                           special_tokens=[(eod, 7)])
    backend.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in LLMJP_SPECIALS])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token=LLMJP_SPECIALS[0], bos_token=LLMJP_SPECIALS[1],
        eos_token=eod, pad_token=LLMJP_SPECIALS[4], cls_token=LLMJP_SPECIALS[5], sep_token=LLMJP_SPECIALS[6],
        mask_token=LLMJP_SPECIALS[3], additional_special_tokens=[LLMJP_SPECIALS[2]], clean_up_tokenization_spaces=False)


def _neox_tokenizer(r: Recipe, corpus: Corpus, folder: Path) -> PreTrainedTokenizerBase:
    """OpenCALM ships ``GPTNeoXTokenizerFast``: byte-level BPE trained mostly on Japanese, ``<|endoftext|>``
    (id 0) as bos/eos/unk, ``<|padding|>`` (id 1) as pad, NFC normalizer, no BOS/EOS added."""
    from transformers import GPTNeoXTokenizer

    texts = list(corpus.ja) * 3 + list(corpus.en) + list(corpus.code[:40])
    learned, merges = _byte_level_train(texts, r.vocab, ["<|endoftext|>", "<|padding|>"])
    vocab = {p: i for i, (p, _) in enumerate(sorted(learned.items(), key=lambda kv: kv[1]))}
    return GPTNeoXTokenizer(vocab=vocab, merges=merges, add_bos_token=False, add_eos_token=False)


def _wordpiece_train(texts: list[str], vocab_size: int, alphabet: int, bert_normalizer: bool) -> list[str]:
    """``vocab_size`` WordPiece pieces (``##`` marks a continuation), special tokens excluded.

    tokenizers' own WordPieceTrainer numbers the ``##`` symbols in hash order, so its ties (and with them the
    vocabulary) differ from process to process. Instead: split the text into words exactly as the tokenizer will
    (BERT normalizer + pre-tokenizer, or whitespace for MeCab output), learn BPE merges on those words (that
    trainer is deterministic), segment every word with them, and keep the most used pieces, a word's first
    piece as is and the others with ``##``, ranked by (count, piece). Every kept character is there in both
    forms, and printable ASCII always, as in the real BERT vocabularies, so code symbols never become [UNK]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    ascii_chars = [chr(c) for c in range(33, 127)]
    splitter = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    if bert_normalizer:
        splitter.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                         strip_accents=False, lowercase=False)
        splitter.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    else:
        splitter.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words: Counter[str] = Counter()
    for text in _common_chars_only(texts, alphabet, always=ascii_chars + [" "]):
        normalized = splitter.normalizer.normalize_str(text) if splitter.normalizer else text
        words.update(w for w, _ in splitter.pre_tokenizer.pre_tokenize_str(normalized))
    chars = sorted({ch for w in words for ch in w} | set(ascii_chars))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, initial_alphabet=chars)
    bpe.train_from_iterator(sorted(words), trainer)
    used: Counter[str] = Counter()
    for word, count in words.items():
        for i, piece in enumerate(bpe.encode(word).tokens):
            used["##" + piece if i else piece] += count
    base = chars + ["##" + ch for ch in chars]
    taken = set(base)
    ranked = [p for p, _ in sorted(used.items(), key=lambda kv: (-kv[1], kv[0])) if p not in taken]
    return base + ranked[:max(0, vocab_size - len(BERT_SPECIALS) - len(base))]


def _mbert_tokenizer(r: Recipe, corpus: Corpus, folder: Path) -> PreTrainedTokenizerBase:
    """mBERT (cased) ships ``BertTokenizer``: WordPiece, ``do_lower_case`` false, accents kept, CJK characters split
    one per token, ``model_max_length`` 512, and the original BERT id layout ``[PAD]`` 0, ``[unused1..99]``,
    ``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]`` 102, ``[MASK]`` 103."""
    from transformers import BertTokenizer

    head = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    learned = _wordpiece_train(list(corpus.en + corpus.ja + corpus.code[:40]), r.vocab - len(head) + 5, 600, True)
    pieces = head + [p for p in learned if p not in head]
    return BertTokenizer(vocab={p: i for i, p in enumerate(pieces)}, do_lower_case=False, strip_accents=None,
                         tokenize_chinese_chars=True, model_max_length=512)


def _jbert_tokenizer(r: Recipe, corpus: Corpus, folder: Path) -> PreTrainedTokenizerBase:
    """cl-tohoku/bert-base-japanese-v2 ships ``BertJapaneseTokenizer`` with ``word_tokenizer_type="mecab"``,
    ``mecab_kwargs={"mecab_dic": "unidic_lite"}`` (fugashi + unidic-lite), ``subword_tokenizer_type="wordpiece"``
    and ``do_lower_case`` false; MeCab input is NFKC-normalised. Like the real v2 config it sets no
    ``model_max_length``, so callers must truncate to the model's 512 positions themselves. The WordPiece
    vocabulary here is trained on text split by that same MeCab set-up, as the real one was."""
    from transformers import BertJapaneseTokenizer
    from transformers.models.bert_japanese.tokenization_bert_japanese import MecabTokenizer

    mecab = MecabTokenizer(do_lower_case=False, normalize_text=True, mecab_dic="unidic_lite")
    split = [" ".join(mecab.tokenize(t)) for t in corpus.ja + corpus.en]
    pieces = list(BERT_SPECIALS) + _wordpiece_train(split, r.vocab, 700, False)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("".join(p + "\n" for p in pieces), encoding="utf-8")
    return BertJapaneseTokenizer(str(vocab_file), do_lower_case=False, word_tokenizer_type="mecab",
                                 subword_tokenizer_type="wordpiece", mecab_kwargs={"mecab_dic": "unidic_lite"})


_TOKENIZER_BUILDERS = {"llama": _llama_tokenizer, "codegen": _codegen_tokenizer, "llmjp": _llmjp_tokenizer,
                       "neox": _neox_tokenizer, "mbert": _mbert_tokenizer, "jbert": _jbert_tokenizer}


__all__ = [
    "CODELLAMA_INFILL_TOKENS", "MODEL_MAP_ENV", "RECIPES", "RECIPE_VERSION", "STANDINS_ENV",
    "Corpus", "Recipe", "StandinUnavailable", "active_standin", "describe", "has_standin", "mapped_folder",
    "model_map", "prepare_all", "prepare_standin", "recipe", "standin_dir", "standin_revision", "standins_enabled",
    "training_corpus", "use_standins",
]

"""Stand-ins: every paper model's tiny imitation builds offline, loads with the suite's Auto classes and behaves
like the real tokenizer where the suite's code paths depend on it; plus the CLTR_MODEL_MAP feature."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cltrlib import config, standins
from cltrlib.models import PAPER_MODELS, default_prompt_mode, get_spec, model_revision, resolve_model_path

DECODERS = [n for n, r in standins.RECIPES.items() if r.architecture != "BertForMaskedLM"]
CHAT = [n for n, r in standins.RECIPES.items() if r.chat_template]
# llm-jp's config names PreTrainedTokenizerFast, which transformers 5 loads as its TokenizersBackend class.
EXPECTED_TOKENIZER = {"llama": "LlamaTokenizer", "codegen": "CodeGenTokenizer", "llmjp": "TokenizersBackend",
                      "neox": "GPTNeoXTokenizer", "mbert": "BertTokenizer", "jbert": "BertJapaneseTokenizer"}
CODE = 'def add(a, b):\n    """Add two numbers."""\n    if a:\n        return a + b\n\treturn b\n'
JAPANESE = "与えられた文字列を逆順にして返す関数を書きなさい。例：「こんにちは」→「はちにんこ」🙂"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, object]:
    """All stand-ins built once into a private cache, stand-ins off and no model map while the tests run."""
    saved = {k: os.environ.get(k) for k in ("CLTR_CACHE_DIR", standins.STANDINS_ENV, standins.MODEL_MAP_ENV)}
    os.environ["CLTR_CACHE_DIR"] = str(tmp_path_factory.mktemp("standin-cache"))
    os.environ.pop(standins.STANDINS_ENV, None)
    os.environ.pop(standins.MODEL_MAP_ENV, None)
    started = time.perf_counter()
    folders = standins.prepare_all()
    seconds = time.perf_counter() - started
    yield {"folders": folders, "seconds": seconds}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def standins_on(built):
    standins.use_standins(True)
    yield
    standins.use_standins(False)


def _tok(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(standins.standin_dir(name))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_runnable_paper_model_has_a_recipe():
    runnable = {n for n, s in PAPER_MODELS.items() if not s.hub_id.startswith("openai:")}
    assert set(standins.RECIPES) == runnable
    assert all(standins.recipe(standins.RECIPES[n].hub_id).name == n for n in runnable)  # hub ids resolve too


@pytest.mark.parametrize("name", ["gpt-4-0613", "gpt-3.5-turbo-1106"])
def test_api_models_have_no_standin(name):
    with pytest.raises(standins.StandinUnavailable, match="API model"):
        standins.prepare_standin(name)
    assert not standins.has_standin(name)


def test_whole_set_builds_fast_and_small(built):
    assert built["seconds"] < 60
    for name, folder in built["folders"].items():
        meta = json.loads((folder / standins.SOURCE_FILE).read_text())
        assert meta["standin_of"] == PAPER_MODELS[name].hub_id
        assert meta["revision"] == standins.standin_revision(name)
        assert meta["params"] < 500_000
        assert sum(f.stat().st_size for f in folder.iterdir()) < 3 * 2**20
        assert not list(folder.parent.glob(f"{name}.partial-*"))


@pytest.mark.parametrize("name", list(standins.RECIPES))
def test_standin_loads_with_the_suites_auto_classes(built, name):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    r = standins.RECIPES[name]
    folder = standins.standin_dir(name)
    cfg = AutoConfig.from_pretrained(folder)
    assert cfg.architectures == [r.architecture]
    tok = _tok(name)
    assert EXPECTED_TOKENIZER[r.tokenizer] in {c.__name__ for c in type(tok).__mro__}
    assert cfg.vocab_size >= len(tok)
    if r.pad_vocab_to > 1:
        assert cfg.vocab_size > len(tok)  # ids the tokenizer cannot decode exist, as in the padded real checkpoints
    if name in DECODERS:
        lm = AutoModelForCausalLM.from_pretrained(folder)
        assert type(lm).__name__ == r.architecture
    clf = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    clf.config.pad_token_id = tok.pad_token_id
    batch = tok(["A short sentence.", "日本語の少し長い文です。" * 3], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = clf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert logits.shape == (2, 3)


def test_builds_are_deterministic(built, tmp_path):
    """A fresh process (tokenizers' parallel trainer on) writes byte-identical tokenizers and weights."""
    names = ["swallow-7b-instruct-hf", "llm-jp-1.3b-v1.0", "bert-base-multilingual-cased", "bert-base-japanese-v2"]
    env = {**os.environ, "CLTR_CACHE_DIR": str(tmp_path), "TOKENIZERS_PARALLELISM": "true",
           "PYTHONPATH": str(config.REPO_ROOT)}
    code = f"from cltrlib import standins; standins.prepare_all({names!r})"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300, cwd=config.REPO_ROOT)
    for name in names:
        ours, theirs = standins.standin_dir(name), tmp_path / "standins" / name
        assert _sha(ours / "model.safetensors") == _sha(theirs / "model.safetensors")
        vocab = "vocab.txt" if name == "bert-base-japanese-v2" else "tokenizer.json"
        assert _sha(ours / vocab) == _sha(theirs / vocab)


def test_builds_without_the_data_mirror(built, tmp_path, monkeypatch):
    """CI may lack the data mirror: the corpus falls back to HumanEval (in its wheel) plus built-in seed text, the
    revision changes with it, and the tokenizers still cover Japanese through byte fallback."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("CLTR_DATA_DIR", str(empty))
    monkeypatch.setenv("CLTR_CACHE_DIR", str(tmp_path / "cache"))
    standins.training_corpus.cache_clear()
    try:
        assert standins.training_corpus().sources == ("humaneval", "answers-pawsx")  # PAWS-X answers need no data
        folder = standins.prepare_standin("llama-2-7b-hf")
        assert json.loads((folder / standins.SOURCE_FILE).read_text())["corpus_sources"] == ["humaneval", "answers-pawsx"]
        tok = _tok("llama-2-7b-hf")
        assert tok.decode(tok(JAPANESE).input_ids, skip_special_tokens=True) == JAPANESE
        offline_revision = standins.standin_revision("llama-2-7b-hf")
    finally:
        standins.training_corpus.cache_clear()
    monkeypatch.undo()
    assert standins.standin_revision("llama-2-7b-hf") != offline_revision


def test_a_stale_revision_rebuilds(built):
    folder = standins.standin_dir("open-calm-7b")
    meta_path = folder / standins.SOURCE_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "revision": "standin:0-old"}))
    assert standins.prepare_standin("open-calm-7b") == folder
    assert json.loads(meta_path.read_text())["revision"] == standins.standin_revision("open-calm-7b")


# --- the Llama tokenizer, exactly like the real ones ------------------------------------------------------------

def test_llama_tokenizer_pipeline_matches_llama2(built):
    tok = _tok("llama-2-7b-hf")
    backend = json.loads(tok.backend_tokenizer.to_str())
    assert type(tok).__name__ == "LlamaTokenizer"
    assert backend["model"]["type"] == "BPE" and backend["model"]["byte_fallback"] is True
    assert [tok.convert_ids_to_tokens(i) for i in (0, 1, 2, 3, 258)] == ["<unk>", "<s>", "</s>", "<0x00>", "<0xFF>"]
    assert backend["pre_tokenizer"]["type"] == "Metaspace" and backend["pre_tokenizer"]["prepend_scheme"] == "first"
    assert [d["type"] for d in backend["decoder"]["decoders"]] == ["Replace", "ByteFallback", "Fuse", "Strip"]
    strip = backend["decoder"]["decoders"][-1]
    assert (strip["content"], strip["start"], strip["stop"]) == (" ", 1, 0)
    assert tok.add_prefix_space is None  # unset, as in Llama-2's tokenizer_config.json; the class then prepends "▁"
    ids = tok("x = 1").input_ids
    assert ids[0] == tok.bos_token_id and tok.eos_token_id not in ids
    assert tok.chat_template is None  # the base model has no chat template
    assert 1000 <= len(tok) <= 2100


@pytest.mark.parametrize("text", [CODE, "x = 1\n    return x\n\t\tpass", JAPANESE, "混在 mixed 日本語 and code: print('ok')\n"])
def test_llama_tokenizer_round_trips_indented_code_and_japanese(built, text):
    tok = _tok("llama-2-7b-hf")
    ids = tok(text).input_ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_llama_tokenizer_loses_one_space_of_a_leading_run(built):
    """transformers 5's LlamaTokenizer prepends "▁" only when the text does not already start with a space, while
    its decoder always strips one: text that *starts* with whitespace comes back one space short, as with the
    real Llama-2 under this transformers version. Indentation after a newline is safe (see above)."""
    tok = _tok("llama-2-7b-hf")
    assert tok(" x").input_ids == tok("x").input_ids
    assert tok.decode(tok("    return x").input_ids, skip_special_tokens=True) == "   return x"


def test_llama_tokenizer_byte_fallback_on_japanese(built):
    tok = _tok("llama-2-7b-hf")
    pieces = tok.convert_ids_to_tokens(tok(JAPANESE).input_ids)
    assert tok.unk_token not in pieces
    assert any(p.startswith("<0x") for p in pieces)  # rare kanji and the emoji fall back to UTF-8 bytes
    assert "<0x0A>" in tok.convert_ids_to_tokens(tok("a\nb").input_ids)  # newline is a byte, as in Llama-2


def test_decoding_only_the_completion_loses_a_leading_space(built):
    """The pitfall the engine must avoid: Llama's decoder strips one leading space from whatever it decodes, so
    decoding a completion's ids on their own drops a space of its first indentation; decoding prompt+completion
    and cutting off the decoded prompt keeps it."""
    tok = _tok("llama-2-7b-hf")
    prompt, completion = 'def f(x):\n    """Return x."""\n', "    return x"
    prompt_ids = tok(prompt).input_ids
    full_ids = tok(prompt + completion).input_ids
    assert full_ids[:len(prompt_ids)] == prompt_ids
    completion_ids = full_ids[len(prompt_ids):]
    assert tok.convert_ids_to_tokens(completion_ids)[0].startswith("▁")
    assert tok.decode(completion_ids) == "   return x"  # three spaces: one lost
    decoded_prompt = tok.decode(prompt_ids, skip_special_tokens=True)
    assert tok.decode(full_ids, skip_special_tokens=True)[len(decoded_prompt):] == completion


@pytest.mark.parametrize("name", CHAT)
def test_chat_variants_apply_the_llama2_chat_template(built, name):
    tok = _tok(name)
    assert type(tok).__name__ == "LlamaTokenizer"
    text = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Write add(a, b).\n"}],
                                   tokenize=False, add_generation_prompt=True)
    assert text == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWrite add(a, b). [/INST]"
    two_turns = tok.apply_chat_template([{"role": "user", "content": " Hi "}, {"role": "assistant", "content": "Hello\n"},
                                         {"role": "user", "content": "Bye"}], tokenize=False)
    assert two_turns == "<s>[INST] Hi [/INST] Hello </s><s>[INST] Bye [/INST]"
    # the template writes BOS itself: encoding its output with special tokens on gives two, as with the real ones
    assert tok(text).input_ids[:2] == [tok.bos_token_id, tok.bos_token_id]
    with pytest.raises(Exception, match="alternating"):
        tok.apply_chat_template([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], tokenize=False)


def test_codellama_carries_infill_tokens(built):
    tok = _tok("codellama-7b-instruct-hf")
    assert all(t in tok.get_vocab() for t in standins.CODELLAMA_INFILL_TOKENS)


@pytest.mark.parametrize("name", ["swallow-7b-instruct-hf", "elyza-japanese-llama-2-7b-fast-instruct"])
def test_japanese_extended_vocabularies_keep_llama2_ids(built, name):
    base, ext = _tok("llama-2-7b-hf"), _tok(name)
    assert len(ext) > len(base)
    assert [ext.convert_ids_to_tokens(i) for i in range(len(base))] == [
        base.convert_ids_to_tokens(i) for i in range(len(base))]
    assert len(ext(JAPANESE).input_ids) < len(base(JAPANESE).input_ids)
    assert ext.decode(ext(JAPANESE).input_ids, skip_special_tokens=True) == JAPANESE


# --- the other tokenizers ---------------------------------------------------------------------------------------

def test_phi1_codegen_tokenizer(built):
    tok = _tok("phi-1")
    assert type(tok).__name__ == "CodeGenTokenizer"
    assert tok.bos_token == tok.eos_token == "<|endoftext|>"
    ids = tok("    return x").input_ids
    assert tok.convert_ids_to_tokens(ids)[0] == "    "  # whitespace runs are tokens of their own
    assert tok.decode(tok(CODE).input_ids) == CODE
    assert tok.decode(tok(JAPANESE).input_ids) == JAPANESE


def test_llmjp_unigram_tokenizer_appends_eod(built):
    tok = _tok("llm-jp-1.3b-v1.0")
    backend = json.loads(tok.backend_tokenizer.to_str())
    assert backend["model"]["type"] == "Unigram" and backend["model"]["byte_fallback"] is True
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token) == ("<EOD|LLM-jp>", 7, "<pad|LLM-jp>")
    assert json.loads((standins.standin_dir("llm-jp-1.3b-v1.0") / "tokenizer_config.json").read_text())[
        "tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tok("今日は").input_ids[-1] == 7
    assert 7 not in tok("今日は", add_special_tokens=False).input_ids
    for text in (CODE, JAPANESE):
        assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_open_calm_gpt_neox_tokenizer(built):
    tok = _tok("open-calm-7b")
    assert type(tok).__name__ == "GPTNeoXTokenizer"
    assert (tok.eos_token_id, tok.pad_token) == (0, "<|padding|>")
    assert tok.decode(tok(JAPANESE).input_ids) == JAPANESE


def test_mbert_is_cased_and_splits_cjk_characters(built):
    tok = _tok("bert-base-multilingual-cased")
    assert type(tok).__name__ == "BertTokenizer" and tok.model_max_length == 512
    assert tok.tokenize("Hello")[0].startswith("H")
    assert tok.tokenize("日本語") == ["日", "本", "語"]
    assert tok.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 100, 101, 102, 103]


def test_japanese_bert_splits_words_with_mecab(built):
    tok = _tok("bert-base-japanese-v2")
    assert type(tok).__name__ == "BertJapaneseTokenizer"
    assert type(tok.word_tokenizer).__name__ == "MecabTokenizer"
    assert tok.word_tokenizer.tokenize("私は東京に住んでいます。") == ["私", "は", "東京", "に", "住ん", "で", "い", "ます", "。"]
    pieces = tok.tokenize("東京に住んでいます")
    assert "住" in pieces and "##ん" in pieces  # WordPiece runs inside each MeCab word, never across words


# --- resolution: stand-ins and the model map --------------------------------------------------------------------

def test_standins_off_leave_resolution_unchanged(built):
    assert not standins.standins_enabled()
    assert resolve_model_path("llama-2-7b-hf") == "meta-llama/Llama-2-7b-hf"
    assert resolve_model_path("some/hub-id") == "some/hub-id"
    assert model_revision("llama-2-7b-hf") == "hub:main"


def test_use_standins_resolves_names_and_hub_ids(standins_on):
    folder = str(standins.standin_dir("llama-2-7b-hf"))
    assert os.environ[standins.STANDINS_ENV] == "1"
    assert resolve_model_path("llama-2-7b-hf") == folder
    assert resolve_model_path("meta-llama/Llama-2-7b-hf") == folder
    assert model_revision("llama-2-7b-hf") == standins.standin_revision("llama-2-7b-hf")
    assert model_revision("llama-2-7b-hf").startswith(f"standin:{standins.RECIPE_VERSION}-")
    assert model_revision("phi-1") != model_revision("llama-2-7b-hf")
    # names without a recipe behave as before
    assert resolve_model_path("some/hub-id") == "some/hub-id"
    assert resolve_model_path("gpt-4-0613") == "openai:gpt-4-0613"
    assert standins.active_standin("smollm2-135m-instruct") is None
    assert standins.active_standin("gemma3-270m") is None
    # registry facts do not change
    assert get_spec("llama-2-7b-hf").hub_id == "meta-llama/Llama-2-7b-hf"
    assert default_prompt_mode("codellama-7b-instruct-hf") == get_spec("codellama-7b-instruct-hf").prompt_mode


def test_cltr_standins_env_reaches_subprocesses(built):
    env = {**os.environ, standins.STANDINS_ENV: "1", "PYTHONPATH": str(config.REPO_ROOT)}
    code = "from cltrlib.models import resolve_model_path; print(resolve_model_path('phi-1'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120, capture_output=True,
                         text=True, cwd=config.REPO_ROOT).stdout.strip().splitlines()[-1]
    assert out == str(standins.standin_dir("phi-1"))


def test_model_map_maps_names_and_hub_ids_to_folders(built, tmp_path, monkeypatch):
    local = tmp_path / "models" / "my-llama"
    local.mkdir(parents=True)
    (local / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "models" / "phi").mkdir()
    map_file = tmp_path / "models" / "map.json"
    map_file.write_text(json.dumps({"llama-2-7b-hf": str(local), "microsoft/phi-1": "phi"}))
    monkeypatch.setenv(standins.MODEL_MAP_ENV, str(map_file))
    assert resolve_model_path("llama-2-7b-hf") == str(local.resolve())
    assert resolve_model_path("meta-llama/Llama-2-7b-hf") == str(local.resolve())  # the hub id finds the name's entry
    assert resolve_model_path("phi-1") == str((tmp_path / "models" / "phi").resolve())  # relative to the map file
    assert model_revision("llama-2-7b-hf").startswith("local:model.safetensors:7:")
    assert resolve_model_path("open-calm-7b") == "cyberagent/open-calm-7b"  # unmapped: unchanged
    standins.use_standins(True)
    try:
        assert resolve_model_path("llama-2-7b-hf") == str(local.resolve())  # the user's map wins over stand-ins
        assert resolve_model_path("open-calm-7b") == str(standins.standin_dir("open-calm-7b"))
    finally:
        standins.use_standins(False)


def test_model_map_errors_name_the_file(built, tmp_path, monkeypatch):
    bad = tmp_path / "map.json"
    bad.write_text("[1, 2]")
    monkeypatch.setenv(standins.MODEL_MAP_ENV, str(bad))
    with pytest.raises(ValueError, match="map.json"):
        resolve_model_path("phi-1")
    bad.write_text(json.dumps({"phi-1": str(tmp_path / "missing")}))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        resolve_model_path("phi-1")
    monkeypatch.setenv(standins.MODEL_MAP_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve_model_path("phi-1")

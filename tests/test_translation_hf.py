"""The HF backend with a REAL model: the embedded Gemma-3-270M (a multilingual base model, fp32 safetensors converted
from its GGUF) translates three HumanEval prose segments through ``HFTranslator`` with the same few-shot completion
prompt the llama.cpp-served translator sends (one prompt builder, ``few_shot_prompt``). Checks: Japanese out, cached
(a fresh translator on the same cache never loads the model), deterministic (greedy: the batch again gives the same
text). About 30 s on one contended thread (three ~200-token prompts, 40 new tokens each).
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("transformers")

from cltrlib.data import load_humaneval  # noqa: E402
from cltrlib.jhumaneval.backends import SHOT_TASKS, HFTranslator, few_shot_prompt, translate_texts  # noqa: E402
from cltrlib.jhumaneval.cache import TranslationCache  # noqa: E402
from cltrlib.jhumaneval.segment import segment_prompt  # noqa: E402
from cltrlib.models import GEMMA3  # noqa: E402

KANA_KANJI = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
TASKS = ("HumanEval/2", "HumanEval/23", "HumanEval/27")  # short one-sentence prose, none of them a shot task


def _segments() -> list[str]:
    by_id = {p.task_id: p for p in load_humaneval()}
    return [segment_prompt(by_id[t].prompt).text_segments()[0][1].source for t in TASKS]


def test_embedded_gemma_translates_through_the_hf_backend(tmp_path):
    texts = _segments()
    assert not set(TASKS) & set(SHOT_TASKS)
    tr = HFTranslator(GEMMA3, max_new_tokens=40)
    assert not tr.seq2seq and not getattr(tr.tokenizer, "chat_template", None)  # a base model: completion prompt
    prompt = tr._prompt(texts[0], "en", "ja")
    assert prompt == few_shot_prompt(texts[0], "en", "ja", [(en, ja) for _, en, ja, _ in tr.shots[:3]])
    assert prompt.endswith(f"English: {' '.join(texts[0].split())}\nJapanese:") and prompt.count("Japanese: ") == 3

    cache = TranslationCache(tmp_path / "c.sqlite")
    out = translate_texts(tr, [*texts, texts[0]], cache=cache, progress=False)
    assert len(out) == 4 and out[3] == out[0] and cache.count(tr.name) == 3
    for src, ja in zip(texts, out, strict=False):
        assert ja.strip() and "\n" not in ja, (src, ja)
        assert len(KANA_KANJI.findall(ja)) >= 3, (src, ja)  # Japanese text, not an echo of the English
    assert tr.translate_batch(texts, "en", "ja") == out[:3]  # greedy: the same text again, batch = cache

    again = HFTranslator(GEMMA3, max_new_tokens=40)
    assert again.name == tr.name and tr.prompt_id in tr.name
    assert translate_texts(again, texts, cache=cache, progress=False) == out[:3]
    assert again._model is None  # served from the cache: no model call, the model was never loaded


def test_the_hf_backend_runs_the_repair_rounds_like_the_served_translator(tmp_path):
    """``translate_one`` with a validator finding (the note is in the prompt, the answer is one line), and a build of
    two tasks with one repair round through the HF backend (``cltr jhumaneval build --backend hf --repair-rounds``)."""
    from cltrlib.jhumaneval.backends import REPAIR_NOTE
    from cltrlib.jhumaneval.build import build_jhumaneval

    tr = HFTranslator(GEMMA3, max_new_tokens=40)
    text = _segments()[0]
    note = "an English sentence was left untranslated"
    prompt = tr._prompt(text, "en", "ja", note)
    assert REPAIR_NOTE.format(note=note) in prompt and prompt.endswith("\nJapanese:")
    assert prompt == few_shot_prompt(text, "en", "ja", tr.shots_for(text), note)
    out = tr.translate_one(text, note=note)
    assert out.strip() and "\n" not in out and len(KANA_KANJI.findall(out)) >= 3, out

    report = build_jhumaneval(tr, tmp_path / "b.jsonl", cache=TranslationCache(tmp_path / "c.sqlite"), limit=2,
                              repair_rounds=1, progress=False)
    assert report.n_tasks == 2 and report.n_parse_ok == 2 and report.n_translated == report.n_text_segments
    log = report.repair
    assert 1 <= len(log["rounds"]) <= 2 and "post_edited" in log  # round 0 (raw) and at most one repair round

"""The study configuration: one place defines the profiles, overrides behave, outputs go per profile."""

from __future__ import annotations

import dataclasses
import re

import pytest

from cltrlib import config
from cltrlib.models import EMBEDDED, EMBEDDED_MODELS, SMOLLM2
from cltrlib.study import PROFILES, CodeEvalSettings, EmbeddingSettings, ExtraRun, TransferSettings, study


def test_every_profile_has_every_stage():
    for name, s in PROFILES.items():
        assert s.name == name
        for f in dataclasses.fields(s):
            if f.name not in ("name", "purpose"):
                assert dataclasses.is_dataclass(getattr(s, f.name)), f.name


def test_the_paper_profile_is_the_papers_defaults():
    paper = PROFILES["paper"]
    assert paper.transfer == TransferSettings() and paper.embeddings == EmbeddingSettings()
    assert paper.transfer.epochs == 10 and paper.transfer.seeds == (0, 1, 2) and paper.transfer.n_test == 512
    assert paper.embeddings.lr == 2e-5 and paper.embeddings.epochs == 6.0
    assert ("llama-2-7b-hf", "swallow-7b-instruct-hf") in paper.codeeval.cltr_pairs
    # Table 1's API rows go through the OpenAI provider; every other row through the in-process engine.
    assert not any(m.startswith("gpt-") for m in paper.codeeval.models)
    assert paper.codeeval.api_models == ("gpt-4-0613", "gpt-3.5-turbo-1106")
    providers = {(c.model, c.provider) for c in paper.codeeval.generation_configs()}
    assert ("gpt-4-0613", "openai") in providers and ("llama-2-7b-hf", "hf") in providers
    assert {p for m, p in providers if not m.startswith("gpt-")} == {"hf"}
    assert paper.codeeval.override(models=["phi-1"]).api_models == ()  # chosen models replace the API rows too
    assert all(PROFILES[p].codeeval.api_models == () for p in ("local", "smoke", "rehearsal"))  # no API calls


def test_override_keeps_profile_values_for_none_and_rejects_unknown_names():
    s = study("local").transfer
    assert s.override(models=None, seeds=None) == s
    t = s.override(seeds=[7], models=["gemma3-270m"])
    assert t.seeds == (7,) and t.models == ("gemma3-270m",) and t.epochs == s.epochs
    with pytest.raises(TypeError, match="no setting 'seed'.*valid:.*seeds"):
        s.override(seed=1)
    with pytest.raises(ValueError, match="unknown profile 'loacl'"):
        study("loacl")


def test_code_eval_plan_of_the_local_profile():
    s = study("local").codeeval
    configs = s.generation_configs()
    # both models × both data sets, then SmolLM2's completion-mode demonstration on both data sets and its chat
    # run on the repaired JHumanEval
    assert [(c.model, c.dataset, c.prompt_mode, c.limit) for c in configs] == [
        (m, d, "auto", None) for m in EMBEDDED for d in ("humaneval", "jhumaneval")
    ] + [(SMOLLM2, d, "completion", 20) for d in ("humaneval", "jhumaneval")] + [
        (SMOLLM2, "jhumaneval-rebuilt", "chat", None)]
    assert {c.max_new_tokens for c in configs} == {256}


def test_choosing_models_or_prompt_modes_drops_the_profiles_extra_runs():
    s = study("local").codeeval
    assert s.extra_runs == (ExtraRun(SMOLLM2, "completion", limit=20),
                            ExtraRun(SMOLLM2, "chat", datasets=("jhumaneval-rebuilt",)))
    assert s.override(models=["gemma3-270m"]).extra_runs == ()
    chat = s.override(prompt_modes="chat")
    assert chat.prompt_modes == ("chat",) and chat.extra_runs == ()
    assert s.override(n=1).extra_runs == s.extra_runs
    assert CodeEvalSettings().override(cltr_pairs=[["a", "b"]]).cltr_pairs == (("a", "b"),)


def test_only_the_committed_profile_writes_the_committed_figures(monkeypatch, tmp_path):
    monkeypatch.delenv("CLTR_FIGURES_DIR", raising=False)
    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path))
    try:
        assert config.figures_dir("local") == config.REPO_ROOT / "figures"
        assert config.figures_dir("smoke") == tmp_path / "figures" / "smoke"
        study("paper")
        assert config.figures_dir() == tmp_path / "figures" / "paper"
        monkeypatch.setenv("CLTR_FIGURES_DIR", str(tmp_path / "mine"))
        assert config.figures_dir("smoke") == config.figures_dir("local") == tmp_path / "mine"
    finally:
        config.set_output_profile(None)


def test_profiles_and_embedded_model_names_are_written_in_one_place_each():
    """Guards the redesign: no module but study.py defines a profile table, no module but models.py spells out an
    embedded model's name."""
    pkg = config.REPO_ROOT / "cltrlib"
    names = [re.escape(f'"{n}"') for n in EMBEDDED_MODELS]
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(pkg).as_posix()
        if rel != "study.py":
            assert not re.search(r"^PROFILES\s*(:|=)", text, re.M), f"{rel} defines its own PROFILES"
        if rel != "models.py":
            for n in names:
                assert not re.search(n, text), f"{rel} spells out {n} (import it from cltrlib.models)"


def test_the_rehearsal_profile_is_the_paper_profile_on_less_data():
    """Same models, prompt modes, training and attribution settings as ``paper``; only data sizes are cut."""
    paper, reh = PROFILES["paper"], PROFILES["rehearsal"]
    same = {
        "codeeval": ("models", "datasets", "prompt_modes", "n", "temperature", "max_new_tokens", "cltr_pairs"),
        "transfer": ("models", "dataset", "patterns", "conditions", "seeds", "epochs", "batch_size", "max_length",
                     "lora_layers", "lr", "attribution_model"),
        "embeddings": ("models", "tasks", "epochs", "lr", "batch_size", "prompt_max_length", "similarity_corpora",
                       "after_corpora", "after_task", "embed_max_length"),
    }
    for stage, names in same.items():
        for name in names:
            assert getattr(getattr(reh, stage), name) == getattr(getattr(paper, stage), name), (stage, name)
    assert reh.codeeval.limit and reh.transfer.n_source < paper.transfer.n_source


def test_resolving_the_rehearsal_study_turns_the_stand_ins_on_and_any_other_turns_them_off():
    from cltrlib.standins import standins_enabled

    try:
        study("rehearsal")
        assert standins_enabled()
        study("smoke")
        assert not standins_enabled()
    finally:
        config.set_output_profile(None)

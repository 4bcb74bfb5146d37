"""Model registry: Paper A's models and numbers; Table 2's CLTR recomputed from counts."""

from __future__ import annotations

import pytest

from cltrlib.codegen.report import paper_table2
from cltrlib.models import EMBEDDED_MODELS, PAPER_MODELS, default_prompt_mode, get_spec, resolve_model_path


def test_paper_a_tables_are_registered_with_bases():
    t1 = [m for m in PAPER_MODELS.values() if "A1" in m.paper_tables]
    assert len(t1) == 6
    assert PAPER_MODELS["swallow-7b-instruct-hf"].base == "llama-2-7b-hf"
    assert PAPER_MODELS["elyza-japanese-codellama-7b-instruct"].base == "codellama-7b-instruct-hf"


def test_table2_cltr_recomputed_equals_paper():
    t2 = paper_table2()
    rows = t2.dropna(subset=["CLTR (paper)"])
    assert len(rows) == 4
    assert (rows["CLTR (recomputed)"].round(2) == rows["CLTR (paper)"]).all()


def test_prompt_mode_defaults_and_passthrough():
    assert default_prompt_mode("smollm2-135m-instruct") == "chat"
    assert default_prompt_mode("gemma3-270m") == "completion"
    assert get_spec("some/hub-id").prompt_mode == "auto"
    assert resolve_model_path("some/hub-id") == "some/hub-id"
    assert set(EMBEDDED_MODELS) == {"smollm2-135m-instruct", "gemma3-270m"}


@pytest.mark.parametrize("name", list(EMBEDDED_MODELS))
def test_embedded_models_load_as_hf_folders(name):
    from transformers import AutoConfig

    path = resolve_model_path(name)
    cfg = AutoConfig.from_pretrained(path)
    assert cfg.pad_token_id is not None
    assert "quantization_config" not in cfg.to_dict()

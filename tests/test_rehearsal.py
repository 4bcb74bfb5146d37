"""Defects the rehearsal profile found in the papers' model paths, each pinned by a test on the stand-ins.

The stand-ins (``cltrlib.standins``) are tiny random-weight models of the papers' architectures with tokenizers
of the real types, built offline; every test here failed on the code before its fix (see the commit message).
"""

from __future__ import annotations

import pytest
import torch

from cltrlib.codegen.engine import (
    GenRequest,
    SamplingConfig,
    cut_after_stop,
    decode_continuation,
    generate_batch,
    generate_batch_hf,
    prompt_ids,
)
from cltrlib.codegen.prompts import build_prompt_text
from cltrlib.data import load_humaneval, load_jhumaneval

pytestmark = pytest.mark.usefixtures("standins_on")


@pytest.fixture(scope="module")
def llama():
    """The CodeLlama-Instruct stand-in: LlamaForCausalLM + the Llama tokenizer (Metaspace, byte fallback, Strip)."""
    from cltrlib.models import load_causal_lm

    model, tok = load_causal_lm("codellama-7b-instruct-hf", device="cpu")
    with torch.no_grad():  # sharpen the logits so greedy choices are not near-ties (float noise, not logic)
        model.lm_head.weight.mul_(20)
    return model, tok


def test_llama_completion_keeps_its_leading_indentation_byte_for_byte(llama):
    """Defect 1: decoding the new ids alone drops the first space (the decoder's Strip(left=1)), so every
    completion of a Llama-family model started with 3 spaces of indentation instead of 4."""
    _, tok = llama
    problem = load_humaneval()[0]
    completion = problem.canonical_solution
    assert completion.startswith("    for ")
    head = prompt_ids(tok, GenRequest(problem.prompt))
    full = tok(problem.prompt + completion).input_ids
    assert full[:len(head)] == head  # the prompt's tokens are a prefix: the split is where the model starts
    new = full[len(head):]
    assert tok.decode(new, skip_special_tokens=True).startswith("   for ")  # the old way: one space short
    assert decode_continuation(tok, head, new) == completion


def test_llama_stand_in_greedy_is_batch_and_padding_invariant_and_matches_generate(llama):
    model, tok = llama
    probs = load_humaneval()[:2] + load_jhumaneval()[:2]
    requests = [GenRequest(*build_prompt_text(p, "completion", tok)) for p in probs]
    requests += [GenRequest(*build_prompt_text(p, "chat", tok)) for p in probs[:2]]
    cfg = SamplingConfig(max_new_tokens=20)
    together = generate_batch(model, tok, requests, cfg)
    assert together == [generate_batch(model, tok, [r], cfg)[0] for r in requests]  # no padding at all
    assert together == generate_batch_hf(model, tok, requests, cfg)


def test_llama_stand_in_stops_exactly_after_the_first_stop_string(llama):
    model, tok = llama
    request = GenRequest(*build_prompt_text(load_humaneval()[1], "completion", tok))
    free = generate_batch(model, tok, [request], SamplingConfig(max_new_tokens=40))[0]
    stop = free[12:15]  # a string the model does write, a few tokens in
    assert len(stop) == 3
    cut = generate_batch(model, tok, [request], SamplingConfig(max_new_tokens=40), stops=(stop,))[0]
    assert cut == cut_after_stop(free, (stop,)) and cut.endswith(stop)


def test_prompts_never_end_in_an_end_of_document_token():
    """Defect 2: llm-jp's tokenizer appends <EOD|LLM-jp> to every encoding; the completion prompt ended the
    document before the model wrote a token."""
    from cltrlib.models import load_tokenizer

    tok = load_tokenizer("llm-jp-1.3b-v1.0")
    prompt = load_humaneval()[0].prompt
    assert tok(prompt).input_ids[-1] == tok.eos_token_id  # what the tokenizer does on its own
    ids = prompt_ids(tok, GenRequest(prompt))
    assert ids[-1] != tok.eos_token_id and ids == tok(prompt, add_special_tokens=False).input_ids[:len(ids)]


def test_instruct_models_run_in_chat_mode_with_the_llama2_template_when_the_tokenizer_has_none():
    """Defect 3: the registry ran every Paper A instruct model in completion mode; a hub tokenizer without a
    chat template now gets its registry format (Llama-2 [INST])."""
    from cltrlib.models import PAPER_MODELS, default_prompt_mode, load_tokenizer

    instruct = [m.name for m in PAPER_MODELS.values() if "instruct" in m.name]
    assert instruct and all(default_prompt_mode(m) == "chat" for m in instruct)
    assert default_prompt_mode("llama-2-7b-hf") == "completion"
    tok = load_tokenizer("swallow-7b-instruct-hf")
    text, add_special = build_prompt_text(load_jhumaneval()[0], "chat", tok)
    assert text.startswith(tok.bos_token + "[INST] ") and "[/INST]" in text and not add_special


def test_chat_template_fallback_applies_to_a_tokenizer_without_one(tmp_path, monkeypatch):
    import json

    from cltrlib.models import LLAMA2_CHAT_TEMPLATE, load_tokenizer, resolve_model_path

    src = resolve_model_path("swallow-7b-instruct-hf")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    tok.chat_template = None
    tok.save_pretrained(tmp_path)
    (tmp_path / "chat_template.jinja").unlink(missing_ok=True)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"swallow-7b-instruct-hf": str(tmp_path)}))
    monkeypatch.setenv("CLTR_MODEL_MAP", str(mapping))
    assert not AutoTokenizer.from_pretrained(tmp_path).chat_template
    assert load_tokenizer("swallow-7b-instruct-hf").chat_template == LLAMA2_CHAT_TEMPLATE


@pytest.mark.parametrize("name,targets", [("open-calm-7b", ["query_key_value"]), ("llama-2-7b-hf",
                                          ["q_proj", "v_proj"]), ("phi-1", ["q_proj", "v_proj"])])
def test_lora_targets_the_query_value_projections_of_each_architecture(name, targets):
    """Defect 4: LoRA asked for q_proj/v_proj, which GPT-NeoX (OpenCALM) does not have (peft raised)."""
    from cltrlib.transfer.modeling import ClassifierConfig, build_classifier

    model, _, method = build_classifier(ClassifierConfig(model=name, num_labels=2), seed=0)
    assert method == "lora"
    lora = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if "lora_A" in n}
    assert lora == set(targets)


def test_japanese_only_models_train_on_japanese_rows_only():
    """Defect 5: OpenCALM and Japanese BERT (Paper B's monolingual references) were also trained cross-lingually."""
    from cltrlib.transfer.experiment import conditions_for

    both = ("crosslingual", "monolingual")
    assert conditions_for("open-calm-7b", both) == ("monolingual",)
    assert conditions_for("bert-base-japanese-v2", both) == ("monolingual",)
    assert conditions_for("llama-2-7b-hf", both) == both


def test_encoders_are_fully_fine_tuned_at_paper_bs_rate():
    from cltrlib.transfer.modeling import ClassifierConfig, build_classifier
    from cltrlib.transfer.train import TrainConfig

    model, tok, method = build_classifier(ClassifierConfig(model="bert-base-japanese-v2", num_labels=2), seed=0)
    assert method == "full" and type(model).__name__ == "BertForSequenceClassification"
    assert TrainConfig().learning_rate(method) == 5e-5 and TrainConfig().learning_rate("lora") == 5e-4
    assert "MecabTokenizer" in type(tok.word_tokenizer).__name__


def test_label_words_are_tokenized_as_the_models_answer():
    """Answer words are scored by the first token the model would write after "The answer is": a Unigram
    tokenizer (llm-jp) encodes a lone " Yes" as "▁" + "▁Yes", so every label word shared the first token "▁"."""
    from cltrlib.embeddings.scoring import label_token_ids
    from cltrlib.models import load_tokenizer

    tok = load_tokenizer("llm-jp-1.3b-v1.0")
    alone = [tok.encode(" " + w, add_special_tokens=False)[0] for w in ("No", "Yes")]
    assert all(set(tok.convert_ids_to_tokens(i)) == {"▁"} for i in alone)  # the old scoring: bare spaces
    ids = label_token_ids(tok, ["No", "Yes"])
    pieces = tok.convert_ids_to_tokens(ids)
    assert len(set(ids)) == 2 and all(p.startswith("▁") and p.strip("▁") for p in pieces)

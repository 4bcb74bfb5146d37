"""Continual pre-training: packing, mixtures, a stored run, resume after SIGKILL — on the Llama-2 stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from cltrlib.pretrain import packing, train
from cltrlib.pretrain.corpus import Document

STANDIN = "llama-2-7b-hf"
SEQ = 32


pytestmark = pytest.mark.usefixtures("standins_on")


@pytest.fixture(scope="module")
def tok():
    from cltrlib.models import load_tokenizer

    return load_tokenizer(STANDIN)


def _docs(lang: str, n: int = 120) -> tuple[Document, ...]:
    text = "日本語の文章です。" if lang == "ja" else "An English sentence. "
    return tuple(Document(f"{lang}{i}", lang, text * (3 + i % 5) + str(i), "test") for i in range(n))


def test_packing_concatenates_documents_with_eos_and_wastes_no_tokens(tok):
    docs = _docs("ja", 10)
    blocks = packing.pack(docs, tok, SEQ)
    stream = sum((tok(d.text, add_special_tokens=False).input_ids + [tok.eos_token_id] for d in docs), [])
    assert blocks.shape == (len(stream) // SEQ, SEQ)
    assert (blocks == tok.pad_token_id).sum() <= (blocks == tok.eos_token_id).sum()  # no padding added
    assert int((blocks == tok.eos_token_id).sum()) >= len(docs) - 1  # every boundary but maybe the cut tail


def test_mixture_gives_each_part_its_share_of_tokens(tok):
    blocks, summary = packing.mixture([packing.Part("ja", _docs("ja"), 0.9), packing.Part("en", _docs("en"), 0.1)],
                                      tok, SEQ, tokens=SEQ * 40)
    assert blocks.shape == (40, SEQ)
    assert summary == {"ja": {"blocks": 36, "tokens": 36 * SEQ}, "en": {"blocks": 4, "tokens": 4 * SEQ}}
    with pytest.raises(ValueError, match="sum to 1"):
        packing.mixture([packing.Part("ja", _docs("ja"), 0.5)], tok, SEQ, tokens=SEQ)
    with pytest.raises(ValueError, match="'ja' has .* fewer than"):
        packing.mixture([packing.Part("ja", _docs("ja", 2), 1.0)], tok, SEQ, tokens=SEQ * 1000)


def test_held_out_documents_are_a_stable_few_percent():
    docs = [Document(f"man/ja/man3/page{i}.3", "ja", "x", "t") for i in range(4000)]
    train_docs, held = packing.split_documents(docs)
    assert 0.03 < len(held) / len(docs) < 0.07 and not {d.id for d in held} & {d.id for d in train_docs}
    assert packing.split_documents(docs)[1] == held


def _cfg(**kw) -> train.PretrainConfig:
    base = {"model": STANDIN, "condition": "test", "tokens": SEQ * 4 * 12, "seq_len": SEQ, "batch_size": 4,
            "lr": 1e-3, "checkpoints": 3}
    return train.PretrainConfig(**{**base, **kw})


def _blocks(tok) -> np.ndarray:
    return packing.mixture([packing.Part("ja", _docs("ja"), 1.0)], tok, SEQ, tokens=SEQ * 4 * 12)[0]


def test_a_run_lowers_the_loss_saves_checkpoints_and_reads_back(tok, tmp_path):
    run = train.run_pretraining(_cfg(), _blocks(tok), "corpus-a", root=tmp_path, progress=False)
    losses = [r["loss"] for r in run.log()]
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.3
    ckpts = run.checkpoints()
    assert [t for t, _ in ckpts] == [0, SEQ * 4 * 4, SEQ * 4 * 8, SEQ * 4 * 12]
    assert all((Path(p) / "config.json").exists() for _, p in ckpts[1:])
    assert not (run.store.path / "trainer").exists()  # resume state dropped once complete
    again = train.run_pretraining(_cfg(), _blocks(tok), "corpus-a", root=tmp_path, progress=False)
    assert again.store.path == run.store.path and again.log() == run.log()
    other = train.run_pretraining(_cfg(), _blocks(tok), "corpus-b", root=tmp_path, progress=False)
    assert other.store.path != run.store.path  # another corpus is another run


def test_lora_checkpoints_are_merged_plain_models(tok, tmp_path):
    from transformers import AutoModelForCausalLM

    run = train.run_pretraining(_cfg(method="lora", lora_r=4, lora_alpha=8, checkpoints=1), _blocks(tok),
                                "corpus-a", root=tmp_path, progress=False)
    folder = Path(run.final)
    assert (folder / "config.json").exists() and not (folder / "adapter_config.json").exists()
    tuned = AutoModelForCausalLM.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(run.checkpoints()[0][1])
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not np.allclose(tuned.state_dict()[name].numpy(), base.state_dict()[name].numpy())


def test_a_bf16_base_lora_run_keeps_the_base_bf16_trains_fp32_adapters_and_saves_a_loadable_model(tok, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    lora = {"method": "lora", "lora_r": 4, "lora_alpha": 8, "lr": 1e-2, "checkpoints": 1}
    cfg = _cfg(**lora, base_dtype="bfloat16")
    model, _ = train._load_model(cfg)
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes == {(False, torch.bfloat16), (True, torch.float32)}  # frozen base bf16, adapters fp32
    run = train.run_pretraining(cfg, _blocks(tok), "corpus-a", root=tmp_path, progress=False, bf16=False)
    losses = [r["loss"] for r in run.log()]
    fp32 = train.run_pretraining(_cfg(**lora), _blocks(tok), "corpus-a", root=tmp_path, progress=False, bf16=False)
    ref = [r["loss"] for r in fp32.log()]
    assert losses[-1] < losses[0] - 0.3 and max(abs(a - b) for a, b in zip(losses, ref, strict=True)) < 0.02  # fp32-base curve
    tuned = AutoModelForCausalLM.from_pretrained(run.final, dtype=torch.float32)
    assert torch.isfinite(tuned(input_ids=torch.tensor(_blocks(tok)[:1])).logits).all()
    assert fp32.store.path != run.store.path and "base_dtype" not in fp32.store.config  # fp32 keys as before
    with pytest.raises(ValueError, match="needs method='lora'"):
        _cfg(base_dtype="bfloat16").validate()


def test_a_killed_run_resumes_from_its_last_checkpoint_and_ends_on_the_same_curve(tok, tmp_path):
    """SIGKILL after the first evaluation checkpoint; the rerun continues from it and matches an unbroken run."""
    cfg = _cfg(tokens=SEQ * 4 * 24, checkpoints=3)
    blocks = packing.mixture([packing.Part("ja", _docs("ja", 300), 1.0)], tok, SEQ, tokens=cfg.tokens)[0]
    np.save(tmp_path / "blocks.npy", blocks)
    script = textwrap.dedent(f"""
        import numpy as np
        from cltrlib.standins import use_standins
        from cltrlib.pretrain import train
        use_standins(True)
        cfg = train.{cfg!r}
        train.run_pretraining(cfg, np.load({str(tmp_path / 'blocks.npy')!r}), "k", root={str(tmp_path / 'a')!r},
                              save_every=4, progress=False)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    store = train.store_for(cfg, "k", tmp_path / "a")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(r.get("kind") == "checkpoint" for r in store.records()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not store.is_complete()
    resumed = train.run_pretraining(cfg, blocks, "k", root=tmp_path / "a", save_every=4, progress=False)
    unbroken = train.run_pretraining(cfg, blocks, "k", root=tmp_path / "b", save_every=4, progress=False)
    assert [r["step"] for r in resumed.log()] == list(range(1, 25))
    np.testing.assert_allclose([r["loss"] for r in resumed.log()], [r["loss"] for r in unbroken.log()],
                               rtol=0, atol=1e-4)
    assert [t for t, _ in resumed.checkpoints()] == [t for t, _ in unbroken.checkpoints()]


def test_held_out_perplexity_falls_on_the_trained_language(tok, tmp_path, monkeypatch):
    from cltrlib.pretrain.perplexity import held_out_perplexity

    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path))
    docs = _docs("ja", 300)
    train_docs, held = docs[:250], docs[250:]
    blocks = packing.mixture([packing.Part("ja", train_docs, 1.0)], tok, SEQ, tokens=SEQ * 4 * 12)[0]
    run = train.run_pretraining(_cfg(), blocks, "ppl", root=tmp_path, progress=False)
    before = held_out_perplexity(run.checkpoints()[0][1], held, seq_len=SEQ, max_blocks=8)
    after = held_out_perplexity(run.final, held, seq_len=SEQ, max_blocks=8)
    assert after["perplexity"] < 0.5 * before["perplexity"]
    assert before["ppl_low"] <= before["perplexity"] <= before["ppl_high"] and after["bits_per_char"] > 0
    assert held_out_perplexity(run.final, held, seq_len=SEQ, max_blocks=8) == after  # read back


def test_conditions_name_their_mixtures_and_refuse_unknown_ones():
    from cltrlib.pretrain import conditions

    assert conditions.condition("ja+en").parts == (("ja", 0.9), ("en", 0.1))
    assert conditions.condition("ja+vocab").expand_vocab
    with pytest.raises(ValueError, match="choose one of ja, en"):
        conditions.condition("japanese")
    pairs = conditions.parallel_documents()
    assert len(pairs) == -(-701 // conditions.PAIRS_PER_DOCUMENT) and "English: " in pairs[0].text
    assert "日本語: " in pairs[0].text
    parts, report = conditions.training_parts(conditions.condition("ja+parallel"), source="mirror")
    assert [p.name for p in parts] == ["ja", "parallel"] and report["ja"]["documents"] > 50

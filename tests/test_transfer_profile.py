"""The ``local`` profile runs Paper B's full-depth LoRA beside its top-layer probe (issue 17 item 4): no training."""

from __future__ import annotations

from cltrlib.models import GEMMA3
from cltrlib.study import study
from cltrlib.transfer.experiment import full_depth_jobs, train_config


def test_local_profile_has_full_depth_runs_for_the_ja0_ja104_contrast():
    s = study("local").transfer
    assert s.lora_layers == 1  # the grid is the probe; the full-depth runs are what it is checked against
    jobs = full_depth_jobs(s)
    seeds = s.seeds if s.full_depth_seeds is None else s.full_depth_seeds
    assert seeds and set(seeds) <= set(s.seeds)  # seeds the probe ran too, so both see the same training rows
    assert sorted((j[0], j[2]) for j in jobs) == sorted((GEMMA3, p) for p in ("ja0", "ja104") for _ in seeds)
    assert all(j[1] == "crosslingual" and j[5] is None for j in jobs)  # LoRA on every layer, English + Japanese
    assert {j[3] for j in jobs} == {0, 104}
    # the full-depth knobs change only the full-depth runs: the probe grid keeps Paper B's 10 epochs in fp32 (and
    # with them its stored runs' keys)
    probe = train_config(s, s.lora_layers, 80, "cpu")
    assert probe.epochs == s.epochs == 10 and probe.bf16 is False
    deep = train_config(s, None, 80, "cpu")
    assert deep.epochs == (s.full_depth_epochs or s.epochs) and (deep.lr, deep.batch_size) == (probe.lr, probe.batch_size)

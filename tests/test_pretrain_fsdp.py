"""The `paper` profile's FSDP path, rehearsed on CPU: ``accelerate launch`` with an FSDP2 configuration
(configs/accelerate_fsdp2_cpu_rehearsal.yaml: the 8-GPU config's sharding settings on 2 gloo processes) running
``cltrlib.pretrain.launch`` gives the same loss curve as 1 unsharded process with the same global batch, and its
checkpoints are whole (gathered) model folders.

Why FSDP2 only: accelerate refuses FSDP1 without an accelerator ("no available devices found, must be one of XPU,
CUDA, ..."); FSDP2 (``torch.distributed.fsdp.fully_shard``) runs on gloo, so this is the sharded path a GPU user
takes, minus the device.

Why this tolerance: both runs see the same blocks in the same order per step (each rank gets half of the global
batch) and average the same per-token losses in fp32 (``--bf16 off`` on both sides); sharding changes only the order
of floating-point sums (reduce-scattered gradients, AdamW on shards), which stays around 1e-6 on this stand-in.
1e-3 nats per step is far below the curve's step-to-step changes (~0.1), so a wrong shard, a double-counted batch,
an unsynchronised or un-gathered weight fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TOLERANCE = 1e-3  # nats per logged step
CONFIG = "configs/accelerate_fsdp2_cpu_rehearsal.yaml"

pytestmark = pytest.mark.usefixtures("standins_on")


def test_fsdp2_two_processes_give_the_one_process_loss_curve(tmp_path, monkeypatch):
    import yaml

    from cltrlib.pretrain.pipeline import train_condition
    from cltrlib.study import study

    launcher = Path(sys.executable).with_name("accelerate")
    if not launcher.exists():
        pytest.skip("accelerate's launcher is not installed beside this Python")
    root = Path(__file__).resolve().parent.parent
    rehearsal = yaml.safe_load((root / CONFIG).read_text())
    gpu = yaml.safe_load((root / study("paper").pretrain.accelerate_config).read_text())
    # The rehearsal is the paper config minus the devices: same FSDP version and sharding settings.
    assert rehearsal["fsdp_config"] == gpu["fsdp_config"]
    assert (rehearsal["distributed_type"], gpu["distributed_type"]) == ("FSDP", "FSDP")

    env = {**os.environ, "PYTHONPATH": str(root), "CLTR_RESULTS_DIR": str(tmp_path / "two"), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "ACCELERATE_DISABLE_RICH": "1"}
    cmd = [str(launcher), "launch", "--config_file", CONFIG, "-m", "cltrlib.pretrain.launch", "--profile",
           "rehearsal", "--conditions", "ja", "--tokens", "2048", "--batch-size", "1", "--bf16", "off"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-4000:]

    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path / "one"))
    s = study("rehearsal").pretrain.override(conditions=("ja",), tokens=2048, bf16=False)
    one = train_condition(s.models[0], "ja", s.override(batch_size=2), progress=False).run
    two_store = next((tmp_path / "two" / "pretrain").glob("*/summary.json")).parent
    records = [json.loads(line) for line in (two_store / "records.jsonl").read_text().splitlines()]
    two = [r for r in records if r.get("kind") == "log"]
    summary = json.loads((two_store / "summary.json").read_text())
    # Sharded, not replicated: on CPU accelerate would otherwise fall back to DDP (MULTI_CPU) with the same curve.
    assert (summary["world_size"], summary["distributed_type"]) == (2, "FSDP")
    assert [r["step"] for r in two] == [r["step"] for r in one.log()] == [1, 2, 3, 4]
    assert [r["tokens"] for r in two] == [r["tokens"] for r in one.log()]  # 2 x 1 block = 1 x 2 blocks per step
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one.log()], rtol=0, atol=TOLERANCE)
    assert one.log()[0]["loss"] - one.log()[-1]["loss"] > 10 * TOLERANCE  # the curve moves: the test can fail

    # Checkpoints are gathered, loadable model folders whose weights match the unsharded run's.
    from safetensors.torch import load_file

    folders = [r["folder"] for r in records if r.get("kind") == "checkpoint"]
    assert folders == [r["folder"] for r in one.store.records() if r.get("kind") == "checkpoint"] and folders
    for folder in folders:
        a = load_file(two_store / folder / "model.safetensors")
        b = load_file(one.store.path / folder / "model.safetensors")
        assert a.keys() == b.keys()
        worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
        assert worst < 1e-4, f"{folder}: weights differ by {worst}"

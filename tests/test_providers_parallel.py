"""Data-parallel generation (``accelerate launch --multi_gpu``, 2 CPU processes over gloo) gives the one-process
run: the same store, the same texts, no sample lost or duplicated; a process killed mid-run leaves a run that the
next launch completes without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cltrlib import config
from cltrlib.codegen.parallel import World, shard
from cltrlib.codegen.run import GenerationConfig, run_generation, select_problems

pytestmark = pytest.mark.usefixtures("standins_on")

MODEL, LIMIT, CAP = "llama-2-7b-hf", 8, 64  # the tiny random stand-in: 8 problems, 64 new tokens each


def _launch_cmd() -> list[str]:
    launcher = Path(sys.executable).with_name("accelerate")
    if not launcher.exists():
        pytest.skip("accelerate's launcher is not installed beside this Python")
    # --multi_gpu is accelerate's multi-process launch (torchrun underneath); without GPUs the processes run on CPU.
    return [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "cltrlib", "codegen", "generate",
            "--model", MODEL, "--prompt-mode", "completion", "--limit", str(LIMIT), "--max-new-tokens", str(CAP),
            "--batch-size", "1"]


def _env(results: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(config.REPO_ROOT), CLTR_STANDINS="1", OMP_NUM_THREADS="1",
                CLTR_RESULTS_DIR=str(results), MASTER_PORT=str(_free_port()))


def _free_port() -> int:
    from cltrlib.providers.llamacpp import free_port

    return free_port()


def _stored(results: Path) -> tuple[Path, list[dict]]:
    (store,) = (results / "generation").iterdir()
    recs = [json.loads(line) for line in (store / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    return store, recs


@pytest.fixture(scope="module")
def one_process():
    """The one-process run of the same configuration (the test session's own results store)."""
    cfg = GenerationConfig(model=MODEL, prompt_mode="completion", limit=LIMIT, max_new_tokens=CAP, batch_size=1)
    run = run_generation(cfg, progress=False)
    return run.store.path.name, {r["task_id"]: r["raw"] for r in run.records()}


def test_shards_are_disjoint_balanced_and_cover_the_run():
    todo = [(p, i) for p in select_problems(GenerationConfig(model=MODEL, limit=10)) for i in range(3)]
    parts = [shard(todo, World(rank=r, size=4)) for r in range(4)]
    flat = [(p.task_id, i) for part in parts for p, i in part]
    assert sorted(flat) == sorted((p.task_id, i) for p, i in todo) and len(set(flat)) == len(todo)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # Cut after length sorting: no process gets all the long prompts.
    lengths = [sum(len(p.prompt) for p, _ in part) for part in parts]
    assert max(lengths) < 1.5 * min(lengths)
    assert shard(todo, World()) == todo  # one process: the whole run, in order


def test_two_processes_give_the_one_process_run(tmp_path, one_process):
    out = subprocess.run(_launch_cmd(), env=_env(tmp_path), capture_output=True, text=True, timeout=300,
                         cwd=config.REPO_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])  # printed once, by process 0
    store, recs = _stored(tmp_path)
    assert report["store"] == str(store) and (store / "summary.json").exists()
    assert len(recs) == LIMIT and len({r["task_id"] for r in recs}) == LIMIT  # none lost, none duplicated
    name, texts = one_process
    assert store.name == name  # the same store key as one process
    assert {r["task_id"]: r["raw"] for r in recs} == texts  # the same texts


def test_a_process_killed_mid_run_resumes_without_duplicates(tmp_path, one_process):
    import psutil

    proc = subprocess.Popen(_launch_cmd(), env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=config.REPO_ROOT, start_new_session=True)
    victim = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            files = list((tmp_path / "generation").glob("*/records.jsonl"))
            if files and files[0].stat().st_size > 0:  # a first sample is stored: kill process 1 now
                for child in psutil.Process(proc.pid).children(recursive=True):
                    try:
                        if child.environ().get("RANK") == "1":
                            victim = child
                    except psutil.Error:
                        pass
                if victim is not None:
                    victim.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.005)
        assert victim is not None, "the launch ended before a sample was stored"
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert rc != 0  # the launcher reports the dead process
    store, recs = _stored(tmp_path)
    assert 0 < len(recs) < LIMIT and not (store / "summary.json").exists()  # killed mid-run
    first = {r["task_id"]: r["raw"] for r in recs}

    out = subprocess.run(_launch_cmd(), env=_env(tmp_path), capture_output=True, text=True, timeout=300,
                         cwd=config.REPO_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    store, recs = _stored(tmp_path)
    assert len(recs) == LIMIT and len({r["task_id"] for r in recs}) == LIMIT and (store / "summary.json").exists()
    texts = {r["task_id"]: r["raw"] for r in recs}
    assert all(texts[t] == raw for t, raw in first.items())  # what was stored before the kill is kept as it was
    assert texts == one_process[1]


def test_a_launch_refuses_a_server_provider(monkeypatch, capsys):
    from cltrlib.__main__ import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    rc = main(["codegen", "generate", "--model", MODEL, "--provider", "openai", "--base-url", "http://127.0.0.1:9/v1"])
    assert rc == 2 and "--provider hf" in capsys.readouterr().err

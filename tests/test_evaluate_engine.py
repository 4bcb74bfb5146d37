"""evaluate_samples end to end: verdicts, canonical time limits, kill-and-resume, bad input, progress/watchdog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from proc_scan import procs_with

from cltrlib.codeeval import SampleError, evaluate_samples, read_samples
from cltrlib.config import REPO_ROOT
from cltrlib.execution import pool as pool_mod


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _dataset(tmp_path: Path, canonical: str = "    return x\n", test_sleep: float = 0.0) -> Path:
    test = "def check(c):\n" + (f"    import time\n    time.sleep({test_sleep})\n" if test_sleep else "")
    test += "    assert c(1) == 1 and c(5) == 5\n"
    return _write(tmp_path / "problems.jsonl", [{"task_id": "Toy/0", "prompt": "def ident(x):\n",
                                                  "canonical_solution": canonical, "test": test,
                                                  "entry_point": "ident"}])


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLTR_CACHE_DIR", str(tmp_path / "cache"))


def test_humaneval_verdicts_order_and_fields(tmp_path):
    from cltrlib.data import load_humaneval

    probs = load_humaneval()[:4]
    rows = []
    for p in probs:
        rows.append({"task_id": p.task_id, "completion": p.canonical_solution, "tag": "good"})
        rows.append({"task_id": p.task_id, "completion": "    return None\n", "tag": "bad"})
    rows.append({"task_id": probs[0].task_id, "solution": probs[0].prompt + probs[0].canonical_solution, "tag": "good"})
    samples = _write(tmp_path / "s.jsonl", rows)
    out = tmp_path / "r.jsonl"
    summary = evaluate_samples(samples, "humaneval", out, ks=[1], timeout=3, workers=2, progress=False)
    res = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["tag"] for r in res] == [r["tag"] for r in rows]
    assert [r["passed"] for r in res] == [r["tag"] == "good" for r in rows]
    assert all(r["isolation"] == summary["isolation"] and r["time_limit"] >= 3 for r in res)
    assert summary["n_passed"] == 5 and summary["n_failed"] == 4 and "pass@1" in summary
    assert not (tmp_path / "r.jsonl.partial").exists()


def test_canonical_limits_let_slow_correct_code_pass(tmp_path):
    """The reference takes 0.3 s: limit = max(floor 0.5, 10 x 0.3); fixed 0.5 s would fail the same sample."""
    data = _dataset(tmp_path, canonical="    import time\n    time.sleep(0.3)\n    return x\n")
    samples = _write(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "completion": "    import time\n"
                                             "    time.sleep(0.8)\n    return x\n"}])
    canon = evaluate_samples(samples, data, tmp_path / "a.jsonl", ks=[1], timeout=0.5, progress=False)
    fixed = evaluate_samples(samples, data, tmp_path / "b.jsonl", ks=[1], timeout=0.5, progress=False,
                             time_limits="fixed")
    a = json.loads((tmp_path / "a.jsonl").read_text())
    b = json.loads((tmp_path / "b.jsonl").read_text())
    assert a["passed"] and a["time_limit"] >= 3.0, a
    assert b["status"] == "timeout" and b["time_limit"] == 0.5, b
    assert canon["time_limits"] == "canonical" and fixed["time_limits"] == "fixed"


def test_same_file_twice_identical_verdicts(tmp_path):
    data = _dataset(tmp_path)
    bodies = ["    return x\n", "    return 0\n", "    import os\n    os._exit(0)\n", "    while True:\n        pass\n",
              "    import random\n    return x if random.random() < 0.5 else 0\n"]
    samples = _write(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "completion": b} for b in bodies * 2])
    runs = []
    for name in ("x.jsonl", "y.jsonl"):
        evaluate_samples(samples, data, tmp_path / name, ks=[1], timeout=2, progress=False)
        runs.append([(r["status"]) for r in map(json.loads, (tmp_path / name).read_text().splitlines())])
    assert runs[0] == runs[1]
    assert runs[0][:4] == ["passed", "failed", "failed", "timeout"]



def test_sigkill_then_rerun_finishes_without_loss_or_duplicates(tmp_path):
    data = _dataset(tmp_path, test_sleep=0.15)
    n = 40
    rows = [{"task_id": "Toy/0", "completion": "    return x\n" if i % 3 else "    return 0\n", "i": i} for i in range(n)]
    samples = _write(tmp_path / "s.jsonl", rows)
    out = tmp_path / "r.jsonl"
    partial = tmp_path / "r.jsonl.partial"
    tag = f"cltr-resume-{uuid.uuid4().hex[:8]}"
    code = ("import sys; from cltrlib.codeeval import evaluate_samples; "
            "evaluate_samples(sys.argv[1], sys.argv[2], sys.argv[3], ks=[1], timeout=2, workers=2, progress=False)")
    env = dict(os.environ, CLTR_EXEC_TAG=tag, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-c", code, str(samples), str(data), str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if partial.exists() and len(partial.read_bytes().splitlines()) >= 1 + 8:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not out.exists()
    done_before = len(partial.read_bytes().splitlines()) - 1
    assert 8 <= done_before < n
    for _ in range(100):  # workers notice their supervisor is gone and take their programs with them
        if not procs_with(tag):
            break
        time.sleep(0.05)
    assert procs_with(tag) == [], "workers or programs outlived the killed evaluator"
    with open(partial, "ab") as fh:
        fh.write(b'{"index": 39, "pass')  # a torn last line, as a kill mid-write would leave
    summary = evaluate_samples(samples, data, out, ks=[1], timeout=2, workers=2, progress=False)
    assert summary["n_resumed"] == done_before
    res = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["i"] for r in res] == list(range(n))
    assert [r["passed"] for r in res] == [bool(i % 3) for i in range(n)]
    assert not partial.exists()


@pytest.mark.parametrize(
    ("lines", "line_no", "needle"),
    [
        ([{"task_id": "Toy/0", "completion": "    return x\n"}, "{not json"], 2, "not valid JSON"),
        ([{"task_id": "Toy/0", "completion": "    return x\n"}, b"{\"task_id\": \"Toy/0\", \"completion\": \"\xff\"}"],
         2, "not UTF-8"),
        ([{"task_id": "Toy/0", "completion": "    return x\n"}, {"task_id": "Nope/3", "completion": "x"}], 2,
         "unknown task_id"),
        ([{"task_id": "Toy/0"}], 1, "neither 'completion' nor 'solution'"),
        ([{"task_id": "Toy/0", "completion": 3}], 1, "'completion' is int"),
        (["[1, 2]"], 1, "must be a JSON object"),
        ([{"completion": "x"}], 1, "'task_id'"),
    ],
)
def test_bad_input_names_the_line_and_writes_nothing(tmp_path, lines, line_no, needle):
    data = _dataset(tmp_path)
    path = tmp_path / "bad.jsonl"
    with open(path, "wb") as fh:
        for r in lines:
            fh.write((r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode()) + b"\n")
    out = tmp_path / "out" / "r.jsonl"
    with pytest.raises(SampleError, match=rf"bad\.jsonl:{line_no}: .*{needle}"):
        evaluate_samples(path, data, out, progress=False)
    assert not out.exists() and not Path(str(out) + ".partial").exists()


def test_read_samples_gz_and_empty(tmp_path):
    import gzip

    gz = tmp_path / "s.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps({"task_id": "Toy/0", "solution": "x"}) + "\n\n")
    assert read_samples(gz)[0]["_line"] == 1
    empty = _write(tmp_path / "e.jsonl", [])
    with pytest.raises(SampleError, match="no samples"):
        read_samples(empty)


def test_progress_counts_and_watchdog_line(tmp_path, monkeypatch, capsys):
    """The third sample's worker is frozen from outside (programs cannot signal their worker where Landlock
    scopes signals): the watchdog reports it by sample and line, and the counts add up."""
    monkeypatch.setattr(pool_mod, "WATCHDOG_NOTICE", 0.3)
    monkeypatch.setattr(pool_mod, "WATCHDOG_KILL", 1.0)
    tag = f"cltr-watchdog-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CLTR_EXEC_TAG", tag)
    data = _dataset(tmp_path)
    slow = "    import time\n    time.sleep(30)\n"
    samples = _write(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "completion": c} for c in
                                            ("    return x\n", "    return 0\n", slow)])
    partial = tmp_path / "r.jsonl.partial"

    def freeze_when_two_done() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if partial.exists() and len(partial.read_bytes().splitlines()) >= 3:  # header + 2 verdicts
                for pid in procs_with(tag):
                    try:
                        os.kill(pid, signal.SIGSTOP)
                    except OSError:
                        pass
                return
            time.sleep(0.01)

    freezer = threading.Thread(target=freeze_when_two_done, daemon=True)
    freezer.start()
    summary = evaluate_samples(samples, data, tmp_path / "r.jsonl", ks=[1], timeout=0.5, time_limits="fixed",
                               workers=1, progress=True)
    freezer.join()
    err = capsys.readouterr().err
    assert "passed=1" in err and "failed=1" in err and "timeout=1" in err
    assert "watchdog: sample 2 (Toy/0, line 3) still running" in err
    assert summary["n_timeout"] == 1


def test_canonical_check_is_stored_by_content_and_reread(tmp_path, monkeypatch):
    from cltrlib.codeeval import canonical, check_canonical
    from cltrlib.data import load_problems

    monkeypatch.setenv("CLTR_RESULTS_DIR", str(tmp_path / "results"))
    good, bad = load_problems(_dataset(tmp_path)), load_problems(_dataset(tmp_path, canonical="    return 0\n"))
    first = check_canonical(good, timeout=2)
    assert first.summary["pass@1"] == 1.0 and first.results["Toy/0"]["status"] == "passed"
    assert first.path.parent == tmp_path / "results" / "canonical"
    failing = check_canonical(bad, timeout=2)
    assert failing.path != first.path and failing.results["Toy/0"]["status"] == "failed"
    monkeypatch.setattr(canonical, "evaluate_samples", lambda *a, **k: pytest.fail("a stored check ran again"))
    assert check_canonical(good, timeout=2) == first

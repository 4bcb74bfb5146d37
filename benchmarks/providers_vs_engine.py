"""Our in-process engine vs llama.cpp's server, side by side in one run, on the same prompts and models.

For each embedded model: notebook 02's ``local`` generation (the model's prompt mode, greedy, the profile's token
cap) on the first ``--limit`` problems, once through the engine (``provider="hf"``: the GGUF dequantised to an
fp32 HF folder, all prompts as one decode group) and once through ``python -m llama_cpp.server`` on the same GGUF
file (``provider="openai"``: its own quantised kernels, one request at a time), both as stored runs evaluated in the
sandbox. Reported: wall time, new tokens and new tokens/s (the engine's counted with the model's tokenizer, the
server's from its usage fields), how many greedy completions are identical, and pass@1 of each with its exact 95%
interval and the paired (discordant) counts. Both sides get the same threads (``--threads``, default 1: one core
each, as the suite's CPU slots give).

    .venv/bin/python benchmarks/providers_vs_engine.py --limit 24

``--plan local`` compares instead on notebook 02's own ``local`` runs (all 164 problems, EN): the engine side is
the profile's stored run (generated first if the store lacks it), the server side is generated (timed) through the
normal code-eval path with the same prompt mode and cap, and both are evaluated the way notebook 02 evaluates
(``run_evaluation``): pass@1 with its exact interval, the paired discordant counts and the exact McNemar p-value::

    .venv/bin/python benchmarks/providers_vs_engine.py --plan local --models smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from cltrlib.codeeval.runs import run_evaluation  # noqa: E402
from cltrlib.codegen.run import GenerationConfig, generation_store, run_generation  # noqa: E402
from cltrlib.metrics import clopper_pearson, discordant_counts, mcnemar_exact  # noqa: E402
from cltrlib.models import EMBEDDED, default_prompt_mode, load_causal_lm  # noqa: E402
from cltrlib.providers.hf import HFProvider  # noqa: E402
from cltrlib.providers.llamacpp import LlamaCppServer  # noqa: E402


def _passed(summary: dict) -> dict[str, bool]:
    rows = [json.loads(line) for line in Path(summary["results"]).read_text().splitlines()]
    return {r["task_id"]: bool(r["passed"]) for r in rows}


def _pass1(passed: dict[str, bool]) -> dict:
    k, n = sum(passed.values()), len(passed)
    lo, hi = clopper_pearson(k, n)
    return {"passed": k, "n": n, "pass@1": round(100 * k / n, 2), "ci95": [round(100 * lo, 1), round(100 * hi, 1)]}


def compare(model_name: str, dataset: str, limit: int, max_new_tokens: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    model, tok = load_causal_lm(model_name, device="cpu")
    mode = default_prompt_mode(model_name, tok)
    base = {"model": model_name, "dataset": dataset, "prompt_mode": mode, "limit": limit,
            "max_new_tokens": max_new_tokens, "batch_size": limit}
    out: dict = {"model": model_name, "dataset": dataset, "mode": mode, "problems": limit,
                 "max_new_tokens": max_new_tokens, "threads": threads}

    cfg = GenerationConfig(**base)
    if generation_store(cfg, mode).is_complete():
        raise SystemExit(f"{model_name}: the engine run is stored already, nothing would be timed; point "
                         "CLTR_RESULTS_DIR at an empty folder")
    t0 = time.perf_counter()
    eng_run = run_generation(cfg, progress=False, provider=HFProvider(model_name, batch_size=limit, model=model,
                                                                       tokenizer=tok))
    eng_wall = time.perf_counter() - t0
    eng_recs = eng_run.records()
    eng_tokens = sum(len(tok(r["raw"], add_special_tokens=False).input_ids) for r in eng_recs)
    del model

    t0 = time.perf_counter()
    with LlamaCppServer(model_name, threads=threads, n_ctx=2048) as srv:
        start_s = time.perf_counter() - t0
        scfg = GenerationConfig(**base, **srv.options(), concurrency=1)
        t0 = time.perf_counter()
        srv_run = run_generation(scfg, progress=False)
        srv_wall = time.perf_counter() - t0
    srv_recs = srv_run.records()
    srv_tokens = sum((r.get("usage") or {}).get("completion_tokens", 0) for r in srv_recs)

    def program(r: dict) -> str:
        return r["solution"] if "solution" in r else r["completion"]

    same = sum(program(a) == program(b) for a, b in zip(eng_recs, srv_recs, strict=True))
    eng_pass, srv_pass = (_passed(run_evaluation(r, progress=False)) for r in (eng_run, srv_run))
    tasks = sorted(eng_pass)
    b, c = discordant_counts([eng_pass[t] for t in tasks], [srv_pass[t] for t in tasks])
    out.update({
        "engine": {"wall_s": round(eng_wall, 1), "new_tokens": eng_tokens,
                   "new_tokens_per_s": round(eng_tokens / eng_wall, 1), **_pass1(eng_pass),
                   "store": str(eng_run.store.path)},
        "llama_cpp_server": {"wall_s": round(srv_wall, 1), "server_start_s": round(start_s, 1),
                             "new_tokens": srv_tokens, "new_tokens_per_s": round(srv_tokens / srv_wall, 1),
                             **_pass1(srv_pass), "store": str(srv_run.store.path), "revision": srv.revision},
        "identical_greedy_completions": f"{same}/{len(eng_recs)}",
        "discordant_engine_only_server_only": [b, c], "mcnemar_exact_p": round(mcnemar_exact(b, c), 3),
    })
    return out


def compare_plan(model_name: str, profile: str, dataset: str, threads: int) -> dict:
    """The profile's stored engine run of ``model_name`` on ``dataset`` beside the same run through llama.cpp's
    server (see the module docstring): pass@1 of each, identical texts, discordant counts, McNemar."""
    from dataclasses import replace

    from cltrlib.models import load_tokenizer
    from cltrlib.study import study

    torch.set_num_threads(threads)
    plan = [c for c in study(profile).codeeval.generation_configs() if c.model == model_name and
            c.dataset == dataset]
    if not plan:
        raise SystemExit(f"the {profile} profile has no code-eval run of {model_name} on {dataset}")
    eng_cfg = plan[0]
    t0 = time.perf_counter()
    eng_run = run_generation(eng_cfg, progress=False)  # stored: read back; else generated here (not timed for rates)
    eng_read = time.perf_counter() - t0
    mode = eng_run.prompt_mode
    eng_recs = eng_run.records()
    tok = load_tokenizer(model_name)
    eng_tokens = sum(len(tok(r["raw"], add_special_tokens=False).input_ids) for r in eng_recs)
    with LlamaCppServer(model_name, threads=threads, n_ctx=2048) as srv:
        scfg = replace(eng_cfg, prompt_mode=mode, concurrency=1, **srv.options())
        t0 = time.perf_counter()
        srv_run = run_generation(scfg, progress=False)
        srv_wall = time.perf_counter() - t0
        revision = srv.revision
    srv_recs = srv_run.records()
    srv_tokens = sum((r.get("usage") or {}).get("completion_tokens", 0) for r in srv_recs)
    by_task = {r["task_id"]: r for r in srv_recs}
    same_raw = sum(r["raw"] == by_task[r["task_id"]]["raw"] for r in eng_recs)
    eng_pass, srv_pass = (_passed(run_evaluation(r, timeout=study(profile).codeeval.timeout, progress=False))
                          for r in (eng_run, srv_run))
    tasks = sorted(eng_pass)
    b, c = discordant_counts([eng_pass[t] for t in tasks], [srv_pass[t] for t in tasks])
    return {"model": model_name, "dataset": dataset, "mode": mode, "problems": len(eng_recs),
            "max_new_tokens": eng_cfg.max_new_tokens, "threads": threads, "profile": profile,
            "engine": {"stored_run_read_s": round(eng_read, 1), "new_tokens": eng_tokens, **_pass1(eng_pass),
                       "store": str(eng_run.store.path)},
            "llama_cpp_server": {"wall_s": round(srv_wall, 1), "new_tokens": srv_tokens,
                                 "new_tokens_per_s": round(srv_tokens / srv_wall, 1) if srv_wall > 1 else None,
                                 **_pass1(srv_pass), "store": str(srv_run.store.path), "revision": revision},
            "identical_greedy_texts": f"{same_raw}/{len(eng_recs)}",
            "both_solved": sum(eng_pass[t] and srv_pass[t] for t in tasks),
            "discordant_engine_only_server_only": [b, c], "mcnemar_exact_p": round(mcnemar_exact(b, c), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(EMBEDDED))
    ap.add_argument("--dataset", default="humaneval")
    ap.add_argument("--limit", type=int, default=24, help="first N problems")
    ap.add_argument("--max-new-tokens", type=int, default=256, help="notebook 02's local cap")
    ap.add_argument("--threads", type=int, default=1, help="threads for each side")
    ap.add_argument("--out", default=None, help="also append each model's JSON line here")
    ap.add_argument("--plan", default=None, help="a profile (local): compare on its stored full code-eval runs")
    args = ap.parse_args()
    for name in args.models:
        if args.plan:
            res = compare_plan(name, args.plan, args.dataset, args.threads)
        else:
            res = compare(name, args.dataset, args.limit, args.max_new_tokens, args.threads)
        print(json.dumps(res, indent=1), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()

"""The core commands, whose parsers load no stage package (so ``cltr codeeval evaluate`` starts without torch):

- ``cltr codeeval evaluate SAMPLES --dataset ... --out ...``  run samples against a data set's tests
  (human-eval compatible)
- ``cltr codegen generate --model ... --dataset ...``  generate code samples with a model (stored, resumable);
  under ``accelerate launch`` / ``torchrun`` the processes split the run (``cltrlib.codegen.parallel``)
- ``cltr models prepare [NAME ...]`` / ``cltr models list``  convert the embedded models / list the registry
- ``cltr reproduce --profile ...``  run every notebook with papermill (live progress, a time table at the end)

The command bodies import their stage lazily; the other stages' commands live in ``cltrlib/<stage>/cli.py``.
"""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cltrlib.codeeval import SampleError, evaluate_samples

    ks = [int(k) for k in str(args.k).split(",") if k]
    try:
        summary = evaluate_samples(args.samples, args.dataset, args.out, ks=ks, timeout=args.timeout,
                                   workers=args.workers, memory_mb=args.memory_mb, progress=not args.quiet,
                                   time_limits=args.time_limits)
    except (SampleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from cltrlib.models import EMBEDDED_MODELS, PAPER_MODELS, prepare_embedded

    if args.models_command == "prepare":
        for name in args.names or list(EMBEDDED_MODELS):
            print(f"{name}: {prepare_embedded(name)}")
    else:
        for spec in [*EMBEDDED_MODELS.values(), *PAPER_MODELS.values()]:
            print(f"{spec.name:42s} {spec.hub_id:52s} {spec.size:5s} mode={spec.prompt_mode} base={spec.base}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from cltrlib.codegen.run import GenerationConfig, run_generation
    from cltrlib.providers import ProviderError

    cfg = GenerationConfig(model=args.model, dataset=args.dataset, prompt_mode=args.prompt_mode, n=args.n,
                           temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                           max_new_tokens=args.max_new_tokens, limit=args.limit, batch_size=args.batch_size,
                           provider=args.provider, base_url=args.base_url, api_model=args.api_model,
                           revision=args.revision, concurrency=args.concurrency, max_retries=args.max_retries,
                           request_timeout=args.request_timeout)
    from cltrlib.codegen.parallel import World, launched, run_generation_parallel

    if launched():  # one of several processes of `accelerate launch` / torchrun: data-parallel, one stored run
        if cfg.provider != "hf":
            print("error: a launch of several processes splits the in-process engine (--provider hf); a server "
                  "parallelises itself: run one `cltr codegen generate --provider openai` against it", file=sys.stderr)
            return 2
        run = run_generation_parallel(cfg)
        if not World.from_env().is_main:
            return 0
    else:
        try:
            from cltrlib.codegen.run import make_provider

            run = run_generation(cfg, provider=make_provider(cfg, api_key=args.api_key))
        except ProviderError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.out:
        run.export_samples(args.out)
    print(json.dumps({"samples": str(run.samples_path()), "store": str(run.store.path)}))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from cltrlib.reproduce import run_notebooks

    return run_notebooks(args.profile, only=args.only, log_output=args.verbose)


def register(sub) -> None:
    """Add the core commands (``codeeval``, ``codegen``, ``models``, ``reproduce``) to ``cltr``'s subparsers."""
    from cltrlib.study import PROFILES  # a few dataclasses: no torch

    p = sub.add_parser("codeeval", help="run code samples against a data set's tests (sandboxed, resumable)")
    csub = p.add_subparsers(dest="codeeval_command", required=True)
    p = csub.add_parser("evaluate", help="run samples against a data set's tests (human-eval compatible)")
    p.add_argument("samples", help="samples JSONL: task_id + completion (appended to the prompt) or solution")
    p.add_argument("--dataset", default="humaneval", help="humaneval | jhumaneval | path to a JSONL(.gz) file")
    p.add_argument("--k", default="1,10,100", help="comma-separated k values for pass@k")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per program")
    p.add_argument("--workers", type=int, default=None, help="parallel programs (default: CPU count)")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space cap per program")
    p.add_argument("--out", required=True, help="results JSONL (input fields + passed + result)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--time-limits", default="canonical", choices=["canonical", "fixed"],
                   help="canonical: per task max(--timeout, 10x the reference solution's measured time); fixed: --timeout")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("codegen", help="generate code samples with a model")
    gsub = p.add_subparsers(dest="codegen_command", required=True)
    p = gsub.add_parser("generate", help="generate code samples with a model (stored, resumable)")
    p.add_argument("--model", required=True, help="embedded name, paper name, hub id or local path")
    p.add_argument("--dataset", default="humaneval")
    p.add_argument("--prompt-mode", default="auto", choices=["auto", "completion", "chat"])
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--limit", type=int, default=None, help="first N problems only")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", default=None, help="also write the samples JSONL here")
    p.add_argument("--provider", default="hf", choices=["hf", "openai"],
                   help="hf: the in-process engine; openai: an OpenAI-compatible server (vLLM, SGLang, llama.cpp) "
                        "or API")
    p.add_argument("--base-url", default=None, help="openai: the server's base URL, e.g. http://127.0.0.1:8000/v1 "
                                                    "(default: $OPENAI_BASE_URL, else OpenAI's API)")
    p.add_argument("--api-model", default=None, help="openai: the served model name (default: the registry's API "
                                                     "name, else the one model the server lists)")
    p.add_argument("--api-key", default=None, help="openai: the API key (default: $OPENAI_API_KEY; never stored)")
    p.add_argument("--revision", default=None, help="openai: what you know of the served weights (in the store key)")
    p.add_argument("--concurrency", type=int, default=4, help="openai: requests in flight")
    p.add_argument("--max-retries", type=int, default=5, help="openai: retries per request (backoff, Retry-After)")
    p.add_argument("--request-timeout", type=float, default=600.0, help="openai: seconds per request")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("models", help="prepare the embedded models or list the registry")
    msub = p.add_subparsers(dest="models_command", required=True)
    m = msub.add_parser("prepare", help="convert the embedded models (GGUF from PyPI) into HF folders, once")
    m.add_argument("names", nargs="*", help="embedded model names (default: all)")
    m.set_defaults(func=_cmd_models)
    m = msub.add_parser("list", help="the registry: embedded models and the papers' hub models")
    m.set_defaults(func=_cmd_models)

    p = sub.add_parser("reproduce", help="run every notebook with papermill on a profile (live progress)")
    p.add_argument("--profile", default="local", choices=list(PROFILES))
    p.add_argument("--only", nargs="*", default=None, help="notebook name prefixes, e.g. 02 03")
    p.add_argument("--verbose", action="store_true", help="also show every line the cells print")
    p.set_defaults(func=_cmd_reproduce)

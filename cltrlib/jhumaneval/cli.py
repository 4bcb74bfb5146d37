"""``cltr jhumaneval validate PATH [--json]``, ``cltr jhumaneval build --backend ... --out PATH`` and
``cltr jhumaneval mt --model gemma3-270m`` (an embedded model through llama.cpp's server: raw and repaired builds
under data/builds, read back when committed with the same configuration)."""

from __future__ import annotations

import argparse
import json
import sys

from cltrlib.models import GEMMA3


def _cmd_validate(args: argparse.Namespace) -> int:
    from cltrlib.data.problems import DataNotFoundError
    from cltrlib.jhumaneval.validate import validate_file

    path = args.path
    if path in ("jhumaneval", "jhumaneval-rebuilt"):
        from cltrlib.data.problems import JHUMANEVAL_RELPATH, resolve_data_file
        from cltrlib.jhumaneval.build import default_build_path

        try:
            path = resolve_data_file(JHUMANEVAL_RELPATH) if path == "jhumaneval" else default_build_path()
        except DataNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        report = validate_file(path, run_solutions=not args.no_run, timeout=args.timeout, workers=args.workers)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        for d in report.defects:
            print(f"{d.task_id:15s} {d.check:22s} {d.severity:6s} {d.detail}")
        print(f"{report.path}: {report.n_records} records, {len(report.defects)} defects "
              f"({report.counts_by_severity()}) in {len({d.task_id for d in report.defects})} tasks; "
              f"by check: {report.counts()}")
    if args.ignore_minor:
        return int(any(d.severity != "minor" for d in report.defects))
    return int(not report.ok)


def _cmd_build(args: argparse.Namespace) -> int:
    from cltrlib.jhumaneval.backends import OpenAIRepairer, make_translator
    from cltrlib.jhumaneval.build import build_jhumaneval, default_build_path
    from cltrlib.jhumaneval.cache import TranslationCache
    from cltrlib.jhumaneval.glossary import Glossary
    from cltrlib.jhumaneval.http import RetryPolicy, TranslationError
    from cltrlib.jhumaneval.memory import TranslationMemory

    try:
        glossary = Glossary.load(args.glossary)
        cache = TranslationCache(args.cache) if args.cache else TranslationCache()
        policy = RetryPolicy(max_retries=args.max_retries)
        memory = None
        if args.backend == "memory":
            backend = "memory"
            memory = TranslationMemory.published(args.memory)
        else:
            backend = make_translator(args.backend, model=args.model, base_url=args.base_url, policy=policy,
                                      api_key=args.api_key, deepl_key=args.deepl_key,
                                      max_new_tokens=args.max_new_tokens,
                                      glossary_lines=glossary.instructions([e.source for e in glossary.entries]))
        repairer = None
        if args.repair:
            if not args.repair_model:
                raise ValueError("--repair needs --repair-model (an OpenAI-compatible chat model)")
            repairer = OpenAIRepairer(args.repair_model, base_url=args.repair_base_url or args.base_url,
                                      api_key=args.api_key, policy=policy)
        out = args.out or default_build_path()
        report = build_jhumaneval(backend, out, memory=memory, glossary=glossary, cache=cache, repairer=repairer,
                                  limit=args.limit, tgt=args.target_lang, progress=not args.quiet,
                                  repair_rounds=args.repair_rounds)
    except (TranslationError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    return 0


def _cmd_mt(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cltrlib.jhumaneval.mt import ensure_mt_builds

    out = ensure_mt_builds(args.model, repair_rounds=args.repair_rounds, builds_dir=Path(args.dir) if args.dir else
                           None, threads=args.threads, force=args.force, progress=not args.quiet)
    print(json.dumps({k: {"path": str(v["path"]), "built": v["built"], "meta": v["meta"]} for k, v in out.items()},
                     ensure_ascii=False, indent=1))
    return 0


def register(sub) -> None:
    p = sub.add_parser("jhumaneval", help="build and validate JHumanEval (segment, translate, reassemble)")
    jsub = p.add_subparsers(dest="jhumaneval_command", required=True)

    v = jsub.add_parser("validate", help="check a JHumanEval file against HumanEval; non-zero exit on defects")
    v.add_argument("path", help="JSONL(.gz) in the published schema, or 'jhumaneval' / 'jhumaneval-rebuilt'")
    v.add_argument("--json", action="store_true", help="print the machine-readable report")
    v.add_argument("--no-run", action="store_true", help="skip running the canonical solutions in the sandbox")
    v.add_argument("--ignore-minor", action="store_true", help="exit 0 when only whitespace-only defects remain")
    v.add_argument("--timeout", type=float, default=10.0)
    v.add_argument("--workers", type=int, default=None)
    v.set_defaults(func=_cmd_validate)

    b = jsub.add_parser("build", help="translate HumanEval into a JHumanEval file")
    b.add_argument("--backend", required=True, choices=["memory", "deepl", "openai", "hf"])
    b.add_argument("--out", default=None, help="output JSONL(.gz) (default data/built/jhumaneval-rebuilt.jsonl.gz)")
    b.add_argument("--memory", default=None, help="memory backend: a published-schema file (default: the mirror's)")
    b.add_argument("--model", default=None, help="openai: chat model name; hf: embedded name, hub id or path")
    b.add_argument("--base-url", default=None, help="API base URL (deepl: https://api.deepl.com; openai: .../v1)")
    b.add_argument("--api-key", default=None, help="openai key (default: $OPENAI_API_KEY)")
    b.add_argument("--deepl-key", default=None, help="DeepL key (default: $DEEPL_AUTH_KEY)")
    b.add_argument("--repair", action="store_true", help="run the terminology-repair pass (OpenAI-compatible)")
    b.add_argument("--repair-model", default=None)
    b.add_argument("--repair-base-url", default=None)
    b.add_argument("--repair-rounds", type=int, default=None,
                   help="hf: validator-driven re-translation rounds, then the deterministic post-edits (as notebook 08)")
    b.add_argument("--glossary", default=None, help="extra glossary JSON (list of {source, target, wrong})")
    b.add_argument("--cache", default=None, help="translation cache SQLite file (default ~/.cache/cltr/...)")
    b.add_argument("--max-retries", type=int, default=5)
    b.add_argument("--max-new-tokens", type=int, default=256, help="hf: generation budget per segment")
    b.add_argument("--target-lang", default="ja")
    b.add_argument("--limit", type=int, default=None, help="first N HumanEval tasks only")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_cmd_build)

    m = jsub.add_parser("mt", help="translate with an embedded model through llama.cpp's server (raw + repaired)")
    m.add_argument("--model", default=GEMMA3, help="embedded model (its GGUF is served)")
    m.add_argument("--repair-rounds", type=int, default=2)
    m.add_argument("--dir", default=None, help="where the builds go (default data/builds)")
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--force", action="store_true", help="translate even when a matching build is committed")
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=_cmd_mt)

"""``cltr embeddings similarity ...``: per-layer P/R cosine for one model and corpus (Paper C, Table 2).

Example (cached per model + adapter + corpus + language + pooling; a rerun is instant)::

    nice -n 10 cltr embeddings similarity --model gemma3-270m --corpus pud --n 32 --out /tmp/sim.csv
"""

from __future__ import annotations

import argparse
import sys


def _cmd_similarity(args: argparse.Namespace) -> int:
    from cltrlib.embeddings.extract import cached_embeddings
    from cltrlib.embeddings.pairs import build_pairs
    from cltrlib.embeddings.pooling import POOLINGS
    from cltrlib.embeddings.similarity import similarity_table

    if args.adapter_dir and not args.adapter_key:
        print("error: --adapter-dir needs --adapter-key (the name the cache files it under)", file=sys.stderr)
        return 2
    try:
        pairs = build_pairs(args.corpus, args.n or None, seed=args.seed)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    max_length = args.max_length
    if max_length is None:  # the longest sentence of any language: no language is truncated more than another
        from cltrlib.lengths import fit_max_length
        from cltrlib.models import load_tokenizer

        max_length = fit_max_length(load_tokenizer(args.model), pairs.texts)
    emb = cached_embeddings(args.model, args.corpus, pairs.texts, adapter_key=args.adapter_key,
                            adapter_dir=args.adapter_dir, poolings=POOLINGS, max_length=max_length,
                            batch_size=args.batch_size, device=args.device, progress=not args.quiet)
    table = similarity_table(args.model, args.adapter_key or "base", args.corpus, pairs, emb, POOLINGS)
    if args.out:
        table.to_csv(args.out, index=False)
    last = table[table.layer == table.layer.max()]
    wide = last.pivot_table(index="lang_pair", columns=["pooling", "pair_type"], values="mean_cosine")
    print(f"layer {int(table.layer.max())} (last), n={len(pairs.ids)} pairs per language pair, "
          f"max_length={max_length} tokens")
    print(wide.round(3).to_string())
    return 0


def register(sub) -> None:
    """Add ``cltr embeddings similarity`` (Paper C's notebooks 05-06 run the rest of the stage)."""
    p = sub.add_parser("embeddings", help="Paper C: sentence embeddings of parallel vs random pairs")
    esub = p.add_subparsers(dest="embeddings_command", required=True)
    p = esub.add_parser("similarity", help="per-layer cosine of parallel vs random en-X pairs (Paper C)")
    p.add_argument("--model", required=True, help="embedded name, hub id or local path")
    p.add_argument("--corpus", default="pawsx", choices=["pawsx", "pud", "sib200"])
    p.add_argument("--n", type=int, default=64, help="pairs per language pair (default 64; all: 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--adapter-key", default=None, help="cache name of a LoRA adapter (e.g. its store key)")
    p.add_argument("--adapter-dir", default=None, help="folder with adapter_config.json")
    p.add_argument("--max-length", type=int, default=None,
                   help="token cap (default: fitted, the longest sentence of any language; nothing truncated)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="write the long table (all layers) as CSV")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_similarity)

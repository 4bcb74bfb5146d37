"""``cltr transfer run|adapters``: the Paper B grid without the notebook, and the saved classifiers."""

from __future__ import annotations

import argparse
import json

from cltrlib.study import PROFILES


def _cmd_run(args: argparse.Namespace) -> int:
    from cltrlib.study import study
    from cltrlib.transfer.experiment import run_grid
    from cltrlib.transfer.report import summary_table, write_transfer_tables

    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    s = study(args.profile).transfer.override(models=args.models.split(",") if args.models else None, dataset=args.dataset,
                     seeds=seeds, epochs=args.epochs)
    runs = run_grid(s)
    summary = summary_table(runs)
    if args.write_tables:
        print(json.dumps(write_transfer_tables(summary)))
    print(summary.to_string(index=False))
    return 0


def _cmd_adapters(args: argparse.Namespace) -> int:
    from cltrlib.transfer.adapters import list_adapters

    df = list_adapters()
    cols = ["base_model", "dataset", "condition", "pattern", "seed", "adapter_dir"]
    print(df[cols].to_string(index=False) if not df.empty else "no saved classifiers yet")
    return 0


def register(sub) -> None:
    p = sub.add_parser("transfer", help="Paper B: fine-tune classifiers en→ja (ja0/ja16/ja104) and list adapters")
    tsub = p.add_subparsers(dest="transfer_cmd", required=True)
    r = tsub.add_parser("run", help="run (or read) the grid of a profile; print mean (std) over seeds")
    r.add_argument("--profile", default="local", choices=list(PROFILES))
    r.add_argument("--models", help="comma-separated model names (default: the profile's)")
    r.add_argument("--dataset", help="sib200-science | sib200 | pawsx | path.csv (text,label,language)")
    r.add_argument("--seeds", help="comma-separated seeds")
    r.add_argument("--epochs", type=int)
    r.add_argument("--write-tables", action="store_true", help="also write figures/tables/transfer_{f1,auroc}")
    r.set_defaults(func=_cmd_run)
    a = tsub.add_parser("adapters", help="list the saved fine-tuned classifiers (for Paper C's embeddings)")
    a.set_defaults(func=_cmd_adapters)

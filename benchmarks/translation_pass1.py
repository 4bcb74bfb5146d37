"""pass@1 and the soft measure of any model on the committed machine-translated JHumanEval builds, beside English and
the published set.

Notebook 08 runs pass@1 for the `local` profile's ``pass1_runs`` only (SmolLM2 chat, on the repaired build): each
further 164-problem generation costs about 6 min on 2 cores and `make reproduce` has no room for it. This script runs
the rest once, through the same code path (``cltrlib.jhumaneval.experiment.pass1_runs``: generation, sandboxed
evaluation and the results store, keyed by configuration, so notebook 02's English and published runs are read back
when ``CLTR_RESULTS_DIR`` points at a store that has them), and prints the same table as the notebook.
``--measure soft`` prints notebook 08's soft-measure table instead (``experiment.soft_table``: the model's own
prompt mode, all problems unless ``--limit``): the `local` profile scores Gemma on the first
``soft_limits`` problems only, this gives the whole set.

    CLTR_RESULTS_DIR=results .venv/bin/python benchmarks/translation_pass1.py --model gemma3-270m \\
        --mode completion --builds MT MT+repair
    CLTR_RESULTS_DIR=results .venv/bin/python benchmarks/translation_pass1.py --model gemma3-270m --measure soft

Results: benchmarks/RESULTS.md, "pass@1 on the machine-translated builds".
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--mode", default="completion", help="prompt mode (chat | completion)")
    ap.add_argument("--translator", default="gemma3-270m", help="the model whose committed builds are scored")
    ap.add_argument("--builds", nargs="+", default=["MT", "MT+repair"], choices=["MT", "MT+repair"])
    ap.add_argument("--profile", default="local", help="notebook 02's generation settings of this profile")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--measure", nargs="+", default=["pass1"], choices=["pass1", "soft"])
    args = ap.parse_args()

    import pandas as pd

    from cltrlib.jhumaneval import experiment as ex
    from cltrlib.jhumaneval.mt import build_paths
    from cltrlib.study import study

    ce = study(args.profile).codeeval
    paths = build_paths(args.translator)
    kinds = {"MT": "mt", "MT+repair": "mt_repaired"}
    datasets = {"english": "humaneval", "published": "jhumaneval",
                **{f"{args.translator} {b}": str(paths[kinds[b]]) for b in args.builds}}
    if "soft" in args.measure:
        soft = ex.soft_table([args.model], {k: v for k, v in datasets.items() if k != "english"}, limit=args.limit)
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(soft.round(4).to_string(index=False))
    if "pass1" in args.measure:
        per = ex.pass1_runs(args.model, args.mode, datasets, max_new_tokens=ce.max_new_tokens,
                            batch_size=ce.batch_size, limit=args.limit, timeout=ce.timeout)
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(ex.pass1_table(args.model, args.mode, per).round(2).to_string(index=False))


if __name__ == "__main__":
    main()

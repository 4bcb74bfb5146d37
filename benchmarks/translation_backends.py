"""One model, two backends: a whole JHumanEval build through the HF backend beside the committed llama.cpp build.

Issue 21 asks for real translation runs through both backends we can run here. Notebook 08's builds come from
llama.cpp's server (``ServedModelTranslator``); ``HFTranslator`` asks the same model the same few-shot prompt
(``few_shot_prompt`` on the same ``SHOT_TASKS``) through transformers ``generate`` (greedy, left-padded batches of 8,
cut at the first newline). Both read the same weights (the embedded GGUF, dequantised to HF format once). This script
scores an HF build made with the CLI against the committed raw llama.cpp build of the same model: chrF of each against
the published JHumanEval, chrF of one against the other, how many tasks' prose is identical, and the validator's
defects of each (canonical solutions run in the sandbox).

    .venv/bin/python -m cltrlib jhumaneval build --backend hf --model gemma3-270m --out /tmp/hf-build.jsonl.gz
    .venv/bin/python benchmarks/translation_backends.py /tmp/hf-build.jsonl.gz --model gemma3-270m

Results: benchmarks/RESULTS.md, "One translator, two backends".
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_build", help="the HF backend's build (JSONL, published schema)")
    ap.add_argument("--model", default="gemma3-270m", help="whose committed llama.cpp raw build to compare with")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import pandas as pd

    from cltrlib.data.problems import JHUMANEVAL_RELPATH, read_jsonl, resolve_data_file
    from cltrlib.jhumaneval import quality as q
    from cltrlib.jhumaneval import report as jr
    from cltrlib.jhumaneval.backends import SHOT_TASKS
    from cltrlib.jhumaneval.mt import build_paths
    from cltrlib.jhumaneval.validate import validate_file

    published_path = resolve_data_file(JHUMANEVAL_RELPATH)
    published = read_jsonl(published_path)
    paths = {"llama.cpp (committed raw build)": build_paths(args.model)["mt"], "HF backend": args.hf_build}
    builds = {name: read_jsonl(p) for name, p in paths.items()}
    chrf, _ = q.chrf_scores(builds, published, exclude=SHOT_TASKS)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print("chrF against the published JHumanEval (docstring prose, shot tasks left out):")
        print(chrf.round(2).to_string(index=False))
        # one backend against the other: the llama.cpp build's prose stands in for the reference
        (served_name, served), (hf_name, hf) = builds.items()
        served_prose, hf_prose = q.prose_by_task(served), q.prose_by_task(hf)
        agree, _ = q.chrf_table({hf_name: hf_prose}, served_prose, exclude=SHOT_TASKS)
        print(f"\nchrF of the HF build's prose against the llama.cpp build's: {agree['chrF'].iloc[0]:.1f} "
              f"[{agree['ci_low'].iloc[0]:.1f}, {agree['ci_high'].iloc[0]:.1f}]")
        shots = {q.normalise_task_id(t) for t in SHOT_TASKS}
        tasks = [t for t in served_prose if t not in shots]
        same = sum(served_prose[t] == hf_prose.get(t) for t in tasks)
        print(f"tasks whose prose is identical in both builds: {same}/{len(tasks)}")
        reports = {name: validate_file(p, workers=args.workers) for name, p in paths.items()}
        print("\nvalidator:")
        print(jr.summary_table(reports).to_string())


if __name__ == "__main__":
    main()

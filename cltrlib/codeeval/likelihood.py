"""A soft EN–JA measure: how likely the canonical solution is after the English vs the Japanese prompt.

Why: pass@1 on 164 problems is too coarse for small models (SmolLM2 solves 8 problems from English prompts and 5 from
Japanese ones), so the EN–JA gap's interval spans zero and a CLTR built on it is unbounded. The mean per-token
log-likelihood of the reference solution is defined for every problem, continuous, and paired across the languages
(the same problem, the same target tokens), so its paired interval is far narrower; continual pre-training
experiments use it as a soft CLTR.

What is scored, per problem and language: the prompt exactly as generation builds it for the model's prompt mode
(``cltrlib.codegen.prompts.build_prompt_text``); in chat mode followed by the problem's own stub, as a reply that
restates the function starts; then the **English** canonical solution as the target, tokenised on its own and
appended, so both languages score the identical token sequence and their per-token means compare like with like.
The score is sum(log p(target token | everything before)) / number of target tokens, in nats.

Runs are stored by (model revision, data set content, prompt mode, target set, version) and resumable, like every
other stage. Example::

    rows = score_canonical(SMOLLM2, "jhumaneval")
    gap = soft_gap(SMOLLM2)  # English minus Japanese, with a paired bootstrap CI
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cltrlib.codegen.engine import GenRequest, prompt_ids
from cltrlib.codegen.prompts import PROMPT_VERSION, build_prompt_text
from cltrlib.data import Problem, load_problems
from cltrlib.metrics import bootstrap_diff_ci
from cltrlib.store import RunStore

LIKELIHOOD_VERSION = "1"  # bump when what is scored changes: it is part of every run's store key
TARGET_DATASET = "humaneval"  # whose canonical solutions are the targets (the same tokens in every language)
BATCH = 8  # problems scored per stored batch (a kill loses at most this many)


def scored_context(problem: Problem, mode: str, tokenizer) -> tuple[str, bool]:
    """(text, add_special_tokens) that precedes the target: the generation prompt, plus the stub in chat mode."""
    text, add_special = build_prompt_text(problem, mode, tokenizer)
    if mode == "chat":
        text += problem.prompt  # the reply opens with the function's signature and docstring, in the prompt's language
    return text, add_special


def target_ids(tokenizer, solution: str) -> list[int]:
    """The target's ids, tokenised alone (no special tokens), so they are identical whatever precedes them."""
    return tokenizer(solution, add_special_tokens=False).input_ids


def sequence_logprob(model, context: Sequence[int], target: Sequence[int]) -> float:
    """Sum of log p(target[i] | context, target[:i]) under ``model`` (one sequence, no padding).

    Only the logits of the target positions are computed (``logits_to_keep``): Gemma-3's 262k-word head over every
    prompt position would cost hundreds of MB per problem for numbers we then drop.
    """
    import torch

    if not target:
        raise ValueError("empty target: nothing to score")
    ids = torch.tensor([list(context) + list(target)], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=len(target) + 1).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    tgt = torch.tensor(list(target), device=logp.device)
    return float(logp.gather(1, tgt[:, None]).sum())


def _store(model_name: str, dataset: str, mode: str, limit: int | None) -> RunStore:
    from cltrlib.codegen.run import dataset_fingerprint, dataset_key
    from cltrlib.models import model_revision

    cfg = {"model": model_name, "model_revision": model_revision(model_name), "dataset": dataset_key(dataset),
           "dataset_sha": dataset_fingerprint(dataset), "target_dataset": TARGET_DATASET,
           "target_sha": dataset_fingerprint(TARGET_DATASET), "prompt_mode": mode, "limit": limit,
           "prompt_version": PROMPT_VERSION, "likelihood_version": LIKELIHOOD_VERSION}
    label = f"{Path(model_name).name}-{Path(dataset).name.split('.')[0]}-{mode}"
    return RunStore("likelihood", cfg, label=label)


def score_canonical(model_name: str, dataset: str, prompt_mode: str = "auto", limit: int | None = None,
                    progress: bool = True) -> pd.DataFrame:
    """Per-problem log-likelihood of the English canonical solution after ``dataset``'s prompts (stored, resumable).

    Columns: task_id, language, n_tokens, logprob (sum, nats), mean_logprob (per token). Problems whose canonical
    solution is empty are skipped (none in HumanEval).
    """
    from cltrlib.models import default_prompt_mode, load, load_tokenizer
    from cltrlib.progress import tqdm

    mode = default_prompt_mode(model_name, load_tokenizer(model_name)) if prompt_mode == "auto" else prompt_mode
    problems = load_problems(dataset)[:limit] if limit else load_problems(dataset)
    targets = {p.task_id: p.canonical_solution for p in load_problems(TARGET_DATASET)}
    store = _store(model_name, dataset, mode, limit)
    with store.lock():
        done = {r["task_id"] for r in store.records()}
        todo = [p for p in problems if p.task_id not in done and targets.get(p.task_id)]
        if todo and not store.is_complete():
            model, tokenizer = load(model_name, "generate")
            bar = tqdm(total=len(todo), desc=f"log-likelihood {Path(model_name).name} {Path(dataset).name}",
                       disable=not progress)
            for start in range(0, len(todo), BATCH):
                recs = []
                for p in todo[start:start + BATCH]:
                    text, add_special = scored_context(p, mode, tokenizer)
                    context = prompt_ids(tokenizer, GenRequest(text, add_special, 0))
                    target = target_ids(tokenizer, targets[p.task_id])
                    total = sequence_logprob(model, context, target)
                    recs.append({"task_id": p.task_id, "language": p.language, "n_tokens": len(target),
                                 "logprob": total, "mean_logprob": total / len(target)})
                    bar.update(1)
                store.append(recs)
            bar.close()
        if not store.is_complete():
            store.mark_complete({"n_records": len(store.records()), "prompt_mode": mode})
    frame = pd.DataFrame(store.records())
    frame["prompt_mode"] = mode
    return frame


def soft_gap(model_name: str, en_dataset: str = "humaneval", ja_dataset: str = "jhumaneval",
             prompt_mode: str = "auto", limit: int | None = None, seed: int = 0) -> dict:
    """English minus Japanese mean per-token log-likelihood over the problems both runs scored, paired bootstrap CI.

    ``relative_ci_width`` = CI width / |gap|: the number to set beside pass@1's (a width above 2 means the interval
    reaches across zero)."""
    en = score_canonical(model_name, en_dataset, prompt_mode, limit, progress=True)
    ja = score_canonical(model_name, ja_dataset, prompt_mode, limit, progress=True)
    both = en.merge(ja, on="task_id", suffixes=("_en", "_ja"))
    if both.empty:
        raise ValueError(f"no problem was scored in both {en_dataset!r} and {ja_dataset!r}")
    gap, low, high = bootstrap_diff_ci(both["mean_logprob_en"].to_numpy(), both["mean_logprob_ja"].to_numpy(),
                                       seed=seed)
    return {"model": model_name, "prompt_mode": str(en["prompt_mode"].iloc[0]), "en_dataset": en_dataset,
            "ja_dataset": ja_dataset, "n_problems": len(both),
            "en_mean_logprob": float(both["mean_logprob_en"].mean()),
            "ja_mean_logprob": float(both["mean_logprob_ja"].mean()), "gap": gap, "ci_low": low, "ci_high": high,
            "en_better_share": float((both["mean_logprob_en"] > both["mean_logprob_ja"]).mean()),
            "relative_ci_width": relative_ci_width(gap, low, high)}


def relative_ci_width(point: float, low: float, high: float) -> float:
    """(high - low) / |point|: how wide an interval is against the effect it bounds; inf for a zero effect."""
    if not math.isfinite(point) or point == 0:
        return math.inf
    return float((high - low) / abs(point))


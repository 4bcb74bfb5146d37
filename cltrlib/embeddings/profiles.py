"""Profile settings for notebooks 05 (generalization) and 06 (embedding similarity).

Paper C: LLaMA-7B, full English PAWS-X train (49k) / XNLI 100k / XL-Sum 50k,
6 epochs, lr 2e-5, LoRA r8/a32; full test sets; 2000 sentence pairs per language
pair. ``local`` is what 2 shared CPU cores (measured ~40-60 tokens/s for a forward
pass of either embedded model while other jobs ran) can do in under an hour for
both embedded models; every cut is listed in ``DEVIATIONS`` and in the notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Profile:
    models: tuple[str, ...]
    tasks: tuple[str, ...] = ("sib200", "pawsx")
    n_train: int | None = 48
    epochs: float = 1.0
    lr: float = 1e-3
    batch_size: int = 8
    prompt_max_length: int = 160
    n_test: int | None = 16
    similarity_corpora: tuple[str, ...] = ("pawsx", "pud")
    after_corpora: tuple[str, ...] = ("pawsx",)  # corpora also embedded with the tuned adapter
    after_task: str = "pawsx"  # which adapter gives the "after fine-tuning" embeddings
    n_pairs: dict[str, int | None] = field(default_factory=lambda: {"pawsx": 48, "pud": 32, "sib200": 48})
    embed_max_length: int = 64
    embed_batch_size: int = 16
    seed: int = 0
    device: str | None = None

    def with_overrides(self, **kw) -> Profile:
        """The profile with every non-None keyword replaced (notebook parameters default to None)."""
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


EMBEDDED = ("smollm2-135m-instruct", "gemma3-270m")

PROFILES: dict[str, Profile] = {
    "smoke": Profile(models=EMBEDDED, n_train=2, batch_size=2, epochs=1.0, prompt_max_length=48, n_test=1,
                     similarity_corpora=("pawsx",), n_pairs={"pawsx": 3}, embed_max_length=24),
    # Both tasks, both models, all three corpora before and after tuning. With n_test 40 and 64 pairs per corpus,
    # notebook 05 took 23.2 min and 06 13.3 min on 2 idle cores (fresh clone, 2026-11-22), and the whole
    # `make reproduce` 95 min (a Zen-1 VM); with 32 test items and 40 pairs a fresh `make reproduce` took 54 min
    # on 2 Zen-3 cores (05 9.2 min, 06 5.5 min), about 80-85 min on the Zen-1 VM by the measured speed ratio.
    "local": Profile(models=EMBEDDED, tasks=("sib200", "pawsx"), after_task="sib200", n_train=64, n_test=32,
                     lr=3e-3, prompt_max_length=256, similarity_corpora=("pawsx", "pud", "sib200"),
                     after_corpora=("pawsx", "pud", "sib200"), n_pairs={"pawsx": 40, "pud": 40, "sib200": 40},
                     embed_max_length=48),
    "paper": Profile(models=("llama-2-7b-hf",), n_train=None, epochs=6.0, lr=2e-5, batch_size=16,
                     prompt_max_length=512, n_test=None, similarity_corpora=("pawsx", "pud", "sib200"),
                     after_corpora=("pawsx", "pud", "sib200"), n_pairs={"pawsx": None, "pud": None, "sib200": None},
                     embed_max_length=256, embed_batch_size=32),
}


def deviations(p: Profile) -> list[str]:
    """How a profile departs from Paper C, written from the profile's own values."""
    steps = -(-(p.n_train or 0) // p.batch_size) if p.n_train else None
    pairs = ", ".join(f"{p.n_pairs.get(c) or 'all'} {c}" for c in p.similarity_corpora)
    return [
        f"models: {', '.join(p.models)} instead of LLaMA-7B"
        + (" (SmolLM2-135M-Instruct is English-centric like LLaMA; Gemma-3-270M is multilingual)"
           if "gemma3-270m" in p.models else ""),
        f"tasks: {', '.join(p.tasks)} (SIB-200 prompt is ours, shaped like Paper C's; XNLI and XL-Sum are not in "
        "the data mirror)",
        *(["PAWS-X tuning/evaluation not run in this profile (CPU time); pass tasks=('sib200', 'pawsx')"]
          if "pawsx" not in p.tasks else []),
        "PAWS-X: only dev is labelled here, so its 2000 rows are split once (seeded) into disjoint English "
        "training rows and test rows",
        f"tuning: {p.n_train or 'all'} English examples, {p.epochs:g} epoch(s)"
        + (f" ({steps} steps of {p.batch_size})" if steps else "")
        + f", lr {p.lr:g} (paper: full training set, 6 epochs, lr 2e-5); LoRA r8/a32 on all linear projections; "
        "loss on the label word's first token only",
        f"evaluation: {p.n_test or 'all'} test items per language per task (the same items in all six languages); "
        f"label-word argmax instead of greedy 1-token decoding; prompts left-truncated to {p.prompt_max_length} "
        "tokens",
        f"embeddings: {pairs} pairs per language pair (paper: 2000 PAWS-X pairs); sentences truncated to "
        f"{p.embed_max_length} tokens; 'after' = the {p.after_task} adapter, embedded on "
        f"{', '.join(p.after_corpora)}",
        "Spearman over 5 languages: exact permutation p-values are multiples of 1/60 (minimum 0.017)",
    ]


DEVIATIONS = {name: deviations(p) for name, p in PROFILES.items()}
DEVIATIONS["paper"].insert(0, "LLaMA-7B is not in the registry; llama-2-7b-hf is its closest open stand-in")
DEVIATIONS["smoke"].insert(0, "SMOKE: a handful of items, checks that the notebook runs; numbers are meaningless")


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]

"""cltrlib: the library behind the cltr notebooks (cross-lingual transfer, English → Japanese).

A tour in twenty lines: which module owns which stage, and how data flows.

- ``study``       the one study configuration: a frozen ``Study`` per profile (smoke / local / paper), one dataclass
                  per stage, the papers' settings as defaults. Notebooks, CLI and explorer resolve through it.
- ``config``      where things live (data mirror, model cache, results store, per-profile figures folder).
- ``data``        one ``Problem`` type and one resolver: HumanEval (wheel), JHumanEval, SIB-200, PAWS-X, PUD.
- ``models``      the model registry (embedded + the papers' hub models), GGUF → HF conversion, loading.
- ``jhumaneval``  notebook 01: segment, translate (backends), reassemble and validate a Japanese HumanEval.
- ``codegen``     notebook 02: prompt modes and the batched decoding engine → stored generation runs.
- ``codeeval``    notebooks 01-03: program assembly, per-task time limits, ``evaluate_samples``, stored
                  evaluation runs, canonical checks; ``execution`` beneath it is the sandbox and worker pool.
- ``metrics``     pass@k, CLTR, bootstrap intervals (the only place each is computed).
- ``transfer``    notebook 04 (Paper B): LoRA / full fine-tuned classifiers, data patterns, LIME attributions.
- ``embeddings``  notebooks 05-06 (Paper C): English-only tuning, zero-shot accuracy, per-layer similarity.
- ``explore``     notebook 00: teaching panels on the same code paths.
- ``store``       every expensive result, keyed by a hash of its configuration; resumable, reread on rerun.
- ``tables`` / ``plots``  CSV + Markdown tables and PNG + PDF figures (one style, a real Japanese font).
- ``reproduce``   the papermill runner behind ``make reproduce`` (live progress, per-notebook times).

Data flow: ``study(profile).<stage>`` → stage functions (generate, execute, fine-tune, embed) → ``store`` →
tables and figures (pure functions of stored results, so a rerun regenerates them in seconds).

The public API below is what notebooks and users need most; everything else is importable from its module.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name → module that defines it; imported on first use so `cltr codeeval evaluate` starts without torch.
_PUBLIC = {
    "PROFILES": "cltrlib.study",
    "Study": "cltrlib.study",
    "study": "cltrlib.study",
    "Problem": "cltrlib.data",
    "load_problems": "cltrlib.data",
    "evaluate_samples": "cltrlib.codeeval",
    "pass_at_k": "cltrlib.metrics",
    "cltr": "cltrlib.metrics",
    "save_figure": "cltrlib.plots",
    "write_table": "cltrlib.tables",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'cltrlib' has no attribute {name!r}")

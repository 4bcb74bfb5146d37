"""The fork server that runs inside each sandboxed worker process (stand-alone: imports no cltrlib).

WHY a fork server: starting a Python interpreter costs 30-40 ms on these cores, while a
HumanEval check takes about 1 ms. A long-lived worker (one per core, started once inside
``bwrap`` when available) forks a fresh child per program: the child gets its own session
and process group, rlimits, a fresh scratch directory, ``/dev/null`` as stdin, pipes for
stdout/stderr (drained and capped here, so a flood cannot block or fill anything) and,
where the kernel has Landlock, a domain of its own: writes only beneath the scratch
directory, no ``/proc`` and no home directory, no TCP, no signals to anything outside it.
The wall clock is kept here, outside the child; when the verdict is in, every process the
program left behind is killed (the whole PID namespace under bwrap, else every
descendant, which this process adopts as a child subreaper).

Two kinds of job, two verdict schemes:

- ``check`` (scheme 2, what the study uses): the tests never run in the program's process.
  The child runs the untrusted code and then only answers calls of its functions: the
  return value as plain data (or the exception's type and message) out. The test code runs
  HERE, in the worker, with the entry point bound to a proxy for those calls; the verdict is
  "``check(candidate)`` returned, and the program's own top-level code finished without
  error". Nothing in the child's memory decides anything, so frame walks, ``gc``, ``ctypes``,
  ``/proc/self/mem``, exit-status games, re-bound builtins and pass messages on every
  descriptor have nothing to forge; only plain data crosses (an object that "equals
  everything" arrives as an opaque stand-in that equals nothing), and the tests call the
  problem's own helpers, not ones the program redefined. The worker is not dumpable and holds
  no capabilities, so the program cannot read or write its memory either.
  Speed (``plan_check``): the calls ``check`` must make first, read off its text (asserts of
  ``candidate(<constants>)``), go to the child with the fork and are answered straight after
  the program's code, in order; for most HumanEval checks that is every call, so the child
  writes its answers and exits, and the tests run here afterwards against those answers,
  exactly as they would have run live (first failure, first exception, or where the program
  stopped answering). Other calls are one request/reply each.
- ``program`` (scheme 1, kept for raw programs, diagnostics and the before/after
  benchmark): the child ``exec``s one complete program and writes ``P<token>`` to a
  private pipe once it ran to the end. A program that walks its own stack to the token
  can forge that verdict; it is not used for the study's verdicts.

Protocol (newline-delimited JSON, ASCII): one request per line on fd 0,
``{"id", "kind": "check", "code", "test", "entry_point", "prelude", "plan", "plan_complete",
<limits>}`` (``plan``: base64 of the marshalled planned arguments, optional) or
``{"id", "kind": "program", "source", <limits>}`` with limits ``timeout, memory_mb,
file_size_mb, max_processes, output_cap``; one reply per line on fd 1 ``{"id", "status",
"result", "duration", "stdout", "stderr"}``. Requests are read while a program runs, so
the supervisor never blocks writing them.
"""

import ast
import base64
import builtins
import errno
import fcntl
import gc
import json
import marshal
import os
import resource
import select
import shutil
import signal
import stat
import struct
import sys
import time
import traceback

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNET = 0x40000000
SYS_LANDLOCK = (444, 445, 446)  # create_ruleset, add_rule, restrict_self (same numbers on every Linux arch)
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1, 2, 4, 8
LL_TRUNCATE = 1 << 14
# What HumanEval-style programs import most; loaded once here so a child's `import` is a dict lookup.
PRELOAD = ("math", "re", "collections", "itertools", "functools", "typing", "string", "heapq", "bisect", "random",
           "hashlib", "copy", "operator")
PARENT_COMPILE_MAX = 200_000
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
             "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
MAX_REPLY = 16 << 20  # bytes of one return value; a bigger one fails the sample instead of filling the worker
MAX_NODES = 2_000_000  # containers + items in one return value (shared sub-lists counted once per use)
MAX_ITEMS = 100_000  # items taken from a returned iterator before it counts as opaque
SETUP_FAILED = 97  # exit status of a child whose sandbox could not be set up
TEST_CACHE = 256  # compiled (prelude, test) pairs kept per worker
COLLECT_QUIET = 0.02  # s the worker lets a complete plan's answers pile up in the pipe before reading them as they come
F_SETPIPE_SZ = 1031
REPLY_PIPE = 1 << 20  # bytes: room for every answer of a quick program, so it never waits for the worker


class _Kernel:
    """The few Linux calls Python has no wrapper for (prctl, capset, Landlock), through ctypes.

    Only the worker needs them, and only its own kernel-side state matters: in ``check`` jobs
    the child's memory holds nothing that decides a verdict, so ctypes being loaded there
    gives a program nothing to forge.
    """

    def __init__(self) -> None:
        self.libc = None
        if sys.platform.startswith("linux"):
            import ctypes

            self.ctypes = ctypes
            try:
                self.libc = ctypes.CDLL(None, use_errno=True)
                self.libc.syscall.restype = ctypes.c_long
            except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
                self.libc = None

    def prctl(self, option: int, arg: int) -> bool:
        return self.libc is not None and self.libc.prctl(option, arg, 0, 0, 0) == 0

    def unshare(self, flags: int) -> bool:
        return self.libc is not None and self.libc.unshare(flags) == 0

    def drop_capabilities(self) -> bool:
        """Empty the bounding set, then every capability set (a root worker outside bwrap)."""
        if self.libc is None:
            return False
        try:
            with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
                last = int(fh.read())
        except (OSError, ValueError):
            last = 40
        for cap in range(last + 1):
            self.libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        header = self.ctypes.create_string_buffer(struct.pack("<Ii", 0x20080522, 0), 8)  # _LINUX_CAPABILITY_VERSION_3
        data = self.ctypes.create_string_buffer(24)  # two all-zero __user_cap_data_struct
        return self.libc.capset(header, data) == 0

    def landlock_abi(self) -> int:
        if self.libc is None:
            return 0
        return max(0, int(self.libc.syscall(SYS_LANDLOCK[0], None, 0, 1)))

    def landlock_ruleset(self, writable: str, hidden: list[str], readable: list[str]) -> tuple[int, int]:
        """(ruleset fd, ABI) for the children's domain, or (-1, 0) where Landlock is missing.

        Read and execute beneath ``/`` except ``hidden`` (``/proc``: no memory or environment of any
        process; the supervisor's home: its secrets), with ``readable`` (the interpreter) granted back;
        everything beneath ``writable`` (the scratch directory); ``/dev/null`` read-write. Every other
        filesystem right is denied, and (by ABI) TCP bind/connect and signals or abstract sockets
        that leave the domain.
        """
        abi = self.landlock_abi()
        if abi < 1:
            return -1, 0
        fs_all = (1 << 13) - 1 | ((1 << 13) if abi >= 2 else 0) | (LL_TRUNCATE if abi >= 3 else 0) \
            | ((1 << 15) if abi >= 5 else 0)
        attr = struct.pack("<QQQ", fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)[: 8 if abi < 4 else
                                                                                        16 if abi < 6 else 24]
        buf = self.ctypes.create_string_buffer(attr, len(attr))
        ruleset = int(self.libc.syscall(SYS_LANDLOCK[0], buf, len(attr), 0))
        if ruleset < 0:
            return -1, 0
        hidden = [os.path.realpath(h) for h in hidden if h and os.path.realpath(h) != "/"]

        def add(path: str, rights: int) -> None:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                return
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    rights &= LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE
                rule = self.ctypes.create_string_buffer(struct.pack("<Qi", rights & fs_all, fd), 12)
                if self.libc.syscall(SYS_LANDLOCK[1], ruleset, 1, rule, 0) != 0:
                    raise OSError(self.ctypes.get_errno(), f"landlock_add_rule({path})")
            finally:
                os.close(fd)

        read = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR

        def grant(directory: str) -> None:
            add(directory, LL_READ_DIR)  # an ancestor of a hidden path may be listed (names only)
            for entry in sorted(os.listdir(directory)):
                path = os.path.join(directory, entry)
                real = os.path.realpath(path)
                if real in hidden:
                    continue
                if any(h.startswith(real + "/") for h in hidden):
                    if real == path and os.path.isdir(path):  # an ancestor of a hidden path: grant around it
                        grant(path)
                    continue  # or a symlink into what is walked anyway
                add(path, read)

        grant("/")
        for path in readable:
            real = os.path.realpath(path)
            if any(real == h or real.startswith(h + "/") for h in hidden) and os.path.exists(real):
                add(real, read)
        add(writable, fs_all)
        add(os.devnull, LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE)
        return ruleset, abi

    def landlock_restrict(self, ruleset: int) -> bool:
        return self.libc.syscall(SYS_LANDLOCK[2], ruleset, 0) == 0


def _child_rlimits(job: dict) -> list[tuple[int, tuple[int, int]]]:
    """(kind, (soft, hard)) pairs for a program, computed before the fork (see ``_enter_child``).

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


# ---------------------------------------------------------------------------------------------------------------
# In the forked child. Kept minimal on purpose: every page the child writes costs a copy-on-write fault
# (~7 us each in this VM), so the environment, ``sys.std*`` objects, signal dispositions, rlimit values and the
# ``random`` seed are prepared in the worker and merely inherited or applied here.


def _enter_child(null: int, w_out: int, w_err: int, keep: tuple[int, ...], scratch: str, limits: list,
                 kernel: _Kernel, ruleset: int) -> None:
    """Session, stdio, descriptors (only ``keep`` survive), scratch directory, rlimits, Landlock domain."""
    try:
        os.setsid()
        os.dup2(null, 0)
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        low = 3
        for fd in sorted(keep):
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 1 << 16)
        os.chdir(scratch)
        for kind, pair in limits:
            try:
                resource.setrlimit(kind, pair)
            except (ValueError, OSError):
                pass
        if ruleset >= 0:
            if not kernel.landlock_restrict(ruleset):
                os._exit(SETUP_FAILED)
            os.close(ruleset)
    except BaseException:
        os._exit(SETUP_FAILED)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _exception_line(exc: BaseException) -> str:
    try:
        return traceback.format_exception_only(type(exc), exc)[-1].strip()[:2000]
    except BaseException:
        return type(exc).__name__


def _program_child(code, source: str, w_v: int, token: bytes) -> None:
    """Scheme 1: exec the whole program, then ``P<token>`` on the verdict pipe. Never returns.

    What the harness calls after the program is bound here first (the program may re-bind
    ``os.write``/``os._exit``), and a process forked by the program never writes a verdict.
    """
    write, exit_, getpid, me = os.write, os._exit, os.getpid, os.getpid()
    try:
        if code is None:
            code = compile(source, "program.py", "exec", dont_inherit=True)
        # Same globals as openai/human-eval (an empty dict), so `if __name__ == "__main__":` blocks don't run.
        exec(code, {"__builtins__": builtins})
    except BaseException as exc:
        msg = _exception_line(exc)
        _flush()
        try:
            if getpid() == me:
                write(w_v, b"E" + msg.encode("utf-8", "replace"))
        finally:
            exit_(1)
    _flush()
    try:
        if getpid() == me:
            write(w_v, b"P" + token)
    finally:
        exit_(0)


def _plain(value, memo: dict, depth: int = 0):
    """``value`` as plain data (exact builtin types, shared sub-objects kept shared), or raise TypeError.

    Subclasses of the builtin types become their base type through the base type's own methods,
    so an overridden ``__eq__`` does not travel; numpy scalars become Python scalars (as they
    compare in-process; a top-level numpy bool keeps its identity, see ``_encode_result``).
    """
    t = type(value)
    if t is int or t is str or t is float or t is bool or value is None or t is bytes or t is complex:
        return value
    key = id(value)
    if key in memo:
        return memo[key]
    if depth > 900:
        raise TypeError("nested too deeply")
    if isinstance(value, list):
        out: list = []
        memo[key] = out
        out.extend(_plain(v, memo, depth + 1) for v in list.__iter__(value))
        return out
    if isinstance(value, dict):
        out_d: dict = {}
        memo[key] = out_d
        for k, v in dict.items(value):
            out_d[_plain(k, memo, depth + 1)] = _plain(v, memo, depth + 1)
        return out_d
    if isinstance(value, tuple):
        out_t = tuple(_plain(v, memo, depth + 1) for v in tuple.__iter__(value))
    elif isinstance(value, frozenset):
        out_t = frozenset(_plain(v, memo, depth + 1) for v in frozenset.__iter__(value))
    elif isinstance(value, set):
        out_t = {_plain(v, memo, depth + 1) for v in set.__iter__(value)}
    elif isinstance(value, bool):  # pragma: no cover - bool cannot be subclassed
        out_t = bool(value)
    elif isinstance(value, int):
        out_t = int.__int__(value)
    elif isinstance(value, float):
        out_t = float.__float__(value)
    elif isinstance(value, str):
        out_t = str.__str__(value)
    elif isinstance(value, bytes):
        out_t = bytes.__bytes__(value)
    elif isinstance(value, complex):
        out_t = complex.__complex__(value)
    elif _numpy_scalar(value):
        out_t = _plain(value.item(), memo, depth + 1)
    else:
        raise TypeError(t.__name__)
    memo[key] = out_t
    return out_t


def _numpy_scalar(value) -> bool:
    """A numpy scalar (np.int64, np.bool_, ...) or 0-d array (compares like one), recognised without importing numpy."""
    t = type(value)
    if getattr(t, "__module__", "") == "numpy" and getattr(value, "shape", None) == ():
        return True
    return any(c.__name__ == "generic" and c.__module__ == "numpy" for c in t.__mro__)


def _encode_result(value) -> tuple:
    """The reply for a returned value: plain data, an iterable's items, or an opaque stand-in."""
    t = type(value)
    if t is int or t is str or t is bool or t is float or value is None:
        return ("v", value)
    if _numpy_scalar(value):
        try:
            item = value.item()
        except BaseException:
            item = None
        if type(item) is bool:  # equal to True/False, but `is True` fails in-process (HumanEval/72 tests that)
            return ("b", type(value).__name__, item)
    try:
        return ("v", _plain(value, {}))
    except (TypeError, RecursionError, ValueError):
        pass
    name = type(value).__name__
    try:
        truthy = bool(value)
    except BaseException:
        truthy = True
    if hasattr(value, "__iter__") and not isinstance(value, (dict, set, frozenset)):
        try:
            items = []
            for item in iter(value):
                items.append(_plain(item, {}))
                if len(items) > MAX_ITEMS:
                    raise TypeError("too many items")
            return ("it", name, items, hasattr(value, "__len__"), truthy)
        except (TypeError, RecursionError, ValueError):
            pass
    return ("o", name, truthy)


# Bound when the worker imports this module, before any program runs: a program that re-binds the modules'
# attributes changes nothing here (and could only spoil its own answers anyway).
_write, _read, _exit, _dumps, _loads = os.write, os.read, os._exit, marshal.dumps, marshal.loads


def _frame(msg: tuple) -> bytes:
    try:
        data = _dumps(msg)
    except (ValueError, TypeError):
        data = _dumps(("o", "unmarshallable", True))
    return len(data).to_bytes(4, "little") + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view):]


def _answer(g: dict, name: str, args: tuple, kwargs: dict) -> tuple:
    """The reply to one call of the program's ``name``: its value as data, or its exception as data."""
    try:
        if name not in g:
            raise NameError(f"name '{name}' is not defined")
        return _encode_result(g[name](*args, **kwargs))
    except BaseException as exc:  # the program's exception: type, message, formatted line, builtin or not
        try:
            text = str(exc)[:2000]
        except BaseException:
            text = ""
        return ("x", type(exc).__name__, text, _exception_line(exc), type(exc).__module__ == "builtins")


def _check_child(code, source: str, call_r: int, reply_w: int, name: str, plan: list, complete: bool) -> None:
    """Scheme 2: run the program's own code, answer the planned calls (``plan_check``), then the worker's
    further calls until it hangs up; with a complete plan there are none, and the child just exits. Never returns.

    The program may re-bind anything used here; all that buys it is wrong answers to its own calls.
    """
    g = {"__builtins__": builtins}  # as human-eval: no __name__, so `if __name__ == "__main__":` blocks don't run
    try:
        if code is None:
            code = compile(source, "program.py", "exec", dont_inherit=True)
        exec(code, g)
    except BaseException as exc:
        _flush()
        try:
            _write_all(reply_w, _frame(("dead", _exception_line(exc))))
        finally:
            _exit(1)
    if plan:  # the tests' leading calls, known before the fork: answered in order, no request needed
        for args in plan:
            reply = _answer(g, name, args, {})
            _write_all(reply_w, _frame(reply))  # at once: a wrong answer before an endless loop still counts
            if reply[0] == "x":  # the tests stop at an exception, so the program stops here too
                break
        _flush()
        if complete:
            _exit(0)
    buf = b""
    while True:  # further calls, one request at a time
        try:
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "little"):
                chunk = _read(call_r, 1 << 16)
                if not chunk:
                    _exit(0)
                buf += chunk
            n = int.from_bytes(buf[:4], "little")
            msg, buf = _loads(buf[4:4 + n]), buf[4 + n:]
        except BaseException:
            _exit(0)
        if msg[0] == "s":
            _flush()
            _write_all(reply_w, _frame(("ok",)))
        else:
            reply = _answer(g, *msg[1:])
            _flush()  # what it printed reaches the worker even if the verdict comes before the program ends
            _write_all(reply_w, _frame(reply))


# ---------------------------------------------------------------------------------------------------------------
# In the worker: the other end of scheme 2.


class _Stop(BaseException):
    """The run must end now (time limit, the program died, too many processes, a broken reply).

    A BaseException, so the test code's ``except Exception`` cannot swallow it; a bare
    ``except:`` in a test can, but the stop is also recorded and decides the verdict.
    """

    def __init__(self, status: str, result: str) -> None:
        super().__init__(result)
        self.status, self.result = status, result


class ProgramObject:
    """Stands in for a returned object that is not plain data: equal only to itself, like ``object()``."""

    __slots__ = ("_type", "_truthy")

    def __init__(self, type_name: str, truthy: bool) -> None:
        self._type, self._truthy = type_name, truthy

    def __bool__(self) -> bool:
        return self._truthy

    def __repr__(self) -> str:
        return f"<{self._type} object>"


class ProgramBool(ProgramObject):
    """Stands in for a returned numpy bool: compares and tests like the bool it holds, but is not ``True``."""

    __slots__ = ()

    def __eq__(self, other) -> bool:
        return self._truthy == other

    def __hash__(self) -> int:
        return hash(self._truthy)

    def __repr__(self) -> str:
        return f"np.{self._truthy}"


class ProgramIterable(ProgramObject):
    """Stands in for a returned generator, iterator or other non-plain iterable: iterates over its items."""

    __slots__ = ("_items", "_has_len")

    def __init__(self, type_name: str, items: list, has_len: bool, truthy: bool) -> None:
        super().__init__(type_name, truthy)
        self._items, self._has_len = items, has_len

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        if not self._has_len:
            raise TypeError(f"object of type '{self._type}' has no len()")
        return len(self._items)


class _ProgramError(Exception):
    """An exception of the program's own class, re-raised in the tests as this (its text is kept)."""


_PLAIN_SCALARS = frozenset({int, str, float, bool, bytes, complex, type(None)})
_PLAIN_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})


def _check_plain(value) -> None:
    """Raise ValueError unless ``value`` (from ``marshal.loads`` of the child's bytes) is plain data of bounded size.

    marshal can also build code objects and shared sub-objects; only plain types are accepted,
    and the size counts a shared sub-object once per use (memoised), so a reply cannot make the
    test code compare an exponentially large structure.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list = [(value, False)]
    while stack:
        obj, done = stack.pop()
        t = type(obj)
        if t in _PLAIN_SCALARS:
            continue
        if t not in _PLAIN_CONTAINERS:
            raise ValueError(f"a {t.__name__} in a reply")
        key = id(obj)
        items = list(obj.items()) if t is dict else list(obj)
        flat = [x for pair in items for x in pair] if t is dict else items
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(x), 1) for x in flat)
            if sizes[key] > MAX_NODES:
                raise ValueError("a reply too large to compare")
            continue
        if key in sizes or key in on_path:  # shared, or a cycle (lists can hold themselves)
            continue
        on_path.add(key)
        stack.append((obj, True))
        stack.extend((x, False) for x in flat if type(x) not in _PLAIN_SCALARS)


_SAFE_CALLS = frozenset({"abs", "len", "sorted", "tuple", "list", "set", "frozenset", "dict", "round", "str", "int",
                         "float", "bool", "all", "any", "sum", "max", "min", "type", "isinstance", "repr",
                         "reversed"})
_NOT_STRAIGHT = (ast.BoolOp, ast.IfExp, ast.Lambda, ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp,
                 ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom, ast.Starred)
_CONSTANT_EXPR = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.BinOp, ast.UnaryOp, ast.Load,
                  ast.operator, ast.unaryop)


class _NotPlannable(Exception):
    pass


def _constant(node: ast.AST):
    """The value of an argument made only of constants and operators (``'ab' + 'c'``, ``-3``, ``[1, 2]``)."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if not all(isinstance(n, _CONSTANT_EXPR) for n in ast.walk(node)):
        raise _NotPlannable("argument is not a constant")
    return eval(compile(ast.Expression(node), "test.py", "eval"), {"__builtins__": {}})  # noqa: S307 - constants


def _calls_in_order(node: ast.AST, names: set, safe: frozenset, out: list) -> None:
    """The calls of ``names`` in ``node``, in evaluation order; raise _NotPlannable if any may not happen or
    may happen in another order (short-circuits, comprehensions, calls to anything but safe builtins)."""
    if isinstance(node, _NOT_STRAIGHT):
        raise _NotPlannable(type(node).__name__)
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name) and f.id in names:
            if node.keywords:
                raise _NotPlannable("keyword arguments")
            out.append(tuple(_constant(a) for a in node.args))
            return
        if isinstance(f, ast.Name) and f.id not in safe:
            raise _NotPlannable(f"calls {f.id}")
        children = [f, *node.args, *(k.value for k in node.keywords)]
    elif isinstance(node, ast.Dict):
        children = [x for k, v in zip(node.keys, node.values, strict=True) for x in (k, v) if x is not None]
    else:
        children = [c for _, v in ast.iter_fields(node) for c in (v if isinstance(v, list) else [v])
                    if isinstance(c, ast.AST)]
    for child in children:
        _calls_in_order(child, names, safe, out)


def plan_calls(test: str, entry_point: str, prelude: str = "") -> list[tuple]:
    """The arguments of the calls ``check`` makes first, in order, when they are certain from its text alone."""
    return plan_check(test, entry_point, prelude)[0]


def plan_check(test: str, entry_point: str, prelude: str = "") -> tuple[list[tuple], bool]:
    """(planned calls, whether they are ALL the calls ``check`` can make): see ``plan_calls``.

    WHY: one round trip per call costs more than a HumanEval check itself. ``check``'s leading
    statements are usually ``assert candidate(<constants>) == ...``: those calls (up to the first
    statement that is anything else) happen in exactly this order whenever the tests get that far,
    so the program may compute them ahead, in order, and stream the results; the tests still judge
    each one here, one by one, and stop at the first failure. No short-circuit, comprehension or
    call of anything but a builtin may appear in them, so no planned call could be skipped,
    reordered or fed another call's result. The worker checks every call against the plan anyway.
    """
    try:
        module = ast.parse(test)
        # names the tests' globals may rebind (a builtin shadowed there is no longer safe to call); check's own
        # locals need no look: the plan ends at its first statement that is not an assert
        tops = list(module.body) + (list(ast.parse(prelude).body) if prelude.strip() else [])
    except (SyntaxError, ValueError):
        return [], False
    defined: set[str] = set()
    for node in tops:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            defined |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    check = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None or len(check.args.args) != 1 or check.decorator_list:
        return [], False
    names = {check.args.args[0].arg, entry_point}
    safe = _SAFE_CALLS - defined
    plan: list[tuple] = []
    complete = True
    for stmt in check.body:
        if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            continue
        complete = False
        if not isinstance(stmt, ast.Assert):
            break
        calls: list[tuple] = []
        try:
            _calls_in_order(stmt.test, names, safe, calls)
            if stmt.msg is not None:  # evaluated only after the test failed: it may not call the program at all
                in_msg: list = []
                _calls_in_order(stmt.msg, names, safe, in_msg)
                if in_msg:
                    raise _NotPlannable("program called in an assert message")
        except (_NotPlannable, ValueError, TypeError, SyntaxError, ArithmeticError, MemoryError):
            break
        plan += calls
        complete = True
    try:
        marshal.dumps(plan)
    except ValueError:
        return [], False
    return plan, complete


class _Candidate:
    """What the test code calls instead of the program's function: one call, one round trip to the child."""

    __slots__ = ("_job", "_name")

    def __init__(self, job: "_CheckRun", name: str) -> None:
        self._job, self._name = job, name

    def __call__(self, *args, **kwargs):
        return self._job.call(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self._name}>"


class _CheckRun:
    """The worker's side of one scheme-2 job: the request/reply channel to the child and the verdict."""

    def __init__(self, watch: "_Watch", call_w: int, reply_r: int, entry: str, plan: list[tuple],
                 complete: bool = False) -> None:
        self.watch, self.call_w, self.reply_r = watch, call_w, reply_r
        self.rbuf = bytearray()
        self.fatal: tuple[str, str] | None = None
        self.entry, self.plan, self.planned = entry, plan, 0
        self.replies = 0  # any reply at all means the program's top-level code finished without error
        self.complete = complete and bool(plan)
        self.collected: list[tuple] | None = None
        self.cut: tuple[str, str] | None = None  # how the program ended before answering everything

    def collect(self) -> None:
        """All the answers first (a complete plan), then the program is killed, then the tests run.

        WHY: while the program lives it shares the worker's memory pages copy-on-write, and every
        page the tests would touch then costs a copy (~7 us each here). Judged afterwards against the
        recorded answers, the tests see exactly what they would have seen live: the answers in order,
        and where the program stopped answering (an endless loop, a crash, an exit), the same stop.
        The worker does not even wake for the answers at first: a quick program writes them all into
        a large pipe and exits (one wake-up, as for a whole program); a slower one is read as it goes.
        """
        w, fd = self.watch, self.reply_r
        w.bufs[fd], w.sizes[fd], w.limits[fd] = self.rbuf, 0, ("head", 4 * MAX_REPLY)
        event = w.pump(until=time.monotonic() + COLLECT_QUIET)
        if event == "waited":
            w.open_fds.append(fd)  # the answers are read as they come from now on
            event = w.pump()
        if fd in w.open_fds:
            w.open_fds.remove(fd)
        self._read_rest()
        self.collected = []
        try:
            while len(self.collected) < len(self.plan):
                msg = self._frame()
                if msg is None:
                    break
                self.collected.append(msg)
                if msg[0] in ("x", "dead"):  # the program stops answering at an exception (so do the tests)
                    return
        except _Stop:
            self.cut, self.fatal = self.fatal, None
            return
        if len(self.collected) < len(self.plan):
            self.cut = w.stop_outcome(event)
            if len(self.rbuf) >= 4 * MAX_REPLY:
                self.cut = ("failed", "failed: results larger than the sandbox accepts")

    def _read_rest(self) -> None:
        try:
            while True:
                chunk = os.read(self.reply_r, 1 << 20)
                if not chunk:
                    return
                self.rbuf += chunk
        except OSError:
            return


    def _stop(self, status: str, result: str):
        if self.fatal is None:
            self.fatal = (status, result)
        raise _Stop(*self.fatal)

    def _after_exit(self) -> None:
        """The child is gone: its last words if it sent any (``dead``), else how it ended."""
        try:
            while True:
                chunk = os.read(self.reply_r, 1 << 20)
                if not chunk:
                    break
                self.rbuf += chunk
        except OSError:
            pass
        if len(self.rbuf) >= 4:
            n = int.from_bytes(self.rbuf[:4], "little")
            if n <= MAX_REPLY and len(self.rbuf) >= 4 + n:
                try:
                    msg = marshal.loads(bytes(self.rbuf[4:4 + n]))
                    if type(msg) is tuple and len(msg) == 2 and msg[0] == "dead" and type(msg[1]) is str:
                        self._stop("failed", "failed: " + msg[1])
                except (ValueError, EOFError, TypeError):
                    pass
        self._stop(*self.watch.exit_outcome())

    def _ended(self) -> None:
        """The far end of the channel is closed: the child ended (or closed it and lives on until the limit)."""
        event = self.watch.pump()
        if event == "exited":
            self._after_exit()
        self._stop(*self.watch.stop_outcome(event))

    def _wait(self, read: bool) -> None:
        event = self.watch.pump(read_fd=self.reply_r if read else -1, write_fd=-1 if read else self.call_w)
        if event == "exited":
            self._after_exit()
        elif event != "ready":
            self._stop(*self.watch.stop_outcome(event))

    def _send(self, msg: tuple) -> None:
        try:
            data = marshal.dumps(msg)
        except ValueError as exc:
            raise TypeError(f"the test passed a value that cannot be sent to the program: {exc}") from None
        view = memoryview(len(data).to_bytes(4, "little") + data)
        while view:
            try:
                view = view[os.write(self.call_w, view):]
            except BlockingIOError:
                self._wait(read=False)
            except BrokenPipeError:
                self._ended()

    def _frame(self):
        """The next complete reply in the buffer (validated), or None."""
        if len(self.rbuf) < 4:
            return None
        n = int.from_bytes(self.rbuf[:4], "little")
        if n > MAX_REPLY:
            self._stop("failed", f"failed: a result larger than {MAX_REPLY} bytes")
        if len(self.rbuf) < 4 + n:
            return None
        body = bytes(self.rbuf[4:4 + n])
        del self.rbuf[:4 + n]
        try:
            msg = marshal.loads(body)
            if type(msg) is not tuple or not msg or type(msg[0]) is not str:
                raise ValueError("not a reply")
            if len(msg) != 2 or type(msg[1]) not in _PLAIN_SCALARS:  # else a plain scalar: nothing to walk
                _check_plain(msg)
        except (ValueError, EOFError, TypeError) as exc:
            self._stop("failed", f"failed: malformed reply from the program ({exc})")
        return msg

    def _recv(self):
        while True:
            msg = self._frame()
            if msg is not None:
                return msg
            try:
                chunk = os.read(self.reply_r, 1 << 20)
            except BlockingIOError:
                self._wait(read=True)
                continue
            if not chunk:
                self._ended()
            self.rbuf += chunk

    def call(self, name: str, args: tuple, kwargs: dict):
        if self.fatal is not None:
            raise _Stop(*self.fatal)
        if self.planned < len(self.plan):
            planned = self.plan[self.planned]
            if kwargs or args != planned or not all(type(a) is type(b) for a, b in zip(args, planned, strict=True)):
                self._stop("replan", "a call the tests made was not the planned one")  # run again, unplanned
            self.planned += 1
            if self.collected is not None:
                if self.planned > len(self.collected):
                    self._stop(*(self.cut or ("replan", "no recorded answer")))
                msg = self.collected[self.planned - 1]
            else:
                msg = self._recv()
        elif self.collected is not None:
            self._stop("replan", "a call beyond a complete plan")
        else:
            self._send(("c", name, args, kwargs))
            msg = self._recv()
        self.replies += 1
        kind = msg[0]
        if kind == "v" and len(msg) == 2:
            return msg[1]
        if kind == "it" and len(msg) == 5 and type(msg[2]) is list:
            return ProgramIterable(str(msg[1]), msg[2], bool(msg[3]), bool(msg[4]))
        if kind == "o" and len(msg) == 3:
            return ProgramObject(str(msg[1]), bool(msg[2]))
        if kind == "b" and len(msg) == 3:
            return ProgramBool(str(msg[1]), bool(msg[2]))
        if kind == "x" and len(msg) == 5:
            raise _program_exception(*msg[1:])
        if kind == "dead" and len(msg) == 2:
            self._stop("failed", f"failed: {msg[1]}")
        self._stop("failed", f"failed: malformed reply from the program ({kind!r})")

    def sync(self) -> None:
        """Wait until the program's own top-level code has finished (and failed or not)."""
        if self.fatal is not None:
            raise _Stop(*self.fatal)
        if self.replies:  # the program answered, so its top-level code had already finished
            return
        self._send(("s",))
        msg = self._recv()
        if msg == ("ok",):
            return
        if msg[0] == "dead" and len(msg) == 2:
            self._stop("failed", f"failed: {msg[1]}")
        self._stop("failed", f"failed: malformed reply from the program ({msg[0]!r})")


def _program_exception(type_name, text, line, is_builtin) -> BaseException:
    """The program's exception, re-raised in the tests: the builtin class of that name, else ``_ProgramError``.

    ``_cltr_line`` keeps the program's own formatted line for the result (``NameError: ...``).
    """
    cls = getattr(builtins, str(type_name), None) if is_builtin else None
    exc: BaseException
    try:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError
        exc = cls(text)
    except BaseException:
        exc = _ProgramError(text)
    exc._cltr_line = str(line)  # type: ignore[attr-defined]
    return exc


class _Watch:
    """One child's run from the worker's side: output pipes, the clock, the process count, its exit."""

    def __init__(self, worker: "Worker", pid: int, r_out: int, r_err: int, extra: dict[int, int], job: dict,
                 start: float) -> None:
        self.worker, self.pid = worker, pid
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = -1
        self.cap = int(job.get("output_cap", 65536))
        self.out, self.err = bytearray(), bytearray()
        self.bufs = {r_out: self.out, r_err: self.err}
        self.limits = {r_out: ("head", self.cap), r_err: ("tail", self.cap)}
        for fd, cap in extra.items():  # e.g. the scheme-1 verdict pipe
            self.bufs[fd] = bytearray()
            self.limits[fd] = ("head", cap)
        self.sizes = {fd: 0 for fd in self.bufs}
        self.open_fds = list(self.bufs)
        self.r_out = r_out
        self.deadline = start + float(job["timeout"])
        self.max_procs = int(job.get("max_processes") or 0)
        self.next_count = start + 0.02
        self.status: int | None = None
        self.finished = False

    def drain(self, fd: int, more: bool = False) -> bool:
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
            buf = self.bufs[fd]
            self.sizes[fd] += len(chunk)
            how, cap = self.limits[fd]
            if how == "head":
                if len(buf) < cap:
                    buf += chunk[: cap - len(buf)]
            else:
                buf += chunk
                if len(buf) > 2 * cap:
                    del buf[: len(buf) - cap]
            if not more:
                return True

    def pump(self, read_fd: int = -1, write_fd: int = -1, until: float | None = None) -> str:
        """Serve outputs, requests and the clock until ``read_fd`` is readable or ``write_fd`` writable.

        Returns ``ready``, ``exited`` (the child was reaped), ``timeout``, ``procs`` (too many
        processes) or ``waited`` (``until``, a monotonic time, came first).
        """
        w = self.worker
        while True:
            if self.status is not None:
                return "exited"
            now = time.monotonic()
            if now >= self.deadline:
                return "timeout"
            if until is not None and now >= until:
                return "waited"
            wait = self.deadline - now if until is None else min(self.deadline, until) - now
            if self.pidfd < 0:
                wait = min(wait, 0.005)
            if w.pidns and self.max_procs:
                wait = min(wait, max(0.0, self.next_count - now) + 0.001)
            rl = self.open_fds + ([self.pidfd] if self.pidfd >= 0 else []) + ([] if w.eof else [w.req_fd])
            if read_fd >= 0:
                rl.append(read_fd)
            readable, writable, _ = select.select(rl, [write_fd] if write_fd >= 0 else [], [], wait)
            if (read_fd >= 0 and read_fd in readable) or writable:
                return "ready"
            for fd in readable:
                if fd == self.pidfd:
                    continue
                if fd == w.req_fd:  # buffer the next requests so the supervisor never blocks on us
                    w.pump_requests()
                    if w.eof:  # the supervisor is gone: stop now, leave nothing behind
                        w.abort(self.pid)
                    continue
                if not self.drain(fd):
                    self.open_fds.remove(fd)
            if self.pidfd < 0 or self.pidfd in readable:
                got, st = os.waitpid(self.pid, os.WNOHANG)
                if got == self.pid:
                    self.status = st
                    return "exited"
            if w.pidns and self.max_procs and time.monotonic() >= self.next_count:
                self.next_count = time.monotonic() + 0.02
                if sum(1 for n in os.listdir("/proc") if n.isdigit()) - 2 > self.max_procs:
                    return "procs"

    def stop_outcome(self, event: str) -> tuple[str, str]:
        if event == "timeout":
            return "timeout", "timed out"
        if event == "procs":
            return "failed", f"failed: more than {self.max_procs} processes"
        return self.exit_outcome()

    def exit_outcome(self) -> tuple[str, str]:
        """(status, result) for a child that ended without a verdict."""
        st = self.status
        if st is None:
            return "failed", "failed: the program ended before its tests finished"
        if os.WIFSIGNALED(st):
            sig = os.WTERMSIG(st)
            if sig == signal.SIGXCPU:
                return "timeout", "timed out (CPU time limit)"
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            return "failed", f"failed: killed by signal {name}"
        code = os.WEXITSTATUS(st) if os.WIFEXITED(st) else st
        if code == 0:
            return "failed", "failed: program exited before its tests finished"
        if code == SETUP_FAILED:
            return "failed", "failed: the sandbox could not be set up for this program"
        return "failed", f"failed: exit status {code} before its tests finished"

    def finish(self) -> None:
        """Kill the program (if still running), reap it, read what is left in the pipes. Idempotent."""
        if self.finished:
            return
        self.finished = True
        if self.status is None:
            for target in (lambda: os.killpg(self.pid, signal.SIGKILL), lambda: os.kill(self.pid, signal.SIGKILL)):
                try:
                    target()
                except OSError:
                    pass
            _, self.status = os.waitpid(self.pid, 0)
        for fd in list(self.open_fds):
            self.drain(fd, more=True)
        self.worker.kill_leftovers(self.pid)
        if self.pidfd >= 0:
            os.close(self.pidfd)

    def output(self) -> dict:
        out = {"stdout": self.out[: self.cap].decode("utf-8", "replace"),
               "stderr": self.err[-self.cap:].decode("utf-8", "replace")}
        if self.sizes[self.r_out] > self.cap:
            out["stdout"] += f"\n[... {self.sizes[self.r_out] - self.cap} more bytes of stdout dropped]"
        return out


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
                stat_line = fh.read()
        except OSError:
            continue
        ppid = int(stat_line[stat_line.rfind(b")") + 2:].split()[1])
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
        kernel = self.kernel = _Kernel()
        kernel.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the supervisor, never linger
        self.subreaper = kernel.prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a program come back to us
        self.netns = False
        if cfg.get("try_netns"):
            self.netns = kernel.unshare(CLONE_NEWNET)
        if not self.netns and not cfg.get("has_netns"):
            self._block_sockets()
        # Nothing a program does may reach this process: not dumpable (no ptrace, no /proc/<pid>/mem),
        # no capabilities (a root worker outside bwrap drops them here; bwrap is told --cap-drop ALL).
        self.undumpable = kernel.prctl(PR_SET_DUMPABLE, 0)
        self.caps_dropped = kernel.drop_capabilities() if cfg.get("drop_caps") else False
        kernel.prctl(PR_SET_NO_NEW_PRIVS, 1)  # also what lets an unprivileged process use Landlock
        # One scratch directory, emptied after every program (not recreated: the Landlock rule that lets
        # programs write is on this very directory, so nothing they write can outlive their verdict).
        self.scratch = os.path.join(self.scratch_root, "run")
        if os.path.lexists(self.scratch):  # left by a worker that was interrupted
            _rmtree(self.scratch)
        os.mkdir(self.scratch, 0o700)
        self.ruleset, self.landlock = -1, 0
        if cfg.get("landlock"):
            self.ruleset, self.landlock = kernel.landlock_ruleset(self.scratch, list(cfg.get("hide", [])),
                                                                  list(cfg.get("keep_readable", [])))
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the supervisor ends us (EOF or SIGKILL)
        # What every child inherits (see _enter_child): a scrubbed environment whose HOME and
        # TMPDIR are the per-program scratch directory (same path, emptied after each program),
        # text streams on fds 0-2 (re-pointed by dup2 in the child), a neutral argv.
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
        self.tests: dict[tuple[str, str], tuple] = {}
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
        self._send({"ready": True, "netns": self.netns, "subreaper": self.subreaper, "pid": os.getpid(),
                    "landlock": self.landlock, "undumpable": self.undumpable, "caps_dropped": self.caps_dropped})

    def _send(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode("ascii")
        while data:
            try:
                n = os.write(self.rep_fd, data)
            except BlockingIOError:
                select.select([], [self.rep_fd], [])
                continue
            data = data[n:]

    def pump_requests(self) -> None:
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
            self.pump_requests()
            if self.queue:
                job = self.queue.pop(0)
                self._send(self.run(job))
                continue
            if self.eof:
                return
            select.select([self.req_fd], [], [])

    def _compiled_test(self, prelude: str, test: str, entry: str, with_plan: bool = False) -> tuple:
        """(prelude code or None, test code, call plan, namespace): trusted text, prepared once per problem here.

        The namespace (prelude and test executed) is kept too: HumanEval's tests keep no state in
        their globals, and re-executing them for every sample costs more than the check itself.
        """
        key = (prelude, test, entry)
        hit = self.tests.get(key)
        if hit is None:
            try:
                pre = compile(prelude, "prelude.py", "exec", dont_inherit=True) if prelude.strip() else None
            except (SyntaxError, ValueError):
                pre = None  # a prompt that is not a program on its own: the tests then see no helpers
            hit = (pre, compile(test, "test.py", "exec", dont_inherit=True),
                   None if with_plan else plan_check(test, entry, prelude if pre is not None else ""), {})
            if len(self.tests) >= TEST_CACHE:
                self.tests.pop(next(iter(self.tests)))
            self.tests[key] = hit
        return hit

    def run(self, job: dict) -> dict:
        self.counter += 1
        kind = job.get("kind", "program")
        tests = None
        if kind == "check":
            try:
                tests = self._compiled_test(job.get("prelude", ""), job["test"], job["entry_point"], "plan" in job)
            except Exception as exc:  # the data set's own test does not compile: nobody passes
                return {"id": job["id"], "duration": 0.0, "stdout": "", "stderr": "", "status": "failed",
                        "result": f"failed: the test code does not compile ({_exception_line(exc)})"}
        scratch = self.scratch
        source = job["source"] if kind == "program" else job["code"]
        code = None
        if len(source) <= PARENT_COMPILE_MAX:
            # Compiling before the fork costs the child no copy-on-write faults (~2x faster here);
            # anything unusual is left for the child to hit, so errors and limits apply as usual.
            try:
                code = compile(source, "program.py", "exec", dont_inherit=True)
            except Exception:
                code = None
        limits = _child_rlimits(job)
        rnd = sys.modules.get("random")
        if rnd is not None:
            rnd.seed(0)  # same file, same verdicts; seeded here so the child writes nothing
        r_out, w_out = os.pipe()
        r_err, w_err = os.pipe()
        if kind == "check":
            call_r, call_w = os.pipe()
            reply_r, reply_w = os.pipe()
            try:
                fcntl.fcntl(reply_w, F_SETPIPE_SZ, REPLY_PIPE)
            except OSError:  # not Linux, or above /proc/sys/fs/pipe-max-size: just a smaller pipe
                pass
            child_fds, parent_fds = (call_r, reply_w), (call_w, reply_r)
        else:
            r_v, w_v = os.pipe()
            token = os.urandom(16).hex().encode()
            child_fds, parent_fds = (w_v,), (r_v,)
        if kind == "check":
            if job.get("unplanned"):
                plan, complete = [], False
            elif "plan" in job:  # worked out once by the supervisor (it is trusted, as the tests are)
                plan, complete = marshal.loads(base64.b64decode(job["plan"])), bool(job.get("plan_complete"))
            else:
                plan, complete = tests[2] if tests[2] is not None else ([], False)
        keep = child_fds + ((self.ruleset,) if self.ruleset >= 0 else ())
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            for fd in (r_out, r_err) + parent_fds:
                os.close(fd)
            _enter_child(self.null_fd, w_out, w_err, keep, scratch, limits, self.kernel, self.ruleset)
            if kind == "check":
                _check_child(code, source, *child_fds, job["entry_point"], plan, complete)
            _program_child(code, source, w_v, token)
        for fd in (w_out, w_err) + child_fds:
            os.close(fd)
        if kind == "check":
            watch = _Watch(self, pid, r_out, r_err, {}, job, start)
            for fd in parent_fds:
                os.set_blocking(fd, False)
            run = _CheckRun(watch, call_w, reply_r, job["entry_point"], plan, complete)
            status, result = self._check(job, watch, run, tests)
        else:
            watch = _Watch(self, pid, r_out, r_err, {r_v: 4096}, job, start)
            event = watch.pump()
            verdict = watch.bufs[r_v]
            if event != "exited":
                status, result = watch.stop_outcome(event)
            else:
                watch.drain(r_v, more=True)
                st = watch.status
                if bytes(verdict) == b"P" + token and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
                    status, result = "passed", "passed"
                elif verdict.startswith(b"E"):
                    status, result = "failed", "failed: " + verdict[1:].decode("utf-8", "replace")
                else:
                    status, result = watch.exit_outcome()
        duration = time.monotonic() - start
        watch.finish()
        for fd in (r_out, r_err) + parent_fds:
            os.close(fd)
        self._empty_scratch()
        if status == "replan":
            return self.run(dict(job, unplanned=True))
        return dict({"id": job["id"], "duration": duration, "status": status, "result": result}, **watch.output())

    def _empty_scratch(self) -> None:
        """Leave the scratch directory empty and ours again (a program may chmod it or fill it)."""
        os.chmod(self.scratch, 0o700)
        for entry in os.listdir(self.scratch):
            path = os.path.join(self.scratch, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                _rmtree(path)
            else:
                os.unlink(path)

    def _check(self, job: dict, watch: _Watch, run: _CheckRun, tests: tuple) -> tuple[str, str]:
        """Scheme 2's verdict: the test code, run here against a proxy for the program's entry point."""
        prelude, test, _, ns = tests
        entry = job["entry_point"]
        candidate = _Candidate(run, entry)
        try:
            if run.complete:
                run.collect()
                watch.finish()  # the program is gone before the tests touch anything (see collect)
            if "check" not in ns:  # first sample of this problem in this worker
                ns["__builtins__"] = builtins
                if prelude is not None:
                    try:
                        exec(prelude, ns)  # the problem's own prompt (helpers such as HumanEval/32's poly)
                    except Exception:
                        ns.clear()
                        ns["__builtins__"] = builtins
                exec(test, ns)
            ns[entry] = candidate  # tests that call the entry point by name (HumanEval/33) call the program too
            check = ns["check"]
            check(candidate)
            run.sync()  # the program's top-level code finished too (a test that never calls it still needs that)
        except _Stop as stop:
            return run.fatal or (stop.status, stop.result)
        except BaseException as exc:  # noqa: BLE001 - any failure of the tests is the verdict
            if run.fatal is not None:  # e.g. the tests turned a stop into another exception
                return run.fatal
            return "failed", "failed: " + (getattr(exc, "_cltr_line", None) or _exception_line(exc))
        if run.fatal is not None:  # a test swallowed the stop with a bare `except:`
            return run.fatal
        return "passed", "passed"

    def abort(self, pid: int) -> None:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass
        self.kill_leftovers(pid)
        _rmtree(self.scratch_root)
        os._exit(0)

    def kill_leftovers(self, pid: int) -> None:
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

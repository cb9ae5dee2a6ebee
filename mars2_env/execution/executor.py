"""`Executor`: runs programs against tests in sandboxed processes and grades them.

One warm worker server per core (see `server.py`) runs each test in a fresh forked process.
This process keeps the expected outputs and grades what comes back (`grader.py`).

``run_many`` keeps every worker busy. A program's tests go to one worker as one message and
come back one result at a time; after a failure that ends the program
(``stop_on_first_failure``) the rest is cancelled, the test running at that moment included
(a time-limited test does not run out its clock once the verdict is known). When there are
fewer programs than idle workers, a program's tests are split across them; results after the
first failure are dropped, so a result never depends on timing.

``submit`` / ``submit_many`` hand programs over without waiting and return
`concurrent.futures.Future` objects, each resolved as soon as its program's result is known:
a driver thread (alive only while work is outstanding) keeps the workers busy with whatever
has been submitted, so a caller can generate the next programs while these run
(`mars2_env.vector.BatchedSearch` does). ``run_many`` is ``submit_many`` and a wait.
``busy_workers`` says how many workers are running tests right now (the cores a model
sharing this machine should leave alone).

Fail safe: whatever a program prints, grading gives a verdict (an internal grading error is
logged and becomes ``wrong_answer`` for that test, never an exception out of ``run``). A
worker that dies (OOM killer, ``kill -9`` from outside) is replaced; its tests that had not
started are re-queued, and the test it died under is retried once before it is charged to
the program.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mars2_env.cpu import usable_cores
from mars2_env.execution import protocol, sandbox
from mars2_env.execution.feedback import clip, tail_lines
from mars2_env.execution.grader import lines_match, loads_value, show_value
from mars2_env.execution.results import ExecutionResult, TestResult, Verdict
from mars2_env.execution.rules import rule_for
from mars2_env.execution.server import DEFAULT_PRELOAD
from mars2_env.problems import Problem, TestCase

SANDBOXES = ("auto", "namespaces", "bwrap", "basic")
logger = logging.getLogger("mars2_env.execution")
_LIVE: weakref.WeakSet = weakref.WeakSet()  # every open Executor of this process (busy_workers)
_ANSWER_GRACE_S = 30.0   # a worker silent this long after a test's wall limit is replaced
_READY_TIMEOUT_S = 180.0
_warned = False
# The server imports its modules without running mars2_env/__init__.py (which registers the
# environments and pulls numpy and gymnasium in): every loaded module makes each fork slower.
_BOOT = """
import sys, types
for _name, _path in (("mars2_env", sys.argv[1]), ("mars2_env.execution", sys.argv[1] + "/execution")):
    _mod = types.ModuleType(_name)
    _mod.__path__ = [_path]
    sys.modules[_name] = _mod
from mars2_env.execution.server import main
main()
"""


@dataclass(frozen=True)
class Limits:
    """Executor options; ``None`` limits come from each problem."""

    time_limit_s: float | None = None        # wall clock per test (default: problem.time_limit_s)
    time_limit_scale: float = 1.0            # multiplies problem.time_limit_s when time_limit_s is None
    memory_limit_mb: float | None = None     # memory the program may use (problem.memory_limit_mb)
    cpu_limit_s: float | None = None         # CPU seconds per test (default: ceil(wall) + 1)
    output_limit_mb: float = 32.0            # stdout, returned value and any file written
    max_processes: int = 64                  # processes + threads per test
    max_open_files: int = 256
    scratch_mb: int = 256                    # private tmpfs per worker (namespaces mode)
    lcb_prelude: bool = True                 # the dataset harness's import block (problem.harness);
                                             # False: plain Python for every problem
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    reward: str = "fraction"                 # "fraction": passed/total; "binary": 1 if all pass
    text_limit: int = 4096                   # characters kept per TestResult text field

    def __post_init__(self) -> None:
        if self.reward not in ("fraction", "binary"):
            raise ValueError(f"reward must be 'fraction' or 'binary', got {self.reward!r}")
        for name in ("time_limit_s", "time_limit_scale", "memory_limit_mb", "cpu_limit_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0 or None, got {v!r}")
        for name in ("output_limit_mb", "max_processes", "max_open_files", "scratch_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


# ------------------------------------------------------------------------- workers

class _Worker:
    """Handle on one server process."""

    def __init__(self, mode: str, limits: Limits, nproc_base: int = 0):
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()
        pkg_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # nothing of this process's environment reaches the server (or the programs)
        env = {"PATH": sandbox.CHILD_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONUTF8": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1",
               "MALLOC_ARENA_MAX": "8",  # bounds the address space threads reserve (see sandbox)
               "LD_BIND_NOW": "1"}  # resolve symbols once, not by writing the GOT in each child
        argv = [sys.executable, "-B", "-s", "-c", _BOOT, pkg_dir]
        if mode == "bwrap":
            argv = sandbox.bwrap_command(argv, pkg_dir)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=cmd_r, stdout=res_w, env=env, cwd="/", start_new_session=True, close_fds=True)
        finally:
            os.close(cmd_r)
            os.close(res_w)
        self.mode = mode
        self.nproc_base = nproc_base
        self.ready = False
        self.scratch: str | None = None
        self.error: str | None = None
        self.preload_failures: dict[str, str] = {}
        self.uncontained: list[str] = []
        self.run: _Run | None = None
        self.deadline = 0.0
        protocol.send(self.cmd_w, {"mode": mode, "scratch_mb": limits.scratch_mb,
                                   "preload": list(limits.preload), "nproc_base": nproc_base})

    def wait_ready(self) -> None:
        if self.ready or self.error:
            return
        r, _, _ = select.select([self.res_r], [], [], _READY_TIMEOUT_S)
        try:
            if not r:
                raise protocol.ChannelClosed("no answer")
            msg, _ = protocol.recv(self.res_r)
        except (protocol.ChannelClosed, ValueError) as e:
            self.error = f"worker server did not start ({e}); exit status {self.proc.poll()}"
            return
        self.scratch = msg.get("scratch")
        self.preload_failures = dict(msg.get("preload_failures") or {})
        self.uncontained = list(msg.get("uncontained") or [])
        if msg.get("ok"):
            self.ready = True
        else:
            self.error = msg.get("error") or "worker server failed to start"

    def close(self) -> None:
        """Close our ends of the pipes: the server sees end-of-file, cleans up and exits."""
        for fd in (self.cmd_w, self.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.cmd_w = self.res_r = -1

    def finish(self, timeout: float = 10.0) -> None:
        """Wait for the server to exit (kill it when it does not), then remove what it left."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.remove_leftovers()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        self.remove_leftovers()

    def remove_leftovers(self) -> None:
        """After the server died: its sandbox processes and (basic mode) scratch directory.

        Processes forked for tests die with their parent, but a daemonised grandchild does
        not; in namespaces mode it still runs as this server's uids, which nothing else uses.
        """
        if self.mode == "namespaces" and self.ready:
            for uid in sandbox.server_uids(self.proc.pid):
                sandbox.kill_uid_by_scan(uid)
        if self.mode == "basic" and self.scratch:  # (bwrap's /tmp vanished with it)
            sandbox.remove_tree(os.path.dirname(self.scratch))


class _Pool:
    """The workers of one executor, owned by the process that created them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.workers: list[_Worker] = []

    def close(self) -> None:
        for w in self.workers:
            w.close()
        if os.getpid() == self.pid:  # a forked copy must not wait for (or kill) our servers
            for w in self.workers:
                w.finish()
        self.workers = []


# ------------------------------------------------------------------------- jobs

@dataclass
class _Job:
    """One program judged on its selected tests."""

    problem: Problem
    code: str
    tests: list[TestCase]
    wall_s: float
    cpu_s: int
    memory: int
    stop: bool = True  # stop_on_first_failure
    future: Any = None  # concurrent.futures.Future of the ExecutionResult
    results: dict[int, TestResult] = field(default_factory=dict)
    fail_at: int | None = None
    compile_error: str | None = None
    done: bool = False
    running: list = field(default_factory=list)  # _Run objects on workers
    complete: int = 0  # tests 0..complete-1 all have results
    retried: set = field(default_factory=set)  # tests a worker already died under once

    def limit(self) -> int:
        """Tests that still count: none after a known failure when stopping on failures."""
        if self.compile_error is not None:
            return 0
        if self.stop and self.fail_at is not None:
            return self.fail_at + 1
        return len(self.tests)

    def check_done(self) -> None:
        while self.complete in self.results:
            self.complete += 1
        self.done = self.done or self.compile_error is not None or self.complete >= self.limit()


@dataclass
class _Run:
    """A contiguous run of one job's tests sent to one worker as a single message."""

    job: _Job
    indices: list[int]
    id: int
    reported: set = field(default_factory=set)
    cancelled: bool = False

    def unreported(self) -> list[int]:
        return [i for i in self.indices if i not in self.reported]


# ------------------------------------------------------------------------- executor

class ProgramJudge:
    """The blocking and one-program calls of an executor, built on its ``submit_many`` (one
    future per item, in order) and ``abandon`` (stop waiting for futures): `Executor` and
    `mars2_ray.executor.RayExecutor` share them."""

    def run(self, problem: Problem, code: str, tests: str | list[TestCase] = "all",
            stop_on_first_failure: bool = True) -> ExecutionResult:
        """Judge ``code`` on ``problem``'s tests ("public" | "private" | "all" | a list)."""
        return self.run_many([(problem, code, tests)], stop_on_first_failure=stop_on_first_failure)[0]

    def run_many(self, items: Sequence[tuple], tests: str | list[TestCase] = "all",
                 stop_on_first_failure: bool = True) -> list[ExecutionResult]:
        """Judge many ``(problem, code)`` or ``(problem, code, tests)`` items in parallel;
        results come back in the order of ``items``."""
        futures = self.submit_many(items, tests, stop_on_first_failure=stop_on_first_failure)
        try:
            return [f.result() for f in futures]
        except BaseException:  # interrupted (Ctrl-C): the rest of these programs is not waited for
            self.abandon(futures)
            raise

    def submit(self, problem: Problem, code: str, tests: str | list[TestCase] = "all",
               stop_on_first_failure: bool = True) -> concurrent.futures.Future:
        """Queue one program without waiting; a future of its `ExecutionResult`."""
        return self.submit_many([(problem, code, tests)],
                                stop_on_first_failure=stop_on_first_failure)[0]

    def submit_many(self, items: Sequence[tuple], tests: str | list[TestCase] = "all",
                    stop_on_first_failure: bool = True) -> list[concurrent.futures.Future]:
        raise NotImplementedError

    def abandon(self, futures: Iterable[concurrent.futures.Future]) -> None:
        raise NotImplementedError


class Executor(ProgramJudge):
    """Run untrusted programs against a problem's tests; a context manager.

    ``max_workers`` worker servers (default: one per available core) each fork a fresh,
    isolated process per test. ``sandbox``: ``"auto"`` (the best that works here: namespaces
    when running as root, else bubblewrap if installed, else basic with a one-time warning),
    ``"namespaces"``, ``"bwrap"`` (errors if unavailable) or ``"basic"``. Other keyword
    arguments are `Limits` fields.
    """

    def __init__(self, max_workers: int | None = None, sandbox: str = "auto", **limits: Any):
        if sandbox not in SANDBOXES:
            raise ValueError(f"sandbox must be one of {SANDBOXES}, got {sandbox!r}")
        names = {f.name for f in fields(Limits)}
        unknown = sorted(set(limits) - names)
        if unknown:
            raise TypeError(f"unknown executor option(s) {unknown}; valid options: {sorted(names)}")
        if "preload" in limits:
            limits["preload"] = tuple(limits["preload"])
        self.limits = Limits(**limits)
        if max_workers is None:
            max_workers = usable_cores()
        if int(max_workers) < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers!r}")
        self.max_workers = int(max_workers)
        self.sandbox = sandbox
        self.mode: str | None = None  # the mode actually in use, known once workers started
        self._lock = threading.Lock()  # guards the queue below and the driver's start and end
        self._inbox: deque[_Job] = deque()      # submitted, not yet seen by the driver
        self._driver: threading.Thread | None = None
        self._driver_pid = os.getpid()
        self._wake_r, self._wake_w = os.pipe()  # wakes the driver's select() on new work
        os.set_blocking(self._wake_w, False)
        self._pool = _Pool()
        self._finalizer = weakref.finalize(self, _release, self._pool, self._wake_r, self._wake_w)
        self._closed = False
        self._run_ids = 0
        _LIVE.add(self)
        self.preload_failures: dict[str, str] = {}  # module -> why it could not be preloaded
        self.uncontained: list[str] = []  # kernel objects this machine does not let us contain

    # ---------------------------------------------------------------- life cycle
    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker servers (idempotent); programs still queued fail with RuntimeError."""
        with self._lock:
            self._closed = True
            driver = self._driver if self._driver_pid == os.getpid() else None
        self._wake()
        if driver is not None and driver is not threading.current_thread():
            driver.join()
        self._finalizer()

    @property
    def busy_workers(self) -> int:
        """Workers running tests at this moment (0 when idle or not started)."""
        return sum(w.run is not None for w in self._pool.workers)

    def _modes(self) -> list[str]:
        """Sandbox modes to try, best first (``auto``: namespaces, bubblewrap, basic)."""
        if self.sandbox == "basic":
            return ["basic"]
        if self.sandbox == "bwrap":
            if shutil.which("bwrap") is None:
                raise RuntimeError("sandbox='bwrap' needs bubblewrap (the `bwrap` program) on PATH")
            return ["bwrap"]
        reason = _namespaces_unavailable_reason()
        if self.sandbox == "namespaces":
            if reason is not None:
                raise RuntimeError(f"sandbox='namespaces' is unavailable here: {reason}")
            return ["namespaces"]
        modes = [] if reason is not None else ["namespaces"]
        if shutil.which("bwrap") is not None:
            modes.append("bwrap")
        return modes + ["basic"]

    def _start(self) -> None:
        if self._closed:
            raise RuntimeError("this Executor is closed")
        if self._pool.pid != os.getpid():  # we were forked: the servers belong to the parent
            self._pool.close()
            self._pool = _Pool()
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, self._pool.close)
        if self._pool.workers:
            return
        modes = [self.mode] if self.mode else self._modes()
        failures = []  # why the better sandboxes are not used (for the warning)
        if self.sandbox == "auto" and _namespaces_unavailable_reason() is not None:
            failures.append(str(_namespaces_unavailable_reason()))
        for mode in modes:
            nproc = 0 if mode == "namespaces" else sandbox.count_user_tasks(os.getuid())
            self._pool.workers = [_Worker(mode, self.limits, nproc) for _ in range(self.max_workers)]
            for w in self._pool.workers:
                w.wait_ready()
            errors = [w.error for w in self._pool.workers if w.error]
            if not errors:
                if mode == "basic" and self.sandbox == "auto" and self.mode is None:
                    _warn_degraded("; ".join(failures) or "unknown reason")
                self.mode = mode
                for w in self._pool.workers:
                    self._take_reports(w)
                return
            self._pool.close()
            failures.append(f"the {mode} sandbox failed to start: {errors[0]}")
        raise RuntimeError(f"executor workers failed to start: {'; '.join(failures)}")

    def _take_reports(self, w: _Worker) -> None:
        """Log, once per executor, each preload that failed and each thing not contained."""
        for name, why in w.preload_failures.items():
            if name not in self.preload_failures:
                self.preload_failures[name] = why
                logger.warning("mars2 executor: could not preload %r in the worker (%s); programs "
                               "that import it pay the import in every test", name, why)
        for what in w.uncontained:
            if what not in self.uncontained:
                self.uncontained.append(what)
                logger.warning("mars2 executor: not contained on this machine: %s", what)

    def _replace(self, w: _Worker) -> _Worker:
        w.close()
        w.kill()
        fresh = _Worker(w.mode, self.limits, w.nproc_base)
        i = self._pool.workers.index(w)
        self._pool.workers[i] = fresh
        return fresh

    # ---------------------------------------------------------------- public API
    def submit_many(self, items: Sequence[tuple], tests: str | list[TestCase] = "all",
                    stop_on_first_failure: bool = True) -> list[concurrent.futures.Future]:
        """Queue many items (as in `run_many`) without waiting; one future per item, in order,
        each resolved as soon as that program's result is known. Bad items raise here, before
        anything is queued."""
        jobs = [self._job(item, tests, i) for i, item in enumerate(items)]
        for job in jobs:
            job.stop = bool(stop_on_first_failure)
            job.future = concurrent.futures.Future()
        with self._lock:
            if self._driver_pid != os.getpid():  # forked: the parent's driver is not ours
                self._driver, self._driver_pid = None, os.getpid()
                self._inbox.clear()
            self._start()
            for job in jobs:
                if job.done:
                    job.future.set_result(self._result(job))
                else:
                    self._inbox.append(job)
            if self._inbox and self._driver is None:
                self._driver = threading.Thread(target=self._drive, name="mars2-executor",
                                                 daemon=True)
                self._driver.start()
        self._wake()
        return [job.future for job in jobs]

    def abandon(self, futures: Iterable[concurrent.futures.Future]) -> None:
        """Cancel these futures and stop running their programs (``future.cancel()`` on one
        future does the same, at the driver's next turn)."""
        for f in futures:
            f.cancel()
        self._wake()

    def _wake(self) -> None:
        if not self._finalizer.alive:  # closed: the pipe's fd numbers may belong to others now
            return
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    # ---------------------------------------------------------------- jobs
    def _job(self, item: tuple, default_tests: str | list[TestCase], index: int) -> _Job:
        problem, code, which = unpack_item(item, default_tests, index)
        selected = problem.select_tests(which)
        if not selected:
            raise ValueError(f"problem {problem.id!r} has no {which if isinstance(which, str) else 'given'} "
                             "tests to run")
        for t in selected:
            if not isinstance(t, TestCase):
                raise TypeError(f"problem {problem.id!r}: tests must be TestCase, got {type(t).__name__}")
        if problem.kind == "functional":
            _validate_functional(problem, selected)
        lim = self.limits
        rule_for(problem)  # an unknown harness is an error before anything runs
        wall = float(lim.time_limit_s or problem.time_limit_s * lim.time_limit_scale)
        cpu = int(math.ceil(lim.cpu_limit_s if lim.cpu_limit_s else wall + 1))
        memory = int(float(lim.memory_limit_mb or problem.memory_limit_mb) * (1 << 20))
        job = _Job(problem, code, list(selected), wall, cpu, memory)
        if not code.strip():
            job.compile_error = ""
            job.done = True
        return job

    def _drive(self) -> None:
        """The driver thread: keep every worker busy with what has been submitted, resolve each
        job's future once its result is known, and end when nothing is left (the hot loop of
        the RL step)."""
        fresh: deque[_Job] = deque()
        pending: deque[tuple[_Job, list[int]]] = deque()  # split or re-queued runs of tests
        active: list[_Job] = []
        try:
            while True:
                with self._lock:
                    new = list(self._inbox)
                    self._inbox.clear()
                    closed = self._closed
                    busy = [w for w in self._pool.workers if w.run is not None]
                    if closed or (not new and not fresh and not pending and not busy
                                  and not any(not j.done for j in active)):
                        self._driver = None
                        break
                fresh.extend(new)
                active.extend(new)
                for job in active:
                    if job.future.cancelled() and not job.done:  # its caller stopped waiting
                        job.done = True
                        self._cancel(job)
                idle = [w for w in self._pool.workers if w.run is None]
                for n, w in enumerate(idle):
                    picked = self._pick(len(idle) - n, fresh, pending)
                    if picked is None:
                        break
                    self._send(w, *picked)
                busy = [w for w in self._pool.workers if w.run is not None]
                timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic()) if busy else None
                ready, _, _ = select.select([w.res_r for w in busy] + [self._wake_r], [], [], timeout)
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                by_fd = {w.res_r: w for w in busy}
                for fd in ready:
                    if fd in by_fd:
                        self._receive(by_fd[fd], pending)
                now = time.monotonic()
                for w in busy:
                    if w.run is not None and w.res_r not in ready and now > w.deadline:
                        self._lost(w, pending, "the sandbox worker stopped answering")
                for job in [j for j in active if j.done]:
                    active.remove(job)
                    if not job.future.done():
                        job.future.set_result(self._result(job))
        except BaseException as exc:  # a bug of ours: fail the waiting callers, never hang them
            logger.exception("mars2 executor: the driver thread failed")
            with self._lock:
                self._driver = None
                active.extend(self._inbox)
                self._inbox.clear()
            for w in list(self._pool.workers):
                if w.run is not None:
                    w.run = None
                    self._replace(w)
            for job in active:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(f"the executor failed: {exc!r}"))
            return
        # closed (or finished): nothing still waiting may hang
        for job in active + new:
            if not job.future.done():
                job.future.set_exception(RuntimeError("this Executor is closed"))
        if closed:
            for w in list(self._pool.workers):
                w.run = None

    @staticmethod
    def _pick(idle: int, fresh: deque, pending: deque) -> tuple[_Job, list[int]] | None:
        """Next run of tests for an idle worker (``idle`` counts the idle workers left)."""
        while pending:
            job, indices = pending.popleft()
            indices = [i for i in indices if i < job.limit() and i not in job.results]
            if indices and not job.done:
                return job, indices
        while fresh:
            job = fresh.popleft()
            if job.done:
                continue
            n = len(job.tests)
            parts = min(n, 1 + max(0, idle - 1 - len(fresh)))  # spare workers share the tests
            bounds = [round(k * n / parts) for k in range(parts + 1)]
            runs = [list(range(bounds[k], bounds[k + 1])) for k in range(parts)]
            pending.extendleft((job, r) for r in reversed(runs[1:]))
            return job, runs[0]
        return None

    def _send(self, w: _Worker, job: _Job, indices: list[int]) -> None:
        self._run_ids += 1
        run = _Run(job, indices, self._run_ids)
        job.running.append(run)
        w.run = run
        kind = job.problem.kind
        lim = self.limits
        tests, blobs = [], [job.code.encode("utf-8", "surrogatepass")]
        for i in indices:
            t = job.tests[i]
            entry: dict[str, Any] = {"index": i}
            if kind == "stdin":
                blobs.append(t.input.encode("utf-8", "surrogatepass"))
            else:
                entry["input"] = t.input
                blobs.append(b"")
            tests.append(entry)
        header = {"op": "job", "id": run.id, "kind": kind, "entry_point": job.problem.entry_point,
                  "tests": tests, "wall_s": job.wall_s, "cpu_s": job.cpu_s, "memory": job.memory,
                  "output_limit": int(lim.output_limit_mb * (1 << 20)),
                  "processes": lim.max_processes, "open_files": lim.max_open_files,
                  **harness_options(job.problem, lim)}
        w.deadline = time.monotonic() + job.wall_s + _ANSWER_GRACE_S
        try:
            w.wait_ready()
            if w.error:
                raise protocol.ChannelClosed(w.error)
            self._take_reports(w)
            protocol.send(w.cmd_w, header, blobs)
        except protocol.ChannelClosed:
            w.deadline = 0.0  # handled as lost on the next turn of the loop

    def _cancel(self, job: _Job) -> None:
        """Stop workers still running tests of ``job`` that no longer count."""
        end = job.limit() if not job.done else 0
        for run in job.running:
            if not run.cancelled and all(i >= end for i in run.unreported()):
                run.cancelled = True
                for w in self._pool.workers:
                    if w.run is run:
                        try:
                            protocol.send(w.cmd_w, {"op": "cancel", "id": run.id})
                        except protocol.ChannelClosed:
                            pass

    def _receive(self, w: _Worker, pending: deque) -> None:
        try:
            header, blobs = protocol.recv(w.res_r)
        except (protocol.ChannelClosed, ValueError):
            self._lost(w, pending, "the sandbox worker died while running this test")
            return
        run = w.run
        job = run.job
        w.deadline = time.monotonic() + job.wall_s + _ANSWER_GRACE_S
        if header.get("done"):
            w.run = None
            job.running.remove(run)
            if "compile_error" in header and job.compile_error is None:
                job.compile_error = header["compile_error"]
            elif not run.cancelled and run.unreported() and not job.done:
                pending.appendleft((job, run.unreported()))  # not expected; never lose tests
            job.check_done()
            if job.done:
                self._cancel(job)
            return
        idx = header.get("index")
        if idx not in run.indices or idx in run.reported:
            return
        run.reported.add(idx)
        if job.done or idx >= job.limit():
            return
        try:
            tr = self._grade(job, idx, header, blobs)
        except Exception as e:  # a bug of ours must not crash the caller or reward the program
            logger.exception("mars2 executor: internal error grading problem %r test %d",
                             job.problem.id, idx)
            tr = self._test_result(Verdict.WRONG_ANSWER, job.tests[idx],
                                   error=f"the grader could not judge this test (internal error: "
                                         f"{type(e).__name__}: {e})")
        job.results[idx] = tr
        if tr.verdict != Verdict.PASSED and (job.fail_at is None or idx < job.fail_at):
            job.fail_at = idx
        job.check_done()
        if job.stop and job.fail_at is not None:
            self._cancel(job)

    def _lost(self, w: _Worker, pending: deque, why: str) -> None:
        run, w.run = w.run, None
        self._replace(w)
        job = run.job
        job.running.remove(run)
        left = [i for i in run.unreported() if i < job.limit()]
        if job.done or not left:
            return
        first = left[0]  # the test it died under (or, if none had started, the next one)
        if first in job.retried:  # died under it twice: now it is the program's doing
            job.results[first] = self._test_result(
                Verdict.RUNTIME_ERROR, job.tests[first], error=f"{why} (on two fresh workers)")
            if job.fail_at is None or first < job.fail_at:
                job.fail_at = first
            left = left[1:]
        else:
            job.retried.add(first)
        if left:
            pending.appendleft((job, left))
        job.check_done()
        if job.done or job.stop:
            self._cancel(job)

    # ---------------------------------------------------------------- grading
    def _test_result(self, verdict: Verdict, test: TestCase, actual: str = "", error: str = "") -> TestResult:
        n = self.limits.text_limit
        return TestResult(verdict, _clean(clip(test.input, n)), _clean(clip(test.output, n)),
                          _clean(clip(actual, n)), _clean(clip(error, n)))

    def _grade(self, job: _Job, idx: int, h: dict, blobs: list[bytes]) -> TestResult:
        test = job.tests[idx]
        kind = job.problem.kind
        stdout_b, stderr_b, status_b = (blobs + [b"", b"", b""])[:3]
        stdout = stdout_b.decode("utf-8", "replace")
        stderr = tail_lines(stderr_b.decode("utf-8", "replace"), 20)
        status = _parse_status(status_b)
        exc, tb = status.get("exc"), _text(status.get("tb"))
        shown = stdout if kind == "stdin" else ""
        R = lambda v, actual=shown, error="": self._test_result(v, test, actual, error)  # noqa: E731
        if h.get("setup_error"):
            return R(Verdict.RUNTIME_ERROR, error=f"sandbox set-up failed: {h['setup_error']}")
        if h.get("output_limited") or status.get("failure") == "output":
            why = tb if status.get("failure") == "output" else ""
            return R(Verdict.OUTPUT_LIMIT, error=why or f"output limit exceeded ({self.limits.output_limit_mb:g} MiB)")
        if h.get("timed_out") or h.get("cpu_limited") or status.get("program_signal") == signal.SIGXCPU:
            return R(Verdict.TIME_LIMIT, error=f"time limit exceeded ({job.wall_s:g} s)")
        if exc == "MemoryError":
            return R(Verdict.MEMORY_LIMIT, error=tb or "MemoryError")
        sig = h.get("signal")
        if sig is not None:
            return R(Verdict.RUNTIME_ERROR, error="\n".join(x for x in (stderr, f"killed by {_signame(sig)}") if x))
        code = h.get("exit")
        if kind == "functional" and status.get("missing"):
            return R(Verdict.COMPILE_ERROR,
                     error=f"entry point {status['missing']!r} not found: define class Solution with "
                           f"method {status['missing']!r} or a function {status['missing']!r}")
        if kind == "assert":
            return self._grade_assert(status, stderr, R)
        if code != 0:
            error = tb or "\n".join(x for x in (stderr, f"exit status {code}") if x)
            return R(Verdict.RUNTIME_ERROR, error=error)
        if kind == "stdin":
            return R(Verdict.PASSED if lines_match(stdout, test.output) else Verdict.WRONG_ANSWER)
        raw = status.get("result")
        if not isinstance(raw, str):
            return R(Verdict.RUNTIME_ERROR, error="the program exited before the function returned")
        try:
            value = loads_value(raw)
        except ValueError as e:
            return R(Verdict.RUNTIME_ERROR, error=str(e))
        ok = rule_for(job.problem).values_match(value, test.output)
        return R(Verdict.PASSED if ok else Verdict.WRONG_ANSWER, actual=show_value(
            list(value) if isinstance(value, tuple) else value))

    @staticmethod
    def _grade_assert(status: dict, stderr: str, R) -> TestResult:
        """The test process's record: ``done`` only if the test code ran to its end with the
        program answering every request (see `harness` and `bridge`)."""
        tb = _text(status.get("tb"))
        psig, pexit = status.get("program_signal"), status.get("program_exit")
        died = f"the program was killed by {_signame(psig)}" if psig is not None else ""
        failure = status.get("failure")
        if failure == "wrong":
            return R(Verdict.WRONG_ANSWER, error=tb)
        if failure is not None:
            return R(Verdict.RUNTIME_ERROR, error="\n".join(x for x in (stderr, tb, died) if x))
        if status.get("done") is True:
            if pexit == 0:
                return R(Verdict.PASSED)
            return R(Verdict.RUNTIME_ERROR, error="\n".join(
                x for x in (stderr, died or f"the program exited with status {pexit} after the test") if x))
        if status.get("exc") == "AssertionError" and status.get("stage") == "test":
            return R(Verdict.WRONG_ANSWER, error=tb or "AssertionError")
        if status.get("exc"):
            return R(Verdict.RUNTIME_ERROR, error=tb or str(status["exc"]))
        return R(Verdict.RUNTIME_ERROR, error="\n".join(
            x for x in (stderr, "the test process ended without a record") if x))

    def _result(self, job: _Job) -> ExecutionResult:
        total = len(job.tests)
        if job.compile_error is not None:
            first = job.tests[0]
            error = job.compile_error or "the program is empty"
            tr = self._test_result(Verdict.COMPILE_ERROR, first, error=error)
            return ExecutionResult(Verdict.COMPILE_ERROR, 0, total, 0.0, [tr])
        end = job.fail_at + 1 if (job.stop and job.fail_at is not None) else total
        ran = [job.results[i] for i in range(end)]
        passed = sum(t.verdict == Verdict.PASSED for t in ran)
        verdict = next((t.verdict for t in ran if t.verdict != Verdict.PASSED), Verdict.PASSED)
        if self.limits.reward == "binary":
            reward = 1.0 if passed == total else 0.0
        else:
            reward = passed / total
        return ExecutionResult(verdict, passed, total, reward, ran)


# ------------------------------------------------------------------------- helpers

def unpack_item(item: Any, default_tests: Any, index: int) -> tuple[Problem, str, Any]:
    """``(problem, code, tests)`` of one `run_many` item (``tests`` defaulted), or a TypeError
    naming the item's position and what was wrong."""
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise TypeError(f"item {index}: expected (problem, code) or (problem, code, tests), "
                        f"got {type(item).__name__}")
    problem, code = item[0], item[1]
    which = item[2] if len(item) == 3 else default_tests
    if not isinstance(problem, Problem):
        raise TypeError(f"item {index}: expected a Problem, got {type(problem).__name__}")
    if not isinstance(code, str):
        raise TypeError(f"item {index}: code must be a str, got {type(code).__name__}")
    return problem, code, which


def _release(pool: _Pool, *fds: int) -> None:
    """An executor's end (close or garbage collection): its servers, then its wake-up pipe."""
    try:
        pool.close()
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def busy_workers() -> int:
    """Sandbox workers of this process's executors running tests right now: the cores a model
    generating in this process should leave to them (`agents.hf.HFAgent` does)."""
    return sum(ex.busy_workers for ex in list(_LIVE))


def harness_options(problem: Problem, limits: Limits) -> dict[str, Any]:
    """How ``problem``'s program and tests are run: the one place that chooses per dataset.

    ``prelude``: the import block of the problem's harness the program runs after
    (`rules.rule_for`; ``None`` with ``limits.lcb_prelude=False``); ``main_guard``: whether the
    program runs as ``__main__``; ``test_preamble``: code the assert harness's test process
    runs before the test (rllm's LeetCode helpers from `nodes`, HumanEval's prompt helpers
    from `rules.prompt_helpers`: helpers a test must not take from the program); it comes from
    the dataset, so it runs on the trusted side.
    MBPP's ``test_imports`` are already part of each test's input (the loader puts them there),
    which runs on the trusted side too.
    """
    rule = rule_for(problem)
    return {"prelude": rule.prelude if limits.lcb_prelude else None,
            "main_guard": rule.main_guard, "test_preamble": rule.test_preamble(problem)}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """Lone surrogates (a program can print them through an exception message) become U+FFFD,
    so results always encode as UTF-8 (trees.jsonl, prompts); everything else is kept."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _signame(sig: Any) -> str:
    try:
        return signal.Signals(sig).name
    except (ValueError, TypeError):
        return f"signal {sig}"


def _parse_status(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        status = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return status if isinstance(status, dict) else {}


def _validate_functional(problem: Problem, tests: Iterable[TestCase]) -> None:
    for i, t in enumerate(tests):
        try:
            for line in t.input.split("\n"):
                if line.strip():
                    json.loads(line)
        except ValueError as e:
            raise ValueError(f"problem {problem.id!r}, test {i}: each input line of a functional "
                             f"test must be one JSON value ({e})") from None
        try:
            json.loads(t.output)
        except ValueError as e:
            raise ValueError(f"problem {problem.id!r}, test {i}: the output of a functional test "
                             f"must be one JSON value ({e})") from None


_ns_reason: list[str | None] = []


def _namespaces_unavailable_reason() -> str | None:
    if not _ns_reason:
        _ns_reason.append(sandbox.namespaces_unavailable_reason())
    return _ns_reason[0]


def _warn_degraded(reason: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"mars2 executor: the namespace sandbox is unavailable ({reason}). Programs run with "
        "rlimits, a new session, a scrubbed environment and a scratch directory only: they can "
        "reach the network, read and write this user's files and signal this user's processes. "
        "Run as root for the full sandbox, install bubblewrap (bwrap) for a user-level one, or "
        "pass sandbox='basic' to accept this silently.",
        RuntimeWarning, stacklevel=4)

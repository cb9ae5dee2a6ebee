"""Warm worker server: pre-imports the usual modules once, then forks one child per test.

Started by `Executor` (a fresh interpreter with a scrubbed environment, see ``_BOOT`` there).
It reads commands on its stdin and writes results on its stdout; both are moved to high fds
and replaced by /dev/null so nothing printed can corrupt them.

Protocol (frames of `protocol`): the executor sends ``job`` (one program and a run of its
tests); the server answers one ``result`` per test as soon as it is known, then ``done``. A
``cancel`` for the running job (sent after a failure when the rest does not count) kills the
running test and ends the job early. Grading happens in the executor: the expected outputs
never enter this process, so a child cannot read them from memory it inherited.

Children are forked by a zygote (see `zygote.py`), a copy of this server made once after the
imports. The next child is forked, jailed, given a sandbox uid (not the one of the test now
running) and the job's rlimits while the current test runs; it then waits on a pipe for its
test. So the fork and the set-up are off the critical path, and every test still gets a
fresh process.

Heavy modules (`HEAVY_MODULES`: numpy ...) would make every fork and exit slower, numpy or
not: they are imported by a second zygote only (inside the jail, so a venv anywhere is seen),
whose children run the programs that name one of them.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import marshal
import os
import re
import select
import signal
import socket
import struct
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass

from mars2_env.execution import harness, protocol, sandbox, zygote
from mars2_env.execution.rules import prelude_aliases

# Modules a typical competitive-programming / LeetCode solution imports (LiveCodeBench's
# prelude among them); loaded before the first fork so a child's ``import`` is a dict lookup.
DEFAULT_PRELOAD: tuple[str, ...] = (
    "array", "bisect", "builtins", "cmath", "collections", "collections.abc", "contextlib",
    "copy", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools", "hashlib",
    "heapq", "io", "itertools", "json", "math", "numbers", "operator", "queue", "random", "re",
    "statistics", "string", "struct", "sys", "threading", "time", "typing", "unicodedata",
    "sortedcontainers", "numpy",
)
# Third-party modules preloaded when installed; their absence is not worth a warning.
OPTIONAL_PRELOAD = frozenset({"sortedcontainers", "numpy"})
# Modules that make a process much bigger (numpy: +17 MB resident, 70 more mappings), and so
# every fork and exit slower: they live in a second zygote, used by programs naming them.
HEAVY_MODULES = frozenset({"numpy", "scipy", "pandas", "sympy", "networkx", "sklearn", "torch"})

SETUP_FAILED = b"\x00mars2-setup-failed:"
STDOUT_SHOWN_WHEN_CAPPED = 64 << 10
STDERR_TAIL = 16 << 10
GO_FD = harness.GO_FD  # the waiting child's end of its go-pipe
_PART = struct.Struct("<Q")  # length of the program's part of a test's payload
_TICKS = os.sysconf("SC_CLK_TCK")


class Cancelled(Exception):
    """The executor cancelled the running job."""


class ZygoteLost(Exception):
    """The zygote died (a program in the basic sandbox can kill it): the server must go."""


@dataclass
class _Next:
    """A forked child waiting for its test (``pid`` is None until the zygote answers)."""

    pid: int | None
    go_w: int
    fds: tuple[int, int, int, int]  # memfds: stdin, stdout, stderr, status
    uid: int | None                 # the sandbox uid it already runs as (namespaces mode)
    limits: tuple                   # the job limits it was set up with (`Server.limits`)
    heavy: bool                     # forked by the zygote holding the heavy modules


@dataclass
class _Zygote:
    sock: socket.socket
    pid: int
    base_vm: int    # its address space and private memory: a child's limits are on top
    base_data: int


class Server:
    def __init__(self, cmd_fd: int, res_fd: int, config: dict):
        self.cmd_fd, self.res_fd = cmd_fd, res_fd
        names = list(config.get("preload", DEFAULT_PRELOAD))
        self.heavy_preload = [n for n in names if n.split(".")[0] in HEAVY_MODULES]
        # imports first, from the paths as the executor sees them: the namespaces sandbox then
        # mounts a private /tmp, which would hide a venv living under /tmp from the server
        self.preload_failures = self.preload([n for n in names if n not in self.heavy_preload])
        self.box = sandbox.setup(config["mode"], int(config.get("scratch_mb", 256)),
                                 config.get("nproc_base"))
        self.box.prepare_server()
        self.uncontained: list[str] = []  # what this kernel does not let us contain (reported)
        try:
            sandbox.deny_keyrings()
        except OSError as e:
            self.uncontained.append(f"kernel keyrings (seccomp refused: {e})")
        self.preludes = harness.prelude_builtins()  # held here: a child must not free them
        self.mains = harness.prepare_server(self.box.child_scratch, self.preludes)
        self.codes: OrderedDict[str, bytes | str] = OrderedDict()
        self.sysv_cap = 0
        self.fork = None
        self.next: _Next | None = None
        self.job_id = None
        self.zygotes: dict[bool, _Zygote] = {}  # heavy? -> zygote
        self.heavy_names: tuple[str, ...] = ()  # top-level names that send a program to the heavy one
        self.heavy = False  # whether the current job runs in the heavy zygote
        self.turn = 0  # alternates the sandbox uid between consecutive tests
        self.limits: tuple = (60.0, 61, 1 << 30, 1 << 25, 64, 256)  # the job's, until a job says

    def child_limits(self, heavy: bool, wall_s: float, cpu_s: int, memory: int, file_size: int,
                     processes: int, open_files: int) -> tuple:
        """`sandbox.ChildLimits` fields, in order: ``memory`` more private memory than the
        zygote uses, and the address-space backstop above that."""
        z = self.zygotes[heavy]
        return (wall_s, cpu_s, z.base_data + memory, z.base_vm + memory + sandbox.ADDRESS_SPACE_SLACK,
                file_size, processes, open_files)

    def start_zygotes(self) -> None:
        """Fork the zygote (call after the imports and gc.freeze), and the heavy one when
        heavy modules are to be preloaded."""
        self.fork = sandbox.make_fork()
        self.zygotes[False] = self._start_zygote([])[0]
        if self.heavy_preload:
            z, failures = self._start_zygote(self.heavy_preload)
            self.preload_failures.update(failures)
            loaded = [n for n in self.heavy_preload if n not in failures]
            if loaded:
                self.zygotes[True] = z
                self.heavy_names = tuple(sorted({n.split(".")[0] for n in loaded}))
            else:
                z.sock.close()
                sandbox.reap(z.pid)

    def _start_zygote(self, heavy: list[str]) -> tuple[_Zygote, dict[str, str]]:
        """Fork a zygote; with ``heavy`` modules it imports them first and answers
        ``(failures, vm, data)``. Returns the `_Zygote` and the modules that failed."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = self.fork()
        if pid == 0:
            try:
                ours.close()
                for fd in [self.cmd_fd, self.res_fd] + [z.sock.fileno() for z in self.zygotes.values()]:
                    try:  # the zygote never talks to the executor, nor to the other zygote
                        os.close(fd)
                    except OSError:
                        pass
                if heavy:
                    theirs.send(marshal.dumps(self._become_heavy(heavy)))
                zygote.serve(theirs, self.box, self.fork, self._child)
            finally:
                os._exit(0)
        theirs.close()
        if not heavy:
            return _Zygote(ours, pid, *_vm_sizes()), {}
        try:
            failures, vm, data = marshal.loads(ours.recv(1 << 20))
        except (OSError, ValueError, EOFError, TypeError):
            failures, vm, data = {n: "the zygote importing it died" for n in heavy}, 0, 0
        return _Zygote(ours, pid, vm, data), failures

    def _become_heavy(self, names: list[str]) -> tuple[dict[str, str], int, int]:
        """In the heavy zygote: move into the jail (its paths are the ones the children see,
        a venv under /tmp included), import ``names`` there, freeze the new objects."""
        if self.box.jail is not None:
            os.chroot(self.box.jail)
            os.chdir("/")
            self.box.jail = None  # its children are in the jail already
        path = sys.path[:]
        sys.path[:] = [p for p in path if p and p != self.box.child_scratch]
        failures = self.preload(names)
        sys.path[:] = path
        gc.collect()
        gc.freeze()
        return (failures, *_vm_sizes())

    def wants_heavy(self, source: str, prelude: str | None = None) -> bool:
        """Whether a program runs in the heavy zygote: it names one of its modules, or uses a
        name its prelude binds to one (rllm's ``np`` / ``pd``, imported on first use)."""
        if not self.heavy_names:
            return False
        if any(n in source for n in self.heavy_names):
            return True
        return any(module in self.heavy_names and re.search(rf"\b{alias}\b", source)
                   for alias, module in prelude_aliases(prelude).items())

    @staticmethod
    def preload(names) -> dict[str, str]:
        """Import ``names``; returns ``{name: why}`` for each that failed (an optional
        third-party module that is not installed is skipped without a word)."""
        failures = {}
        for name in names:
            try:
                if name in OPTIONAL_PRELOAD and importlib.util.find_spec(name) is None:
                    continue
                importlib.import_module(name)
            except BaseException as e:  # a broken install may raise anything, even SystemExit
                failures[name] = f"{type(e).__name__}: {e}"[:500]
        if "numpy" in sys.modules:  # its global RNG is seeded from the OS at import: fix it
            sys.modules["numpy"].random.seed(0)
        return failures

    # ---------------------------------------------------------------- the next child
    def prefork(self) -> None:
        """Ask the zygote for the child of the next test, set up with the sandbox uid not used
        by the test now running and the current job's rlimits; it blocks until `run_test`
        sends it its test."""
        if self.next is not None:
            return
        uid = None
        if self.box.uids is not None:
            self.turn ^= 1
            uid = self.box.uids[self.turn]
        heavy = self.heavy
        fds = tuple(os.memfd_create(n, os.MFD_CLOEXEC) for n in ("stdin", "stdout", "stderr", "status"))
        go_r, go_w = os.pipe()
        try:
            setup = marshal.dumps((uid, self.child_limits(heavy, *self.limits)))
            socket.send_fds(self.zygotes[heavy].sock, [zygote.OP_FORK + setup], list(fds) + [go_r])
        except OSError:
            for fd in fds + (go_w,):
                os.close(fd)
            raise ZygoteLost from None
        finally:
            os.close(go_r)
        self.next = _Next(None, go_w, fds, uid, self.limits, heavy)  # type: ignore[arg-type]

    def _drop_next(self) -> None:
        """Let the waiting child go unused (its rlimits are not the ones needed now)."""
        pid = self._next_pid()
        nxt, self.next = self.next, None
        os.close(nxt.go_w)  # end of file: it exits
        for fd in nxt.fds:
            os.close(fd)
        if pid is not None and pid > 0:
            self._zygote(zygote.pack_pids(zygote.OP_REAP, [pid]), nxt.heavy)

    def _next_pid(self) -> int | None:
        """The pid of the pending child, reading the zygote's answer if not read yet."""
        nxt = self.next
        if nxt is not None and nxt.pid is None:
            try:
                data = self.zygotes[nxt.heavy].sock.recv(16)
            except OSError:
                data = b""
            if len(data) != 8:
                raise ZygoteLost
            nxt.pid = int.from_bytes(data, "little", signed=True)
        return nxt.pid if nxt is not None else None

    def _zygote(self, msg: bytes, heavy: bool, answer: bool = False) -> None:
        try:
            sock = self.zygotes[heavy].sock
            sock.send(msg)
            if answer and sock.recv(16) != b"s":
                raise ZygoteLost
        except OSError:
            raise ZygoteLost from None

    def _child(self, fds: tuple[int, ...], setup: bytes) -> None:
        """In the forked child (``fds``: 4 memfds and the go-pipe's read end; ``setup``: its
        uid and rlimits): isolate, wait for the test, run it; never returns."""
        status = 1
        try:
            try:
                uid, limits = marshal.loads(setup)
                self.box.enter_child(fds, uid, sandbox.ChildLimits(*limits))
            except BaseException as e:
                _setup_failed(3, e, fallback=fds[3])
            head = _read_exact(GO_FD, _PART.size)
            if not head:  # the server is shutting down
                os._exit(0)
            spec, code_bytes = marshal.loads(_read_exact(GO_FD, _PART.unpack(head)[0]))
            try:
                self.box.start_child()
            except BaseException as e:
                _setup_failed(3, e)
            code = marshal.loads(code_bytes)
            main = self.mains[spec.get("prelude")]
            if spec["kind"] == "assert":  # the test itself is still in the pipe
                status = harness.run_assert(spec, code, main, self.fork)
            else:
                os.close(GO_FD)
                status = harness.run_program(spec, code, main)
        finally:
            harness.child_exit(status)

    # ---------------------------------------------------------------- programs and tests
    def compiled(self, source: str) -> bytes | str:
        """Marshalled code object of ``source`` (or its SyntaxError text); a small LRU cache."""
        hit = self.codes.get(source)
        if hit is not None:
            self.codes.move_to_end(source)
            return hit
        try:
            value: bytes | str = marshal.dumps(
                compile(source, harness.SOURCE_NAME, "exec", dont_inherit=True))
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
            value = _compile_error_text(e)
        self.codes[source] = value
        if len(self.codes) > 32:
            self.codes.popitem(last=False)
        return value

    def run_job(self, h: dict, blobs: list[bytes]) -> None:
        """Run a program on a run of tests, sending each result as soon as it is known."""
        self.job_id = h["id"]
        source = blobs[0].decode("utf-8", "surrogatepass")
        code = self.compiled(source)
        self.heavy = self.wants_heavy(source, h.get("prelude"))
        if isinstance(code, str):
            protocol.send(self.res_fd, {"id": h["id"], "done": True, "compile_error": code})
            return
        try:
            for k, test in enumerate(h["tests"]):
                if self._cancel_pending():
                    break
                header, out = self.run_test(h, test, source, code, blobs[1 + k])
                header.update(id=h["id"], index=test["index"])
                protocol.send(self.res_fd, header, out)
        except Cancelled:
            pass
        protocol.send(self.res_fd, {"id": h["id"], "done": True})

    def run_test(self, h: dict, test: dict, source: str, code: bytes,
                 stdin: bytes) -> tuple[dict, list[bytes]]:
        fsize = int(h["output_limit"])
        wall_s, cpu_s = float(h["wall_s"]), int(h["cpu_s"])
        limits = (wall_s, cpu_s, int(h["memory"]), fsize, int(h["processes"]), int(h["open_files"]))
        spec = {"kind": h["kind"], "entry_point": h.get("entry_point"), "source": source,
                "prelude": _prelude_name(h.get("prelude", "lcb"), self.mains),
                "main_guard": bool(h.get("main_guard", True)), "output_limit": fsize}
        if h["kind"] == "functional":
            spec["input"] = test.get("input", "")
        part = marshal.dumps((spec, code))  # a child unmarshals the code object
        payload = _PART.pack(len(part)) + part
        if h["kind"] == "assert":  # read by the test process only after the program forked
            payload += marshal.dumps({"input": test.get("input", ""),
                                      "preamble": h.get("test_preamble", "")})
        if self.next is not None and (self.next.limits != limits or self.next.heavy != self.heavy):
            self._drop_next()
        self.limits = limits
        if self.box.mode == "namespaces" and self.sysv_cap != int(h["memory"]):
            sandbox.limit_sysv_ipc(int(h["memory"]))  # SysV memory counts in no rlimit
            self.sysv_cap = int(h["memory"])
        for attempt in range(2):
            self.prefork()
            pid = self._next_pid()
            nxt, self.next = self.next, None
            started = False
            try:
                if pid is None or pid < 0:
                    return _failed("fork failed")
                self.box.reset_scratch(nxt.uid)  # emptied, and owned by this test's uid
                if stdin:
                    os.pwrite(nxt.fds[0], stdin, 0)
                try:
                    _write_all(nxt.go_w, payload)
                    started = True
                except BrokenPipeError:  # the child died before its test (set-up failure?)
                    pass
                finally:
                    os.close(nxt.go_w)
                self.prefork()  # the zygote forks the next child while this test runs
                exit_code, sig, timed_out, cpu = self._wait(pid, nxt.uid, nxt.heavy,
                                                            wall_s if started else 60.0)
                self._clean_up_after(pid, nxt.uid, nxt.heavy)
                fds = nxt.fds
                st_size = os.fstat(fds[3]).st_size
                status = os.pread(fds[3], min(st_size, fsize), 0)
                if not started and not status.startswith(SETUP_FAILED) and attempt == 0:
                    continue  # killed from outside while waiting: try a fresh child once
                out_size = os.fstat(fds[1]).st_size
                capped = out_size >= fsize or st_size >= fsize
                keep = out_size if h["kind"] == "stdin" and not capped else min(out_size, STDOUT_SHOWN_WHEN_CAPPED)
                stdout = os.pread(fds[1], keep, 0)
                err_size = os.fstat(fds[2]).st_size
                stderr = os.pread(fds[2], STDERR_TAIL, max(0, err_size - STDERR_TAIL))
            finally:
                for fd in nxt.fds:
                    os.close(fd)
            if status.startswith(SETUP_FAILED):
                return _failed(status[len(SETUP_FAILED):].decode("utf-8", "replace"))
            if not started:
                return _failed("the sandboxed process died before its test started")
            header = {"exit": exit_code, "signal": sig, "timed_out": timed_out,
                      "cpu_limited": cpu >= cpu_s or sig == signal.SIGXCPU,
                      "output_limited": capped, "setup_error": None}
            return header, [stdout, stderr, status]
        return _failed("unreachable")  # pragma: no cover

    def _clean_up_after(self, pid: int, uid: int | None, heavy: bool) -> None:
        """Reap the finished child; kill and reap whatever it left behind (synchronously), then
        remove the SysV IPC objects it made, so none can reach the next test."""
        waiting = self._next_pid() if self.next is not None and self.next.heavy == heavy else None
        if any(p not in (pid, waiting) for p in sandbox.child_pids(self.zygotes[heavy].pid)):
            keep = [waiting] if waiting else []
            self._zygote(zygote.pack_pids(zygote.OP_SWEEP, [-1 if uid is None else uid] + keep),
                         heavy, answer=True)
        else:
            self._zygote(zygote.pack_pids(zygote.OP_REAP, [pid]), heavy)
        if self.box.private_ipc:
            sandbox.remove_sysv_ipc()

    def _wait(self, pid: int, uid: int | None, heavy: bool,
              wall_s: float) -> tuple[int | None, int | None, bool, float]:
        """Wait up to ``wall_s`` for the child to exit and SIGKILL it when late; read its exit
        status and CPU time from ``/proc`` (the zygote, its parent, reaps it afterwards).

        Also watches the command pipe: a ``cancel`` of this job kills the child and raises
        `Cancelled`; a closed pipe (executor gone) shuts the server down.
        """
        deadline = time.monotonic() + wall_s
        timed_out = cancelled = False
        pidfd = os.pidfd_open(pid)
        try:
            p = select.poll()
            p.register(self.cmd_fd, select.POLLIN)
            p.register(pidfd, select.POLLIN)
            zfds = [z.sock.fileno() for z in self.zygotes.values()]
            for fd in zfds:
                p.register(fd, 0)  # hang-up only: a zygote died
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                events = dict(p.poll(max(1, int(left * 1000) + 1)))
                if pidfd in events:
                    break
                if any(fd in events for fd in zfds):
                    raise ZygoteLost
                if self.cmd_fd in events and self._cancel_pending():
                    cancelled = True
                    break
            if timed_out or cancelled:
                sandbox.kill_pid_and_group(pid)
                select.select([pidfd], [], [], 10.0)
        finally:
            os.close(pidfd)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            # utime + stime, and cutime + cstime: an assert test's program process is its child
            status, ticks = int(fields[-1]), sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):  # not expected: it is our zombie
            status, ticks = signal.SIGKILL, 0
        if cancelled:
            self._clean_up_after(pid, uid, heavy)
            raise Cancelled
        exit_code, sig = _decode_status(status)
        return exit_code, sig, timed_out, ticks / _TICKS

    def _cancel_pending(self) -> bool:
        """Read waiting commands without blocking; True if the running job was cancelled."""
        cancelled = False
        while select.select([self.cmd_fd], [], [], 0)[0]:
            try:
                h, _ = protocol.recv(self.cmd_fd)
            except (protocol.ChannelClosed, ValueError):
                self.shutdown()
            if h.get("op") == "cancel" and h.get("id") == self.job_id:
                cancelled = True
            elif h.get("op") == "exit":
                self.shutdown()
        return cancelled

    def shutdown(self) -> None:
        """Stop the zygote (it kills every child it has), clean up, exit."""
        try:
            for z in self.zygotes.values():
                z.sock.close()
            for z in self.zygotes.values():
                sandbox.reap(z.pid)
            self.box.close()
        finally:
            os._exit(0)

    # ---------------------------------------------------------------- main loop
    def serve(self) -> None:
        while True:
            try:
                self.prefork()
            except ZygoteLost:
                self.shutdown()
            try:
                h, blobs = protocol.recv(self.cmd_fd)
            except (protocol.ChannelClosed, ValueError):
                self.shutdown()
            op = h.get("op")
            if op == "exit":
                self.shutdown()
            if op != "job":
                continue  # a cancel that came after its job finished
            try:
                self.run_job(h, blobs)
            except (protocol.ChannelClosed, ZygoteLost):
                self.shutdown()  # the executor sees the pipe close and replaces this worker


def _setup_failed(fd: int, e: BaseException, fallback: int | None = None) -> None:
    """Report a child set-up failure through the status memfd and exit."""
    msg = SETUP_FAILED + f"{type(e).__name__}: {e}".encode()
    try:
        os.pwrite(fd, msg, 0)
    except OSError:
        if fallback is not None:
            try:
                os.pwrite(fallback, msg, 0)
            except OSError:
                pass
    os._exit(71)


def _failed(why: str) -> tuple[dict, list[bytes]]:
    return {"exit": None, "signal": None, "timed_out": False, "cpu_limited": False,
            "output_limited": False, "setup_error": why}, [b"", b"", b""]


def _prelude_name(value: object, mains: dict) -> str | None:
    """The job's prelude: a name the server built, None for none (``True``/``False``: LCB / none,
    as older executors sent it). An unknown name is refused here, before any child runs."""
    if value is True:
        return "lcb"
    if value is False or value is None:
        return None
    if value not in mains:
        raise ValueError(f"unknown prelude {value!r}")
    return value  # type: ignore[return-value]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes:
    """``n`` bytes from a pipe (fewer only at end of file)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _vm_sizes() -> tuple[int, int]:
    """This process's address space and private writable memory (what RLIMIT_AS and
    RLIMIT_DATA count), in bytes."""
    vm = data = 0
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmSize:"):
                vm = int(line.split()[1]) * 1024
            elif line.startswith(b"VmData:"):
                data = int(line.split()[1]) * 1024
    return vm, data


def _decode_status(status: int) -> tuple[int | None, int | None]:
    """(exit code, None) for a normal exit, (None, signal number) for a killed child."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def _compile_error_text(e: BaseException) -> str:
    import traceback
    if isinstance(e, SyntaxError):
        return "".join(traceback.format_exception_only(type(e), e)).rstrip("\n")
    return f"{type(e).__name__}: {e}"


def self_test(server: Server) -> str | None:
    """Run ``print(1 + 1)`` and an assert test through the whole path; the error text when
    either does not work."""
    h = {"kind": "stdin", "wall_s": 60.0, "cpu_s": 60, "memory": 256 << 20, "output_limit": 1 << 20,
         "processes": 8, "open_files": 64}
    source = "print(1 + 1)\n"
    header, (stdout, stderr, _) = server.run_test(h, {"index": 0}, source, server.compiled(source), b"")
    if header.get("setup_error"):
        return f"sandbox set-up failed in the child: {header['setup_error']}"
    if header.get("exit") != 0 or stdout != b"2\n":
        tail = stderr.decode("utf-8", "replace")[-2000:]
        return f"self-test program failed (exit {header.get('exit')}, signal {header.get('signal')}): {tail}"
    source = "def f(x):\n    return x + 1\n"
    header, (_, stderr, status) = server.run_test(
        {**h, "kind": "assert"}, {"index": 0, "input": "assert f(1) == 2"}, source,
        server.compiled(source), b"")
    try:
        record = json.loads(status)
    except ValueError:
        record = {}
    if record.get("done") is not True or record.get("program_exit") != 0:
        tail = (stderr + status).decode("utf-8", "replace")[-2000:]
        return f"self-test assert failed (exit {header.get('exit')}, signal {header.get('signal')}): {tail}"
    if server.heavy_names:  # the heavy zygote: a program naming its modules runs there
        source = f"import sys\nprint(sorted(set({server.heavy_names!r}) - set(sys.modules)))\n"
        server.heavy = server.wants_heavy(source)
        header, (stdout, stderr, _) = server.run_test(h, {"index": 0}, source, server.compiled(source), b"")
        server.heavy = False
        if header.get("exit") != 0 or stdout != b"[]\n":
            tail = (stdout + stderr).decode("utf-8", "replace")[-2000:]
            return f"self-test of the heavy zygote failed (exit {header.get('exit')}): {tail}"
    return None


def main() -> None:
    cmd_fd = os.dup(0)
    res_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    for fd in (cmd_fd, res_fd):
        os.set_inheritable(fd, False)
    try:
        config, _ = protocol.recv(cmd_fd)
    except (protocol.ChannelClosed, ValueError):
        os._exit(0)
    try:
        server: Server | None = Server(cmd_fd, res_fd, config)
        gc.collect()
        gc.freeze()  # keep inherited objects out of the children's collections (fewer COW copies)
        server.start_zygotes()
        error = self_test(server)
    except Exception as e:  # namespaces refused, mounts failed, ...
        server, error = None, f"{type(e).__name__}: {e}"
    ready = {"ok": error is None, "error": error, "pid": os.getpid(),
             "mode": server.box.mode if server else None,
             "scratch": server.box.scratch if server else None,
             "preload_failures": server.preload_failures if server else {},
             "uncontained": server.uncontained if server else []}
    protocol.send(res_fd, ready)
    if server is None or error is not None:
        if server is not None:
            server.shutdown()
        os._exit(1)
    server.serve()


if __name__ == "__main__":
    main()

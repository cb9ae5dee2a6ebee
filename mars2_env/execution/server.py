"""Warm worker server: pre-imports the usual modules once, then forks one child per test.

Started by `Executor` as ``python -c "from mars2_env.execution.server import main; main()"``
with a scrubbed environment. It talks over its stdin (commands) and stdout (results); both are
moved to high fds and replaced by /dev/null so nothing the server or a child prints can
corrupt the channel. Grading happens in the executor, not here: the expected outputs never
enter this process, so a child cannot read them from memory it inherited.

The next child is forked and isolated (session, fds, jail, uid) *before* its test arrives,
while the executor grades the previous result; it then waits on a pipe for the test (program
code and limits), lowers its rlimits and runs. So the fork is off the critical path, and each
test still gets a fresh process.
"""

from __future__ import annotations

import gc
import importlib
import json
import marshal
import os
import select
import signal
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass

from mars2_env.execution import harness, protocol, sandbox

# Modules a typical competitive-programming / LeetCode solution imports; loaded before the
# first fork so a child's ``import`` is a dict lookup.
DEFAULT_PRELOAD: tuple[str, ...] = (
    "array", "bisect", "cmath", "collections", "collections.abc", "contextlib", "copy",
    "dataclasses", "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq",
    "io", "itertools", "json", "math", "numbers", "operator", "queue", "random", "re",
    "statistics", "string", "struct", "sys", "threading", "time", "typing", "unicodedata",
    "sortedcontainers",
)

SETUP_FAILED = b"\x00mars2-setup-failed:"
STDOUT_SHOWN_WHEN_CAPPED = 64 << 10
STDERR_TAIL = 16 << 10
GO_FD = 4  # the pre-forked child's end of its go-pipe


@dataclass
class _Next:
    """A pre-forked child waiting for its test."""

    pid: int
    go_w: int
    fds: tuple[int, int, int, int]  # memfds: stdin, stdout, stderr, status


class Server:
    def __init__(self, cmd_fd: int, res_fd: int, config: dict):
        self.cmd_fd, self.res_fd = cmd_fd, res_fd
        self.box = sandbox.setup(config["mode"], int(config.get("scratch_mb", 256)))
        self.preload(config.get("preload", DEFAULT_PRELOAD))
        self.prelude = harness.prelude_builtins()
        self.box.prepare_server()
        self.codes: OrderedDict[str, bytes | str] = OrderedDict()
        with open("/proc/self/statm") as f:
            self.base_vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        self.next: _Next | None = None
        self.fork = sandbox.make_fork()

    @staticmethod
    def preload(names) -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # optional modules (numpy, sortedcontainers) may be missing
                pass
        if "numpy" in sys.modules:  # its global RNG is seeded from the OS at import: fix it
            sys.modules["numpy"].random.seed(0)

    # ---------------------------------------------------------------- the next child
    def prefork(self) -> None:
        """Fork and isolate the child for the next test (it blocks until `run` sends it)."""
        if self.next is not None:
            return
        fds = tuple(os.memfd_create(n, os.MFD_CLOEXEC) for n in ("stdin", "stdout", "stderr", "status"))
        go_r, go_w = os.pipe()
        try:
            pid = self.fork()
        except OSError:
            for fd in fds + (go_r, go_w):
                os.close(fd)
            raise
        if pid == 0:
            self._child(fds, go_r)
        os.close(go_r)
        self.next = _Next(pid, go_w, fds)  # type: ignore[arg-type]

    def _child(self, fds: tuple[int, ...], go_r: int) -> None:
        """In the forked child: isolate, wait for the test, run it; never returns."""
        status = 1
        try:
            try:
                self.box.enter_child(fds + (go_r,))
            except BaseException as e:
                _setup_failed(3, e, fallback=fds[3])
            chunks = []
            while True:
                chunk = os.read(GO_FD, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(GO_FD)
            data = b"".join(chunks)
            if not data:  # the server is shutting down
                os._exit(0)
            spec, code_bytes = marshal.loads(data)
            try:
                self.box.apply_limits(sandbox.ChildLimits(**spec.pop("limits")))
            except BaseException as e:
                _setup_failed(3, e)
            code = marshal.loads(code_bytes)
            status = harness.run_program(spec, code, self.prelude if spec.get("prelude") else None)
        finally:
            harness.child_exit(status)

    def _discard_next(self) -> None:
        nxt, self.next = self.next, None
        if nxt is None:
            return
        try:
            os.kill(nxt.pid, signal.SIGKILL)
        except OSError:
            pass
        _waitpid(nxt.pid)
        os.close(nxt.go_w)
        for fd in nxt.fds:
            os.close(fd)

    # ---------------------------------------------------------------- one test
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

    def run(self, h: dict, source: str, stdin: bytes) -> tuple[dict, list[bytes]]:
        code = self.compiled(source)
        if isinstance(code, str):
            return {"compile_error": code}, []
        fsize = int(h["output_limit"])
        limits = {"wall_s": float(h["wall_s"]), "cpu_s": int(h["cpu_s"]),
                  "address_space": self.base_vm + int(h["memory"]), "file_size": fsize,
                  "processes": int(h["processes"]), "open_files": int(h["open_files"])}
        spec = {"kind": h["kind"], "entry_point": h.get("entry_point"), "input": h.get("input", ""),
                "nonce": h.get("nonce"), "source": source, "prelude": h.get("prelude", True),
                "limits": limits}
        payload = marshal.dumps((spec, code))
        for attempt in range(2):
            try:
                self.prefork()
            except OSError as e:
                return _failed(f"fork failed: {e.strerror}")
            nxt, self.next = self.next, None
            try:
                if stdin:
                    os.pwrite(nxt.fds[0], stdin, 0)
                try:
                    _write_all(nxt.go_w, payload)
                    started = True
                except BrokenPipeError:  # the child died before its test (set-up failure?)
                    started = False
                finally:
                    os.close(nxt.go_w)
                if started:
                    exit_code, sig, timed_out, cpu = self._wait(nxt.pid, limits["wall_s"])
                else:
                    _waitpid(nxt.pid)
                self.box.kill_leftovers()
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
                self.box.reset_scratch()
            if status.startswith(SETUP_FAILED):
                return _failed(status[len(SETUP_FAILED):].decode("utf-8", "replace"))
            if not started:
                return _failed("the sandboxed process died before its test started")
            header = {"exit": exit_code, "signal": sig, "timed_out": timed_out,
                      "cpu_limited": cpu >= limits["cpu_s"] or sig == signal.SIGXCPU,
                      "output_limited": capped, "setup_error": None}
            return header, [stdout, stderr, status]
        return _failed("unreachable")  # pragma: no cover

    def _wait(self, pid: int, wall_s: float) -> tuple[int | None, int | None, bool, float]:
        """Wait for the child up to ``wall_s``; SIGKILL it when late. Exits if orphaned."""
        deadline = time.monotonic() + wall_s
        timed_out = False
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                if pidfd is not None:
                    p = select.poll()
                    p.register(pidfd, select.POLLIN)
                    p.register(self.cmd_fd, 0)  # only POLLHUP: the executor went away
                    events = dict(p.poll(max(1, int(left * 1000) + 1)))
                    if self.cmd_fd in events:
                        os.kill(pid, signal.SIGKILL)
                        self.shutdown()
                    if pidfd in events:
                        break
                else:  # no pidfd (old kernel): poll the child
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        exit_code, sig = _decode_status(status)
                        return exit_code, sig, False, 0.0
                    time.sleep(min(0.002, left))
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if timed_out:
            for kill in (os.kill, os.killpg):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        while True:
            try:
                _, status, usage = os.wait4(pid, 0)
                break
            except InterruptedError:
                continue
        exit_code, sig = _decode_status(status)
        return exit_code, sig, timed_out, usage.ru_utime + usage.ru_stime

    def shutdown(self) -> None:
        try:
            self._discard_next()
            self.box.close()
        finally:
            os._exit(0)

    # ---------------------------------------------------------------- main loop
    def serve(self) -> None:
        while True:
            try:
                self.prefork()  # while the executor grades the last result
            except OSError:
                pass  # retried (and reported) when the test comes
            try:
                h, blobs = protocol.recv(self.cmd_fd)
            except (protocol.ChannelClosed, ValueError):
                self.shutdown()
            if h.get("op") == "exit":
                self.shutdown()
            header, out = self.run(h, blobs[0].decode("utf-8", "surrogatepass"), blobs[1])
            header["id"] = h.get("id")
            try:
                protocol.send(self.res_fd, header, out)
            except protocol.ChannelClosed:
                self.shutdown()


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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _waitpid(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


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
    """Run ``print(1 + 1)`` through the whole path; the error text when it does not work."""
    h = {"kind": "stdin", "wall_s": 60.0, "cpu_s": 60, "memory": 256 << 20, "output_limit": 1 << 20,
         "processes": 8, "open_files": 64}
    header, (stdout, stderr, _) = server.run(h, "print(1 + 1)\n", b"")
    if header.get("setup_error"):
        return f"sandbox set-up failed in the child: {header['setup_error']}"
    if header.get("exit") != 0 or stdout != b"2\n":
        tail = stderr.decode("utf-8", "replace")[-2000:]
        return f"self-test program failed (exit {header.get('exit')}, signal {header.get('signal')}): {tail}"
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
        error = self_test(server)
    except Exception as e:  # namespaces refused, mounts failed, ...
        server, error = None, f"{type(e).__name__}: {e}"
    ready = {"ok": error is None, "error": error, "pid": os.getpid(),
             "mode": server.box.mode if server else None,
             "scratch": server.box.scratch if server else None}
    protocol.send(res_fd, ready)
    if server is None or error is not None:
        if server is not None:
            server.box.close()
        os._exit(1)
    gc.collect()
    gc.freeze()  # keep inherited objects out of the children's collections (fewer COW copies)
    server.serve()


if __name__ == "__main__":
    main()

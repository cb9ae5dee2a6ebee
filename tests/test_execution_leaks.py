"""After many executions no process, file descriptor or temporary file has leaked."""

from __future__ import annotations

import os
import time

import pytest

from mars2_env.execution import Executor, Verdict, sandbox
from mars2_env.problems import Problem, TestCase

ECHO = Problem(id="echo", statement="echo the number", public_tests=[
    TestCase(f"{i}\n", f"{i}\n") for i in range(5)], time_limit_s=3)

PROGRAMS = [
    ("print(input())", Verdict.PASSED),
    ("print(int(input()) + 1)", Verdict.WRONG_ANSWER),
    ("raise ValueError('boom')", Verdict.RUNTIME_ERROR),
    ("for i in range(50):\n    open(f'f{i}.txt', 'w').write('x' * 1000)\nprint(input())", Verdict.PASSED),
    ("files = [open('/dev/null') for _ in range(100)]\nprint(input())", Verdict.PASSED),
    ("import threading\nt = threading.Thread(target=lambda: print(input()))\nt.start()", Verdict.PASSED),
    ("import os\nif os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(60)\n"
     "    os._exit(0)\nprint(input())", Verdict.PASSED),
    ("import os, subprocess\nprint(input())", Verdict.PASSED),
]
NS_OK = sandbox.namespaces_unavailable_reason() is None
MODES = ["basic"] + (["namespaces"] if NS_OK else [])


def _fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _children(pid: int) -> list[int]:
    """Children of ``pid``, zombies included (a zombie is a leak too)."""
    return _live_children(pid, zombies=True)


def _live_children(pid: int, zombies: bool = False) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and (zombies or fields[0] != "Z"):
            found.append(int(name))
    return found


def _sandbox_uid_processes(servers: list[int]) -> list[int]:
    """Processes (zombies too) running as a sandbox uid of one of these servers, except the
    one child per server already waiting for the next test."""
    uids = {uid for pid in servers for uid in sandbox.server_uids(pid)}
    waiting = {c for s in servers for z in sandbox.child_pids(s) for c in sandbox.child_pids(z)}
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
            except FileNotFoundError:
                continue
            if uid in uids and int(name) not in waiting:
                out.append(int(name))
    return out


def _eventually(check, timeout: float = 5.0) -> bool:
    """The last test's zombie is reaped asynchronously by the zygote: allow it a moment."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _check_no_leaks(mode: str, n_items: int) -> None:
    fds_before = _fd_count()
    children_before = set(_live_children(os.getpid()))
    items = [(ECHO, PROGRAMS[i % len(PROGRAMS)][0]) for i in range(n_items)]
    with Executor(max_workers=2, sandbox=mode) as ex:
        ex.run(ECHO, "print(input())")
        servers = [w.proc.pid for w in ex._pool.workers]
        server_fds = {pid: _fd_count(pid) for pid in servers}
        scratch_dirs = [os.path.dirname(w.scratch) for w in ex._pool.workers]
        fds_running = _fd_count()

        results = ex.run_many(items, stop_on_first_failure=False)

        assert [r.verdict for r in results] == [PROGRAMS[i % len(PROGRAMS)][1] for i in range(n_items)]
        assert sum(len(r.tests) for r in results) == 5 * n_items
        assert [w.proc.pid for w in ex._pool.workers] == servers  # no worker died on the way
        assert _fd_count() == fds_running
        for pid in servers:
            assert _fd_count(pid) == server_fds[pid]
            zygotes = _children(pid)
            assert len(zygotes) == 1  # the server's only child forks the tests' processes
            zygote = zygotes[0]
            assert _eventually(lambda z=zygote: len(_children(z)) <= 1), _children(zygote)
        if mode == "namespaces":
            assert _eventually(lambda: _sandbox_uid_processes(servers) == []), _sandbox_uid_processes(servers)
    assert _fd_count() == fds_before
    assert set(_live_children(os.getpid())) <= children_before
    assert not any(_live_children(pid) for pid in servers)
    if mode == "basic":
        assert scratch_dirs and not any(os.path.exists(d) for d in scratch_dirs)
    assert not [p for p in os.listdir("/tmp") if any(p.startswith(f"mars2-exec-{s}-") for s in servers)]


@pytest.mark.parametrize("mode", MODES)
def test_no_leaks_after_1000_executions(mode):
    _check_no_leaks(mode, 200)  # 200 programs x 5 tests


@pytest.mark.slow
def test_no_leaks_after_10000_executions():
    _check_no_leaks(MODES[-1], 2000)  # the strongest sandbox available


def test_executor_in_a_forked_process_gets_its_own_workers():
    with Executor(max_workers=1) as ex:
        assert ex.run(ECHO, "print(input())").verdict == Verdict.PASSED
        parent_server = ex._pool.workers[0].proc.pid
        pid = os.fork()
        if pid == 0:  # the child must not talk to the parent's server
            code = 1
            try:
                ok = ex.run(ECHO, "print(input())").verdict == Verdict.PASSED
                code = 0 if ok and ex._pool.workers[0].proc.pid != parent_server else 1
                ex.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert ex.run(ECHO, "print(input())").verdict == Verdict.PASSED

"""After many executions no process, file descriptor or temporary file has leaked."""

from __future__ import annotations

import importlib.util
import os
import time

import pytest

from mars2_env.execution import Executor, Verdict, format_feedback, sandbox
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
HEAVY = importlib.util.find_spec("numpy") is not None  # preloaded by a second zygote
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
    waiting = {c for s in servers for z in sandbox.child_pids(s) for c in sandbox.child_pids(z)}
    return [pid for pid in sandbox.uid_processes(servers) if pid not in waiting]


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
            zygotes = _children(pid)  # the server's children fork the tests' processes: one
            assert len(zygotes) == (2 if HEAVY else 1)  # zygote, and one holding numpy
            for zygote in zygotes:
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


# ---------------------------------------------------------------- kernel objects between tests

IPC_LEAVE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shm = libc.shmget(0x6d617273, 1 << 20, 0o1666)   # IPC_CREAT | 0o666
addr = libc.shmat(shm, None, 0)
ctypes.memmove(addr, b'secret of test 1', 16)
msg = libc.msgget(0x6d617274, 0o1666)
buf = ctypes.create_string_buffer(b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00secret', 14)
libc.msgsnd(msg, buf, 6, 0)
sem = libc.semget(0x6d617275, 1, 0o1666)
print(shm >= 0, msg >= 0, sem >= 0)
"""
IPC_FIND = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
found = [libc.shmget(0x6d617273, 0, 0) >= 0, libc.msgget(0x6d617274, 0) >= 0,
         libc.semget(0x6d617275, 0, 0) >= 0]
rows = [len(open(f'/proc/sysvipc/{k}').read().splitlines()) - 1 for k in ('shm', 'msg', 'sem')]
print(found, rows)
"""
IPC = Problem(id="ipc", statement="", public_tests=[TestCase("", "")], time_limit_s=5)


@pytest.mark.skipif(not NS_OK, reason="SysV IPC is contained in the namespaces (and bwrap) sandbox")
def test_sysv_ipc_objects_do_not_reach_the_next_test():
    with Executor(max_workers=1, sandbox="namespaces") as ex:
        left, found = ex.run_many([(IPC, IPC_LEAVE), (IPC, IPC_FIND)])
    assert left.tests[0].actual == "True True True\n", format_feedback(left)
    assert found.tests[0].actual == "[False, False, False] [0, 0, 0]\n", format_feedback(found)


@pytest.mark.skipif(not NS_OK, reason="SysV IPC is contained in the namespaces (and bwrap) sandbox")
def test_sysv_shared_memory_counts_against_the_memory_limit():
    """Segments are in no process's rlimits: the worker caps them at the test's memory limit,
    so three 200 MB segments from a 256 MB test cannot all exist (they stayed in host memory)."""
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nout = []\n"
            "for key in (1, 2, 3):\n"
            "    r = libc.shmget(0x6d320000 + key, 200 << 20, 0o1666)\n"
            "    out.append('ok' if r >= 0 else os.strerror(ctypes.get_errno()))\nprint(out)\n")
    p = Problem(id="shm", statement="", public_tests=[TestCase("", "")], memory_limit_mb=256)
    with Executor(max_workers=1, sandbox="namespaces") as ex:
        r = ex.run(p, code)
        after = ex.run(IPC, IPC_FIND)
    assert r.tests[0].actual == "['ok', 'No space left on device', 'No space left on device']\n"
    assert after.tests[0].actual == "[False, False, False] [0, 0, 0]\n"


@pytest.mark.parametrize("mode", MODES)
def test_kernel_keyrings_cannot_be_used_to_pass_data(mode):
    """Keyrings are per uid, not per namespace: no test may create or read a key."""
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "nr = {'x86_64': (248, 249, 250), 'aarch64': (217, 218, 219)}[os.uname().machine]\n"
            "out = []\n"
            "for call in (lambda: libc.syscall(nr[0], b'user', b'k', b'secret', 6, -4),\n"
            "             lambda: libc.syscall(nr[1], b'user', b'k', None, -4),\n"
            "             lambda: libc.syscall(nr[2], 0, -4, 0)):\n"
            "    out.append(os.strerror(ctypes.get_errno()) if call() == -1 else 'allowed')\n"
            "print(out)\n")
    with Executor(max_workers=1, sandbox=mode) as ex:
        r = ex.run(IPC, code)
        assert not ex.uncontained
    assert r.tests[0].actual == f"{['Operation not permitted'] * 3}\n", format_feedback(r)


@pytest.mark.parametrize("mode", MODES)
def test_posix_message_queues_cannot_be_created(mode):
    name = f"/mars2-test-queue-{os.getpid()}-{os.urandom(4).hex()}".encode()
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"q = libc.mq_open({name!r}, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600, None)\n"
            f"print('created' if q >= 0 and libc.mq_unlink({name!r}) == 0 else os.strerror(ctypes.get_errno()))\n")
    with Executor(max_workers=1, sandbox=mode) as ex:
        r = ex.run(IPC, code)
    assert r.tests[0].actual == "Too many open files\n", format_feedback(r)

"""Executor soak: thousands of mixed programs, hostile ones included, through one Executor.

Every program has a known verdict (correct, wrong, crashing, too slow, too big, and hostile:
daemons, file and SysV IPC litter, keyrings, lying ``__eq__``, exiting at import, forging the
completion record, signalling and killing its parents, printing sNaN, rebinding an rllm LeetCode
comparison helper, redefining a HumanEval prompt helper). Prints

* wrong verdicts (must be 0), with the first few shown;
* what leaked: processes (the executor's children, anything running as a sandbox uid), file
  descriptors of this process, files the programs tried to leave in /tmp, SysV IPC objects in
  each worker's IPC namespace, kernel keys of the sandbox uids (all must be 0);
* the resident memory (RSS) of every executor process -- this one, each worker server, each
  zygote (per server: the one forking plain programs, then the one holding numpy) -- after
  warm-up and at the end, and its growth;
* throughput for each block of 1,000 programs.

    python benchmarks/executor_soak.py [--programs 5000] [--workers N] [--sandbox auto]

Exits non-zero when a verdict is wrong or anything leaked.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mars2_env.execution import Executor, Verdict, sandbox  # noqa: E402
from mars2_env.problems import Problem, TestCase  # noqa: E402

V = Verdict
SUM = Problem(id="sum", statement="print the sum", time_limit_s=2, memory_limit_mb=256,
              public_tests=[TestCase(f"{i} {i + 1}\n", f"{2 * i + 1}\n") for i in range(3)])
FAST = Problem(id="fast", statement="print the sum within 0.5 s", time_limit_s=0.5,
               memory_limit_mb=256, public_tests=[TestCase("1 2\n", "3\n")])
FUNC = Problem(id="func", statement="add", kind="functional", entry_point="add",
               time_limit_s=2, memory_limit_mb=256,
               public_tests=[TestCase(f"{i}\n{i}", f"{2 * i}") for i in range(3)])
ASSERT = Problem(id="assert", statement="add", kind="assert", entry_point="add", time_limit_s=2,
                 memory_limit_mb=256,
                 public_tests=[TestCase("assert add(1, 2) == 3"),
                               TestCase("def check(candidate):\n    assert candidate(2, 2) == 4\n"
                                        "    assert candidate(-1, 1) == 0\ncheck(add)\n")])
REVERSE = Problem(  # an rllm LeetCode row's shape: check code with the dataset's list helpers
    id="reverse", statement="reverse a linked list", kind="assert", entry_point="reverseList",
    harness="leetcode", time_limit_s=2, memory_limit_mb=256, public_tests=[TestCase(
        "def check(candidate):\n"
        "    assert is_same_list(candidate(head = list_node([1,2,3])), list_node([3,2,1]))\n"
        "    assert is_same_list(candidate(head = list_node([])), list_node([]))\n\n\n"
        "check(Solution().reverseList)\n")])
POLY_PROMPT = ("def poly(xs: list, x: float):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\n\n"
               "def find_zero(xs: list):\n    \"\"\"a zero of poly(xs, x)\"\"\"\n")
POLY = Problem(  # HumanEval/32's shape: the check calls a helper the prompt defines
    id="poly", statement=POLY_PROMPT, kind="assert", entry_point="find_zero", harness="humaneval",
    starter_code=POLY_PROMPT, time_limit_s=2, memory_limit_mb=256, public_tests=[TestCase(
        "def check(candidate):\n    x = candidate([-6, 11, -6, 1])\n"
        "    assert abs(poly([-6, 11, -6, 1], x)) < 1e-6\n\ncheck(find_zero)\n")])
READ_SUM = "a, b = map(int, input().split())\n"
ADD = "def add(a, b):\n    return a + b\n"
WRONG_ADD = "def add(a, b):\n    return a - b\n"
KEY_NR = {"x86_64": 248, "aarch64": 217}.get(os.uname().machine, 248)


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# (name, problem, program, expected verdicts); the first entries are the common case
TEMPLATES: list[tuple[str, Problem, str, tuple[Verdict, ...]]] = [
    ("stdin_correct", SUM, READ_SUM + "print(a + b)\n", (V.PASSED,)),
    ("stdin_correct", SUM, READ_SUM + "print(a + b)\n", (V.PASSED,)),
    ("stdin_wrong", SUM, READ_SUM + "print(a - b)\n", (V.WRONG_ANSWER,)),
    ("stdin_crash", SUM, READ_SUM + "print(a // (b - b))\n", (V.RUNTIME_ERROR,)),
    ("compile_error", SUM, "print(1 +\n", (V.COMPILE_ERROR,)),
    ("functional_correct", FUNC, ADD, (V.PASSED,)),
    ("functional_wrong", FUNC, WRONG_ADD, (V.WRONG_ANSWER,)),
    ("assert_correct", ASSERT, ADD, (V.PASSED,)),
    ("assert_wrong", ASSERT, WRONG_ADD, (V.WRONG_ANSWER,)),
    ("numpy", SUM, "import numpy as np\n" + READ_SUM + "print(int(np.int64(a) + b))\n", (V.PASSED,)),
    ("sNaN", SUM, "print('sNaN')\n", (V.WRONG_ANSWER,)),
    ("memory_hog", SUM, "x = bytearray(2 << 30)\n", (V.MEMORY_LIMIT,)),
    ("output_flood", SUM, "import sys\nfor _ in range(64):\n    sys.stdout.write('x' * (1 << 20))\n",
     (V.OUTPUT_LIMIT,)),
    ("daemon", SUM, _d("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        """) + READ_SUM + "print(a + b)\n", (V.PASSED,)),
    ("file_litter", SUM, _d("""
        import os
        for path in ('left.txt', '/tmp/mars2-soak-litter', '../escape'):
            try:
                open(path, 'w').write('x')
            except OSError:
                pass
        """) + READ_SUM + "print(a + b)\n", (V.PASSED,)),
    ("sysv_litter", SUM, _d("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget(os.getpid(), 1 << 20, 0o1600)
        libc.msgget(os.getpid(), 0o1600)
        libc.semget(os.getpid(), 1, 0o1600)
        """) + READ_SUM + "print(a + b)\n", (V.PASSED,)),
    ("keyring", SUM, _d(f"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall({KEY_NR}, b'user', b'soak', b'secret', 6, -4) >= 0:
            print('a key was created')
        """) + READ_SUM + "print(a + b)\n", (V.PASSED,)),
    ("lying_eq", ASSERT, _d("""
        class Yes:
            def __eq__(self, other):
                return True
        def add(a, b):
            return Yes()
        """), (V.WRONG_ANSWER,)),
    ("exit_at_import", ASSERT, "import os\nos._exit(0)\n", (V.RUNTIME_ERROR,)),
    ("forged_record", ASSERT, _d("""
        import json, os
        for fd in range(3, 32):
            try:
                os.pwrite(fd, json.dumps({'done': True, 'program_exit': 0}).encode(), 0)
            except OSError:
                pass
        os._exit(0)
        """), (V.RUNTIME_ERROR,)),
    ("signal_parent", ASSERT, _d("""
        import os, signal
        def add(a, b):
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                os.kill(os.getppid(), s)
            return a - b
        """), (V.WRONG_ANSWER,)),
    ("kill_parent", SUM, "import os, time\nos.kill(os.getppid(), 9)\ntime.sleep(0.2)\n",
     (V.RUNTIME_ERROR,)),
    ("busy_loop", FAST, "while True:\n    pass\n", (V.TIME_LIMIT,)),
    ("leetcode_correct", REVERSE, _d("""
        class Solution:
            def reverseList(self, head):
                prev = None
                while head:
                    head.next, prev, head = prev, head, head.next
                return prev
        """), (V.PASSED,)),
    ("leetcode_helpers_rebound", REVERSE, _d("""
        import builtins
        is_same_list = builtins.is_same_list = lambda a, b: True
        __builtins__["is_same_list"] = is_same_list
        class Solution:
            def reverseList(self, head):
                return head
        """), (V.WRONG_ANSWER,)),
    ("prompt_helper_redefined", POLY, "def poly(xs, x):\n    return 0.0\ndef find_zero(xs):\n"
                                      "    return 42.0\n", (V.WRONG_ANSWER,)),
]


def _children(pid: int) -> list[int]:
    return sandbox.child_pids(pid)


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _sysv_objects_in_namespace_of(pid: int) -> int:
    """SysV objects in the IPC namespace of process ``pid`` (read from a helper that joins it)."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        count = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{pid}/ns/ipc", os.O_RDONLY)
            if libc.setns(fd, 0x08000000) == 0:  # CLONE_NEWIPC
                count = sum(len(open(f"/proc/sysvipc/{k}").read().splitlines()) - 1
                            for k in ("shm", "msg", "sem"))
        except BaseException:
            pass
        os.write(w, str(count).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(child, 0)
    out = os.read(r, 64)
    os.close(r)
    return int(out or b"-1")


def _sandbox_keys(servers: list[int]) -> int:
    """Keys owned by these servers' sandbox uids (/proc/key-users lists every user)."""
    uids = {u for s in servers for u in sandbox.server_uids(s)}
    total = 0
    try:
        with open("/proc/key-users") as f:
            for line in f:
                if int(line.split(":")[0]) in uids:
                    total += int(line.split()[2].split("/")[0])
    except OSError:
        return -1
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=5000)
    ap.add_argument("--block", type=int, default=1000, help="programs per throughput block")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--sandbox", default="auto", choices=["auto", "namespaces", "bwrap", "basic"])
    args = ap.parse_args(argv)

    items, expected, names = [], [], []
    for i in range(args.programs):
        name, problem, code, verdicts = TEMPLATES[i % len(TEMPLATES)]
        items.append((problem, f"# program {i}\n{code}"))  # distinct sources: no compile cache hits
        expected.append(verdicts)
        names.append(name)

    fds_before = len(os.listdir("/proc/self/fd"))
    litter = "/tmp/mars2-soak-litter"
    if os.path.exists(litter):
        os.remove(litter)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    wrong: list[str] = []
    blocks: list[float] = []
    with Executor(max_workers=args.workers, sandbox=args.sandbox) as ex:
        ex.run(SUM, READ_SUM + "print(a + b)\n")
        ex.run_many([(p, c) for _, p, c, _ in TEMPLATES[:9]])  # warm every kind in every worker
        servers = [w.proc.pid for w in ex._pool.workers]
        procs = {"executor": os.getpid()}
        for k, s in enumerate(servers):
            procs[f"server {k}"] = s
            for j, z in enumerate(_children(s)):  # plain programs' zygote, then numpy's
                procs[f"zygote {k}.{j}"] = z
        rss_start = {name: _rss_kb(pid) for name, pid in procs.items()}
        mode = ex.mode
        for start in range(0, len(items), args.block):
            t0 = time.perf_counter()
            results = ex.run_many(items[start:start + args.block])
            blocks.append(time.perf_counter() - t0)
            for k, r in enumerate(results, start):
                if r.verdict not in expected[k]:
                    wrong.append(f"program {k} ({names[k]}): {r.verdict.value}, expected "
                                 f"{'/'.join(v.value for v in expected[k])}: "
                                 f"{(r.tests[-1].error or r.tests[-1].actual)[-200:]!r}")
        rss_end = {name: _rss_kb(pid) for name, pid in procs.items()}
        current = [w.proc.pid for w in ex._pool.workers]
        replaced = [s for s in servers if s not in current]
        every_server = servers + [s for s in current if s not in servers]
        ipc_left = sum(_sysv_objects_in_namespace_of(w.proc.pid) for w in ex._pool.workers) \
            if mode == "namespaces" else 0
        time.sleep(0.5)  # the last test's zombie is reaped by its zygote a moment later
        waiting = {c for w in ex._pool.workers for z in _children(w.proc.pid) for c in _children(z)}
        live_sandboxed = [p for p in sandbox.uid_processes(every_server) if p not in waiting]
        keys = _sandbox_keys(every_server)
    time.sleep(0.5)
    leaks = {
        "processes running as a sandbox uid (during)": len(live_sandboxed),
        "processes running as a sandbox uid (after close)": len(sandbox.uid_processes(every_server)),
        "children of this process (after close)": len(_children(os.getpid())),
        "file descriptors of this process": len(os.listdir("/proc/self/fd")) - fds_before,
        "files left in /tmp by programs": int(os.path.exists(litter)),
        "SysV IPC objects in the workers' namespaces": ipc_left,
        "kernel keys of sandbox uids": max(0, keys),
    }
    n = len(items)
    print(f"sandbox mode: {mode}; {n} programs ({len(TEMPLATES)} kinds, hostile ones included), "
          f"{len(servers)} workers; load average at end: {os.getloadavg()[0]:.2f}")
    print(f"wrong verdicts: {len(wrong)}")
    for line in wrong[:10]:
        print("   ", line)
    print("leaks:")
    for what, count in leaks.items():
        print(f"    {what}: {count}")
    print(f"workers replaced during the run: {len(replaced)}")
    print("resident memory (MB) after warm-up -> at the end (growth):")
    for name in procs:
        a, b = rss_start[name] / 1024, rss_end[name] / 1024
        print(f"    {name:11s} {a:8.1f} -> {b:8.1f}  ({b - a:+.1f})")
    print("throughput per block:")
    for k, secs in enumerate(blocks):
        size = min(args.block, n - k * args.block)
        print(f"    programs {k * args.block:5d}-{k * args.block + size - 1:5d}: {size / secs:7.1f} programs/s "
              f"({secs:.1f} s)")
    failed = bool(wrong) or any(leaks.values())
    print("FAIL" if failed else "OK: every verdict right, nothing leaked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

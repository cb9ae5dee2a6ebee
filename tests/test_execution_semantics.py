"""Executor semantics: judge-like I/O, every verdict, functional and assert kinds, rewards."""

from __future__ import annotations

import re
import time

import pytest

from mars2_env.execution import ExecutionResult, Executor, Verdict, format_feedback
from mars2_env.problems import Problem, TestCase

SUM = Problem(id="sum", statement="sum the integers of the input", public_tests=[
    TestCase("1 2\n3\n", "6\n"), TestCase("10\n", "10\n")],
    private_tests=[TestCase("-5 5 7\n", "7\n")])

TWO_SUM = Problem(id="two-sum", statement="indices of two numbers adding to target", kind="functional",
                  entry_point="twoSum", public_tests=[
                      TestCase("[2, 7, 11, 15]\n9", "[0, 1]"), TestCase("[3, 2, 4]\n6", "[1, 2]")])

ADD = Problem(id="add", statement="def add(a, b)", kind="assert", public_tests=[
    TestCase("assert add(1, 2) == 3"), TestCase("assert add(-1, 1) == 0\nassert add(0, 0) == 0")])


@pytest.fixture(scope="module")
def ex():
    with Executor(max_workers=2, time_limit_s=4) as executor:
        yield executor


# ---------------------------------------------------------------- I/O patterns of real judges

IO_PATTERNS = {
    "for_line_in_stdin": "import sys\nt = 0\nfor line in sys.stdin:\n    t += sum(map(int, line.split()))\nprint(t)\n",
    "stdin_buffer": "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))\n",
    "stdout_buffer": "import sys\nsys.stdout.buffer.write(str(sum(map(int, sys.stdin.read().split()))).encode() + b'\\n')\n",
    "open_0": "print(sum(map(int, open(0).read().split())))\n",
    "from_sys_import_stdout": "from sys import stdin, stdout\nstdout.write(str(sum(map(int, stdin.read().split()))) + '\\n')\n",
    "main_guard": "def main():\n    print(sum(map(int, open(0).read().split())))\n\nif __name__ == '__main__':\n    main()\n",
    "guard_not_last": "import sys\nif __name__ == '__main__':\n    data = sys.stdin.read()\nelse:\n    data = ''\nprint(sum(map(int, data.split())))\n",
    "input_until_eof": "t = 0\nwhile True:\n    try:\n        t += sum(map(int, input().split()))\n    except EOFError:\n        break\nprint(t)\n",
    "exit_zero_after_output": "import sys\nprint(sum(map(int, sys.stdin.read().split())))\nsys.exit(0)\nprint('never')\n",
    "exit_builtin": "print(sum(map(int, open(0).read().split())))\nexit()\n",
    "os_level_fds": "import os\nos.write(1, (str(sum(map(int, os.read(0, 1 << 20).split()))) + '\\n').encode())\n",
    "no_trailing_newline": "print(sum(map(int, open(0).read().split())), end='')\n",
    "thread_big_stack": (
        "import sys, threading\nsys.setrecursionlimit(10 ** 6)\nthreading.stack_size(1 << 26)\n"
        "def rec(n):\n    return 0 if n == 0 else 1 + rec(n - 1)\n"
        "def main():\n    assert rec(20000) == 20000\n    print(sum(map(int, sys.stdin.read().split())))\n"
        "threading.Thread(target=main).start()\n"),
    "unflushed_file_object": "import os\nout = os.fdopen(1, 'w', closefd=False)\nout.write(str(sum(map(int, open(0).read().split()))) + '\\n')\n",
    "lcb_prelude_names": "print(sum(map(int, stdin.read().split())))\n",  # `stdin` from LCB's `from sys import *`
    "close_stdout_after_output": "import sys\nprint(sum(map(int, sys.stdin.read().split())))\nsys.stdout.close()\n",
    "sixteen_threads_default_stacks": (  # thread stacks must not count as memory used
        "import sys, threading\nout = []\nbarrier = threading.Barrier(16)\n"
        "def work(i):\n    out.append(len(bytearray(1 << 20)))\n    barrier.wait()\n"
        "ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]\n"
        "for t in ts:\n    t.start()\nfor t in ts:\n    t.join()\n"
        "assert len(out) == 16\nprint(sum(map(int, sys.stdin.read().split())))\n"),
}


@pytest.fixture(scope="module")
def io_results(ex):
    names = list(IO_PATTERNS)
    results = ex.run_many([(SUM, IO_PATTERNS[n]) for n in names])
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("name", list(IO_PATTERNS))
def test_io_pattern_passes(io_results, name):
    r = io_results[name]
    assert r.verdict == Verdict.PASSED, format_feedback(r)
    assert (r.passed, r.total, r.reward) == (3, 3, 1.0)


# ---------------------------------------------------------------- verdicts

def test_wrong_answer_with_actual_output(ex):
    r = ex.run(SUM, "print(0)\n", tests="public")
    assert r.verdict == Verdict.WRONG_ANSWER
    assert r.tests[0].actual == "0\n" and r.tests[0].expected == "6\n" and r.tests[0].input == "1 2\n3\n"


def test_runtime_error_traceback_without_harness_frames(ex):
    r = ex.run(SUM, "import json\n\ndef f():\n    return json.loads('{oops')\n\nf()\n")
    assert r.verdict == Verdict.RUNTIME_ERROR
    err = r.tests[0].error
    assert err.startswith("Traceback (most recent call last):")
    assert 'File "solution.py", line 6, in <module>' in err and "line 4, in f" in err
    assert 'File "decoder.py"' in err  # stdlib frames keep only the file name
    assert "JSONDecodeError" in err.splitlines()[-1]
    assert "harness" not in err and "mars2_env" not in err and "/" not in err.replace("</", "")


@pytest.mark.parametrize("code, verdict", [
    ("import sys\nprint(6)\nsys.exit(3)\n", Verdict.RUNTIME_ERROR),
    ("import os\nprint(6, flush=True)\nos._exit(1)\n", Verdict.RUNTIME_ERROR),
    ("raise SystemExit('bye')\n", Verdict.RUNTIME_ERROR),
    ("import sys\nprint(6)\nsys.exit(256)\n", Verdict.PASSED),  # status 256 & 0xff == 0, as in a shell
    ("x = [0] * (10 ** 10)\n", Verdict.MEMORY_LIMIT),
    ("def f(:\n    pass\n", Verdict.COMPILE_ERROR),
    ("", Verdict.COMPILE_ERROR),
    ("   \n\n", Verdict.COMPILE_ERROR),
])
def test_verdicts(ex, code, verdict):
    r = ex.run(SUM, code, tests=[TestCase("6\n", "6\n")])
    assert r.verdict == verdict, format_feedback(r)
    assert r.reward == (1.0 if verdict == Verdict.PASSED else 0.0)


def test_compile_error_message_and_empty_program(ex):
    r = ex.run(SUM, "def f(:\n")
    assert r.verdict == Verdict.COMPILE_ERROR and (r.passed, r.total) == (0, 3)
    assert "SyntaxError" in r.tests[0].error and 'File "solution.py", line 1' in r.tests[0].error
    empty = ex.run(SUM, "")
    assert empty.verdict == Verdict.COMPILE_ERROR and empty.reward == 0.0 and empty.total == 3


def test_time_limit_wall_clock():
    with Executor(max_workers=1, time_limit_s=0.5) as ex:
        r = ex.run(SUM, "import time\ntime.sleep(30)\n")
        assert r.verdict == Verdict.TIME_LIMIT and "time limit" in r.tests[0].error
        ok = ex.run(SUM, "print(sum(map(int, open(0).read().split())))")
        assert ok.verdict == Verdict.PASSED  # the worker is fine afterwards


def test_output_limit():
    with Executor(max_workers=1, output_limit_mb=1) as ex:
        r = ex.run(SUM, "while True:\n    print('x' * 1000)\n")
        assert r.verdict == Verdict.OUTPUT_LIMIT
        assert r.tests[0].actual.startswith("x" * 100)


def test_reward_counts_tests_and_stop_on_first_failure(ex):
    code = "n = sum(map(int, open(0).read().split()))\nprint(n if n != 10 else -1)\n"
    full = ex.run(SUM, code, stop_on_first_failure=False)
    assert (full.verdict, full.passed, full.total) == (Verdict.WRONG_ANSWER, 2, 3)
    assert full.reward == pytest.approx(2 / 3) and len(full.tests) == 3
    assert [t.verdict for t in full.tests] == [Verdict.PASSED, Verdict.WRONG_ANSWER, Verdict.PASSED]
    stop = ex.run(SUM, code, stop_on_first_failure=True)
    assert (stop.passed, stop.total, len(stop.tests)) == (1, 3, 2)
    assert stop.reward == pytest.approx(1 / 3)  # the test after the failure counts as not passed


def test_binary_reward_option():
    with Executor(max_workers=1, reward="binary") as ex:
        code = "n = sum(map(int, open(0).read().split()))\nprint(n if n != 10 else -1)\n"
        assert ex.run(SUM, code, stop_on_first_failure=False).reward == 0.0


def test_test_selection(ex):
    code = "print(sum(map(int, open(0).read().split())))"
    assert ex.run(SUM, code, tests="public").total == 2
    assert ex.run(SUM, code, tests="private").total == 1
    assert ex.run(SUM, code, tests=[TestCase("4 4\n", "8\n")]).total == 1
    with pytest.raises(ValueError, match="has no private tests"):
        ex.run(Problem(id="p", statement="", public_tests=[TestCase("1", "1")]), code, tests="private")
    with pytest.raises(ValueError):
        ex.run(SUM, code, tests="hidden")


def test_run_many_keeps_order_and_takes_per_item_tests(ex):
    good = "print(sum(map(int, open(0).read().split())))"
    items = [(SUM, good), (SUM, "print(0)"), (TWO_SUM, "x = (", "public"), (SUM, good, [TestCase("2", "3")]),
             (ADD, "def add(a, b):\n    return a + b\n")] * 3
    results = ex.run_many(items)
    verdicts = [r.verdict for r in results]
    assert verdicts == [Verdict.PASSED, Verdict.WRONG_ANSWER, Verdict.COMPILE_ERROR,
                        Verdict.WRONG_ANSWER, Verdict.PASSED] * 3
    assert results[3].total == 1 and results[2].total == 2
    assert ex.run_many([]) == []


def test_bad_arguments_raise(ex):
    with pytest.raises(TypeError, match="unknown executor option"):
        Executor(time_limit=3)
    with pytest.raises(ValueError, match="sandbox"):
        Executor(sandbox="docker")
    with pytest.raises(TypeError):
        ex.run_many([("not a problem", "print(1)")])
    bad = Problem(id="bad", statement="", kind="functional", entry_point="f",
                  public_tests=[TestCase("[1, 2", "3")])
    with pytest.raises(ValueError, match="bad.*test 0.*JSON"):
        ex.run(bad, "def f(x):\n    return x\n")


# ---------------------------------------------------------------- functional kind

@pytest.mark.parametrize("code, verdict", [
    ("class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
     "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
     "                return [seen[target - x], i]\n            seen[x] = i\n", Verdict.PASSED),
    ("def twoSum(nums, target):\n    for i in range(len(nums)):\n        for j in range(i + 1, len(nums)):\n"
     "            if nums[i] + nums[j] == target:\n                return (i, j)\n", Verdict.PASSED),
    ("class Solution:\n    def twoSum(self, nums, target):\n        return {0, 1}\n", Verdict.WRONG_ANSWER),
    ("class Solution:\n    def twoSum(self, nums, target):\n        return [1, 0]\n", Verdict.WRONG_ANSWER),
    ("class Always:\n    def __eq__(self, o):\n        return True\n"
     "class Solution:\n    def twoSum(self, nums, target):\n        return Always()\n", Verdict.WRONG_ANSWER),
    ("class Solution:\n    def twoSum(self, nums, target):\n        return nums[99]\n", Verdict.RUNTIME_ERROR),
    ("class Solution:\n    def twoSum(self, nums, target):\n        import sys\n        sys.exit(0)\n",
     Verdict.RUNTIME_ERROR),
    ("class Solution:\n    def other(self):\n        pass\n", Verdict.COMPILE_ERROR),
    ("import numpy as np\nclass Solution:\n    def twoSum(self, nums, target):\n"
     "        a = np.array(nums)\n        for i in range(len(a)):\n            for j in range(i + 1, len(a)):\n"
     "                if a[i] + a[j] == target:\n                    return [np.int64(i), np.int64(j)]\n",
     Verdict.PASSED),
])
def test_functional_kind(ex, code, verdict):
    r = ex.run(TWO_SUM, code)
    assert r.verdict == verdict, format_feedback(r)


def test_functional_actual_is_shown_as_json(ex):
    r = ex.run(TWO_SUM, "class Solution:\n    def twoSum(self, nums, target):\n        return (5, 'x')\n")
    assert r.tests[0].actual == '[5, "x"]' and r.tests[0].expected == "[0, 1]"


# ---------------------------------------------------------------- assert kind

@pytest.mark.parametrize("code, verdict", [
    ("def add(a, b):\n    return a + b\n", Verdict.PASSED),
    ("def add(a, b):\n    return a - b\n", Verdict.WRONG_ANSWER),
    ("def add(a, b):\n    return a + c\n", Verdict.RUNTIME_ERROR),
    ("import sys\nsys.exit(0)\n", Verdict.RUNTIME_ERROR),      # leaving before the asserts
    ("import os\nos._exit(0)\n", Verdict.RUNTIME_ERROR),
    ("def add(a, b):\n    import os\n    os._exit(0)\n", Verdict.RUNTIME_ERROR),
])
def test_assert_kind(ex, code, verdict):
    r = ex.run(ADD, code)
    assert r.verdict == verdict, format_feedback(r)


def test_assert_failure_shows_the_failing_assertion(ex):
    r = ex.run(ADD, "def add(a, b):\n    return 3\n", stop_on_first_failure=False)
    assert [t.verdict for t in r.tests] == [Verdict.PASSED, Verdict.WRONG_ANSWER]
    assert 'File "test.py", line 1' in r.tests[1].error and "AssertionError" in r.tests[1].error


# ---------------------------------------------------------------- determinism

def test_results_and_feedback_repeat_exactly(ex):
    code = ("import random\nclass Box:\n    pass\nprint(random.random())\n"
            "raise ValueError(repr(Box()))\n")
    a, b = ex.run(SUM, code), ex.run(SUM, code)
    assert a.to_dict() == b.to_dict()
    fa = format_feedback(a)
    assert fa == format_feedback(b)
    assert not re.search(r"0x[0-9a-f]{6,}", fa)           # object addresses are masked
    assert "/tmp" not in fa and "/work" not in fa and "/root" not in fa
    r1 = ex.run(SUM, "import random\nprint(random.random())\n")
    r2 = ex.run(SUM, "import random\nprint(random.random())\n")
    assert r1.tests[0].actual == r2.tests[0].actual     # a fixed seed per run


def test_result_type(ex):
    r = ex.run(SUM, "print(6)", tests=[TestCase("", "6")])
    assert isinstance(r, ExecutionResult) and r.summary()["verdict"] == "passed"


# ---------------------------------------------------------------- memory limit and preloads

def test_memory_limit_counts_memory_used_not_reserved():
    """Under 256 MB: 16 threads pass (above), 200 MB of data passes, 300 MB is a memory limit,
    and a 4 GiB shared mapping (which RLIMIT_DATA does not count) is refused by the backstop."""
    p = Problem(id="mem", statement="", public_tests=[TestCase("", "ok\n")], memory_limit_mb=256)
    codes = {"b = bytearray(200 << 20)\nprint('ok')": Verdict.PASSED,
             "b = bytearray(300 << 20)\nprint('ok')": Verdict.MEMORY_LIMIT,
             "import mmap\nm = mmap.mmap(-1, 4 << 30)\nm[-1] = 1\nprint('ok')": Verdict.RUNTIME_ERROR}
    with Executor(max_workers=1) as ex:
        results = ex.run_many([(p, c) for c in codes])
    assert [r.verdict for r in results] == list(codes.values()), [format_feedback(r) for r in results]
    assert "Cannot allocate memory" in results[2].tests[0].error


PRELUDE_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math",
                   "random", "statistics", "itertools", "functools", "operator", "io", "sys",
                   "json", "typing")


def test_numpy_and_the_lcb_prelude_modules_are_preloaded(ex):
    """A program's ``import numpy`` is a dict lookup: the worker imported it before forking."""
    pytest.importorskip("numpy")
    code = f"import sys\nprint(sorted(m for m in ['numpy', *{PRELUDE_MODULES!r}] if m not in sys.modules))\n"
    r = ex.run(Problem(id="pre", statement="", public_tests=[TestCase("", "[]\n")]), code)
    assert r.verdict == Verdict.PASSED, format_feedback(r)


def test_a_failed_preload_is_reported_once_per_executor(caplog):
    with caplog.at_level("WARNING", logger="mars2_env.execution"):
        with Executor(max_workers=2, preload=("json", "mars2_no_such_module")) as ex:
            assert ex.run(SUM, "print(6)", tests="public").tests[0].verdict == Verdict.PASSED
            deadline = time.monotonic() + 30   # the driver thread may still be reading a worker
            while ex._driver is not None and time.monotonic() < deadline:
                time.sleep(0.01)
            with ex._lock:                     # no driver now: nothing else touches the pool
                ex._replace(ex._pool.workers[0])  # a fresh worker fails the same way: not reported again
            ex.run_many([(SUM, "print(6)")] * 4)
            failures = dict(ex.preload_failures)
    assert list(failures) == ["mars2_no_such_module"]
    assert failures["mars2_no_such_module"].startswith("ModuleNotFoundError: No module named")
    reports = [m for m in caplog.messages if "could not preload" in m]
    assert len(reports) == 1 and "'mars2_no_such_module'" in reports[0] and "ModuleNotFoundError" in reports[0]


def test_a_missing_optional_module_is_not_reported(caplog):
    with caplog.at_level("WARNING", logger="mars2_env.execution"):
        with Executor(max_workers=1, preload=("json", "sortedcontainers", "numpy")) as ex:
            ex.run(SUM, "print(6)", tests="public")
            assert ex.preload_failures == {}
    assert not [m for m in caplog.messages if "could not preload" in m]

"""Reward integrity: the threat model, one test per attack class, each with its exact verdict.

A wrong program must never score, whatever it does to the harness; a correct one must pass.
The attacks run in the strongest sandbox this machine offers (namespaces as root, as in CI).
Each hostile program computes the *wrong* answer (``a - b`` for ``add``) and then tries to make
the judge believe otherwise. See `mars2_env.execution.harness` for why each class is closed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from mars2_env.execution import Executor, Verdict, format_feedback, sandbox
from mars2_env.execution import executor as executor_mod
from mars2_env.problems import Problem, TestCase

NS_OK = sandbox.namespaces_unavailable_reason() is None
MODE = "namespaces" if NS_OK else ("bwrap" if shutil.which("bwrap") else "basic")
# as root in the basic sandbox the program keeps CAP_SYS_PTRACE: memory attacks are out of scope
PRIVILEGED_PROGRAM = MODE == "basic" and os.geteuid() == 0

CANARY = "# Q9q9-canary"  # in every test's code; the programs search for it with r"Q9q9-c[a]nary"
ADD_TESTS = [
    f"assert add(1, 2) == 3  {CANARY}",
    "def check(candidate):  # HumanEval style\n    assert candidate(2, 3) == 5\n"
    f"    assert candidate(10, -4) == 6  {CANARY}\ncheck(add)\n",
]


def assert_problem(pid: str, tests: list[str], entry: str = "add", limit_s: float = 3.0) -> Problem:
    return Problem(id=pid, statement="", kind="assert", entry_point=entry,
                   public_tests=[TestCase(t) for t in tests], time_limit_s=limit_s,
                   memory_limit_mb=256)


ADD = assert_problem("add", ADD_TESTS)
WRONG = "def add(a, b):\n    return a - b\n"


def wrong_add(body: str, head: str = "") -> str:
    """``head`` at import, then ``add`` runs ``body`` before returning the wrong answer."""
    return (textwrap.dedent(head) + "def add(a, b):\n" + textwrap.indent(textwrap.dedent(body), "    ")
            + "\n    return a - b\n")


MEMSCAN = """
import re
found = False
with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb') as mem:
    for line in maps:
        span, perm = line.split()[:2]
        if 'r' not in perm:
            continue
        lo, hi = (int(x, 16) for x in span.split('-'))
        try:
            mem.seek(lo)
            found = found or re.search(rb'Q9q9-c[a]nary', mem.read(hi - lo)) is not None
        except (OSError, ValueError, OverflowError):
            continue
if found:
    return a + b
"""
FRAMES_AND_GC = """
import gc, re, sys
pattern = re.compile(r'Q9q9-c[a]nary')
def holds_test(v):
    return isinstance(v, (str, bytes)) and pattern.search(v if isinstance(v, str) else v.decode('latin-1'))
f = sys._getframe()
seen = []
while f is not None:
    seen += list(f.f_locals.values()) + list(f.f_globals.values()) + list(f.f_code.co_consts)
    f = f.f_back
seen += gc.get_objects()
for o in list(seen):
    if isinstance(o, dict):
        seen += list(o.values())
if any(holds_test(v) for v in seen):
    return a + b
"""
REACH_TEST_PROCESS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
ppid = os.getppid()
reached = []
for name, attempt in (
        ("mem", lambda: open(f'/proc/{ppid}/mem', 'rb').read(1)),
        ("fd3", lambda: open(f'/proc/{ppid}/fd/3', 'wb')),
        ("ptrace", lambda: libc.ptrace(16, ppid, 0, 0) == 0 or (_ for _ in ()).throw(OSError())),
        ("vm_readv", lambda: libc.process_vm_readv(ppid, None, 0, None, 0, 0) >= 0
                             and libc.process_vm_readv(ppid, None, 0, None, 0, 0) or
                             (_ for _ in ()).throw(OSError())),
        ("pidfd_getfd", lambda: libc.syscall(438, os.pidfd_open(ppid), 3, 0) >= 0
                                or (_ for _ in ()).throw(OSError()))):
    try:
        attempt()
        reached.append(name)
    except OSError:
        pass
raise PermissionError(f"reached: {reached}" if reached else "all 5 refused")
"""

PROGRAMS: dict[str, tuple[Problem, str]] = {
    # ------------------------------------------------ values that lie about themselves
    "lying_eq": (ADD, wrong_add("", head="""
        class Yes:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __bool__(self): return True
            __hash__ = object.__hash__
        """).replace("return a - b", "return Yes()")),
    "lying_bool": (assert_problem("pos", ["assert is_pos(3)", "assert not is_pos(-3)"], "is_pos"),
                   "class Yes:\n    def __bool__(self): return True\n"
                   "def is_pos(x):\n    return Yes()\n"),
    "builtin_subclass_with_lying_eq": (ADD, wrong_add("", head="""
        class Sly(int):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = int.__hash__
        """).replace("return a - b", "return Sly(a - b)")),
    "lying_contains": (assert_problem("digits", ["assert 3 in digits(123)"], "digits"),
                       "class Bag:\n    def __contains__(self, x): return True\n"
                       "    def __iter__(self): return iter([])\n"
                       "def digits(n):\n    return Bag()\n"),
    # ------------------------------------------------ patching what the harness uses
    "patched_builtins": (ADD, wrong_add("", head="""
        import builtins
        class Never(Exception):
            pass
        builtins.AssertionError = Never
        builtins.exec = lambda *a, **k: None
        builtins.compile = lambda *a, **k: compile('pass', 'x', 'exec')
        builtins.print = lambda *a, **k: None
        """)),
    "patched_isinstance": (ADD, wrong_add("", head="""
        import builtins
        builtins.isinstance = lambda *a: True
        """)),
    "patched_harness_modules": (ADD, wrong_add("", head="""
        import sys
        for mod in list(sys.modules.values()):
            if getattr(mod, '__name__', '').startswith('mars2_env'):
                for name, value in list(vars(mod).items()):
                    if callable(value) and not isinstance(value, type):
                        setattr(mod, name, lambda *a, **k: None)
        """)),
    "patched_module_the_test_uses": (
        assert_problem("close", ["assert math.isclose(add(0.1, 0.2), 0.3)"]),
        wrong_add("", head="import math\nmath.isclose = lambda *a, **k: True\n")),
    "shadowed_builtin_the_test_uses": (
        assert_problem("abs", ["assert abs(add(1, 2) - 3) < 1e-9"]),
        wrong_add("", head="def abs(x):\n    return 0\n")),
    # ------------------------------------------------ reading the test or forging completion
    "forged_completion_record": (ADD, textwrap.dedent("""
        import json, os, sys
        frame, nonce = sys._getframe(), None
        while frame is not None:  # the old harness kept a per-test nonce in a caller's locals
            for v in list(frame.f_locals.values()):
                if isinstance(v, dict) and 'nonce' in v:
                    nonce = v['nonce']
            frame = frame.f_back
        record = json.dumps({'done': nonce or True, 'program_exit': 0}).encode()
        for fd in range(3, 256):
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, record, 0)
            except OSError:
                pass
        os._exit(0)
        """)),
    "frame_and_gc_walk_for_the_test": (ADD, wrong_add(FRAMES_AND_GC)),
    "memory_scan_for_the_test": (ADD, wrong_add(MEMSCAN)),
    "reach_into_the_test_process": (ADD, wrong_add(REACH_TEST_PROCESS)),
    # ------------------------------------------------ leaving early
    "os_exit_at_import": (ADD, "import os\nos._exit(0)\n" + WRONG),
    "sys_exit_at_import": (ADD, "import sys\nsys.exit(0)\n" + WRONG),
    "os_exit_inside_the_call": (ADD, wrong_add("import os\nos._exit(0)")),
    "sys_exit_inside_the_call": (ADD, wrong_add("import sys\nsys.exit(0)")),
    "signals_to_the_test_process": (ADD, wrong_add("""
        import os, signal
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                  signal.SIGALRM, signal.SIGPIPE, signal.SIGXCPU, signal.SIGCHLD):
            os.kill(os.getppid(), s)
        """)),
    "sigkill_of_the_test_process": (ADD, wrong_add("import os\nos.kill(os.getppid(), 9)")),
    "sigstop_of_the_test_process": (ADD, wrong_add("import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)")),
    # ------------------------------------------------ escaping the test's own checks
    "stop_iteration_ends_the_tests_loop": (
        assert_problem("loop", ["def ok(x):\n    return add(x, 0) == x\nassert all(map(ok, range(3)))"]),
        "def add(a, b):\n    raise StopIteration\n"),
    "program_exit_swallowed_by_the_test": (
        assert_problem("swallow", ["try:\n    add(1, 2)\nexcept:\n    pass\n"]),
        wrong_add("import sys\nsys.exit(0)")),
    # ------------------------------------------------ breaking the channel
    "oversized_value": (ADD, wrong_add("return 'x' * (40 << 20)")),
    "malformed_message": (ADD, wrong_add("import os, struct\nos.write(3, struct.pack('<I', 5) + b'{{{{{')")),
    "deeply_nested_message": (ADD, wrong_add(
        "import os, struct\nbomb = b'{\"r\": ' + b'[' * 200000\nos.write(3, struct.pack('<I', len(bomb)) + bomb)")),
    "deeply_nested_value": (ADD, wrong_add("v = 3\nfor _ in range(100000):\n    v = [v]\nreturn v")),
    # ------------------------------------------------ correct programs still pass
    "correct": (ADD, "def add(a, b):\n    return a + b\n"),
    "correct_raising_what_the_test_expects": (
        assert_problem("raises", ["try:\n    add('x', None)\n    raise AssertionError('no error')\n"
                                  "except TypeError:\n    pass\nassert add(1, 2) == 3"]),
        "def add(a, b):\n    return a + b\n"),
    "correct_with_objects_by_handle": (  # MBPP 601 style: the test builds the program's objects
        assert_problem("pairs", ["assert max_chain_length([Pair(5, 24), Pair(15, 25), Pair(27, 40), "
                                 "Pair(50, 60)], 4) == 3\np = Pair(1, 2)\nassert (p.a, p.b) == (1, 2)\n"
                                 "assert str(p) == 'Pair(1, 2)' and len(p) == 2 and list(p) == [1, 2]"],
                       "max_chain_length"),
        "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
        "    def __str__(self):\n        return f'Pair({self.a}, {self.b})'\n"
        "    def __len__(self):\n        return 2\n"
        "    def __iter__(self):\n        return iter((self.a, self.b))\n"
        "def max_chain_length(arr, n):\n    arr = sorted(arr, key=lambda p: p.b)\n"
        "    count, end = 0, float('-inf')\n    for p in arr:\n        if p.a > end:\n"
        "            count, end = count + 1, p.b\n    return count\n"),
    "correct_calling_back_the_tests_function": (
        assert_problem("apply", ["assert apply(lambda x: x * 2, [1, 2]) == [2, 4]"], "apply"),
        "def apply(f, xs):\n    return [f(x) for x in xs]\n"),
    "correct_entry_point_named_like_a_builtin": (
        assert_problem("round", ["assert round(2.5) == 3 and round(-2.5) == -3"], "round"),
        "import math\ndef round(x):\n    return int(math.copysign(math.floor(abs(x) + 0.5), x))\n"),
    "correct_test_uses_the_programs_imports_and_globals": (
        assert_problem("globals", ["assert math.isclose(add(0.1, 0.2), 0.3) and N == 5"]),
        "import math\nN = 5\ndef add(a, b):\n    return a + b\n"),
}


@pytest.fixture(scope="module")
def judged():
    """Every program of `PROGRAMS`, judged once (all tests, no early stop)."""
    names = list(PROGRAMS)
    with Executor(max_workers=2, sandbox=MODE) as ex:
        results = ex.run_many([PROGRAMS[n] for n in names], stop_on_first_failure=False)
        assert ex.mode == MODE
    return dict(zip(names, results, strict=True))


def verdict_of(judged, name: str, verdict: Verdict, *texts: str):
    r = judged[name]
    assert r.passed == 0 or name.startswith("correct"), format_feedback(r)
    assert r.verdict == verdict, format_feedback(r)
    assert all(t.verdict == verdict for t in r.tests), format_feedback(r)
    for text in texts:
        assert text in r.tests[0].error, format_feedback(r)
    return r


# ---------------------------------------------------------------- values that lie

def test_lying_eq_object_is_never_judged_equal(judged):
    verdict_of(judged, "lying_eq", Verdict.WRONG_ANSWER, "compared (==) a Yes object")


def test_lying_bool_object_has_no_truth_value(judged):
    verdict_of(judged, "lying_bool", Verdict.WRONG_ANSWER, "took the truth value of a Yes object")


def test_builtin_subclass_with_lying_eq_crosses_as_plain_data(judged):
    verdict_of(judged, "builtin_subclass_with_lying_eq", Verdict.WRONG_ANSWER, "AssertionError")


def test_lying_contains_is_judged_on_the_items(judged):
    verdict_of(judged, "lying_contains", Verdict.WRONG_ANSWER, "AssertionError")


# ---------------------------------------------------------------- patching the harness

def test_patched_builtins_do_not_reach_the_test(judged):
    verdict_of(judged, "patched_builtins", Verdict.WRONG_ANSWER, "AssertionError")


def test_patched_isinstance_only_breaks_the_programs_own_answers(judged):
    verdict_of(judged, "patched_isinstance", Verdict.RUNTIME_ERROR)


def test_patched_harness_modules_only_break_the_program(judged):
    verdict_of(judged, "patched_harness_modules", Verdict.RUNTIME_ERROR)


def test_module_patched_by_the_program_is_not_the_tests(judged):
    verdict_of(judged, "patched_module_the_test_uses", Verdict.WRONG_ANSWER, "AssertionError")


def test_builtin_shadowed_by_the_program_is_not_the_tests(judged):
    verdict_of(judged, "shadowed_builtin_the_test_uses", Verdict.WRONG_ANSWER, "AssertionError")


# ---------------------------------------------------------------- reading and forging

def test_forged_completion_record_and_early_exit(judged):
    verdict_of(judged, "forged_completion_record", Verdict.RUNTIME_ERROR,
               "the program process ended during the test")


def test_walking_frames_and_gc_finds_no_test_code(judged):
    verdict_of(judged, "frame_and_gc_walk_for_the_test", Verdict.WRONG_ANSWER, "AssertionError")


@pytest.mark.skipif(PRIVILEGED_PROGRAM, reason="a root program in the basic sandbox can read anything")
def test_scanning_its_own_memory_finds_no_test_code(judged):
    verdict_of(judged, "memory_scan_for_the_test", Verdict.WRONG_ANSWER, "AssertionError")


@pytest.mark.skipif(PRIVILEGED_PROGRAM, reason="a root program in the basic sandbox can ptrace anything")
def test_test_process_memory_fds_and_ptrace_are_out_of_reach(judged):
    verdict_of(judged, "reach_into_the_test_process", Verdict.RUNTIME_ERROR,
               "PermissionError: all 5 refused")


# ---------------------------------------------------------------- leaving early

def test_os_exit_at_import(judged):
    verdict_of(judged, "os_exit_at_import", Verdict.RUNTIME_ERROR,
               "the program process ended during the test")


def test_sys_exit_zero_at_import(judged):
    verdict_of(judged, "sys_exit_at_import", Verdict.RUNTIME_ERROR,
               "the program exited (status 0) before the test ran")


def test_os_exit_inside_the_call(judged):
    verdict_of(judged, "os_exit_inside_the_call", Verdict.RUNTIME_ERROR,
               "the program process ended during the test")


def test_sys_exit_zero_inside_the_call(judged):
    verdict_of(judged, "sys_exit_inside_the_call", Verdict.RUNTIME_ERROR,
               "the program exited (status 0) while the test was calling it")


def test_signals_to_the_test_process_are_ignored(judged):
    verdict_of(judged, "signals_to_the_test_process", Verdict.WRONG_ANSWER, "AssertionError")


def test_sigkill_of_the_test_process_is_a_runtime_error(judged):
    verdict_of(judged, "sigkill_of_the_test_process", Verdict.RUNTIME_ERROR, "killed by SIGKILL")


def test_sigstop_of_the_test_process_is_a_time_limit(judged):
    verdict_of(judged, "sigstop_of_the_test_process", Verdict.TIME_LIMIT)


# ---------------------------------------------------------------- escaping the test's checks

def test_stop_iteration_cannot_end_the_tests_loop(judged):
    """Plain CPython passes this one: ``all(map(f, xs))`` stops at a StopIteration from f."""
    verdict_of(judged, "stop_iteration_ends_the_tests_loop", Verdict.RUNTIME_ERROR, "StopIteration")


def test_program_exit_swallowed_by_the_test_still_fails(judged):
    verdict_of(judged, "program_exit_swallowed_by_the_test", Verdict.RUNTIME_ERROR,
               "while the test was calling it")


# ---------------------------------------------------------------- breaking the channel

def test_oversized_value_is_an_output_limit(judged):
    verdict_of(judged, "oversized_value", Verdict.OUTPUT_LIMIT, "over the output limit")


def test_malformed_bridge_message_fails_the_test(judged):
    verdict_of(judged, "malformed_message", Verdict.RUNTIME_ERROR, "broke the test protocol")


def test_deeply_nested_protocol_message_fails_the_test(judged):
    verdict_of(judged, "deeply_nested_message", Verdict.RUNTIME_ERROR, "broke the test protocol")


def test_deeply_nested_value_equals_nothing(judged):
    verdict_of(judged, "deeply_nested_value", Verdict.WRONG_ANSWER, "AssertionError")


# ---------------------------------------------------------------- correct programs pass

@pytest.mark.parametrize("name", [n for n in PROGRAMS if n.startswith("correct")])
def test_correct_programs_pass(judged, name):
    r = judged[name]
    assert r.verdict == Verdict.PASSED and r.reward == 1.0, format_feedback(r)


def test_wrong_program_fails_plainly():
    with Executor(max_workers=1, sandbox=MODE) as ex:
        r = ex.run(ADD, WRONG, stop_on_first_failure=False)
    assert [t.verdict for t in r.tests] == [Verdict.WRONG_ANSWER] * 2
    assert 'File "test.py", line 1' in r.tests[0].error and "AssertionError" in r.tests[0].error


# ---------------------------------------------------------------- functional kind

def test_functional_forged_result_is_only_an_answer():
    """A functional program can write any 'result' record: that is only its answer, and the
    expected value never reaches it."""
    p = Problem(id="f", statement="", kind="functional", entry_point="add",
                public_tests=[TestCase("1\n2", "3")])
    forged = ("import json, os\nos.pwrite(3, json.dumps({'result': '4'}).encode(), 0)\nos._exit(0)\n")
    with Executor(max_workers=1, sandbox=MODE) as ex:
        r = ex.run(p, forged)
    assert r.verdict == Verdict.WRONG_ANSWER and r.tests[0].actual == "4", format_feedback(r)


# ---------------------------------------------------------------- output that breaks graders

NUMS = Problem(id="nums", statement="", public_tests=[TestCase("", "1\n")], time_limit_s=10)
TEXT = {name: Problem(id=name, statement="", public_tests=[TestCase("", out)], time_limit_s=10)
        for name, out in (("snan", "sNaN\n"), ("nan_pair", "NaN 1\n"), ("huge_exp", "1E999999999\n"))}
OUTPUTS = {  # name: (problem, program, verdict)
    "snan": (NUMS, "print('sNaN')", Verdict.WRONG_ANSWER),
    "minus_snan": (NUMS, "print('-sNaN')", Verdict.WRONG_ANSWER),
    "snan_text_equal": (TEXT["snan"], "print('sNaN')", Verdict.PASSED),
    "snan_vs_snan_tokens": (TEXT["snan"], "print(' sNaN')", Verdict.PASSED),
    "nan": (NUMS, "print('NaN')", Verdict.WRONG_ANSWER),
    "nan_tokens_never_equal": (TEXT["nan_pair"], "print('NaN 1.0')", Verdict.WRONG_ANSWER),
    "huge_exponent": (NUMS, "print('1e999999999')", Verdict.WRONG_ANSWER),
    "huge_exponent_equal": (TEXT["huge_exp"], "print('1e999999999')", Verdict.PASSED),
    "exponent_overflow": (NUMS, "print('1e99999999999999999999999')", Verdict.WRONG_ANSWER),
    "thirty_mb_line": (NUMS, "import sys\nsys.stdout.write('1.5 ' * (30 << 18))", Verdict.WRONG_ANSWER),
    "invalid_utf8": (NUMS, "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe1\\xed\\xa0\\x80\\n')",
                     Verdict.WRONG_ANSWER),
    "lone_surrogate_in_error": (NUMS, "raise ValueError('\\ud800 \\udfff')", Verdict.RUNTIME_ERROR),
}


@pytest.fixture(scope="module")
def outputs():
    names = list(OUTPUTS)
    with Executor(max_workers=2, sandbox=MODE) as ex:
        results = ex.run_many([OUTPUTS[n][:2] for n in names])
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_any_output_gets_a_verdict(outputs, name):
    r = outputs[name]
    assert r.verdict == OUTPUTS[name][2], format_feedback(r)
    for t in r.tests:  # results always encode (trees.jsonl, prompts)
        json.dumps(t.to_dict(), ensure_ascii=False).encode("utf-8")


def test_invalid_utf8_is_shown_with_replacement_characters(outputs):
    assert outputs["invalid_utf8"].tests[0].actual.startswith("\ufffd\ufffd1")


def test_lone_surrogates_in_errors_become_replacement_characters(outputs):
    error = outputs["lone_surrogate_in_error"].tests[0].error
    assert "ValueError: \ufffd \ufffd" in error


def test_internal_grading_error_is_a_logged_verdict_and_poisons_nothing(monkeypatch, caplog):
    def broken(actual: str, expected: str) -> bool:
        raise RuntimeError("grader bug")

    with Executor(max_workers=1, sandbox=MODE) as ex:
        monkeypatch.setattr(executor_mod, "lines_match", broken)
        with caplog.at_level(logging.ERROR, logger="mars2_env.execution"):
            r = ex.run(NUMS, "print(1)")
        assert r.verdict == Verdict.WRONG_ANSWER and "internal error: RuntimeError: grader bug" in r.tests[0].error
        assert any("internal error grading problem 'nums'" in m for m in caplog.messages)
        monkeypatch.undo()
        assert ex.run(NUMS, "print(1)").verdict == Verdict.PASSED


def test_grading_a_30mb_numeric_line_stays_within_a_few_hundred_mb():
    """lines_match on two 30 MB lines that are equal only as numbers, in a fresh process: the
    peak resident memory grows by less than 300 MB (a list of Decimals took 2 GB)."""
    script = (
        "import resource\n"
        "from mars2_env.execution.grader import lines_match\n"
        "n = 3_000_000\n"
        "got = ' '.join(['1.0'] * n) + ' 2.5'\n"
        "want = ' '.join(['1'] * n) + ' 2.50'\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "same = lines_match(got, want)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(same, len(got) >> 20, (after - before) >> 10)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    assert out[0] == "True" and int(out[1]) >= 8
    assert int(out[2]) < 300, f"peak grew by {out[2]} MB"


def test_trusted_helper_in_the_test_preamble_beats_the_programs(monkeypatch):
    """HumanEval/32 checks ``find_zero`` with ``poly`` from the prompt: a program can redefine
    ``poly`` to say 0 everywhere. A helper given in the test preamble (the harness selection
    hook) runs in the test process and wins over the program's."""
    test = "x = find_zero([-6, 11, -6, 1])\nassert abs(poly([-6, 11, -6, 1], x)) < 1e-6"
    p = assert_problem("find_zero", [test], "find_zero")
    cheat = "def poly(xs, x):\n    return 0.0\ndef find_zero(xs):\n    return 42.0\n"
    honest = ("def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n"
              "def find_zero(xs):\n    return 1.0\n")
    with Executor(max_workers=1, sandbox=MODE) as ex:
        assert ex.run(p, cheat).verdict == Verdict.PASSED  # the test takes poly from the program
        monkeypatch.setattr(executor_mod, "harness_options", lambda problem, limits: {
            "prelude": limits.lcb_prelude,
            "test_preamble": "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n"})
        cheated, passed = ex.run_many([(p, cheat), (p, honest)])
    assert cheated.verdict == Verdict.WRONG_ANSWER, format_feedback(cheated)
    assert passed.verdict == Verdict.PASSED, format_feedback(passed)

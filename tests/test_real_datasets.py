"""Real public dataset rows (tests/data/real, provenance in its README) load and are graded as
their own harnesses grade them: HumanEval / MBPP as human-eval runs them, sanitized MBPP with its
``test_imports``, TACO call-based values unwrapped as rllm grades them, rllm's LeetCode rows with
its helpers, statement time / memory limits enforced. Every test runs real processes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest

from mars2_env.datasets import statement_limits
from mars2_env.execution import Executor, Verdict
from mars2_env.execution.rules import HarnessRule, rule_for
from mars2_env.problems import Problem, ProblemFormatError, TestCase, TimeLimitPolicy, load_problems

REAL = Path(__file__).parent / "data" / "real"


def by_id(problems: list[Problem]) -> dict[str, Problem]:
    return {p.id: p for p in problems}


@pytest.fixture(scope="module")
def ex():
    with Executor(max_workers=2) as executor:
        yield executor


# ----------------------------------------------------------------------------- loading shapes

def test_humaneval_rows_load_with_the_humaneval_harness():
    ps = by_id(load_problems(REAL / "HumanEval.sample.jsonl.gz"))
    assert sorted(ps) == ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    for p in ps.values():
        assert (p.kind, p.harness, p.time_limit_s, p.source) == ("assert", "humaneval", 3.0,
                                                                "humaneval")
        assert p.public_tests == p.private_tests and p.public_tests[0].input.endswith(
            f"\ncheck({p.entry_point})\n")
    assert ps["HumanEval/32"].metadata["reference_solution"].startswith("import math\n")


def test_mbpp_rows_load_with_the_mbpp_harness():
    ps = by_id(load_problems(REAL / "mbpp.sample.jsonl"))
    assert sorted(ps) == ["MBPP/11", "MBPP/2", "MBPP/3"]
    assert {p.harness for p in ps.values()} == {"mbpp"}
    assert ps["MBPP/2"].entry_point == "similar_elements"
    assert ps["MBPP/2"].public_tests == [TestCase(
        "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n")]
    assert len(ps["MBPP/11"].metadata["challenge_test_list"]) == 2  # kept, not run


def test_sanitized_mbpp_test_imports_precede_every_test():
    ps = by_id(load_problems(REAL / "sanitized-mbpp.sample.json", n_public=1))
    p = ps["MBPP/139"]
    assert p.harness == "mbpp" and len(p.tests) == 3
    assert all(t.input.startswith("import math\nassert math.isclose(circle_circumference(")
               for t in p.tests)
    assert not ps["MBPP/2"].tests[0].input.startswith("import")  # test_imports is []


def test_codeforces_rows_load_with_statement_limits():
    cf0, cf1 = load_problems(REAL / "rllm_codeforces.sample.json")
    assert (cf0.id, cf0.kind, cf0.harness, cf0.metadata["shape"]) == (
        "rllm_codeforces.sample-0", "stdin", "rllm", "codeforces")
    assert (cf0.time_limit_s, cf0.memory_limit_mb, cf0.metadata["limits_from"]) == (
        1.0, 256, "statement")
    assert (len(cf0.public_tests), len(cf0.private_tests)) == (1, 0)  # a single-test row
    assert (cf1.time_limit_s, cf1.memory_limit_mb) == (2.0, 512)
    assert (len(cf1.public_tests), len(cf1.private_tests)) == (1, 4)


def test_code_contests_rows_load_as_taco_stdin_with_limits_in_seconds_and_bytes():
    cc0, cc1 = load_problems(REAL / "rllm_code_contests.sample.json")
    assert (cc0.harness, cc0.kind, cc0.metadata["shape"]) == ("taco", "stdin", "taco stdin")
    assert (cc0.time_limit_s, cc0.memory_limit_mb) == (2.0, math.ceil(512000000 / 2**20))
    assert (cc1.time_limit_s, len(cc1.tests)) == (3.0, 3)


def test_leetcode_check_code_rows_load_as_assert_problems():
    test_row, = load_problems(REAL / "rllm_leetcode_test.sample.json")
    add_two, inorder = load_problems(REAL / "rllm_leetcode_train.sample.json")
    assert [p.entry_point for p in (test_row, add_two, inorder)] == [
        "minOperations", "addTwoNumbers", "inorderTraversal"]
    for p in (test_row, add_two, inorder):
        assert (p.kind, p.harness, p.time_limit_s, p.metadata["shape"]) == (
            "assert", "leetcode", 30.0, "leetcode")
        assert p.public_tests == p.private_tests and len(p.public_tests) == 1
        assert p.public_tests[0].input.rstrip().endswith(f"check(Solution().{p.entry_point})")
        assert p.metadata["reference_solution"].lstrip().startswith(("class Solution", "#"))


def test_rllm_reward_test_rows_load_every_shape():
    cf, anagram, total, lcb_stdin, lcb_call = load_problems(REAL / "rllm_reward_tests.json")
    assert (cf.kind, cf.harness, cf.metadata["shape"], len(cf.tests)) == (
        "stdin", "rllm", "codeforces", 7)
    assert (anagram.kind, anagram.harness, anagram.entry_point) == ("functional", "taco",
                                                                    "is_anagram")
    assert anagram.tests[0] == TestCase('"foefet"\n"toffee"', "[true]")  # wrapped, as given
    assert total.tests[0] == TestCase("[1, 2, 3, 4, 5]", "[48]")
    assert (lcb_stdin.harness, lcb_stdin.metadata["shape"]) == ("rllm", "lcbv5")
    # lcbv5 as rllm's preprocessing writes it: func_name in the test's own metadata
    assert (lcb_call.kind, lcb_call.entry_point) == ("functional", "numberOfEmployeesWhoMetTarget")


def test_livecodebench_row_loads_with_its_compressed_private_tests():
    (p,) = load_problems(REAL / "livecodebench_1873_A.sample.jsonl")
    assert (p.id, p.kind, p.harness, p.source, p.difficulty) == (
        "1873_A", "stdin", "lcb", "livecodebench", "easy")
    assert p.public_tests == [TestCase("6\nabc\nacb\nbac\nbca\ncab\ncba\n",
                                       "YES\nYES\nYES\nNO\nNO\nYES\n")]
    assert [t.input.split("\n")[0] for t in p.private_tests] == ["1", "3", "5", "6"]
    assert p.private_tests[2] == TestCase("5\ncab\nacb\ncba\nbac\nbca\n",
                                          "NO\nYES\nYES\nYES\nNO\n")
    assert p.metadata["platform"] == "codeforces" and p.metadata["contest_id"] == "1873"
    assert p.statement.startswith("There are three cards") and "\xa0" in p.statement


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_lcbv5_func_name_in_either_place_and_a_conflict_is_an_error(tmp_path):
    test = {"input": "1\n2", "output": "3", "testtype": "functional"}
    rows = [{"problem": "p", "tests": [{**test, "metadata": {"func_name": "add"}}]},
            {"problem": "p", "tests": [test], "metadata": {"func_name": "plus"}}]
    a, b = load_problems(_write_jsonl(tmp_path / "lcbv5.jsonl", rows))
    assert (a.entry_point, b.entry_point) == ("add", "plus")
    bad = [{"problem": "p", "tests": [{**test, "metadata": {"func_name": "add"}},
                                      {**test, "metadata": {"func_name": "sub"}}]}]
    with pytest.raises(ProblemFormatError, match=r"bad\.jsonl, line 1.*different functions"):
        load_problems(_write_jsonl(tmp_path / "bad.jsonl", bad))


@pytest.mark.parametrize("tests, shape", [
    ({"foo": 1}, "an object with keys ['foo']"),
    (5, "a int"),
    ([["1", "2"]], "test 0 is a list whose first item is a str"),
    ({"functional": "assert True\n"}, "must end with check(Solution().METHOD)"),
])
def test_unknown_row_shape_is_refused_naming_file_line_and_shape(tmp_path, tests, shape):
    rows = [{"problem": "ok", "tests": [{"input": "1\n", "output": "1\n"}]},
            {"problem": "bad", "tests": tests}]
    with pytest.raises(ProblemFormatError) as info:
        load_problems(_write_jsonl(tmp_path / "rows.jsonl", rows))
    message = str(info.value)
    assert "rows.jsonl" in message and "line 2" in message and "'tests'" in message
    assert shape in message


@pytest.mark.parametrize("text, limits", [
    ("...\nTime Limit: 1000 ms\nMemory Limit: 256 MB\n", (1.0, 256)),
    ("time limit per test: 2 seconds\nmemory limit per test: 256 megabytes", (2.0, 256)),
    ("Time Limit: {'seconds': 2, 'nanos': 500000000}\nMemory Limit: 512000000 Bytes",
     (2.5, 489)),
    ("Time limit: 1.5 s. Memory limit: 1 GB.", (1.5, 1024)),
    ("the easy and hard versions differ: the time limit is lower", (None, None)),
    ("Time Limit: 0 ms", (None, None)),  # no positive limit stated: the default stays
    ("", (None, None)),
])
def test_statement_limits_parse_every_stated_form(text, limits):
    assert statement_limits(text) == limits


def test_canonical_rows_default_to_the_lcb_harness_and_keep_a_given_one(tmp_path):
    row = {"id": "a", "statement": "s", "public_tests": [{"input": "1\n", "output": "1\n"}]}
    a, b = load_problems(_write_jsonl(tmp_path / "c.jsonl", [row, {**row, "id": "b",
                                                                  "harness": "humaneval"}]))
    assert (a.harness, b.harness) == ("lcb", "humaneval")
    with pytest.raises(ProblemFormatError, match=r"line 1, field 'harness'.*one of"):
        load_problems(_write_jsonl(tmp_path / "d.jsonl", [{**row, "harness": "nope"}]))


# ----------------------------------------------------------------------------- grading

def test_humaneval_references_pass_and_a_wrong_override_fails(ex):
    ps = load_problems(REAL / "HumanEval.sample.jsonl.gz")
    results = ex.run_many([(p, p.metadata["reference_solution"]) for p in ps])
    assert [r.verdict for r in results] == [Verdict.PASSED] * 3
    he0 = ps[0]  # the prompt is the starter code; a body that always says False is wrong
    assert ex.run(he0, he0.starter_code + "    return False\n").verdict == Verdict.WRONG_ANSWER


ITERTOOLS_WITHOUT_IMPORT = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    return any(abs(a - b) < threshold for a, b in itertools.combinations(numbers, 2))
'''


def test_prelude_leak_humaneval_completion_missing_an_import_fails_as_in_human_eval(ex):
    """LiveCodeBench's prelude must not rescue a HumanEval completion that forgot an import."""
    he0 = load_problems(REAL / "HumanEval.sample.jsonl.gz")[0]
    r = ex.run(he0, ITERTOOLS_WITHOUT_IMPORT, tests="private")
    assert r.verdict == Verdict.RUNTIME_ERROR and "NameError" in r.tests[0].error
    as_lcb = dataclasses.replace(he0, harness="lcb")  # what grading looked like before
    assert ex.run(as_lcb, ITERTOOLS_WITHOUT_IMPORT, tests="private").verdict == Verdict.PASSED


def test_humaneval_program_is_not_main_as_in_human_eval(ex):
    he2 = by_id(load_problems(REAL / "HumanEval.sample.jsonl.gz"))["HumanEval/2"]
    code = he2.metadata["reference_solution"] + (
        "\nassert __name__ == 'builtins'\n"
        "if __name__ == '__main__':\n    raise SystemExit('the main block must not run')\n")
    assert ex.run(he2, code).verdict == Verdict.PASSED
    demo_like = dataclasses.replace(he2, harness="lcb")  # a judge-style program is __main__
    assert ex.run(demo_like, code).verdict == Verdict.RUNTIME_ERROR


def test_mbpp_references_pass_and_a_wrong_override_fails(ex):
    ps = by_id(load_problems(REAL / "mbpp.sample.jsonl"))
    results = ex.run_many([(p, p.metadata["reference_solution"]) for p in ps.values()])
    assert all(r.verdict == Verdict.PASSED and r.passed == 3 for r in results)
    as_list = "def similar_elements(a, b):\n    return sorted(set(a) & set(b))\n"  # not a tuple
    assert ex.run(ps["MBPP/2"], as_list).verdict == Verdict.WRONG_ANSWER


def test_sanitized_mbpp_test_imports_are_what_makes_the_reference_pass(ex):
    p = by_id(load_problems(REAL / "sanitized-mbpp.sample.json"))["MBPP/139"]
    ref = p.metadata["reference_solution"]
    assert "import" not in ref  # the test's `math` comes from test_imports alone
    assert ex.run(p, ref).verdict == Verdict.PASSED
    stripped = [TestCase(t.input.removeprefix("import math\n"), t.output) for t in p.tests]
    r = ex.run(p, ref, tests=stripped)  # no LCB prelude hides a missing import any more
    assert r.verdict == Verdict.RUNTIME_ERROR and "NameError" in r.tests[0].error
    wrong = "def circle_circumference(r):\n    return 3 * r\n"  # rel_tol 0.001 catches it
    assert ex.run(p, wrong).verdict == Verdict.WRONG_ANSWER


SHORT_SORT = ("t = int(input())\nfor _ in range(t):\n    s = input().strip()\n"
              "    print('YES' if sum(a != b for a, b in zip(s, 'abc')) != 3 else 'NO')\n")


def test_livecodebench_row_is_graded_as_livecodebench_grades_stdin(ex):
    """LiveCodeBench compares stripped lines (numbers as decimals), so a right answer in
    another case fails even where Codeforces would accept it; its prelude's `from sys import *`
    lets a program use `stdin` without importing it."""
    (p,) = load_problems(REAL / "livecodebench_1873_A.sample.jsonl")
    r = ex.run(p, SHORT_SORT, tests="all")
    assert (r.verdict, r.passed, r.total) == (Verdict.PASSED, 5, 5)
    no_import = SHORT_SORT.replace("t = int(input())", "t = int(stdin.readline())")
    assert ex.run(p, no_import, tests="all").verdict == Verdict.PASSED
    spaced = ("t = int(input())\nfor _ in range(t):\n    s = input().strip()\n"
              "    ok = sum(a != b for a, b in zip(s, 'abc')) != 3\n"
              "    print('  ' + ('YES' if ok else 'NO') + ' ')\nprint()\n")  # blanks around lines
    assert ex.run(p, spaced, tests="all").verdict == Verdict.PASSED
    lower = SHORT_SORT.replace("'YES'", "'yes'")
    r = ex.run(p, lower, tests="all")
    assert (r.verdict, r.passed) == (Verdict.WRONG_ANSWER, 0)
    sample_only = "print('YES\\nYES\\nYES\\nNO\\nNO\\nYES')\n"  # the sample's output, hard-coded
    assert ex.run(p, sample_only, tests="public").verdict == Verdict.PASSED
    r = ex.run(p, sample_only, tests="private")
    assert (r.verdict, r.passed, r.total) == (Verdict.WRONG_ANSWER, 0, 4)


def test_taco_call_based_wrapped_values_are_unwrapped_as_rllm_grades_them(ex):
    _, anagram, total, _, _ = load_problems(REAL / "rllm_reward_tests.json")
    for p in (anagram, total):
        assert ex.run(p, p.metadata["reference_solution"]).verdict == Verdict.PASSED
    wrapped = "def is_anagram(test, original):\n    return [sorted(test.lower()) == sorted(original.lower())]\n"
    assert ex.run(anagram, wrapped).verdict == Verdict.PASSED  # out == o is accepted too
    wrong = "def is_anagram(test, original):\n    return sorted(test) == sorted(original)\n"
    r = ex.run(anagram, wrong)
    assert r.verdict == Verdict.WRONG_ANSWER and r.tests[-1].actual == "false"
    as_lcb = dataclasses.replace(anagram, harness="lcb")  # the bug this fixes: 0 for a correct one
    assert ex.run(as_lcb, anagram.metadata["reference_solution"]).verdict == Verdict.WRONG_ANSWER


def _taco_accepts(out, expected):
    """TACO's call-based rule written out independently (metrics/testing_util.py there)."""
    if isinstance(out, tuple):
        out = list(out)
    ok = out == expected
    if isinstance(expected, list) and expected:
        ok = ok or out == expected[0]
        if isinstance(out, list) and out and isinstance(out[0], tuple):
            ok = ok or [list(x) for x in out] == expected[0]
    return ok


@pytest.mark.parametrize("out, expected", [
    (True, [True]), (True, True), ([True], [True]), (False, [True]), ([1, 2], [[1, 2]]),
    ([1, 2], [1, 2]), (1, [1, 2]), (2, [1, 2]), ([(1, 2), (3, 4)], [[[1, 2], [3, 4]]]),
    ((1, 2), [[1, 2]]), ("x", ["x"]), (None, []), ([], []), ({"a": 1}, [{"a": 1}]),
    (0, [False]), (1.0, [1]),
])
def test_taco_rule_matches_an_independent_implementation(out, expected):
    rule = rule_for(Problem(id="t", statement="", harness="taco"))
    assert rule.values_match(out, json.dumps(expected)) is _taco_accepts(out, expected)
    plain = HarnessRule("lcb")
    assert plain.values_match(out, json.dumps(expected)) is (
        (list(out) if isinstance(out, tuple) else out) == expected)


def test_leetcode_rows_grade_with_rllm_helpers(ex):
    rows = load_problems(REAL / "rllm_leetcode_test.sample.json") + load_problems(
        REAL / "rllm_leetcode_train.sample.json")
    results = ex.run_many([(p, p.metadata["reference_solution"]) for p in rows])
    assert [r.verdict for r in results] == [Verdict.PASSED] * 3
    add_two = rows[1]
    off_by_one = add_two.metadata["reference_solution"].replace(
        "carry, val = divmod(s, 10)", "carry, val = divmod(s + 1, 10)")
    assert off_by_one != add_two.metadata["reference_solution"]
    assert ex.run(add_two, off_by_one).verdict == Verdict.WRONG_ANSWER


def test_rllm_prelude_has_its_names_and_not_livecodebench_ones(ex):
    *_, lcb_call = load_problems(REAL / "rllm_reward_tests.json")
    assert ex.run(lcb_call, lcb_call.metadata["reference_solution"]).verdict == Verdict.PASSED
    stdin = Problem(id="p", statement="", harness="rllm",
                    public_tests=[TestCase("4 6\n", "12\n")])
    via_np = "a, b = map(int, input().split())\nprint(int(np.lcm(a, b)))\n"  # rllm binds np
    via_lcm = "a, b = map(int, input().split())\nprint(lcm(a, b))\n"  # LCB's `from math import *`
    assert ex.run(stdin, via_np).verdict == Verdict.PASSED
    assert ex.run(stdin, via_lcm).verdict == Verdict.RUNTIME_ERROR
    assert ex.run(dataclasses.replace(stdin, harness="lcb"), via_lcm).verdict == Verdict.PASSED


def test_rllm_program_using_the_preludes_np_runs_where_numpy_is_preloaded(ex):
    """rllm's prelude binds ``np`` (imported on first use): a program using it without an import
    runs in the zygote that preloaded numpy, not paying the import in every test."""
    pytest.importorskip("numpy")
    stdin = Problem(id="np", statement="", harness="rllm", public_tests=[TestCase("", "True\n3\n")])
    loaded = "import sys\nprint(('nu' + 'mpy') in sys.modules)\n"  # no module name in the source
    assert ex.run(stdin, loaded + "print(int(np.int64(3)))\n").verdict == Verdict.PASSED
    plain = dataclasses.replace(stdin, public_tests=[TestCase("", "False\n")])
    assert ex.run(plain, loaded).verdict == Verdict.PASSED  # the light zygote otherwise


MIN_MAX = "for _ in range(int(input())):\n    x, y = map(int, input().split())\n    print(min(x, y), max(x, y))\n"
PRETTINESS = """from math import gcd
n = int(input())
a = list(map(int, input().split()))
print(sum(gcd(a[i], a[j]) * gcd(i + 1, j + 1) for i in range(n) for j in range(n)) % (10**9 + 7))
"""


def test_statement_time_limit_applies_and_the_policy_scales_it():
    cf0, _ = load_problems(REAL / "rllm_codeforces.sample.json")
    slow = "import time\ntime.sleep(1.3)\n" + MIN_MAX  # 1 s statement limit
    with Executor(max_workers=1) as dataset:
        assert dataset.run(cf0, MIN_MAX).verdict == Verdict.PASSED
        assert dataset.run(cf0, slow).verdict == Verdict.TIME_LIMIT
    with Executor(max_workers=1, **TimeLimitPolicy.parse("x4").executor_options()) as scaled:
        assert scaled.run(cf0, slow).verdict == Verdict.PASSED
    with Executor(max_workers=1, **TimeLimitPolicy.parse("5s").executor_options()) as fixed:
        assert fixed.run(cf0, slow).verdict == Verdict.PASSED


def test_statement_memory_limit_is_enforced(ex):
    _, cc1 = load_problems(REAL / "rllm_code_contests.sample.json")  # 512000000 bytes
    assert ex.run(cc1, PRETTINESS).verdict == Verdict.PASSED
    hog = "x = bytearray(600 << 20)\n" + PRETTINESS
    assert ex.run(cc1, hog).verdict == Verdict.MEMORY_LIMIT
    # the same program under the default 1024 MiB (time to zero 600 MiB on a loaded box aside)
    roomy = dataclasses.replace(cc1, memory_limit_mb=1024, time_limit_s=30.0)
    assert ex.run(roomy, hog).verdict == Verdict.PASSED


@pytest.mark.parametrize("text, policy, seconds", [
    ("dataset", TimeLimitPolicy(), 1.0), ("6", TimeLimitPolicy("fixed", 6.0), 6.0),
    ("2.5s", TimeLimitPolicy("fixed", 2.5), 2.5), ("fixed:3", TimeLimitPolicy("fixed", 3.0), 3.0),
    ("x3", TimeLimitPolicy("scale", 3.0), 3.0), ("1.5x", TimeLimitPolicy("scale", 1.5), 1.5),
    ("scale:0.5", TimeLimitPolicy("scale", 0.5), 0.5),
])
def test_time_limit_policy_parses(text, policy, seconds):
    got = TimeLimitPolicy.parse(text)
    assert got == policy
    assert got.seconds(Problem(id="p", statement="", time_limit_s=1.0)) == seconds
    assert TimeLimitPolicy.parse(str(got)) == got


@pytest.mark.parametrize("text", ["", "fast", "0", "-2", "x0", "xnan", "inf", "scale:"])
def test_bad_time_limit_policy_is_a_clear_error(text):
    with pytest.raises(ValueError, match="time-limit policy must be 'dataset'"):
        TimeLimitPolicy.parse(text)


# ------------------------------------------------------------ full public files (opt-in, slow)

FULL = os.environ.get("MARS2_REAL_DATA_DIR")


FULL_FILES = [  # file (as the source repository names it; rllm's train split renamed), counts
    ("HumanEval.jsonl.gz", 164, 164, []),
    ("mbpp.jsonl", 973, 974, ["MBPP/123"]),
    ("sanitized-mbpp.json", 426, 427, ["MBPP/123"]),
    ("leetcode.json", 200, 200, []),  # rllm/data/test/code/leetcode.json
    ("train_leetcode.json", 1889, 1889, []),  # rllm/data/train/code/leetcode.json
]


def _full_file(name: str) -> Path:
    if not FULL:
        pytest.skip("set MARS2_REAL_DATA_DIR to a folder holding HumanEval.jsonl.gz, mbpp.jsonl, "
                    "sanitized-mbpp.json and rllm's leetcode.json / train_leetcode.json")
    path = Path(FULL) / name
    if not path.exists():
        pytest.skip(f"{path} is not there")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name, passed, total, failing", FULL_FILES)
def test_canonical_pass_counts_on_the_full_files(name, passed, total, failing):
    from mars2_cli.data_cmd import check_references

    result = check_references(load_problems(_full_file(name)))
    # MBPP/123's reference takes 5 s on a quiet machine, more under load: it may pass or time out
    assert result["with_reference"] == total and result["passed"] >= passed
    assert {f["id"] for f in result["failures"]} <= set(failing)
    assert all(f["verdict"] == "time_limit" for f in result["failures"])


REBIND_HELPERS = ("\nimport builtins\n_yes = lambda a, b: True\nis_same_list = is_same_tree = _yes\n"
                  "builtins.is_same_list = builtins.is_same_tree = _yes\n")


def _wrong_override(p: Problem) -> str:
    """The reference with its entry point answering None (LeetCode: also every comparison
    helper the program can reach rebound to say yes); HumanEval: the prompt returning None."""
    if p.harness == "humaneval":
        return p.starter_code + "    return None\n"
    if p.harness == "leetcode":
        return (p.metadata["reference_solution"] + REBIND_HELPERS
                + f"\nSolution.{p.entry_point} = lambda self, *a, **k: None\n")
    return p.metadata["reference_solution"] + f"\ndef {p.entry_point}(*a, **k):\n    return None\n"


@pytest.mark.slow
@pytest.mark.parametrize("name", [f[0] for f in FULL_FILES])
def test_wrong_overrides_fail_on_the_full_files(name):
    problems = load_problems(_full_file(name))
    with Executor() as ex:
        results = ex.run_many([(p, _wrong_override(p)) for p in problems])
    assert [p.id for p, r in zip(problems, results, strict=True)
            if r.verdict == Verdict.PASSED] == []

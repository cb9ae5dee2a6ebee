"""Grader, value codec, result records and feedback text: pure functions, no processes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mars2_env.execution import ExecutionResult, TestResult, Verdict, format_feedback
from mars2_env.execution.feedback import clip, tail_lines
from mars2_env.execution.grader import (
    Unsupported,
    dumps_value,
    encode_value,
    lines_match,
    loads_value,
    show_value,
    values_match,
)

# ---------------------------------------------------------------- stdin comparison (LiveCodeBench)

@pytest.mark.parametrize("actual, expected, ok", [
    ("3\n", "3\n", True),
    ("3", "3\n", True),                       # trailing newline
    ("  3  \n\n", "3", True),                 # whole output and each line stripped
    ("1 2\n3 4\n", "1 2\n3 4", True),
    ("1  2\n", "1 2\n", True),                # differs as text, equal as Decimal tokens
    ("1.0\n", "1\n", True),                   # Decimal("1.0") == Decimal("1")
    ("1e2\n", "100\n", True),
    ("0.1000001\n", "0.1\n", False),          # no float tolerance
    ("Yes\n", "YES\n", False),                # case-sensitive
    ("1\n2\n", "1\n", False),                 # line count
    ("1\n\n2\n", "1\n2\n", False),            # an inner empty line counts
    ("abc def\n", "abc  def\n", False),       # text tokens are not re-joined
    ("", "", True),
    ("", "0", False),
    ("50000000000000000\n", "50000000000000001\n", False),  # exact, unlike np.isclose
])
def test_lines_match_follows_livecodebench(actual, expected, ok):
    assert lines_match(actual, expected) is ok


# ---------------------------------------------------------------- functional values

@pytest.mark.parametrize("value", [
    None, True, 0, -5, 2 ** 100, 1.5, float("inf"), "héllo", "", [1, [2, "x"]],
    {"a": 1, "b": [1, 2]}, {1: "one", (2, 3): [4]}, (1, (2, 3)), {1, 2}, frozenset({"a"}),
    [], {},
])
def test_codec_round_trips_plain_values(value):
    assert loads_value(json.dumps(encode_value(value))) == value


def test_top_level_tuple_becomes_list_but_nested_tuples_stay():
    assert loads_value(dumps_value((1, 2))) == [1, 2]
    assert values_match(loads_value(dumps_value((1, 2))), "[1, 2]")
    nested = loads_value(dumps_value([(1, 2)]))
    assert nested == [(1, 2)]
    assert not values_match(nested, "[[1, 2]]")  # LCB compares [(1, 2)] == [[1, 2]] -> False


def test_values_match_uses_python_equality_against_json():
    assert values_match(True, "1")           # True == 1, as in LiveCodeBench
    assert values_match(3, "3.0")
    assert not values_match({1, 2}, "[1, 2]")
    assert not values_match("1", "1")        # json "1" is the int 1
    assert values_match({"a": [1, 2]}, '{"a": [1, 2]}')


def test_unsupported_values_never_equal_anything():
    class Forged:
        def __eq__(self, other):
            return True

    data = loads_value(dumps_value(Forged()))
    assert isinstance(data, Unsupported)
    assert data != data and not values_match(data, "1")
    assert "Forged" in show_value(data)


def test_numpy_scalars_compare_like_python_numbers():
    assert loads_value(dumps_value(np.int64(7))) == 7
    assert values_match(loads_value(dumps_value([np.float64(0.5), np.bool_(True)])), "[0.5, true]")
    assert isinstance(loads_value(dumps_value(np.array([1, 2]))), Unsupported)


@pytest.mark.parametrize("bad", ['{"zz": 1}', '{"s": [[1]]}', "not json", '{"d": [[[1], 2]]}'])
def test_malformed_child_data_raises_value_error(bad):
    with pytest.raises(ValueError):
        loads_value(bad)


def test_deep_nesting_is_cut_not_crashing():
    v: list = []
    for _ in range(1000):
        v = [v]
    decoded = loads_value(dumps_value(v))
    assert not values_match(decoded, json.dumps([[]]))


# ---------------------------------------------------------------- records

def _result() -> ExecutionResult:
    return ExecutionResult(Verdict.WRONG_ANSWER, 1, 3, 1 / 3, [
        TestResult(Verdict.PASSED, "1 2\n", "3\n", "3\n", ""),
        TestResult(Verdict.WRONG_ANSWER, "x" * 1000 + "\n", "7\n", "8\n", ""),
    ])


def test_execution_result_round_trips_and_summarises():
    r = _result()
    assert ExecutionResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert r.summary() == {"verdict": "wrong_answer", "passed": 1, "total": 3, "reward": 1 / 3}
    assert str(Verdict.TIME_LIMIT) == "time_limit" and Verdict("output_limit") is Verdict.OUTPUT_LIMIT


# ---------------------------------------------------------------- feedback

def test_clip_keeps_head_and_tail():
    text = "a" * 50 + "MIDDLE" + "z" * 50
    out = clip(text, 20)
    assert out.startswith("a" * 10) and out.endswith("z" * 10) and "MIDDLE" not in out
    assert "cut" in out and clip("short", 20) == "short"


def test_tail_lines_keeps_the_end():
    text = "\n".join(f"line {i}" for i in range(20))
    out = tail_lines(text, 3)
    assert out.endswith("line 17\nline 18\nline 19") and "17 lines cut" in out


def test_format_feedback_shows_first_failure_truncated():
    fb = format_feedback(_result(), max_chars=40)
    assert fb.startswith("Verdict: wrong_answer (1/3 tests passed)")
    assert "Test 2: wrong_answer" in fb and "Test 1:" not in fb
    assert "Expected output:\n7" in fb and "Actual output:\n8" in fb
    assert "x" * 1000 not in fb and "characters cut" in fb
    assert format_feedback(_result(), max_chars=40) == fb  # deterministic


def test_format_feedback_limits_failures_and_handles_compile_errors():
    many = ExecutionResult(Verdict.RUNTIME_ERROR, 0, 4, 0.0, [
        TestResult(Verdict.RUNTIME_ERROR, f"in{i}", "out", "", f"Traceback\nValueError: {i}")
        for i in range(4)])
    fb = format_feedback(many, max_failures=2)
    assert "Test 1" in fb and "Test 2" in fb and "Test 3" not in fb
    assert "(2 more failing tests not shown)" in fb and "ValueError: 0" in fb
    ce = ExecutionResult(Verdict.COMPILE_ERROR, 0, 2, 0.0, [
        TestResult(Verdict.COMPILE_ERROR, "in", "out", "", "SyntaxError: invalid syntax")])
    fb = format_feedback(ce)
    assert "does not compile" in fb and "SyntaxError: invalid syntax" in fb
    ok = ExecutionResult(Verdict.PASSED, 2, 2, 1.0, [TestResult(Verdict.PASSED)] * 2)
    assert format_feedback(ok) == "Verdict: passed (2/2 tests passed)"

"""Problem loaders: every published format written small in tmp_path, mapped field by field."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging
import os
import pickle
import zlib
from pathlib import Path

import pytest

from mars2_env.datasets import SafeUnpickler, decode_private_tests, detect_format
from mars2_env.problems import (
    Problem,
    ProblemFormatError,
    TestCase,
    builtin_names,
    load_problems,
    save_problems,
)


def write_jsonl(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def lcb_compress(tests: list[dict]) -> str:
    """How LiveCodeBench stores private tests: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode("ascii")


def compress_pickle_bytes(payload: bytes) -> str:
    return base64.b64encode(zlib.compress(payload)).decode("ascii")


# ------------------------------------------------------------------ canonical


def sample_problems() -> list[Problem]:
    return [
        Problem(id="sum", title="Sum", statement="Add two numbers.", kind="stdin",
                public_tests=[TestCase("1 2\n", "3\n")],
                private_tests=[TestCase("5 5\n", "10\n"), TestCase("-1 1\n", "0\n")],
                source="demo", difficulty="easy", metadata={"contest_date": "2025-02-01"}),
        Problem(id="two-sum", statement="Find indices.", kind="functional", entry_point="twoSum",
                starter_code="class Solution:\n    def twoSum(self, nums, target):\n",
                public_tests=[TestCase("[2, 7, 11, 15]\n9", "[0, 1]")], time_limit_s=2.5,
                memory_limit_mb=256, metadata={"nested": {"a": [1, 2.5, None, "ü"]}}),
        Problem(id="HumanEval/x", statement="def f(x):\n", kind="assert", entry_point="f",
                private_tests=[TestCase("assert f(1) == 2\n")],
                metadata={"reference_solution": "def f(x):\n    return x + 1\n"}),
    ]


@pytest.mark.parametrize("name", ["round.jsonl", "round.jsonl.gz"])
def test_canonical_round_trip_is_exact(tmp_path, name):
    problems = sample_problems()
    path = save_problems(problems, tmp_path / "sub" / name)
    loaded = load_problems(path)
    assert loaded == problems
    assert [p.to_dict() for p in loaded] == [p.to_dict() for p in problems]
    assert load_problems(str(path), format="canonical") == problems
    # saving what was loaded gives the same bytes (gzip header carries no timestamp)
    again = save_problems(loaded, tmp_path / ("again-" + name))
    assert again.read_bytes() == path.read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))


def test_canonical_file_is_design_md_jsonl(tmp_path):
    path = save_problems(sample_problems()[:1], tmp_path / "p.jsonl")
    row = json.loads(path.read_text().splitlines()[0])
    assert row == {"id": "sum", "statement": "Add two numbers.", "kind": "stdin", "title": "Sum",
                   "entry_point": None, "starter_code": "",
                   "public_tests": [{"input": "1 2\n", "output": "3\n"}],
                   "private_tests": [{"input": "5 5\n", "output": "10\n"},
                                     {"input": "-1 1\n", "output": "0\n"}],
                   "time_limit_s": 6.0, "memory_limit_mb": 1024, "source": "demo",
                   "difficulty": "easy", "metadata": {"contest_date": "2025-02-01"},
                   "harness": "lcb"}


def test_lone_surrogates_and_non_ascii_survive_a_save(tmp_path):
    """A JSON source may hold a lone surrogate ("\\ud800" decodes to one); UTF-8 cannot: that
    row is written with JSON's escapes, others keep their characters as they are."""
    src = tmp_path / "src.jsonl"
    src.write_text(json.dumps({"id": "bad", "statement": "x\ud800y", "kind": "stdin",
                               "private_tests": [{"input": "1\n", "output": "\udcff\n"}]}) + "\n"
                   + json.dumps({"id": "ok", "statement": "Grüße, 世界", "kind": "stdin",
                                 "private_tests": [{"input": "", "output": "é\n"}]}) + "\n")
    problems = load_problems(str(src))
    assert problems[0].statement == "x\ud800y"
    path = save_problems(problems, tmp_path / "out.jsonl")
    assert load_problems(path) == problems
    lines = path.read_bytes().decode("utf-8").splitlines()
    assert "\\ud800" in lines[0] and "Grüße, 世界" in lines[1]


def test_save_refuses_what_json_would_change(tmp_path):
    p = Problem(id="t", statement="s", metadata={"pair": (1, 2)})
    with pytest.raises(ValueError, match="'t'"):
        save_problems([p], tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="duplicate problem id 'sum'"):
        save_problems([sample_problems()[0]] * 2, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


CANON = {"id": "a", "statement": "s", "public_tests": [{"input": "1\n", "output": "1\n"}]}


@pytest.mark.parametrize("rows, line, field, fragment", [
    (['{"id": "a", "statement": "s"', None], 1, None, "invalid JSON"),
    ([CANON, {"id": "b"}], 2, "statement", "missing required field"),
    ([{**CANON, "time_limit_s": "6"}], 1, "time_limit_s", "must be a number"),
    ([{**CANON, "kind": "interactive"}], 1, "kind", "kind must be one of"),
    ([{**CANON, "kind": "functional"}], 1, "entry_point", "needs entry_point"),
    ([{**CANON, "public_tests": [{"input": 3, "output": "3"}]}], 1, "public_tests", "strings"),
    ([{**CANON, "statment": "typo"}], 1, "statment", "unknown fields"),
    ([CANON, "", {**CANON, "id": "b"}, {**CANON}], 4, "id",
     "duplicate id 'a' (first seen at line 1)"),
    ([CANON, [1, 2]], 2, None, "expected a JSON object"),
])
def test_canonical_bad_rows_name_file_line_field(tmp_path, rows, line, field, fragment):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in rows if r is not None))
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    msg = str(err.value)
    assert str(path) in msg and f"line {line}" in msg and fragment in msg
    assert err.value.line == line and err.value.field_name == field
    if field is not None:
        assert f"field {field!r}" in msg


def test_json_list_errors_name_the_index(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([CANON, {**CANON, "id": "b", "memory_limit_mb": -1}]))
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    assert err.value.index == 1 and err.value.field_name == "memory_limit_mb"
    assert "rows.json, index 1, field 'memory_limit_mb'" in str(err.value)
    path.write_text('[{"id": "a",\n "statement": }]')
    with pytest.raises(ProblemFormatError, match=r"rows.json, line 2: invalid JSON"):
        load_problems(path)


def test_json_file_holding_json_lines_and_empty_files(tmp_path):
    path = write_jsonl(tmp_path / "export.json", [CANON, {**CANON, "id": "b"}])
    assert [p.id for p in load_problems(path)] == ["a", "b"]
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert load_problems(tmp_path / "empty.jsonl") == []


def test_missing_file_and_bad_gzip(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_problems(tmp_path / "nope.jsonl")
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ProblemFormatError, match="broken.jsonl.gz: not a readable gzip file"):
        load_problems(tmp_path / "broken.jsonl.gz")


def test_builtin_names_and_unknown_builtin():
    with pytest.raises(ValueError) as err:
        load_problems("builtin:no-such-set")
    assert "unknown builtin problem set 'no-such-set'; available:" in str(err.value)
    for name in builtin_names():
        assert f"builtin:{name}" in str(err.value)
        problems = load_problems(f"builtin:{name}")
        assert problems and len({p.id for p in problems}) == len(problems)


# ------------------------------------------------------------------ LiveCodeBench


def lcb_row(qid: str, date: str = "2025-03-10T00:00:00", **over) -> dict:
    private = [{"input": "5 5\n", "output": "10\n", "testtype": "stdin"},
               {"input": "0 0\n", "output": "0\n", "testtype": "stdin"}]
    row = {"question_title": f"Title {qid}", "question_content": f"Add numbers ({qid}).",
           "platform": "atcoder", "question_id": qid, "contest_id": "abc390",
           "contest_date": date, "starter_code": "", "difficulty": "easy",
           "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n",
                                             "testtype": "stdin"}]),
           "private_test_cases": lcb_compress(private), "metadata": "{}"}
    row.update(over)
    return row


def test_livecodebench_stdin_row_with_compressed_private_tests(tmp_path):
    path = write_jsonl(tmp_path / "lcb.jsonl", [lcb_row("abc390_a")])
    [p] = load_problems(path)
    assert p == Problem(
        id="abc390_a", title="Title abc390_a", statement="Add numbers (abc390_a).", kind="stdin",
        entry_point=None, starter_code="", public_tests=[TestCase("1 2\n", "3\n")],
        private_tests=[TestCase("5 5\n", "10\n"), TestCase("0 0\n", "0\n")],
        source="livecodebench", difficulty="easy",
        metadata={"platform": "atcoder", "contest_id": "abc390",
                  "contest_date": "2025-03-10T00:00:00", "dataset_metadata": {}})
    assert detect_format(lcb_row("x")).name == "livecodebench"


def test_livecodebench_functional_row_in_a_json_list(tmp_path):
    starter = "class Solution:\n    def maximumSum(self, nums: List[int]) -> int:\n        "
    public = [{"input": "[18, 43, 36]", "output": "54", "testtype": "functional"}]
    private = [{"input": "[10, 12]\n3", "output": "-1", "testtype": "functional"}]
    row = lcb_row("2473", platform="leetcode", contest_id="weekly-contest-305",
                  difficulty="medium", starter_code=starter, public_test_cases=json.dumps(public),
                  private_test_cases=json.dumps(private),
                  metadata=json.dumps({"func_name": "maximumSum"}))
    path = tmp_path / "lcb.json"
    path.write_text(json.dumps([row]))
    [p] = load_problems(path)
    assert (p.kind, p.entry_point, p.starter_code, p.difficulty) == (
        "functional", "maximumSum", starter, "medium")
    assert p.public_tests == [TestCase("[18, 43, 36]", "54")]
    assert p.private_tests == [TestCase("[10, 12]\n3", "-1")]
    assert p.metadata == {"platform": "leetcode", "contest_id": "weekly-contest-305",
                          "contest_date": "2025-03-10T00:00:00",
                          "dataset_metadata": {"func_name": "maximumSum"}}
    # the same private tests compressed decode to the same cases
    assert decode_private_tests(lcb_compress(private)) == private


def test_livecodebench_date_platform_difficulty_filters(tmp_path, caplog):
    rows = [lcb_row("before", "2024-12-31T23:59:59"), lcb_row("first", "2025-01-01T00:00:00"),
            lcb_row("mid", "2025-03-01T12:00:00", platform="leetcode", difficulty="hard"),
            lcb_row("last", "2025-05-31T23:00:00"), lcb_row("after", "2025-06-01T00:00:00")]
    # a row outside the window is not decoded further than the filter fields
    rows[4]["private_test_cases"] = "@@not base64@@"
    path = write_jsonl(tmp_path / "lcb.jsonl", rows)
    with caplog.at_level(logging.INFO, logger="mars2_env.problems"):
        got = load_problems(path, start_date="2025-01-01", end_date="2025-05-31")
    assert [p.id for p in got] == ["first", "mid", "last"]
    assert "2 removed by filters" in caplog.text
    got = load_problems(path, start_date=dt.date(2025, 3, 1), end_date=dt.date(2025, 3, 1))
    assert [p.id for p in got] == ["mid"]
    assert [p.id for p in load_problems(path, end_date="2024-12-31")] == ["before"]
    got = load_problems(path, end_date="2025-05-31", platform="LeetCode")
    assert [p.id for p in got] == ["mid"]
    assert [p.id for p in load_problems(path, end_date="2025-05-31",
                                        difficulty=["easy"], limit=2)] == ["before", "first"]
    with pytest.raises(ProblemFormatError, match="line 5, field 'private_test_cases'"):
        load_problems(path)  # unfiltered, the broken row is decoded and refused
    with pytest.raises(ValueError, match="start_date 2025-06-01 is after end_date 2025-05-31"):
        load_problems(path, start_date="2025-06-01", end_date="2025-05-31")
    with pytest.raises(ValueError, match="start_date must be 'YYYY-MM-DD'"):
        load_problems(path, start_date="January")


def test_date_filter_on_problems_without_dates_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [CANON])
    with pytest.raises(ProblemFormatError, match="line 1, field 'contest_date': a date filter"):
        load_problems(path, start_date="2025-01-01")
    with pytest.raises(ProblemFormatError, match="field 'platform'"):
        load_problems(path, platform="atcoder")


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Evil(marker))
    # positive control: an ordinary unpickler really would run it
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Evil(control)))
    assert control.exists()

    path = write_jsonl(tmp_path / "lcb.jsonl",
                       [lcb_row("ok"),
                        lcb_row("evil", private_test_cases=compress_pickle_bytes(payload))])
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    assert err.value.line == 2 and err.value.field_name == "private_test_cases"
    assert "refused to load global" in str(err.value) and "system" in str(err.value)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        import io
        SafeUnpickler(io.BytesIO(payload)).load()
    assert not marker.exists()


@pytest.mark.parametrize("private, fragment", [
    (compress_pickle_bytes(pickle.dumps([1, 2])), "pickle held 'list'"),
    (compress_pickle_bytes(pickle.dumps(dt.date(2025, 1, 1))), "refused to load global"),
    (compress_pickle_bytes(b"\x80\x04not a pickle"), "refused or invalid pickle"),
    (base64.b64encode(b"not zlib").decode(), "neither a JSON list nor"),
    (compress_pickle_bytes(pickle.dumps('{"a": 1}')), "decoded tests must be a JSON list"),
    ("[{\"input\": 1}", "invalid JSON"),
    (17, "must be a string"),
])
def test_bad_private_tests_name_the_field(tmp_path, private, fragment):
    path = write_jsonl(tmp_path / "lcb.jsonl", [lcb_row("x", private_test_cases=private)])
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    assert err.value.field_name == "private_test_cases" and err.value.line == 1
    assert fragment in str(err.value)


@pytest.mark.parametrize("over, field, fragment", [
    ({"question_content": None}, "question_content", "missing required field"),
    ({"public_test_cases": 5}, "public_test_cases", "must be a JSON list"),
    ({"public_test_cases": "[{"}, "public_test_cases", "invalid JSON text"),
    ({"public_test_cases": json.dumps([{"input": "1", "output": "1", "testtype": "x"}])},
     "public_test_cases", "testtype must be"),
    ({"contest_date": "not a date"}, "contest_date", "not an ISO date"),
    ({"question_title": 3}, "question_title", "must be a string"),
    ({"metadata": "[1]"}, "metadata", "must be a JSON object"),
    ({"public_test_cases": json.dumps([{"input": "1", "output": "2", "testtype": "functional"}])},
     "private_test_cases", "tests mix kinds"),
])
def test_livecodebench_bad_rows(tmp_path, over, field, fragment):
    row = lcb_row("x", **over)
    if over.get("question_content", 0) is None:
        del row["question_content"]
        row["question_title"] = "still livecodebench"
    path = write_jsonl(tmp_path / "lcb.jsonl", [lcb_row("ok"), row])
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path, format="lcb")
    assert (err.value.line, err.value.field_name) == (2, field)
    assert fragment in str(err.value) and "lcb.jsonl" in str(err.value)


def test_functional_livecodebench_without_func_name(tmp_path):
    tests = json.dumps([{"input": "1", "output": "2", "testtype": "functional"}])
    path = write_jsonl(tmp_path / "lcb.jsonl", [lcb_row("f", public_test_cases=tests,
                                                        private_test_cases=tests)])
    with pytest.raises(ProblemFormatError, match="line 1, field 'metadata'.*func_name"):
        load_problems(path)


# ------------------------------------------------------------------ DeepCoder


def test_deepcoder_per_source_shapes(tmp_path):
    rows = [
        {"problem": "taco stdin", "starter_code": "",
         "tests": json.dumps({"inputs": ["1\n", "2\n", "3\n"],
                              "outputs": ["1\n", ["4", "4"], "9\n"]}),
         "metadata": json.dumps({"difficulty": "EASY"})},
        {"problem": "taco call", "starter_code": "def add(a, b):\n",
         "tests": json.dumps({"fn_name": "add", "inputs": [[1, 2], [[1], "x"]],
                              "outputs": [[3], [None]]}),
         "metadata": {}},
        {"problem": "prime stdin", "tests": json.dumps([
            {"input": "a\n", "output": "A\n", "type": "stdin_stdout"},
            {"input": "b\n", "output": "B\n", "type": "stdin_stdout"}]), "metadata": "{}"},
        {"problem": "prime call", "tests": json.dumps([
            {"input": [3, [1, 2]], "output": [True], "type": "function_call"},
            {"input": "[\"s\"]", "output": "S", "type": "function_call", "fn_name": "up"}]),
         "metadata": json.dumps({"fn_name": "up"})},
        {"problem": "lcbv5", "starter_code": "class Solution:\n",
         "tests": json.dumps([{"input": "[1, 2]\n3", "output": "true", "testtype": "functional"}]),
         "metadata": json.dumps({"func_name": "check"})},
        {"problem": "codeforces", "tests": json.dumps([
            {"input": "5\n", "output": "25\n", "testtype": "stdin"},
            {"input": "6\n", "output": "36\n"}]), "metadata": {"difficulty": "1200"},
         "id": "cf-1"},
    ]
    path = write_jsonl(tmp_path / "deepcoder_train.jsonl", rows)
    ps = load_problems(path)
    assert [p.id for p in ps] == ["deepcoder_train-0", "deepcoder_train-1", "deepcoder_train-2",
                                  "deepcoder_train-3", "deepcoder_train-4", "cf-1"]
    assert {p.source for p in ps} == {"deepcoder"}
    taco, call, prime, pcall, lcb, cf = ps
    assert (taco.kind, taco.statement, taco.difficulty) == ("stdin", "taco stdin", "EASY")
    assert taco.public_tests == [TestCase("1\n", "1\n")]
    assert taco.private_tests == [TestCase("2\n", "4\n4"), TestCase("3\n", "9\n")]
    assert (call.kind, call.entry_point) == ("functional", "add")
    assert call.starter_code == "def add(a, b):\n"
    assert call.tests == [TestCase("1\n2", "[3]"), TestCase('[1]\n"x"', "[null]")]
    assert prime.kind == "stdin" and prime.tests == [TestCase("a\n", "A\n"), TestCase("b\n", "B\n")]
    assert (pcall.kind, pcall.entry_point) == ("functional", "up")
    assert pcall.tests == [TestCase("3\n[1, 2]", "[true]"), TestCase('"s"', '"S"')]
    assert (lcb.kind, lcb.entry_point) == ("functional", "check")
    assert lcb.public_tests == [TestCase("[1, 2]\n3", "true")] and lcb.private_tests == []
    assert (cf.kind, cf.difficulty) == ("stdin", "1200")
    assert cf.metadata == {"dataset_metadata": {"difficulty": "1200"}, "shape": "lcbv5"}
    assert [p.harness for p in ps] == ["taco", "taco", "rllm", "taco", "rllm", "rllm"]
    assert [p.metadata["shape"] for p in ps] == ["taco stdin", "taco call-based", "primeintellect",
                                                "primeintellect", "lcbv5", "lcbv5"]
    assert cf.public_tests == [TestCase("5\n", "25\n")]
    assert cf.private_tests == [TestCase("6\n", "36\n")]
    # n_public moves the split
    taco2 = load_problems(path, n_public=2, limit=1)[0]
    assert len(taco2.public_tests) == 2 and len(taco2.private_tests) == 1


@pytest.mark.parametrize("tests, metadata, field, fragment", [
    ({"fn_name": "f", "inputs": [1], "outputs": [1]}, {}, "tests", "list of arguments"),
    ({"inputs": ["1"], "outputs": []}, {}, "tests", "equal length"),
    ([{"input": "1", "output": "1", "type": "stdin_stdout"},
      {"input": [1], "output": 1, "type": "function_call"}], {"fn_name": "f"}, "tests",
     "mix kinds"),
    ([{"input": [1], "output": 1, "type": "function_call"}], {}, "metadata", "function name"),
    ([{"input": "1", "output": "1", "type": "interactive"}], {}, "tests", "unknown test type"),
    ([], {}, "tests", "no tests"),
    ("{broken", {}, "tests", "invalid JSON text"),
])
def test_deepcoder_bad_rows(tmp_path, tests, metadata, field, fragment):
    good = {"problem": "p", "tests": json.dumps([{"input": "1", "output": "1"}])}
    bad = {"problem": "p", "tests": tests if isinstance(tests, str) else json.dumps(tests),
           "metadata": json.dumps(metadata)}
    path = write_jsonl(tmp_path / "dc.jsonl", [good, bad])
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    assert (err.value.line, err.value.field_name) == (2, field)
    assert fragment in str(err.value)


# ------------------------------------------------------------------ HumanEval / MBPP


HE_ROW = {
    "task_id": "HumanEval/0",
    "prompt": 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n',
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n",
}


def test_humaneval_jsonl_gz(tmp_path):
    path = write_jsonl(tmp_path / "HumanEval.jsonl.gz",
                       [HE_ROW, {**HE_ROW, "task_id": "HumanEval/1"}], gz=True)
    p, q = load_problems(path)
    assert q.id == "HumanEval/1"
    test = TestCase(HE_ROW["test"] + "\ncheck(add)\n", "")
    assert p == Problem(
        id="HumanEval/0", title="add", statement=HE_ROW["prompt"], kind="assert",
        entry_point="add", starter_code=HE_ROW["prompt"], public_tests=[test],
        private_tests=[test], source="humaneval", harness="humaneval", time_limit_s=3.0,
        metadata={"reference_solution": HE_ROW["prompt"] + HE_ROW["canonical_solution"]})
    # the reference program passes the test when run the way the assert kind runs it
    ns: dict = {}
    exec(p.metadata["reference_solution"], ns)  # noqa: S102 -- trusted test data
    exec(p.tests[0].input, ns)  # noqa: S102 -- trusted test data
    with pytest.raises(ProblemFormatError, match="line 1, field 'canonical_solution'"):
        load_problems(write_jsonl(tmp_path / "he.jsonl", [{k: v for k, v in HE_ROW.items()
                                                           if k != "canonical_solution"}]),
                      format="humaneval")


MBPP_ROW = {
    "task_id": 2,
    "text": "Write a function to find the shared elements from the given two lists.",
    "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
    "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
                  "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))",
                  "assert set(similar_elements((11, 12, 14, 13),(17, 15, 14, 13)))"
                  " == set((13, 14))"],
    "test_setup_code": "",
    "challenge_test_list": ["assert similar_elements((1,), (1,)) == (1,)"],
}


def test_mbpp_rows(tmp_path):
    row2 = {"task_id": 7, "text": "Area.", "code": "import math\ndef area(r):\n    return 2*r\n",
            "test_list": ["assert math.isclose(area(2), 4)"], "test_setup_code": "import math"}
    path = write_jsonl(tmp_path / "mbpp.jsonl", [MBPP_ROW, row2])
    p, q = load_problems(path)
    t = MBPP_ROW["test_list"]
    assert p == Problem(
        id="MBPP/2", title="similar_elements",
        statement=MBPP_ROW["text"] + "\n\nYour code should pass this test:\n" + t[0] + "\n",
        kind="assert", entry_point="similar_elements",
        public_tests=[TestCase(t[0] + "\n")],
        private_tests=[TestCase(t[1] + "\n"), TestCase(t[2] + "\n")],
        source="mbpp", harness="mbpp",
        metadata={"reference_solution": MBPP_ROW["code"],
                  "challenge_test_list": MBPP_ROW["challenge_test_list"]})
    assert q.entry_point == "area"
    assert q.public_tests == [TestCase("import math\nassert math.isclose(area(2), 4)\n")]
    for prob in (p, q):  # every test passes against the reference
        for test in prob.tests:
            ns: dict = {}
            exec(prob.metadata["reference_solution"], ns)  # noqa: S102 -- trusted test data
            exec(test.input, ns)  # noqa: S102 -- trusted test data


@pytest.mark.parametrize("over, field", [
    ({"test_list": "assert f(1) == 1"}, "test_list"),
    ({"test_list": []}, "test_list"),
    ({"code": "def broken(:\n"}, "code"),
    ({"test_setup_code": 3}, "test_setup_code"),
])
def test_mbpp_bad_rows(tmp_path, over, field):
    path = write_jsonl(tmp_path / "mbpp.jsonl", [MBPP_ROW, {**MBPP_ROW, "task_id": 3, **over}])
    with pytest.raises(ProblemFormatError) as err:
        load_problems(path)
    assert (err.value.line, err.value.field_name) == (2, field)


# ------------------------------------------------------------------ detection and options


def test_format_detection_and_forcing(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(ProblemFormatError, match=r"line 1: cannot tell the format.*'answer'"):
        load_problems(path)
    with pytest.raises(ValueError, match="unknown problem format 'apps'"):
        load_problems(path, format="apps")
    lcb = write_jsonl(tmp_path / "lcb.jsonl", [lcb_row("a")])
    with pytest.raises(ProblemFormatError, match="line 1, field 'task_id'"):
        load_problems(lcb, format="mbpp")
    # the first row decides the format for the whole file
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [lcb_row("a"), CANON])
    with pytest.raises(ProblemFormatError, match="line 2, field 'question_id'"):
        load_problems(mixed)


def test_argument_validation(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [CANON])
    with pytest.raises(ValueError, match="limit"):
        load_problems(path, limit=-1)
    with pytest.raises(ValueError, match="n_public"):
        load_problems(path, n_public=-2)
    with pytest.raises(ValueError, match="difficulty"):
        load_problems(path, difficulty=[])
    assert load_problems(path, limit=0) == []

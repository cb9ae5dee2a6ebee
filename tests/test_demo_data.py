"""The bundled `builtin:demo` set: well-formed canonical JSONL, and a builder that reproduces it.

Read with plain `json` on purpose, so a loader bug cannot hide a data bug (one test also goes
through `load_problems`). Judging with the real executor is the executor's tests' job.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "mars2_env" / "data"
DEMO = DATA / "demo.jsonl"
BUILDER = DATA / "build_demo.py"
FIELDS = ["id", "title", "statement", "kind", "entry_point", "starter_code", "public_tests",
          "private_tests", "time_limit_s", "memory_limit_mb", "source", "difficulty", "metadata"]
WRONG_VERDICTS = {"wrong_answer", "runtime_error", "time_limit", "compile_error"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    lines = DEMO.read_text(encoding="utf-8").splitlines()
    parsed = []
    for number, line in enumerate(lines, start=1):
        row = json.loads(line)
        assert isinstance(row, dict), f"line {number} is not a JSON object"
        parsed.append(row)
    return parsed


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_demo", BUILDER)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_demo"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("build_demo", None)


def test_rows_have_exactly_the_canonical_fields(rows):
    for row in rows:
        assert list(row) == FIELDS, row["id"]
        for key in ("id", "title", "statement", "starter_code", "source", "difficulty"):
            assert isinstance(row[key], str), (row["id"], key)
            assert row[key] or key == "starter_code", (row["id"], key)
        assert row["source"] == "mars2-demo"
        assert row["memory_limit_mb"] == 256
        assert row["time_limit_s"] in (2.0, 4.0)


def test_thirty_problems_ten_per_kind_and_the_difficulty_spread(rows):
    assert len(rows) == 30
    assert Counter(row["kind"] for row in rows) == {"stdin": 10, "functional": 10, "assert": 10}
    assert Counter(row["difficulty"] for row in rows) == {"easy": 12, "medium": 12, "hard": 6}
    assert all(row["time_limit_s"] == 2.0 for row in rows if row["difficulty"] != "hard")


def test_ids_are_unique_and_follow_the_kind(rows):
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == len(ids)
    for row in rows:
        kind, number = row["id"].split("-")[1:]
        assert kind == row["kind"] and len(number) == 3 and number.isdigit()


def test_every_problem_has_public_and_private_tests_of_its_kind(rows):
    for row in rows:
        assert 2 <= len(row["public_tests"]) <= 3, row["id"]
        assert 4 <= len(row["private_tests"]) <= 8, row["id"]
        for test in row["public_tests"] + row["private_tests"]:
            assert set(test) == {"input", "output"}
            assert isinstance(test["input"], str) and isinstance(test["output"], str)
            if row["kind"] == "stdin":
                assert test["input"].endswith("\n")
            elif row["kind"] == "functional":
                [json.loads(line) for line in test["input"].split("\n")]
                json.loads(test["output"])
            else:
                assert test["output"] == ""
                assert test["input"].startswith("assert ")
                assert row["entry_point"] + "(" in test["input"]
                ast.parse(test["input"])
        # the public tests are the statement's examples
        first = row["public_tests"][0]["input"]
        shown = first if row["kind"] != "functional" else repr(json.loads(first.split("\n")[0]))
        assert shown.strip() in row["statement"], row["id"]


def test_every_problem_has_a_reference_and_tagged_wrong_solutions(rows):
    tags = Counter()
    for row in rows:
        meta = row["metadata"]
        assert set(meta) == {"reference_solution", "wrong_solutions", "wrong_verdicts"}
        ast.parse(meta["reference_solution"])
        assert len(meta["wrong_solutions"]) >= 1
        assert len(meta["wrong_verdicts"]) == len(meta["wrong_solutions"])
        assert set(meta["wrong_verdicts"]) <= WRONG_VERDICTS
        assert meta["reference_solution"] not in meta["wrong_solutions"]
        tags.update(meta["wrong_verdicts"])
    assert set(tags) == WRONG_VERDICTS


def test_entry_points_are_defined_by_reference_and_starter_code(rows):
    for row in rows:
        if row["kind"] == "stdin":
            assert row["entry_point"] is None and row["starter_code"] == ""
            continue
        name = row["entry_point"]
        assert isinstance(name, str) and name.isidentifier()
        tree = ast.parse(row["metadata"]["reference_solution"])
        if row["starter_code"].startswith("class Solution:"):
            assert row["kind"] == "functional"
            classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Solution"]
            scope = classes[0].body
            assert f"    def {name}(self, " in row["starter_code"]
        else:
            scope = tree.body
            assert row["starter_code"].startswith(f"def {name}(")
        assert any(isinstance(n, ast.FunctionDef) and n.name == name for n in scope), row["id"]
    methods = [r for r in rows if r["starter_code"].startswith("class Solution:")]
    assert len(methods) == 6


def test_loads_through_load_problems(rows):
    from mars2_env.problems import load_problems

    problems = load_problems("builtin:demo")
    assert [p.id for p in problems] == [row["id"] for row in rows]
    assert [len(p.tests) for p in problems] == [
        len(row["public_tests"]) + len(row["private_tests"]) for row in rows]


def test_lcb_line_comparison(builder):
    match = builder.stdin_outputs_match
    assert match("3\n", "3")
    assert match("  1 2  \n\n", "1 2\n")
    assert match("1.0 2\n", "1 2.00\n")
    assert not match("Even\n", "even\n")
    assert not match("1\n2\n", "1\n")
    assert not match("1.5\n", "1.50001\n")


def test_verify_rejects_a_passing_wrong_solution_and_a_failing_reference(rows, builder):
    row = json.loads(json.dumps(next(r for r in rows if r["id"] == "demo-stdin-003")))
    reference, wrong = row["metadata"]["reference_solution"], row["metadata"]["wrong_solutions"][0]
    row["metadata"]["reference_solution"] = wrong
    row["metadata"]["wrong_solutions"] = [reference]
    with ThreadPoolExecutor(2) as pool:
        problems = builder.verify([row], pool)
    assert any("reference gets wrong_answer on test 2" in p for p in problems), problems
    assert any("wrong solution 0 passes every test" in p for p in problems), problems


def test_builder_writes_nothing_when_verification_fails(tmp_path, builder, monkeypatch):
    def failing_build(specs, workers):
        raise builder.BuildError("verification failed: example")

    monkeypatch.setattr(builder, "build", failing_build)
    out = tmp_path / "demo.jsonl"
    assert builder.main(["--out", str(out)]) == 1
    assert not out.exists()


def test_rerunning_the_builder_reproduces_the_file_byte_for_byte(tmp_path):
    out = tmp_path / "demo.jsonl"
    proc = subprocess.run([sys.executable, str(BUILDER), "--out", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh, shipped = out.read_bytes().splitlines(), DEMO.read_bytes().splitlines()
    differing = [i + 1 for i, (a, b) in enumerate(zip(fresh, shipped, strict=False)) if a != b]
    assert len(fresh) == len(shipped) and not differing, (
        f"demo.jsonl is stale or the build is not deterministic; lines differ: {differing[:5]}")
    assert out.read_bytes() == DEMO.read_bytes()

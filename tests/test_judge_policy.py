"""Problems with too few tests for the reward / judge split never stop a run (envcore.judge_plan):
single-test rows are judged on their public run (trees marked judge="public"), a row with no
public tests gets reward 0 and is judged on its private tests; one warning with the counts, and
the metrics say how many trees were judged which way. Plus `mars2 data stats | check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mars2_cli.main import main
from mars2_cli.summary import judged, read_trees, run_metrics
from mars2_env.aec import raw_env
from mars2_env.envcore import (
    NO_REWARD_TESTS_FEEDBACK,
    JudgePolicyWarning,
    SearchConfig,
    judge_plan,
)
from mars2_env.execution import Executor
from mars2_env.metrics import judge_side, pass_at_n
from mars2_env.problems import Problem, TestCase, load_problems
from mars2_env.tree import SearchTree
from mars2_env.vector import BatchedSearch

REAL = Path(__file__).parent / "data" / "real"
MIN_MAX = ("for _ in range(int(input())):\n    x, y = map(int, input().split())\n"
           "    print(min(x, y), max(x, y))\n")
SUM = "print(sum(map(int, input().split())))\n"


def fenced(code: str) -> str:
    return f"```python\n{code}```\n"


def no_public_row_file(tmp_path: Path) -> Path:
    """A LiveCodeBench row shaped like the real abc350_c (``public_test_cases: "[]"``); its
    statement and tests are written here, the real row is not available offline."""
    row = {"question_id": "no_public_1", "question_title": "Sum", "question_content": "Print a+b.",
           "platform": "atcoder", "contest_id": "x", "contest_date": "2024-04-20T00:00:00",
           "starter_code": "", "difficulty": "easy", "public_test_cases": "[]",
           "private_test_cases": json.dumps([
               {"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
               {"input": "5 7\n", "output": "12\n", "testtype": "stdin"}]),
           "metadata": "{}"}
    path = tmp_path / "lcb_no_public.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="module")
def ex():
    with Executor(max_workers=2) as executor:
        yield executor


def test_judge_plan_rules():
    one = Problem(id="one", statement="", public_tests=[TestCase("1\n", "1\n")])
    no_public = Problem(id="np", statement="", private_tests=[TestCase("1\n", "1\n")] * 2)
    both = Problem(id="b", statement="", public_tests=[TestCase("1\n", "1\n")],
                   private_tests=[TestCase("2\n", "2\n")])
    cfg = SearchConfig(tests="public", judge_tests="private")
    plan = judge_plan(one, cfg)
    assert (plan.reward_tests, plan.judge_tests, plan.judged_on, plan.fallback) == (
        one.public_tests, None, "public", True)
    plan = judge_plan(no_public, cfg)
    assert (plan.reward_tests, plan.judge_tests, plan.judged_on) == ([], no_public.tests, "private")
    plan = judge_plan(both, cfg)
    assert (plan.judge_tests, plan.judged_on) == (both.private_tests, "private")
    assert judge_plan(both, SearchConfig(judge_tests=None)).judged_on is None
    assert judge_plan(one, SearchConfig(tests="all", judge_tests="all")).judged_on == "all"
    given = judge_plan(both, SearchConfig(judge_tests=[TestCase("3\n", "3\n")]))
    assert given.judged_on == "given" and given.judge_tests == [TestCase("3\n", "3\n")]
    with pytest.raises(ValueError, match="no tests at all"):
        judge_plan(Problem(id="e", statement=""), cfg)


def test_single_test_rows_are_judged_on_their_public_run_with_one_warning(ex):
    cf0, cf1 = load_problems(REAL / "rllm_codeforces.sample.json")  # 1 test; 5 tests
    answers = {cf0.statement: fenced(MIN_MAX), cf1.statement: fenced("print(0)\n")}
    with pytest.warns(JudgePolicyWarning, match=r"1 of 2 problems have no private tests") as w:
        search = BatchedSearch([cf0, cf1], ["coder_0"], budget=2, executor=ex, seed=0)
    assert len([x for x in w if issubclass(x.category, JudgePolicyWarning)]) == 1
    finished = search.run(lambda agent, obs: [answers[o["statement"]] for o in obs])
    trees = {f.problem_id: f.tree for f in finished}
    t0, t1 = trees[cf0.id], trees[cf1.id]
    assert (t0.metadata["judge"], t1.metadata["judge"]) == ("public", "private")
    assert all(n.private is None and n.public["verdict"] == "passed" for n in t0.nodes())
    assert all(n.private["verdict"] == "wrong_answer" for n in t1.nodes())
    assert [f.solved for f in sorted(finished, key=lambda f: f.index)] == [True, False]
    assert (judge_side(t0), judge_side(t1)) == ("public", "private")
    assert (pass_at_n(t0), pass_at_n(t1)) == (True, False)
    m = run_metrics([t0, t1], judge="private")  # used to raise "node 1 has no private-test result"
    assert m["judged_on"] == {"public": 1, "private": 1} and m["no_reward_tests"] == 0
    assert (m["pass_at_n"], m["pass_at_1_mcts"]) == (0.5, 0.5)
    assert [r["judged_on"] for r in m["per_tree"]] == ["public", "private"]


def test_no_public_tests_rewards_zero_and_is_judged_on_private(tmp_path, ex):
    problem, = load_problems(no_public_row_file(tmp_path))
    assert (problem.public_tests, len(problem.private_tests)) == ([], 2)
    with pytest.warns(JudgePolicyWarning, match=r"1 of 1 problems have no public tests"):
        search = BatchedSearch([problem], ["coder_0"], budget=3, executor=ex, seed=0)
    answers = iter([fenced(SUM), fenced("print(0)\n"), fenced(SUM)])
    ft, = search.run(lambda agent, obs: [next(answers) for _ in obs])
    nodes = ft.tree.nodes()
    assert [n.reward for n in nodes] == [0.0, 0.0, 0.0]
    assert all(n.public is None and n.feedback == NO_REWARD_TESTS_FEEDBACK for n in nodes)
    assert [n.private["verdict"] for n in nodes] == ["passed", "wrong_answer", "passed"]
    assert ft.tree.metadata == {**ft.tree.metadata, "judge": "private", "reward_tests": "none"}
    m = run_metrics([ft.tree], judge="private")
    assert (m["no_reward_tests"], m["pass_at_n"], m["pass_at_1_mcts"]) == (1, 1.0, 1.0)


def test_aec_env_steps_through_both_kinds_of_short_problems(tmp_path, ex):
    cf0, _ = load_problems(REAL / "rllm_codeforces.sample.json")
    problem, = load_problems(no_public_row_file(tmp_path))
    with pytest.warns(JudgePolicyWarning):
        env = raw_env(problems=[cf0, problem], agents=["coder_0"], budget=1, executor=ex)
    env.reset(seed=0, options={"problem": problem.id})
    env.step(fenced(SUM))
    assert env.infos["coder_0"]["verdict"] == "not_run"
    env.reset(options={"problem": cf0.id})
    env.step(fenced(MIN_MAX))
    assert env.infos["coder_0"]["verdict"] == "passed"
    assert env.tree.metadata["judge"] == "public"


def test_trees_without_the_mark_still_refuse_a_missing_private_result():
    tree = SearchTree("p")
    node = tree.add(0, "coder_0", code="x", reward=1.0,
                    public={"verdict": "passed", "passed": 1, "total": 1, "reward": 1.0})
    with pytest.raises(ValueError, match="no private-test result"):
        judged(node, "private", tree)
    tree.metadata["judge"] = "public"
    assert judged(node, "private", tree) is True


# ----------------------------------------------------------------------------- the CLI

def test_mars2_search_finishes_on_single_test_and_no_public_rows(tmp_path, capsys):
    cf0, cf1 = load_problems(REAL / "rllm_codeforces.sample.json")
    lcb, = load_problems(no_public_row_file(tmp_path))
    data = tmp_path / "mixed.jsonl"
    from mars2_env.problems import save_problems
    save_problems([cf0, cf1, lcb], data)
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps({"problem_id": pid, "response": fenced(code)}) + "\n"
                              for pid, code in [(cf0.id, MIN_MAX), (cf1.id, "print(0)\n"),
                                                (lcb.id, SUM)]))
    out = tmp_path / "run"
    with pytest.warns(JudgePolicyWarning):
        rc = main(["search", "--problems", str(data), "--agents", f"replay:{replay}",
                   "--budget", "2", "--workers", "2", "--out", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["judged_on"] == {"public": 1, "private": 2}
    assert metrics["no_reward_tests"] == 1
    assert metrics["pass_at_n"] == pytest.approx(2 / 3)
    printed = capsys.readouterr().out
    assert "1 trees judged on their public run (no private tests)" in printed
    assert "1 trees had no reward tests (reward 0)" in printed
    assert {t.problem_id: t.metadata.get("judge") for t in read_trees(out / "trees.jsonl")} == {
        cf0.id: "public", cf1.id: "private", lcb.id: "private"}
    assert main(["eval", "--from", str(out)]) == 0  # recomputing from the saved trees works too


def test_data_stats_counts_kinds_splits_policy_and_limits(tmp_path, capsys):
    assert main(["data", "stats", str(REAL / "rllm_codeforces.sample.json"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["problems"], s["kinds"], s["harnesses"], s["shapes"]) == (
        2, {"stdin": 2}, {"rllm": 2}, {"codeforces": 2})
    assert s["tests"]["public"] == {"min": 1, "median": 1, "max": 1, "total": 2}
    assert s["tests"]["private"] == {"min": 0, "median": 2, "max": 4, "total": 4}
    assert s["judge_policy"]["judged_on_public"] == ["rllm_codeforces.sample-0"]
    assert s["judge_policy"]["no_reward_tests"] == []
    assert (s["time_limit_s"], s["memory_limit_mb"]) == ({"1": 1, "2": 1}, {"256": 1, "512": 1})
    assert s["limits_from_statement"] == 2 and s["reference_solutions"] == 0
    assert main(["data", "stats", str(no_public_row_file(tmp_path))]) == 0
    text = capsys.readouterr().out
    assert "no public tests, every node rewarded 0: 1 (no_public_1)" in text
    assert "harnesses:      lcb ×1" in text


def test_data_check_lists_every_failing_reference_with_its_verdict(tmp_path, capsys):
    from mars2_env.problems import save_problems

    ps = load_problems(REAL / "HumanEval.sample.jsonl.gz")
    ps[1].metadata["reference_solution"] = ps[1].starter_code + "    return 0.0\n"  # HumanEval/2
    path = save_problems(ps, tmp_path / "he.jsonl")
    assert main(["data", "check", str(path), "--json", "--workers", "2"]) == 1
    c = json.loads(capsys.readouterr().out)
    assert (c["passed"], c["with_reference"], c["failed"], c["ok"]) == (2, 3, 1, False)
    assert [(f["id"], f["verdict"], f["passed"], f["total"]) for f in c["failures"]] == [
        ("HumanEval/2", "wrong_answer", 0, 1)]
    assert main(["data", "check", str(REAL / "rllm_leetcode_train.sample.json")]) == 0
    assert capsys.readouterr().out.startswith("reference solutions: 2/2 pass")


def test_data_check_time_limit_policy_and_wrong_solutions(tmp_path, capsys):
    from mars2_env.problems import save_problems

    slow = Problem(id="slow", statement="", time_limit_s=1.0,
                   public_tests=[TestCase("1 2\n", "3\n")],
                   metadata={"reference_solution": "import time\ntime.sleep(1.3)\n" + SUM,
                             "wrong_solutions": ["print(3)\n", "print(4)\n"]})
    path = save_problems([slow], tmp_path / "slow.jsonl")
    assert main(["data", "check", str(path)]) == 1
    text = capsys.readouterr().out
    assert "FAIL slow: time_limit (0/1 tests) time limit exceeded (1 s)" in text
    assert "PASSES slow (wrong #0): the tests do not catch it" in text  # print(3) is "right"
    assert main(["data", "check", str(path), "--time-limit-policy", "x4", "--json"]) == 1
    c = json.loads(capsys.readouterr().out)
    assert (c["passed"], c["failed"], c["limits"]) == (1, 0, {"time_limit_scale": 4.0})
    assert [w["solution"] for w in c["wrong_passing"]] == ["wrong #0"]
    assert main(["data", "check", str(path), "--time-limit-policy", "fast"]) == 2
    assert "time-limit policy must be 'dataset'" in capsys.readouterr().err

"""Search at the executor's speed (issue 18, item 1): programs go to the executor without
waiting, a tree whose results are in goes on while others run, and the trees are the same as
round by round; plus the executor's non-blocking API it stands on."""

from __future__ import annotations

import time

import pytest

from agents import make_agent
from mars2_env.execution import Executor
from mars2_env.vector import BatchedSearch

AGENTS = ["coder_0", "coder_1"]
SLOW = "import time\ntime.sleep(2.5)\n"


@pytest.fixture(scope="module")
def executor():
    with Executor(max_workers=2, time_limit_s=10.0) as ex:  # the sleeps below fit, on a busy box too
        yield ex


@pytest.fixture(scope="module")
def problems(demo_problems):
    by_id = {p.id: p for p in demo_problems}
    return [by_id[i] for i in ("demo-stdin-002", "demo-functional-003", "demo-assert-002",
                               "demo-stdin-005", "demo-stdin-001", "demo-functional-001")]


def test_submit_resolves_each_program_as_soon_as_it_is_judged(problems, executor):
    p = problems[0]
    ref = p.metadata["reference_solution"]
    slow, *fast = executor.submit_many(
        [(p, SLOW + ref, "public"), (p, ref, "public"), (p, "print(0)", "public")],
        stop_on_first_failure=False)
    results = [f.result(timeout=60) for f in fast]
    assert not slow.done()  # the fast programs did not wait for the slow one
    assert [r.verdict.value for r in results] == ["passed", "wrong_answer"]
    assert results[0].passed == results[0].total == len(p.public_tests)
    assert slow.result(timeout=60).verdict.value == "passed"
    # the same programs through the blocking call give the same results
    again = executor.run_many([(p, ref, "public"), (p, "print(0)", "public")],
                              stop_on_first_failure=False)
    assert [r.to_dict() for r in again] == [r.to_dict() for r in results]


def test_abandoned_programs_stop_running(problems, executor):
    p = problems[0]
    forever = executor.submit(p, "while True:\n    pass\n", "all", stop_on_first_failure=False)
    time.sleep(0.3)
    executor.abandon([forever])
    assert forever.cancelled()
    start = time.monotonic()
    res = executor.run(p, p.metadata["reference_solution"], "all")
    # the looping program's tests (10 s limit each) were not run out behind it
    assert res.verdict.value == "passed" and time.monotonic() - start < 8.0


def test_a_decided_verdict_does_not_run_the_rest(problems, executor):
    """Under stop_on_first_failure, a program that fails its first test is not run further:
    the test timing out on the other worker is killed, not run to its time limit."""
    p = next(q for q in problems if q.kind == "stdin")
    code = ("import sys, time\ndata = sys.stdin.read()\n"
            f"if data == {p.select_tests('all')[0].input!r}:\n    print('no')\nelse:\n    time.sleep(30)\n")
    start = time.monotonic()
    res = executor.run(p, code, "all", stop_on_first_failure=True)
    assert res.verdict.value == "wrong_answer" and len(res.tests) == 1
    assert time.monotonic() - start < 8.0  # no test ran to its 10 s limit


def random_agents():
    return {n: make_agent(s, name=n, seed=i)
            for i, (n, s) in enumerate([("coder_0", "random"), ("coder_1", "random:3")])}


class RunManyOnly:
    """An executor with only the blocking `run_many` (as `mars2_ray.RayExecutor`)."""

    def __init__(self, executor):
        self.executor = executor

    def run_many(self, items, **kwargs):
        return self.executor.run_many(items, **kwargs)


@pytest.mark.parametrize("k", [1, 2])
def test_asynchronous_trees_equal_round_by_round_trees(problems, executor, k):
    def trees(asynchronous, max_trees, ex):
        agents = random_agents()
        with BatchedSearch(problems, AGENTS, budget=5, seed=7, max_trees=max_trees,
                           expansions_per_tree=k, executor=ex) as search:
            if asynchronous:
                finished = search.run(agents)
            else:
                finished = []
                while not search.done:
                    finished.extend(search.step(agents))
            assert search.landed + search.discarded == 5 * len(problems)
            return {f.problem_id: f.tree.to_dict() for f in finished}

    rounds = trees(False, 6, executor)
    assert len(rounds) == len(problems)
    assert trees(True, 6, executor) == rounds
    assert trees(True, 2, executor) == rounds
    assert trees(True, 3, RunManyOnly(executor)) == rounds


def test_a_tree_goes_on_while_another_trees_program_runs(problems, executor):
    """Tree A's first program sleeps 2.5 s; tree B writes all its nodes meanwhile and finishes
    first; generation for B was asked while A's program was still with the executor."""
    a, b = problems[0], problems[3]
    calls = []

    def policy(agent, observations, seeds):  # takes seeds: run() goes asynchronous
        out = []
        for o in observations:
            mine = a if o["statement"] == a.statement else b
            first_of_a = mine is a and not any(pid == a.id for pid, _ in calls)
            calls.append((mine.id, time.monotonic()))
            code = mine.metadata["reference_solution"]
            out.append(f"```python\n{SLOW + code if first_of_a else code}\n```")
        return out

    # judge_tests=None: one executor item per node, so A's slow program holds one worker
    with BatchedSearch([a, b], AGENTS, budget=3, seed=1, executor=executor,
                       judge_tests=None) as search:
        start = time.monotonic()
        finished = search.run(policy)
    assert [f.problem_id for f in finished] == [b.id, a.id]
    assert [len(f.tree) for f in finished] == [3, 3]
    b_calls = [t - start for pid, t in calls if pid == b.id]
    assert len(b_calls) == 3 and b_calls[-1] < 2.5  # all of B asked for inside A's 2.5 s sleep


def test_collect_and_submit_without_waiting(problems, executor):
    search = BatchedSearch(problems[:2], AGENTS, budget=2, seed=0, executor=executor)
    assert search.collect() == []  # nothing running: returns at once
    batch = search.pending()
    assert sum(map(len, batch.values())) == 2
    agents = random_agents()
    assert search.submit(BatchedSearch.responses(agents, batch), wait=False) == []
    assert search.running == 2 and search.pending() == {}  # both trees wait for their results
    finished = []
    while search.landed < 2:
        finished += search.collect(timeout=30)
    assert search.running == 0 and finished == []
    assert sum(map(len, search.pending().values())) == 2  # both trees' next round


def test_as_ready_landing_keeps_a_tree_going_past_its_slow_program(problems, executor):
    """landing="as_ready": the tree's fast expansion lands and is replaced while its slow one
    runs (in_order would wait for both)."""
    p = problems[3]
    asked = []

    def policy(agent, observations, seeds):  # takes seeds: run() goes asynchronous
        out = []
        for _ in observations:
            code = p.metadata["reference_solution"]
            out.append(f"```python\n{SLOW + code if not asked else code}\n```")
            asked.append(time.monotonic())
        return out

    with BatchedSearch([p], AGENTS, budget=4, seed=1, executor=executor, judge_tests=None,
                       expansions_per_tree=2, landing="as_ready") as search:
        start = time.monotonic()
        (finished,) = search.run(policy)
    assert len(finished.tree) == 4 and search.landed == 4
    assert len(asked) == 4 and asked[2] - start < 2.5  # the 3rd asked for inside the sleep
    assert search.order_free(policy) and not search.order_free(lambda a, obs: obs)
    with pytest.raises(ValueError, match="landing must be"):
        BatchedSearch([p], AGENTS, landing="whenever")

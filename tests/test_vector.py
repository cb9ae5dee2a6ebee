"""BatchedSearch: equivalence with AEC episodes, virtual loss, tree replacement, bad inputs."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pytest

from mars2_env.aec import raw_env
from mars2_env.execution import Executor
from mars2_env.scheduler import ParallelSampling, ThompsonScheduler
from mars2_env.vector import BatchedSearch, FinishedTree

AGENTS = ["coder_0", "coder_1"]


@pytest.fixture(scope="module")
def executor():
    with Executor(max_workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def problems(demo_problems):
    ids = ["demo-stdin-002", "demo-functional-003", "demo-assert-002", "demo-stdin-005"]
    by_id = {p.id: p for p in demo_problems}
    return [by_id[i] for i in ids]


def scripted(problem, obs) -> str:
    """Deterministic in the observation: a fast wrong program or the reference, fenced."""
    meta = problem.metadata
    wrong = [c for c, v in zip(meta["wrong_solutions"], meta["wrong_verdicts"], strict=True) if v != "time_limit"]
    cands = wrong + [meta["reference_solution"]]
    pick = zlib.crc32(f"{obs['prompt']}|{obs['budget_left']}".encode()) % len(cands)
    return f"```python\n{cands[pick].rstrip()}\n```"


def batched_policy(problems):
    by_statement = {p.statement: p for p in problems}
    return lambda agent, observations: [scripted(by_statement[o["statement"]], o) for o in observations]


def test_k1_batched_trees_equal_separate_aec_episodes(problems, executor):
    budget, seed = 6, 1234
    search = BatchedSearch(problems, AGENTS, budget, executor=executor, seed=seed, max_trees=3)
    finished = search.run(batched_policy(problems))
    assert search.done and sorted(f.index for f in finished) == [0, 1, 2, 3]
    batched = {f.problem_id: f.tree.to_dict() for f in finished}

    env = raw_env(problems=problems, agents=AGENTS, budget=budget, executor=executor)
    by_statement = {p.statement: p for p in problems}
    separate = {}
    env.reset(seed=seed)
    for i in range(len(problems)):
        if i:
            env.reset()
        for _agent in env.agent_iter():
            obs, _, term, trunc, _ = env.last()
            env.step(None if term or trunc else scripted(by_statement[obs["statement"]], obs))
        separate[env.tree.problem_id] = env.tree.to_dict()
    assert batched == separate
    # the trees are real searches: both agents wrote, some refinements, rewards vary
    nodes = [n for t in batched.values() for n in t["nodes"][1:]]
    assert {n["agent"] for n in nodes} == set(AGENTS)
    assert any(n["parent"] != 0 for n in nodes)
    assert {n["reward"] for n in nodes} >= {1.0} and min(n["reward"] for n in nodes) < 1.0


def test_finished_trees_carry_records_and_are_replaced(problems, executor):
    search = BatchedSearch(problems, AGENTS, budget=3, executor=executor, seed=0, max_trees=2)
    policy = batched_policy(problems)
    seen_in_flight, finished = [], []
    while not search.done:
        batch = search.pending()
        seen_in_flight.append(search.in_flight)
        assert sum(len(v) for v in batch.values()) == search.in_flight  # k = 1
        finished += search.submit({a: policy(a, [p.observation for p in items]) for a, items in batch.items()})
    assert max(seen_in_flight) == 2
    assert [f.index for f in sorted(finished, key=lambda f: f.index)] == [0, 1, 2, 3]
    for f in finished:
        assert isinstance(f, FinishedTree) and len(f.tree) == 3
        assert [r["node_id"] for r in f.nodes] == [1, 2, 3]
        assert f.solved == any(n.private["verdict"] == "passed" for n in f.tree.nodes())
    with pytest.raises(RuntimeError, match="nothing is pending"):
        search.submit({})
    assert search.pending() == {}


def test_expansions_per_tree_uses_virtual_loss(problems, executor):
    marks = []

    class Recording(ThompsonScheduler):
        def mark_pending(self, exp):
            marks.append(("mark", exp))
            super().mark_pending(exp)

        def clear_pending(self, exp):
            marks.append(("clear", exp))
            super().clear_pending(exp)

    search = BatchedSearch(problems[:2], AGENTS, budget=5, executor=executor, seed=3,
                           expansions_per_tree=2, scheduler_factory=lambda: Recording(AGENTS))
    batch = search.pending()
    items = [p for ps in batch.values() for p in ps]
    assert sorted(p.tree_index for p in items) == [0, 0, 1, 1]
    for tree_index in (0, 1):
        left = sorted(p.observation["budget_left"] for p in items if p.tree_index == tree_index)
        assert left == [4, 5]
    assert [kind for kind, _ in marks] == ["mark"] * 4
    finished = search.run(batched_policy(problems))
    assert len(finished) == 2 and all(len(f.tree) == 5 for f in finished)
    assert sum(k == "mark" for k, _ in marks) == sum(k == "clear" for k, _ in marks) == 10
    # budget 5 with 2 per round: rounds of 2, 2, 1 expansions per tree, all landed
    assert search.discarded == 0


def test_generation_objects_store_tokens_and_logprobs(problems, executor):
    @dataclass
    class Gen:
        text: str
        completion_token_ids: list
        logprobs: list

    search = BatchedSearch(problems[:1], AGENTS, budget=1, executor=executor, seed=0,
                           scheduler_factory=lambda: ParallelSampling(AGENTS))
    batch = search.pending()
    (agent,) = batch  # the rotation order is drawn per tree: either agent may go first
    (finished,) = search.submit({agent: [Gen("print(1)", [5, 6], [-0.5, -0.25])]})
    node = finished.tree.node(1)
    assert node.token_ids == [5, 6] and node.logprobs == [-0.5, -0.25] and node.code == "print(1)\n"


def test_stop_on_solve_discards_the_rest_of_the_round(problems, executor):
    problem = problems[0]
    search = BatchedSearch([problem], AGENTS, budget=6, executor=executor, seed=0,
                           expansions_per_tree=3, stop_on_solve=True,
                           scheduler_factory=lambda: ParallelSampling(AGENTS))
    batch = search.pending()
    first = batch[AGENTS[0]][0].agent if len(batch[AGENTS[0]]) == 2 else AGENTS[1]
    other = AGENTS[1] if first == AGENTS[0] else AGENTS[0]
    assert {a: len(v) for a, v in batch.items()} == {first: 2, other: 1}  # a, b, a in turn
    ref = f"```python\n{problem.metadata['reference_solution']}\n```"
    (finished,) = search.submit({first: [ref, "print(0)"], other: ["print(0)"]})
    assert finished.solved and len(finished.tree) == 1 and search.discarded == 2
    assert search.done


def test_bad_responses_raise_and_change_nothing(problems, executor):
    for seed in range(100):  # a seed whose two trees' drawn rotations both start with coder_0
        search = BatchedSearch(problems[:2], AGENTS, budget=2, executor=executor, seed=seed,
                               scheduler_factory=lambda: ParallelSampling(AGENTS))
        batch = search.pending()
        if {a: len(v) for a, v in batch.items()} == {"coder_0": 2}:
            break
    else:
        pytest.fail("no seed below 100 starts both trees with coder_0")
    with pytest.raises(ValueError, match=r"responses\['coder_0'\] has 1 responses but 'coder_0' has 2"):
        search.submit({"coder_0": ["print(1)"]})
    with pytest.raises(ValueError, match="no entry for agent 'coder_0'"):
        search.submit({})
    with pytest.raises(ValueError, match="has no pending expansion"):
        search.submit({"coder_0": ["a", "b"], "coder_1": ["c"]})
    with pytest.raises(TypeError, match=r"responses\['coder_0'\]\[1\]"):
        search.submit({"coder_0": ["print(1)", 7]})
    with pytest.raises(TypeError, match="must be a list"):
        search.submit({"coder_0": "print(1)"})
    with pytest.raises(TypeError, match="must be a dict"):
        search.submit(["print(1)", "print(2)"])
    assert search.pending() == batch and search.in_flight == 2
    search.submit({"coder_0": ["print(1)", "print(2)"]})
    with pytest.raises(ValueError, match="expansions_per_tree"):
        BatchedSearch(problems, AGENTS, expansions_per_tree=0, executor=executor)


def test_episode_end_is_termination_in_all_three_apis(problems, executor):
    """AEC, Gymnasium and batched agree: a spent budget is a terminal state, never truncation."""
    from mars2_env.gym_env import CodeSearchEnv

    problem = problems[0]
    (fin,) = BatchedSearch([problem], AGENTS, 2, executor=executor, seed=0).run(
        lambda agent, obs: ["no code"] * len(obs))
    aec = raw_env(problems=[problem], agents=AGENTS, budget=2, executor=executor)
    aec.reset(seed=0)
    while not any(aec.terminations.values()) and not any(aec.truncations.values()):
        aec.step("no code")
    gym = CodeSearchEnv(problems=[problem], budget=2, executor=executor)
    gym.reset(seed=0)
    _, _, gym_term, gym_trunc, _ = gym.step("no code")
    assert not gym_term
    _, _, gym_term, gym_trunc, _ = gym.step("no code")
    assert (fin.terminated, fin.truncated) == (True, False)
    assert all(aec.terminations.values()) and not any(aec.truncations.values())
    assert (gym_term, gym_trunc) == (True, False)


class _Recorder:
    """A fake agent that records when it is called; `asynchronous` ones answer later."""

    def __init__(self, name, log, asynchronous=False):
        self.name, self.log = name, log
        if asynchronous:
            self.generate_async = self._start

    def generate(self, observations):
        self.log.append(("generate", self.name))
        return [f"{self.name}:{o['budget_left']}" for o in observations]

    def _start(self, observations):
        self.log.append(("start", self.name))
        agent = self

        class Pending:
            def result(self):
                agent.log.append(("result", agent.name))
                return [f"{agent.name}:{o['budget_left']}" for o in observations]

        return Pending()


def test_respond_starts_asynchronous_agents_before_waiting(problems, executor):
    from mars2_env.vector import respond

    search = BatchedSearch(problems, AGENTS, 4, executor=executor, seed=3, expansions_per_tree=2,
                           scheduler_factory=lambda: ParallelSampling(AGENTS))
    batch = search.pending()
    assert set(batch) == set(AGENTS)
    log: list = []
    agents = {"coder_0": _Recorder("coder_0", log), "coder_1": _Recorder("coder_1", log, True)}
    out = respond(agents, batch)
    assert log == [("start", "coder_1"), ("generate", "coder_0"), ("result", "coder_1")]
    assert list(out) == list(batch)
    for name, items in batch.items():
        assert out[name] == [f"{name}:{p.observation['budget_left']}" for p in items]
    with pytest.raises(KeyError, match="no agent object for"):
        respond({"coder_0": agents["coder_0"]}, batch)


def test_run_takes_agent_objects(problems, executor):
    def fenced(name):
        class Agent:
            def generate(self, observations):
                return [f"```python\nprint({len(o['statement'])})\n```" for o in observations]
        return Agent()

    agents = {a: fenced(a) for a in AGENTS}
    policy = lambda agent, obs: agents[agent].generate(obs)  # noqa: E731
    by_objects = BatchedSearch(problems, AGENTS, 3, executor=executor, seed=5).run(agents)
    by_policy = BatchedSearch(problems, AGENTS, 3, executor=executor, seed=5).run(policy)
    assert [f.tree.to_dict() for f in by_objects] == [f.tree.to_dict() for f in by_policy]
    assert len(by_objects) == len(problems)


def test_a_problem_queued_twice_is_searched_twice(problems, executor):
    """A search queue may repeat a problem (a training round with more trees than problems): each
    copy is its own tree, the first as a search of that problem alone, the second seeded as its
    next visit (`envcore.tree_seeds`)."""
    p = problems[0]
    twice = BatchedSearch([p, p], AGENTS, budget=4, executor=executor, seed=7, max_trees=2)
    finished = sorted(twice.run(batched_policy(problems)), key=lambda f: f.index)
    assert [(f.index, f.problem_id) for f in finished] == [(0, p.id), (1, p.id)]
    alone = BatchedSearch([p], AGENTS, budget=4, executor=executor, seed=7).run(
        batched_policy(problems))
    assert finished[0].tree.to_dict() == alone[0].tree.to_dict()
    assert all(len(f.tree) == 4 for f in finished)
    assert [n["agent"] for n in finished[0].tree.to_dict()["nodes"]] != [
        n["agent"] for n in finished[1].tree.to_dict()["nodes"]]  # its own scheduler seed
    with pytest.raises(ValueError, match="problem ids must be unique"):
        raw_env(problems=[p, p], agents=AGENTS, budget=4, executor=executor)

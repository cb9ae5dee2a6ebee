"""PettingZoo AEC environment: official API tests and search semantics on the real executor."""

from __future__ import annotations

import zlib

import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, render_test, seed_test
from pettingzoo.utils.conversions import turn_based_aec_to_parallel

import mars2_env  # noqa: F401  (registers the environments)
from mars2_env.aec import env as make_env
from mars2_env.aec import raw_env
from mars2_env.execution import Executor
from mars2_env.prompts import extract_code, messages_from_observation
from mars2_env.rewards import node_records
from mars2_env.scheduler import SequentialRefinement
from mars2_env.spaces import CodeText


@pytest.fixture(scope="module")
def executor():
    with Executor(max_workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def problems(demo_problems):
    by_id = {p.id: p for p in demo_problems}
    return [by_id["demo-stdin-001"], by_id["demo-functional-002"], by_id["demo-assert-004"]]


def fenced(code: str) -> str:
    return f"Here is my answer.\n```python\n{code.rstrip()}\n```\n"


def scripted(problem, obs) -> str:
    """A deterministic answer for an observation: a fast wrong program or the reference."""
    meta = problem.metadata
    wrong = [c for c, v in zip(meta["wrong_solutions"], meta["wrong_verdicts"], strict=True) if v != "time_limit"]
    cands = wrong + [meta["reference_solution"]]
    pick = zlib.crc32(f"{obs['prompt']}|{obs['budget_left']}".encode()) % len(cands)
    return fenced(cands[pick])


def play(env, problems, policy=scripted):
    """Run one episode with `policy`; returns {agent: (last reward seen, info at the end)}."""
    by_statement = {p.statement: p for p in problems}
    ends = {}
    for agent in env.agent_iter():
        obs, reward, term, trunc, info = env.last()
        if term or trunc:
            ends[agent] = (reward, info, term, trunc)
            env.step(None)
        else:
            env.step(policy(by_statement[obs["statement"]], obs))
    return ends


# ----------------------------------------------------------------------------- official tests

# Text observations/actions are what this environment is about; PettingZoo's api_test only
# advises numeric Box/Discrete spaces, so its advice warnings are expected here.
@pytest.mark.filterwarnings("ignore:Observation is not a NumPy array")
@pytest.mark.filterwarnings("ignore:Observation space for each agent probably should be")
@pytest.mark.filterwarnings("ignore:Action space for each agent probably should be")
def test_pettingzoo_api_test(problems, executor):
    api_test(make_env(problems=problems, budget=4, executor=executor), num_cycles=20)


def test_pettingzoo_seed_test(problems, executor):
    seed_test(lambda: make_env(problems=problems, budget=4, executor=executor), num_cycles=10)


def test_pettingzoo_render_test(problems, executor):
    render_test(lambda render_mode=None: make_env(problems=problems, budget=3, executor=executor,
                                                  render_mode=render_mode))


def test_parallel_api_test_on_turn_based_conversion(problems, executor):
    par = turn_based_aec_to_parallel(make_env(problems=problems, budget=4, executor=executor))
    parallel_api_test(par, num_cycles=20)


def test_registered_with_pettingzoo(problems, executor):
    env = pettingzoo.make("aec", "mars2/CodeTreeSearch-v0", problems=problems, budget=2,
                          executor=executor)
    assert isinstance(env.unwrapped, raw_env)
    env.reset(seed=1)
    assert env.unwrapped.tree.problem_id == problems[0].id
    ends = play(env, problems)
    assert set(ends) == {"coder_0", "coder_1"}
    assert len(env.unwrapped.tree) == 2


# ----------------------------------------------------------------------------- semantics

def test_spaces_and_first_observation(problems, executor):
    env = raw_env(problems=problems, budget=5, executor=executor)
    space = env.observation_space("coder_0")
    assert space is env.observation_space("coder_0")
    assert "observation" not in space.spaces
    assert isinstance(space["prompt"], CodeText) and isinstance(env.action_space("coder_1"), CodeText)
    assert space["budget_left"].n == 6 and space["kind"].n == 2
    env.reset(seed=3)
    obs = env.observe(env.agent_selection)
    assert space.contains(obs)
    assert obs["statement"] == problems[0].statement
    assert (obs["kind"], obs["node_id"], obs["depth"], obs["budget_left"]) == (0, 0, 0, 5)
    assert obs["parent_code"] == "" and obs["parent_feedback"] == ""
    messages = messages_from_observation(obs)
    assert messages[-1]["role"] == "user" and problems[0].statement.strip() in messages[-1]["content"]


def test_episode_rewards_nodes_and_refinement_observations(problems, executor):
    env = raw_env(problems=problems, budget=8, executor=executor,
                  scheduler=SequentialRefinement(["coder_0", "coder_1"]))
    env.reset(seed=0)
    problem = problems[0]
    seen_refines = 0
    returns = {"coder_0": 0.0, "coder_1": 0.0}
    step_rewards = []
    for agent in env.agent_iter():
        obs, reward, term, trunc, info = env.last()
        returns[agent] += reward
        if term or trunc:
            env.step(None)
            continue
        tree = env.tree
        if obs["kind"] == 1:  # a refinement carries the parent's code and feedback
            parent = tree.node(obs["node_id"])
            assert obs["parent_code"] == parent.code and obs["parent_feedback"] == parent.feedback
            assert obs["depth"] == parent.depth
            assert parent.code.strip() in messages_from_observation(obs)[-1]["content"]
            seen_refines += 1
        assert obs["budget_left"] == 8 - len(tree)
        action = scripted(problem, obs)
        env.step(action)
        node = env.tree.node(len(env.tree))
        step_rewards.append((agent, node.reward))
        assert node.agent == agent and node.response == action and node.code == extract_code(action)
        assert env.rewards[agent] == node.reward
        assert all(r == 0.0 for a, r in env.rewards.items() if a != agent)
        assert node.public["total"] == len(problem.public_tests)
        assert node.private["total"] == len(problem.private_tests)
        assert node.reward == node.public["reward"]
        if node.code.strip() == problem.metadata["reference_solution"].strip():
            assert node.public["verdict"] == "passed" and node.reward == 1.0
            assert node.private["verdict"] == "passed"
        else:
            assert node.private["verdict"] != "passed"
    assert seen_refines == 7  # SequentialRefinement: a chain
    tree = env.unwrapped.tree
    assert len(tree) == 8
    assert returns == {a: sum(r for b, r in step_rewards if b == a) for a in returns}
    assert {n.reward for n in tree.nodes()} >= {1.0}  # the reference appeared at least once


def test_budget_spent_is_termination_not_truncation(problems, executor):
    """budget_left is in the observation, so the last node ends the MDP: terminated (issue 14)."""
    env = make_env(problems=problems, budget=5, executor=executor)
    env.reset(seed=7)
    ends = play(env, problems)
    tree = env.unwrapped.tree
    expected = node_records(tree)
    assert len(tree) == 5
    for agent, (_, info, term, trunc) in ends.items():
        assert term is True and trunc is False
        assert info["nodes"] == [r for r in expected if r["agent"] == agent]
        assert info["problem_id"] == problems[0].id
    assert sorted(r["node_id"] for _, (_, i, _, _) in ends.items() for r in i["nodes"]) == [1, 2, 3, 4, 5]
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step("print(1)")
    with pytest.raises(RuntimeError, match="episode is over"):
        env.unwrapped.step("print(1)")


def test_shaped_reward_mode_pays_shaped_sums_at_the_end(problems, executor):
    env = raw_env(problems=problems, budget=5, executor=executor, reward_mode="shaped",
                  lam=0.3, beta=0.6)
    env.reset(seed=11)
    totals = {a: 0.0 for a in env.possible_agents}
    for agent in env.agent_iter():
        obs, reward, term, trunc, info = env.last()
        totals[agent] += reward
        if term or trunc:
            env.step(None)
        else:
            env.step(scripted(problems[0], obs))
            if len(env.tree) < 5:
                assert all(r == 0.0 for r in env.rewards.values())
    rows = node_records(env.tree, lam=0.3, beta=0.6)
    for a in totals:
        assert totals[a] == pytest.approx(sum(r["shaped_reward"] for r in rows if r["agent"] == a))


def test_stop_on_solve_terminates_everyone(problems, executor):
    env = raw_env(problems=problems, budget=6, executor=executor, stop_on_solve=True)
    env.reset(seed=0)
    agent = env.agent_selection
    env.step(fenced(problems[0].metadata["reference_solution"]))
    assert all(env.terminations.values()) and not any(env.truncations.values())
    assert len(env.tree) == 1 and env.tree.node(1).private["verdict"] == "passed"
    assert env.infos[agent]["solved"] is True
    assert env.observe(agent)["budget_left"] == 0
    while env.agents:
        env.step(None)


def test_seeded_episodes_repeat_and_problems_cycle(problems, executor):
    def run(seed):
        env = raw_env(problems=problems, budget=4, executor=executor)
        trees = []
        env.reset(seed=seed)
        for _ in range(len(problems) + 1):
            play(env, problems)
            trees.append(env.tree.to_dict())
            env.reset()
        return trees

    a, b = run(5), run(5)
    assert a == b
    assert [t["problem_id"] for t in a] == [p.id for p in problems] + [problems[0].id]
    c = run(6)
    assert [t["metadata"]["scheduler_seed"] for t in c] != [t["metadata"]["scheduler_seed"] for t in a]


def test_reset_options_pick_problem_and_bad_inputs(problems, executor):
    env = make_env(problems=problems, budget=3, executor=executor)
    with pytest.raises(RuntimeError):
        env.step("x")  # before reset
    env.reset(options={"problem": problems[2].id})
    assert env.unwrapped.tree.problem_id == problems[2].id
    env.reset(options={"problem": problems[1]})  # a Problem object is used as given
    assert env.unwrapped.tree.problem_id == problems[1].id
    with pytest.raises(KeyError, match="unknown problem id 'nope'"):
        env.reset(options={"problem": "nope"})
    env.reset()
    with pytest.raises(TypeError, match="must be its response text"):
        env.step(42)
    with pytest.raises(ValueError, match="max_text_length"):
        raw_env(problems=problems, budget=3, executor=executor, max_text_length=10).reset()
    with pytest.raises(ValueError, match="reward_mode"):
        raw_env(problems=problems, reward_mode="sparse")
    with pytest.raises(ValueError, match="budget"):
        raw_env(problems=problems, budget=0)
    with pytest.raises(ValueError, match="problems is empty"):
        raw_env(problems=[])


def test_render_ansi_lists_every_node(problems, executor):
    env = raw_env(problems=problems, budget=3, executor=executor, render_mode="ansi")
    env.reset(seed=2)
    play(env, problems)
    text = env.render()
    lines = text.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith(f"problem {problems[0].id}: 3/3 nodes")
    for n, line in zip(env.tree.nodes(), lines[1:], strict=True):
        assert f"node {n.id:>3} agent={n.agent} parent={n.parent}" in line
        assert f"verdict={n.public['verdict']}" in line and f"reward={n.reward:.3f}" in line

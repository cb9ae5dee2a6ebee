"""Gymnasium environment and the CodeText space, with the real executor."""

from __future__ import annotations

import string
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import mars2_env  # noqa: F401  (registers the environments)
from mars2_env.execution import Executor
from mars2_env.gym_env import CodeSearchEnv
from mars2_env.rewards import node_records
from mars2_env.scheduler import ParallelSampling
from mars2_env.spaces import SAMPLE_CHARSET, CodeText


@pytest.fixture(scope="module")
def executor():
    with Executor(max_workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def problems(demo_problems):
    by_id = {p.id: p for p in demo_problems}
    return [by_id["demo-stdin-003"], by_id["demo-functional-001"]]


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


# ----------------------------------------------------------------------------- CodeText

def test_codetext_contains_any_unicode_up_to_max_length():
    space = CodeText(12)
    assert space.contains("") and space.contains("déjà vu\n\t✓") and space.contains("x" * 12)
    assert not space.contains("x" * 13)
    assert not space.contains(b"bytes") and not space.contains(None) and not space.contains(3)
    restricted = CodeText(5, charset="ab")
    assert restricted.contains("abba") and not restricted.contains("abc")
    assert restricted.is_np_flattenable and not space.is_np_flattenable


def test_codetext_samples_short_printable_seeded_strings():
    space = CodeText(1 << 20, seed=4)
    samples = [space.sample() for _ in range(200)]
    assert max(len(s) for s in samples) <= 64 and min(len(s) for s in samples) == 0
    assert set("".join(samples)) <= set(SAMPLE_CHARSET)
    assert all(space.contains(s) for s in samples)
    again = CodeText(1 << 20, seed=4)
    assert [again.sample() for _ in range(200)] == samples
    short = CodeText(3, sample_max_length=100, seed=0)
    assert all(len(short.sample()) <= 3 for _ in range(50))
    digits = CodeText(10, charset=string.digits, seed=0)
    assert all(set(digits.sample()) <= set(string.digits) for _ in range(20))
    assert len(space.sample(mask=(7, None))) == 7


def test_codetext_equality_and_bad_arguments():
    assert CodeText(5) == CodeText(5) and CodeText(5) != CodeText(6)
    assert CodeText(5) != CodeText(5, charset="ab") and hash(CodeText(5)) == hash(CodeText(5))
    with pytest.raises(ValueError, match="max_length"):
        CodeText(0)
    with pytest.raises(TypeError, match="max_length"):
        CodeText(2.5)
    with pytest.raises(ValueError, match="charset"):
        CodeText(5, charset="")


# ----------------------------------------------------------------------------- the env

def test_check_env_through_gymnasium_make(problems):
    env = gymnasium.make("mars2/CodeSearch-v0", problems=problems, budget=3)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped)
        from_gymnasium = [str(w.message) for w in caught if "gymnasium" in w.filename]
        assert from_gymnasium == []  # the checker found nothing to warn about
    finally:
        env.close()


def test_registered_id_defaults_to_the_demo_problems():
    env = gymnasium.make("mars2/CodeSearch-v0", budget=2)
    assert len(env.unwrapped.problems) >= 24 and env.unwrapped.config.budget == 2
    assert isinstance(env.unwrapped, CodeSearchEnv)
    env.close()


def test_episode_rewards_truncation_and_node_records(problems, executor):
    env = CodeSearchEnv(problems=problems, budget=4, executor=executor)
    obs, info = env.reset(seed=0)
    problem = problems[0]
    assert info == {"problem_id": problem.id}
    assert obs["statement"] == problem.statement and obs["kind"] == 0 and obs["budget_left"] == 4
    wrong = problem.metadata["wrong_solutions"][0]
    total = 0.0
    for step in range(4):
        code = problem.metadata["reference_solution"] if step == 2 else wrong
        obs, reward, terminated, truncated, info = env.step(fenced(code))
        node = env.tree.node(step + 1)
        assert reward == node.reward and info["node_id"] == node.id
        assert info["verdict"] == node.public["verdict"]
        assert (node.private["verdict"] == "passed") == (step == 2)
        assert reward == node.public["reward"] and (step != 2 or reward == 1.0)
        total += reward
        assert truncated is False and terminated == (step == 3)  # the budget end is terminal
        assert env.observation_space.contains(obs)
    assert obs["budget_left"] == 0
    assert info["nodes"] == node_records(env.tree) and info["solved"] is True
    assert total == sum(n.reward for n in env.tree.nodes())
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step("print(1)")
    with pytest.raises(TypeError, match="response text"):
        env.reset()
        env.step(["not", "text"])


def test_parallel_sampling_is_a_flat_group(problems, executor):
    env = CodeSearchEnv(problems=problems, budget=4, executor=executor, scheduler=ParallelSampling(["x"]),
                        agent="solo", stop_on_solve=True)
    obs, _ = env.reset(seed=1, options={"problem": problems[1].id})
    assert obs["statement"] == problems[1].statement
    for _ in range(2):
        obs, reward, term, trunc, info = env.step(fenced(problems[1].metadata["wrong_solutions"][0]))
        assert obs["kind"] == 0 and not term and not trunc
    obs, reward, term, trunc, info = env.step(fenced(problems[1].metadata["reference_solution"]))
    assert term is True and trunc is False and reward == 1.0 and info["solved"] is True
    assert [n.parent for n in env.tree.nodes()] == [0, 0, 0]
    assert {n.agent for n in env.tree.nodes()} == {"solo"}


def test_shaped_reward_paid_at_the_end(problems, executor):
    env = CodeSearchEnv(problems=problems, budget=3, executor=executor, reward_mode="shaped")
    env.reset(seed=2, options={"problem": problems[0].id})
    rewards = []
    for code in ("print(1)", problems[0].metadata["reference_solution"], "x = (") :
        _, reward, _, _, info = env.step(fenced(code))
        rewards.append(reward)
    assert rewards[:2] == [0.0, 0.0]
    assert rewards[2] == pytest.approx(sum(r["shaped_reward"] for r in info["nodes"]))
    assert env.tree.node(3).public["verdict"] == "compile_error"


def test_sync_vector_env(problems, executor):
    envs = SyncVectorEnv([lambda: CodeSearchEnv(problems=problems, budget=2, executor=executor)] * 2)
    obs, infos = envs.reset(seed=[0, 0], options={"problem": problems[1].id})
    assert obs["statement"] == (problems[1].statement,) * 2
    assert np.array_equal(obs["budget_left"], [2, 2])
    actions = (fenced(problems[1].metadata["reference_solution"]), "no code here")
    obs, rewards, terms, truncs, infos = envs.step(actions)
    assert np.array_equal(rewards, [1.0, 0.0]) and not truncs.any()
    obs, rewards, terms, truncs, infos = envs.step(actions)
    assert terms.all() and not truncs.any() and np.array_equal(obs["budget_left"], [0, 0])
    envs.close()


def test_vector_sub_environments_start_at_different_problems(problems, executor):
    """Gymnasium seeds sub-environment i with s + i; each starts at problem (s + i) mod n, so
    they do not search the same problem in lockstep (issue 14)."""
    envs = SyncVectorEnv([lambda: CodeSearchEnv(problems=problems, budget=1, executor=executor)] * 2)
    obs, infos = envs.reset(seed=4)
    assert list(infos["problem_id"]) == [problems[0].id, problems[1].id]
    obs, *_ = envs.step(("no code", "no code"))          # budget 1: both episodes end ...
    obs, infos = envs.reset()                             # ... and each moves on along the cycle
    assert list(infos["problem_id"]) == [problems[1].id, problems[0].id]
    envs.close()


def _async_env():  # module level: picklable for worker processes
    from mars2_env.problems import load_problems
    return CodeSearchEnv(problems=load_problems("builtin:demo")[:2], budget=2)


def test_async_vector_env_without_shared_memory(problems):
    envs = AsyncVectorEnv([_async_env, _async_env], shared_memory=False)
    try:
        obs, _ = envs.reset(seed=[3, 4])
        assert len(obs["prompt"]) == 2 and obs["statement"][0] != obs["statement"][1]
        ref = problems[0].metadata["reference_solution"]  # not this problem's: a wrong answer
        obs, rewards, terms, truncs, infos = envs.step(("print(", fenced(ref)))
        assert rewards[0] == 0.0 and infos["verdict"][0] == "compile_error"
        assert obs["kind"].shape == (2,)
    finally:
        envs.close()


def test_codetext_refuses_shared_memory_flattening():
    with pytest.raises(TypeError, match="shared_memory=False"):
        gymnasium.spaces.utils.flatten(CodeText(8), "ok")
    flat = gymnasium.spaces.utils.flatten(CodeText(4, charset="ab"), "ba")
    assert flat.tolist() == [1, 0, 2, 2]


def test_bad_constructor_arguments(problems):
    with pytest.raises(ValueError, match="tests"):
        CodeSearchEnv(problems=problems, tests="some")
    with pytest.raises(ValueError, match="render_mode"):
        CodeSearchEnv(problems=problems, render_mode="rgb_array")
    with pytest.raises(TypeError, match="Scheduler protocol"):
        CodeSearchEnv(problems=problems, scheduler=object())
    env = CodeSearchEnv(problems=problems)
    with pytest.raises(RuntimeError, match="reset"):
        env.step("print(1)")
    with pytest.raises(KeyError, match="unknown problem id"):
        env.reset(options={"problem": "missing-id"})

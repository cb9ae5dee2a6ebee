"""`get_state` / `set_state`: a fresh agent given another's state answers exactly as that one
would (what a restarted Ray generation actor relies on), and the copy leaves out nothing that
changes between calls."""

from __future__ import annotations

import json

import pytest

from agents import make_agent
from agents.base import BaseAgent
from mars2_env.aec import raw_env


def observations(problems, n: int = 6) -> list[dict]:
    """Observations of real search steps: new candidates for a few problems."""
    env = raw_env(problems=problems[:3], agents=("coder_0",), budget=n)
    out = []
    for p in problems[:3]:
        env.reset(seed=0, options={"problem": p.id})
        out.append(env.observe("coder_0"))
    return out * 2


@pytest.fixture(scope="module")
def obs(demo_problems):
    return observations(demo_problems)


def texts(agent, batch) -> list[str]:
    return [g.text for g in agent.generate(batch)]


SPECS = ["simulated:skill=0.5,refine=0.5", "random"]


@pytest.mark.parametrize("spec", SPECS)
def test_fresh_agent_given_state_continues_the_stream(spec, obs, demo_problems):
    kw = {"seed": 7, "problems": demo_problems} if spec.startswith("simulated") else {"seed": 7}
    a = make_agent(spec, name="x", **kw)
    texts(a, obs)                          # move the stream along
    state = a.get_state()
    expected = [texts(a, obs) for _ in range(3)]
    b = make_agent(spec, name="x", **kw)
    assert texts(b, obs) != expected[0]    # without the state, another stream
    b = make_agent(spec, name="x", **kw)
    b.set_state(state)
    assert [texts(b, obs) for _ in range(3)] == expected


def test_state_is_a_copy_not_a_view(obs, demo_problems):
    a = make_agent("simulated:skill=0.5,refine=0.5", name="x", seed=1, problems=demo_problems)
    state = a.get_state()
    first = texts(a, obs)
    a.set_state(state)                     # the state taken earlier did not move with `a`
    assert texts(a, obs) == first


def test_replay_agent_state_holds_its_counters(tmp_path, obs):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"problem_id": o["problem_id"], "response": f"r{i}"}) + "\n"
                            for i, o in enumerate(obs[:3] * 2)))
    a = make_agent(f"replay:{path}", name="x")
    texts(a, obs[:2])
    state = a.get_state()
    assert "responses" not in state        # static: read from the file again
    expected = texts(a, obs)
    b = make_agent(f"replay:{path}", name="x")
    b.set_state(state)
    assert texts(b, obs) == expected


def test_static_attributes_are_left_out_and_refused():
    a = make_agent("simulated:skill=0.5", name="x", seed=0)
    state = a.get_state()
    assert not set(state) & {"_by_id", "_by_statement", "_pools"}
    assert "rng" in state
    with pytest.raises(ValueError, match="get_state"):
        a.set_state({"_by_id": {}})


def test_undeclared_state_is_refused():
    class Plain(BaseAgent):
        pass

    with pytest.raises(NotImplementedError, match="_static_attrs"):
        Plain().get_state()
    with pytest.raises(NotImplementedError, match="_static_attrs"):
        Plain().set_state({})


def test_openai_state_is_the_request_counter_without_secrets():
    a = make_agent("openai:http://127.0.0.1:9/v1#m", name="x", seed=3, api_key="sk-test")
    state = a.get_state()
    assert state["_requests"] == 0
    assert not set(state) & {"api_key", "_lock", "_pool"}


@pytest.mark.slow
def test_hf_agent_state_continues_sampling(obs):
    a = make_agent("hf:embedded", name="x", seed=5, max_new_tokens=6, temperature=1.0)
    texts(a, obs[:2])
    state = a.get_state()
    assert "model" not in state and state["_calls"] == 1
    expected = texts(a, obs[:2])
    a.set_state(state)
    assert texts(a, obs[:2]) == expected

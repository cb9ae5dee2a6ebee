"""SimulatedAgent: determinism, skill extremes, refine behaviour on real BatchedSearch observations."""

from __future__ import annotations

import pytest

from agents import make_agent
from agents.simulated import SimulatedAgent, format_response, from_spec, parse_spec, pool_programs
from mars2_env.execution import Executor
from mars2_env.prompts import extract_code
from mars2_env.scheduler import ParallelSampling, SequentialRefinement
from mars2_env.vector import BatchedSearch

IDS = ["demo-stdin-001", "demo-functional-004", "demo-assert-004", "demo-stdin-006"]


@pytest.fixture(scope="module")
def problems(demo_problems):
    by_id = {p.id: p for p in demo_problems}
    return [by_id[i] for i in IDS]


@pytest.fixture(scope="module")
def executor():
    with Executor(max_workers=2) as ex:
        yield ex


def _norm(code: str) -> str:
    return code.strip()


def _is_reference(problem, text: str) -> bool:
    return _norm(extract_code(text)) == _norm(problem.metadata["reference_solution"])


def _generate_observations(problems, n_per_problem: int = 1) -> list[dict]:
    """Real generate-step observations (root children) for each problem."""
    search = BatchedSearch(problems, ["a"], budget=n_per_problem,
                           scheduler_factory=lambda: ParallelSampling(["a"]),
                           expansions_per_tree=n_per_problem, seed=0, executor=object())
    return [p.observation for p in search.pending()["a"]]


def _refine_observations(problems, executor, parent_agent: SimulatedAgent) -> list[dict]:
    """Real refine-step observations: the parent written by `parent_agent` and executed."""
    search = BatchedSearch(problems, ["a"], budget=2,
                           scheduler_factory=lambda: SequentialRefinement(["a"]),
                           executor=executor, seed=0)
    first = search.pending()["a"]
    assert all(p.observation["kind"] == 0 for p in first)
    search.submit({"a": parent_agent.generate([p.observation for p in first])})
    second = search.pending()["a"]
    assert all(p.observation["kind"] == 1 for p in second)
    return [p.observation for p in second]


def test_observation_is_mapped_to_its_problem(problems):
    obs = _generate_observations(problems)
    agent = SimulatedAgent("s", skill=1.0, refine_skill=1.0, seed=0, problems=problems)
    assert [agent.problem_of(o).id for o in obs] == IDS
    assert agent.problem_of({**obs[0], "statement": "", "problem_id": IDS[2]}).id == IDS[2]
    stranger = SimulatedAgent("s", seed=0, problems=problems[:1])
    with pytest.raises(KeyError, match="matches none of the 1 problems"):
        stranger.act(obs[1])


def test_same_seed_same_responses_other_seed_differs(problems):
    obs = _generate_observations(problems, n_per_problem=8)
    def run(seed):
        return [g.text for g in SimulatedAgent("s", 0.5, 0.5, seed, problems).generate(obs)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    # act() is generate() on one observation and moves the generator the same way
    a, b = SimulatedAgent("s", 0.5, 0.5, 3, problems), SimulatedAgent("s", 0.5, 0.5, 3, problems)
    assert [a.act(o) for o in obs] == [g.text for g in b.generate(obs)]


def test_skill_one_always_writes_the_reference_skill_zero_never(problems):
    obs = _generate_observations(problems, n_per_problem=10)
    by_statement = {p.statement: p for p in problems}
    always = SimulatedAgent("good", skill=1.0, refine_skill=0.0, seed=1, problems=problems)
    never = SimulatedAgent("bad", skill=0.0, refine_skill=1.0, seed=1, problems=problems)
    for o, g in zip(obs, always.generate(obs), strict=True):
        assert _is_reference(by_statement[o["statement"]], g.text)
        assert g.text.count("```python") == 1 and g.finish_reason == "stop"
    wrong_seen = set()
    for o, g in zip(obs, never.generate(obs), strict=True):
        p = by_statement[o["statement"]]
        assert not _is_reference(p, g.text)
        assert g.text == format_response(_wrong_program(p, g.text))
        wrong_seen.add((p.id, g.text))
    # both wrong variants of the two-variant problems get drawn
    assert len(wrong_seen) >= sum(len(p.metadata["wrong_solutions"]) for p in problems) - 1


def _wrong_program(problem, text: str) -> str:
    for w in problem.metadata["wrong_solutions"]:
        if text in (format_response(w), format_response(w, refine=True)):
            return w
    raise AssertionError(f"not a wrong program of {problem.id}: {text!r}")


def test_skill_rate_matches_its_probability(problems):
    obs = _generate_observations(problems, n_per_problem=100)
    by_statement = {p.statement: p for p in problems}
    agent = SimulatedAgent("s", skill=0.3, refine_skill=0.0, seed=11, problems=problems)
    hits = sum(_is_reference(by_statement[o["statement"]], g.text)
               for o, g in zip(obs, agent.generate(obs), strict=True))
    assert 0.22 < hits / len(obs) < 0.38   # 400 draws: sd of the rate is 0.023


def test_correct_parent_stays_correct(problems, executor):
    writer = SimulatedAgent("w", skill=1.0, refine_skill=1.0, seed=0, problems=problems)
    obs = _refine_observations(problems, executor, writer)
    for o in obs:
        assert o["parent_feedback"].startswith("Verdict: passed")
    refiner = SimulatedAgent("r", skill=0.0, refine_skill=0.0, seed=5, problems=problems)
    by_statement = {p.statement: p for p in problems}
    for _ in range(5):
        for o, g in zip(obs, refiner.generate(obs), strict=True):
            assert _is_reference(by_statement[o["statement"]], g.text)
            assert g.text.startswith("Here is the revised program.")


def test_wrong_parent_refined_by_refine_skill(problems, executor):
    writer = SimulatedAgent("w", skill=0.0, refine_skill=0.0, seed=0, problems=problems)
    obs = _refine_observations(problems, executor, writer)
    by_statement = {p.statement: p for p in problems}
    for o in obs:   # the parents are wrong programs (one of them passes the public tests)
        p = by_statement[o["statement"]]
        assert _norm(o["parent_code"]) in {_norm(w) for w in p.metadata["wrong_solutions"]}
    fixer = SimulatedAgent("f", skill=0.0, refine_skill=1.0, seed=2, problems=problems)
    assert all(_is_reference(by_statement[o["statement"]], g.text)
               for o, g in zip(obs, fixer.generate(obs), strict=True))
    stuck = SimulatedAgent("s", skill=1.0, refine_skill=0.0, seed=2, problems=problems)
    for o, g in zip(obs, stuck.generate(obs), strict=True):
        p = by_statement[o["statement"]]
        program = _wrong_program(p, g.text)
        if len(p.metadata["wrong_solutions"]) > 1:   # "another" wrong program: not the parent
            assert _norm(program) != _norm(o["parent_code"])


def test_foreign_parent_judged_by_its_feedback(problems):
    obs = _generate_observations(problems)[0]
    p = problems[0]
    agent = SimulatedAgent("s", skill=0.0, refine_skill=0.0, seed=0, problems=problems)
    foreign = "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"
    kept = agent.act({**obs, "kind": 1, "parent_code": foreign,
                      "parent_feedback": "Verdict: passed (2/2 tests passed)"})
    assert extract_code(kept).strip() == foreign.strip()
    failed = agent.act({**obs, "kind": 1, "parent_code": foreign,
                        "parent_feedback": "Verdict: wrong_answer (0/2 tests passed)"})
    assert extract_code(failed).strip() in {w.strip() for w in p.metadata["wrong_solutions"]}


def test_real_search_with_perfect_agent_solves_every_problem(problems, executor):
    agent = SimulatedAgent("s", skill=1.0, refine_skill=1.0, seed=0, problems=problems)
    search = BatchedSearch(problems, ["s"], budget=2, executor=executor, seed=0)
    finished = search.run(lambda _a, batch: agent.generate(batch))
    assert len(finished) == len(problems)
    for fin in finished:
        assert [n.private["verdict"] for n in fin.tree.nodes()] == ["passed", "passed"]


def test_spec_parsing_and_make_agent(problems):
    assert parse_spec("skill=0.5, refine=0.6,seed=3,name=x") == {
        "skill": 0.5, "refine_skill": 0.6, "seed": 3, "name": "x"}
    agent = make_agent("simulated:skill=0.25,refine=0.75", name="coder_0", seed=4, problems=problems)
    assert isinstance(agent, SimulatedAgent)
    assert (agent.name, agent.skill, agent.refine_skill) == ("coder_0", 0.25, 0.75)
    # a seed in the spec wins over the caller's
    a = from_spec("skill=0.5,refine=0.5,seed=9", seed=1, problems=problems)
    b = SimulatedAgent("x", 0.5, 0.5, seed=9, problems=problems)
    obs = _generate_observations(problems, 4)
    assert [g.text for g in a.generate(obs)] == [g.text for g in b.generate(obs)]
    with pytest.raises(ValueError, match="skill must be a number"):
        parse_spec("skill=high")
    with pytest.raises(ValueError, match="keys skill, refine, seed, name"):
        parse_spec("temperature=0.3")
    with pytest.raises(ValueError, match=r"skill must be a probability in \[0, 1\]"):
        SimulatedAgent("x", skill=1.5)
    with pytest.raises(TypeError, match="no option"):
        from_spec("skill=0.5", temperature=1.0)


def test_problem_without_pool_is_an_error(problems):
    from dataclasses import replace

    bare = replace(problems[0], id="bare", metadata={})
    with pytest.raises(ValueError, match="'bare' has no metadata\\['reference_solution'\\]"):
        pool_programs(bare)
    lone = replace(problems[0], id="lone", metadata={
        "reference_solution": problems[0].metadata["reference_solution"]})
    assert len(pool_programs(lone)) == 2   # the reference and the do-nothing fallback

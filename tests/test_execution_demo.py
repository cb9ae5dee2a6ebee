"""Every bundled demo problem: the reference solution passes, each wrong solution fails."""

from __future__ import annotations

import pytest

from mars2_env.execution import Executor, Verdict, format_feedback
from mars2_env.problems import load_problems

PROBLEMS = load_problems("builtin:demo")


@pytest.fixture(scope="module")
def judged():
    """(problem id, program index) -> result; index 0 is the reference, then the wrong ones."""
    items, keys = [], []
    for p in PROBLEMS:
        for k, code in enumerate([p.metadata["reference_solution"]] + list(p.metadata["wrong_solutions"])):
            items.append((p, code))
            keys.append((p.id, k))
    with Executor(max_workers=2) as ex:
        return dict(zip(keys, ex.run_many(items, tests="all", stop_on_first_failure=True), strict=True))


def test_demo_set_covers_every_kind():
    assert len(PROBLEMS) >= 24
    assert {p.kind for p in PROBLEMS} == {"stdin", "functional", "assert"}


@pytest.mark.parametrize("problem", PROBLEMS, ids=[p.id for p in PROBLEMS])
def test_reference_passes_and_wrong_solutions_fail(judged, problem):
    ref = judged[(problem.id, 0)]
    assert ref.verdict == Verdict.PASSED, format_feedback(ref)
    assert (ref.passed, ref.reward) == (len(problem.tests), 1.0)
    wrong = problem.metadata["wrong_solutions"]
    tags = problem.metadata.get("wrong_verdicts") or [None] * len(wrong)
    assert wrong and len(tags) == len(wrong)
    for k, tag in enumerate(tags, start=1):
        r = judged[(problem.id, k)]
        assert r.verdict != Verdict.PASSED and r.reward < 1.0, f"wrong solution {k} passed"
        if tag is not None:
            assert r.verdict == Verdict(tag), f"wrong solution {k}: {format_feedback(r)}"

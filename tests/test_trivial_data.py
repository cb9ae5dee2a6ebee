"""`builtin:trivial` (problems the embedded 135M model can solve sometimes) and its demo subset:
well-formed rows, a builder that reproduces them, and the measured base solve rates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mars2_env.problems import load_problems

DATA = Path(__file__).resolve().parents[1] / "mars2_env" / "data"


@pytest.fixture(scope="module")
def rates() -> dict:
    return json.loads((DATA / "trivial_rates.json").read_text())


def test_trivial_set_is_large_and_covers_every_kind():
    problems = load_problems("builtin:trivial")
    assert len(problems) >= 40
    kinds = {p.kind for p in problems}
    assert kinds == {"stdin", "functional", "assert"}
    for p in problems:
        assert p.public_tests and p.private_tests, p.id
        assert p.metadata["reference_solution"] and p.metadata["wrong_solutions"], p.id
        assert p.title and p.statement


def test_builder_reproduces_the_files_and_every_reference_passes():
    res = subprocess.run([sys.executable, str(DATA / "build_trivial.py"), "--check"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def test_measured_rates_are_in_the_rows_and_span_easy_to_hard(rates):
    problems = load_problems("builtin:trivial")
    setting = rates["demo_setting"]
    measured = rates["settings"][setting]
    assert measured["samples"] >= 8
    by_id = {p.id: p for p in problems}
    assert set(measured["solved"]) == set(by_id)
    values = []
    for pid, solved in measured["solved"].items():
        rate = solved / measured["samples"]
        assert by_id[pid].metadata["base_solve_rate"][setting] == pytest.approx(rate, abs=1e-4)
        values.append(rate)
    assert min(values) == 0.0 and max(values) >= 0.5          # from never to often
    assert sum(0.05 <= v <= 0.4 for v in values) >= 10        # enough for a learning split


def test_demo_subset_is_problems_the_model_solves_sometimes(rates):
    demo = load_problems("builtin:trivial_demo")
    full = {p.id: p for p in load_problems("builtin:trivial")}
    setting = rates["demo_setting"]
    assert 6 <= len(demo) <= 12
    for p in demo:
        assert p.to_dict() == full[p.id].to_dict()
        assert 0.0 < p.metadata["base_solve_rate"][setting] < 1.0

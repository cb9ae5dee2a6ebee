"""Diversity maths (mars2_env.diversity) against hand computations and brute-force enumeration."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mars2_env.diversity import (
    cluster_sizes,
    comparable_problems,
    correct_solutions,
    da_curve,
    distinct_algorithms_at_k,
    effective_algorithms,
    nauadc,
    rank_table,
    vendi_score_from_features,
    vendi_score_from_kernel,
)
from mars2_env.tree import SearchTree


def brute_force_da(sizes: list[int], k: int) -> Fraction:
    """Mean number of distinct labels over every K-subset of the items (exact)."""
    labels = [c for c, s in enumerate(sizes) for _ in range(s)]
    subsets = list(itertools.combinations(range(len(labels)), k))
    total = sum(len({labels[i] for i in sub}) for sub in subsets)
    return Fraction(total, len(subsets))


# ----------------------------------------------------------------------------- DA@K


def test_da_all_distinct_counts_draws():
    assert distinct_algorithms_at_k([1, 1, 1], 1) == pytest.approx(1.0)
    assert distinct_algorithms_at_k([1, 1, 1], 2) == pytest.approx(2.0)
    assert distinct_algorithms_at_k([1, 1, 1], 3) == pytest.approx(3.0)


def test_da_single_cluster_is_one():
    for k in range(1, 6):
        assert distinct_algorithms_at_k([3], k) == pytest.approx(1.0)


def test_da_two_one_by_hand():
    # DA@2 = (1 - C(1,2)/C(3,2)) + (1 - C(2,2)/C(3,2)) = 1 + (1 - 1/3) = 5/3
    assert distinct_algorithms_at_k([2, 1], 2) == pytest.approx(5 / 3, abs=1e-12)
    assert distinct_algorithms_at_k([2, 1], 1) == pytest.approx(1.0)
    assert distinct_algorithms_at_k([2, 1], 3) == pytest.approx(2.0)
    # K beyond n: every item drawn, so the number of clusters (Lee et al.'s fixed K range)
    assert distinct_algorithms_at_k([2, 1], 10) == pytest.approx(2.0)


@pytest.mark.parametrize("sizes", [[2, 1], [3, 2, 1, 1], [4, 4], [5, 1, 1, 1], [2, 2, 2, 1, 1]])
def test_da_matches_enumeration_of_all_subsets(sizes):
    n = sum(sizes)
    for k in range(1, n + 1):
        assert distinct_algorithms_at_k(sizes, k) == pytest.approx(
            float(brute_force_da(sizes, k)), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4),
       st.integers(min_value=1, max_value=16))
def test_da_matches_enumeration_property(sizes, k):
    k = min(k, sum(sizes))
    assert distinct_algorithms_at_k(sizes, k) == pytest.approx(
        float(brute_force_da(sizes, k)), abs=1e-12)


def test_da_large_n_is_stable_and_exact():
    sizes, k = [600, 399, 1], 150
    n = sum(sizes)
    exact = sum(1 - Fraction(math.comb(n - s, k), math.comb(n, k)) for s in sizes)
    got = distinct_algorithms_at_k(sizes, k)
    assert math.isfinite(got)
    assert got == pytest.approx(float(exact), rel=1e-10)
    # the singleton is seen with probability K/n
    assert got == pytest.approx(2 + k / n, rel=1e-10)


def test_da_curve_is_monotone_and_ends_at_cluster_count():
    curve = da_curve([3, 2, 1, 1])
    assert curve.shape == (7,)
    assert np.all(np.diff(curve) >= -1e-12)
    assert curve[0] == pytest.approx(1.0) and curve[-1] == pytest.approx(4.0)
    assert da_curve([3], k_max=4).tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("bad", [[], [0], [2, -1], [1.5], [[1, 2]]])
def test_bad_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match="cluster sizes"):
        distinct_algorithms_at_k(bad, 1)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_is_rejected(k):
    with pytest.raises(ValueError, match="k must be"):
        distinct_algorithms_at_k([2, 1], k)


# ----------------------------------------------------------------------------- EA, NAUADC


def test_effective_algorithms_by_hand():
    assert effective_algorithms([1, 1, 1]) == pytest.approx(3.0)
    assert effective_algorithms([3]) == pytest.approx(1.0)
    assert effective_algorithms([5, 5]) == pytest.approx(2.0)
    # p = (2/3, 1/3): H = -(2/3 ln 2/3 + 1/3 ln 1/3) = 0.636514...
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert effective_algorithms([2, 1]) == pytest.approx(math.exp(h))
    assert effective_algorithms([2, 1]) == pytest.approx(1.889882, abs=1e-6)


def test_nauadc_by_hand():
    # curve [1, 2, 3]: trapezoids (1+2)/2 + (2+3)/2 = 4 over width 2 -> 2 = (n + 1) / 2
    assert nauadc([1, 1, 1]) == pytest.approx(2.0)
    # curve [1, 5/3, 2]: (1 + 5/3)/2 + (5/3 + 2)/2 = 19/6 over width 2 -> 19/12
    assert nauadc([2, 1]) == pytest.approx(19 / 12)
    assert nauadc([3]) == pytest.approx(1.0)
    assert nauadc([1]) == pytest.approx(1.0)  # no range: DA@1
    # Lee et al.'s fixed K = 1..25: flat at 2 clusters after K = 3
    curve = [1.0, 5 / 3] + [2.0] * 23
    assert nauadc([2, 1], k_max=25) == pytest.approx(float(np.trapezoid(curve)) / 24)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=6))
def test_nauadc_bounds(sizes):
    n, m = sum(sizes), len(sizes)
    value = nauadc(sizes)
    assert 1.0 - 1e-12 <= value <= m + 1e-12
    assert value <= (n + 1) / 2 + 1e-12
    if m == n:  # all distinct: the curve is the line DA@K = K
        assert value == pytest.approx((n + 1) / 2)
    assert 1.0 - 1e-12 <= effective_algorithms(sizes) <= m + 1e-12


def test_cluster_sizes_counts_noise_as_singletons():
    assert cluster_sizes(["a", "b", "a", -1, -1]) == [2, 1, 1, 1]
    assert cluster_sizes(np.array([0, 0, 1, 0])) == [3, 1]
    assert cluster_sizes([]) == []


# ----------------------------------------------------------------------------- Vendi


def test_vendi_identical_features_is_one():
    x = np.tile(np.array([[0.3, -1.2, 2.0, 0.5]]), (6, 1))
    assert vendi_score_from_features(x) == pytest.approx(1.0, abs=1e-9)


def test_vendi_orthogonal_features_is_n():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    scales = np.array([1.0, 3.0, 0.5, 7.0, 2.0])[:, None]
    assert vendi_score_from_features(q[:5] * scales) == pytest.approx(5.0, abs=1e-9)
    assert vendi_score_from_features(np.eye(3)) == pytest.approx(3.0, abs=1e-12)


def test_vendi_two_orthogonal_groups_equals_ea_of_group_sizes():
    # eigenvalues 2/3 and 1/3, like the cluster sizes [2, 1]
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 5.0]])
    assert vendi_score_from_features(x) == pytest.approx(effective_algorithms([2, 1]))
    kernel = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert vendi_score_from_kernel(kernel) == pytest.approx(effective_algorithms([2, 1]))


def test_vendi_is_between_one_and_n_and_uses_either_gram_form():
    rng = np.random.default_rng(1)
    wide, tall = rng.normal(size=(4, 50)), rng.normal(size=(50, 4))
    assert 1.0 < vendi_score_from_features(wide) < 4.0
    assert 1.0 < vendi_score_from_features(tall) <= 4.0 + 1e-9  # rank <= d = 4


def test_vendi_rejects_bad_input():
    with pytest.raises(ValueError, match="all-zero row"):
        vendi_score_from_features(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="2-D"):
        vendi_score_from_features(np.zeros(3))
    with pytest.raises(ValueError, match="symmetric"):
        vendi_score_from_kernel(np.array([[1.0, 0.5], [0.0, 1.0]]))


# ----------------------------------------------------------------------------- ranks


def test_rank_table_ties_share_the_mean_rank():
    scores = {"A": {"x": 3.0, "y": 1.0}, "B": {"x": 3.0, "y": 2.0}, "C": {"x": 1.0, "y": 3.0}}
    table = rank_table(scores, higher_is_better=True)
    assert table.metrics == ["x", "y"]
    assert table.ranks["A"] == {"x": 1.5, "y": 3.0}
    assert table.ranks["B"] == {"x": 1.5, "y": 2.0}
    assert table.ranks["C"] == {"x": 3.0, "y": 1.0}
    assert table.average_rank == {"A": 2.25, "B": 1.75, "C": 2.0}


def test_rank_table_direction_per_metric_and_missing_values():
    scores = {"A": {"loss": 0.1, "div": 2.0}, "B": {"loss": 0.3, "div": float("nan")},
              "C": {"loss": 0.2}}
    table = rank_table(scores, higher_is_better={"loss": False})
    assert [table.ranks[m]["loss"] for m in "ABC"] == [1.0, 3.0, 2.0]
    assert table.ranks["A"]["div"] == 1.0
    assert math.isnan(table.ranks["B"]["div"]) and math.isnan(table.ranks["C"]["div"])
    assert table.average_rank == {"A": 1.0, "B": 3.0, "C": 2.0}


def test_rank_table_three_way_tie():
    table = rank_table({"A": {"m": 1.0}, "B": {"m": 1.0}, "C": {"m": 1.0}, "D": {"m": 0.0}})
    assert [table.ranks[m]["m"] for m in "ABCD"] == [2.0, 2.0, 2.0, 4.0]


# ----------------------------------------------------------------------------- protocol


def _summary(ok: bool) -> dict:
    return {"verdict": "passed" if ok else "wrong_answer", "passed": int(ok), "total": 1,
            "reward": float(ok)}


def _tree(pid: str, nodes: list[tuple[str, bool, bool]]) -> SearchTree:
    """nodes: (code, public passed, private passed), all children of the root."""
    tree = SearchTree(problem_id=pid)
    for code, pub, priv in nodes:
        tree.add(0, "coder", code=code, reward=float(pub), public=_summary(pub),
                 private=_summary(priv))
    return tree


def test_correct_solutions_selects_judged_programs():
    t1 = _tree("p1", [("print(1)", True, True), ("print(2)", True, False),
                      ("print(3)", False, True), ("   ", True, True)])
    t2 = _tree("p2", [("print(9)", False, False)])
    t3 = _tree("p1", [("print(1)", True, True), ("print( 4 )", True, True)])
    got = correct_solutions([t1, t2, t3])
    assert got == {"p1": ["print(1)", "print(3)", "print(1)", "print( 4 )"], "p2": []}
    assert correct_solutions([t1, t3], dedupe=True) == {"p1": ["print(1)", "print(3)",
                                                              "print( 4 )"]}
    assert correct_solutions([t1], judge="public") == {"p1": ["print(1)", "print(2)"]}
    assert correct_solutions([t1], judge="all") == {"p1": ["print(1)"]}
    # the serialised form reads the same
    assert correct_solutions([t1.to_dict(), t2.to_dict()]) == {"p1": ["print(1)", "print(3)"],
                                                               "p2": []}


def test_correct_solutions_needs_private_results_to_judge_on_them():
    tree = SearchTree(problem_id="p")
    tree.add(0, "coder", code="print(1)", reward=1.0, public=_summary(True), private=None)
    with pytest.raises(ValueError, match="no private-test result"):
        correct_solutions([tree])
    assert correct_solutions([tree], judge="public") == {"p": ["print(1)"]}
    with pytest.raises(ValueError, match="judge must be"):
        correct_solutions([tree], judge="hidden")


def test_comparable_problems_keeps_problems_every_method_solved():
    runs = {"A": {"p1": ["a"], "p2": ["b"], "p3": []},
            "B": {"p1": ["c", "d"], "p3": ["e"], "p4": ["f"]},
            "C": {"p1": ["g"], "p2": ["h"], "p3": ["i"]}}
    assert comparable_problems(runs) == ["p1"]
    assert comparable_problems({"A": runs["A"]}) == ["p1", "p2"]
    assert comparable_problems({}) == []

"""pass@k (unbiased estimator), latest-wins answer selection, Pass@N."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mars2_env.metrics import pass_at_1_mcts, pass_at_k, pass_at_n, select_latest_wins
from mars2_env.tree import SearchTree


@pytest.mark.parametrize("n,c,k,expected", [
    (5, 0, 1, 0.0), (5, 5, 1, 1.0), (5, 2, 1, 0.4), (5, 2, 2, 0.7), (5, 2, 4, 1.0),
    (10, 1, 10, 1.0), (1, 1, 1, 1.0), (1, 0, 1, 0.0)])
def test_pass_at_k_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 80).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_equals_combinatorial_form(nck):
    n, c, k = nck
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    got = pass_at_k(n, c, k)
    assert got == pytest.approx(exact, abs=1e-12)
    assert 0.0 <= got <= 1.0
    if c < n and k < n:
        assert pass_at_k(n, c, k + 1) >= got - 1e-12      # more tries never hurt


def test_pass_at_k_stable_for_large_n():
    assert pass_at_k(1_000_000, 1, 1) == pytest.approx(1e-6, rel=1e-9)
    assert pass_at_k(10_000, 100, 50) == pytest.approx(
        1 - math.comb(9_900, 50) / math.comb(10_000, 50), rel=1e-9)
    assert pass_at_k(np.int64(5), np.int64(2), 1) == pytest.approx(0.4)


@pytest.mark.parametrize("args,exc,match", [
    ((5, 2, 6), ValueError, "k must be"), ((5, 2, 0), ValueError, "k must be"),
    ((5, 6, 1), ValueError, "c must be"), ((5, -1, 1), ValueError, "c must be"),
    ((0, 0, 1), ValueError, "n must be"), ((5.0, 2, 1), TypeError, "n must be an int"),
    ((5, True, 1), TypeError, "c must be an int")])
def test_pass_at_k_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        pass_at_k(*args)


def result(reward, verdict=None):
    return {"verdict": verdict or ("passed" if reward == 1.0 else "wrong_answer"),
            "passed": int(reward * 4), "total": 4, "reward": reward}


def scored_tree(public_rewards, private_verdicts):
    t = SearchTree()
    for pub, priv in zip(public_rewards, private_verdicts, strict=True):
        t.add(0, "a", reward=pub if pub is not None else 0.0,
              public=None if pub is None else result(pub),
              private=None if priv is None else result(1.0 if priv == "passed" else 0.0, priv))
    return t


def test_latest_wins_ties_to_latest():
    t = scored_tree([0.5, 1.0, 0.25, 1.0, 0.75], ["passed", "wrong_answer", "passed",
                                                  "passed", "passed"])
    assert select_latest_wins(t).id == 4
    assert pass_at_1_mcts(t)
    t2 = scored_tree([0.5, 1.0, 1.0], ["passed", "passed", "wrong_answer"])
    assert select_latest_wins(t2).id == 3 and not pass_at_1_mcts(t2)
    assert pass_at_n(t2)


def test_latest_wins_uses_public_score_not_reward():
    t = SearchTree()
    t.add(0, "a", reward=1.0, public=result(0.25))
    t.add(0, "a", reward=0.0, public=result(0.5))
    assert select_latest_wins(t).id == 2
    t.add(0, "a", reward=0.75)                      # no public result: its reward stands in
    assert select_latest_wins(t).id == 3
    assert select_latest_wins(SearchTree()) is None


def test_pass_at_n():
    assert not pass_at_n(scored_tree([0.5, 0.2], ["wrong_answer", "time_limit"]))
    assert pass_at_n(scored_tree([0.5, 0.2], ["wrong_answer", "passed"]))
    assert not pass_at_n(scored_tree([0.5], [None]))
    assert pass_at_n(scored_tree([1.0, 0.0], [None, None]), judge="public")
    assert not pass_at_n(SearchTree())
    both = scored_tree([1.0, 0.5], ["wrong_answer", "passed"])
    assert pass_at_n(both, judge="public") and pass_at_n(both, judge="private")
    assert not pass_at_n(both, judge="all")
    assert pass_at_n(scored_tree([1.0], ["passed"]), judge="all")
    with pytest.raises(ValueError, match="judge"):
        pass_at_n(SearchTree(), judge="secret")

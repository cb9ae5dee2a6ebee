"""Overlong penalty, tree-consistent shaping (Eqs. 3–5) and tree-level advantages (Eq. 8)."""

from __future__ import annotations

import math
import pickle
import statistics

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mars2_env.rewards import (
    TreeAdvantages,
    node_records,
    overlong_penalty,
    shape_rewards,
    tree_advantages,
)
from mars2_env.tree import SearchTree

EPS = 1e-6


def build(spec):
    """spec: list of (parent, agent, reward) in expansion order."""
    t = SearchTree()
    for parent, agent, r in spec:
        t.add(parent, agent, reward=r)
    return t


def grpo(values, eps=EPS):
    m, s = statistics.fmean(values), statistics.stdev(values)
    return [(v - m) / (s + eps) for v in values]


# ---------------------------------------------------------------- overlong penalty


@pytest.mark.parametrize("length,expected", [
    (0, 0.0), (80, 0.0), (85, -0.25), (90, -0.5), (100, -1.0), (101, -1.0), (10_000, -1.0)])
def test_overlong_penalty(length, expected):
    assert overlong_penalty(length, max_length=100, buffer_length=20) == pytest.approx(expected)


def test_overlong_penalty_no_buffer_and_errors():
    assert overlong_penalty(100, 100, 0) == 0.0
    assert overlong_penalty(101, 100, 0) == -1.0
    with pytest.raises(ValueError, match="buffer_length"):
        overlong_penalty(10, 100, 101)
    with pytest.raises(ValueError, match="max_length"):
        overlong_penalty(10, 0, 0)
    with pytest.raises(ValueError, match="length"):
        overlong_penalty(-1, 100, 10)
    with pytest.raises(TypeError, match="length"):
        overlong_penalty(1.5, 100, 10)


# ---------------------------------------------------------------- hand-computed trees


def test_lone_root_child():
    t = build([(0, "a", 0.7)])
    assert shape_rewards(t) == {1: 0.7}            # no siblings, no parent reward: g = 0
    adv = tree_advantages(t)
    assert adv == {1: 0.0} and adv.degenerate


def test_three_root_children():
    t = build([(0, "a", 0.2), (0, "a", 0.5), (0, "b", 0.8)])
    shaped = shape_rewards(t, lam=0.5, beta=0.5)
    # baselines are the sibling means 0.65, 0.5, 0.35
    assert shaped == pytest.approx({1: -0.025, 2: 0.5, 3: 1.025})
    adv = tree_advantages(t)
    assert not adv.degenerate
    # mean 0.5, sample std 0.525
    assert adv == pytest.approx({1: -0.525 / (0.525 + EPS), 2: 0.0, 3: 0.525 / (0.525 + EPS)})


def test_parent_with_one_child():
    t = build([(0, "a", 0.4), (1, "a", 0.9)])
    shaped = shape_rewards(t, lam=0.5, beta=0.5)
    assert shaped == pytest.approx({1: 0.4, 2: 0.9 + 0.5 * (0.9 - 0.4)})   # b = r_parent
    adv = tree_advantages(t)
    assert adv == pytest.approx({1: -0.375 / (0.75 / math.sqrt(2) + EPS),
                                 2: 0.375 / (0.75 / math.sqrt(2) + EPS)})


def test_two_agents_interleaved():
    t = build([(0, "a", 0.0), (0, "b", 1.0), (1, "b", 0.5), (1, "a", 1.0), (2, "a", 0.5)])
    shaped = shape_rewards(t, lam=0.5, beta=0.5)
    # 1: root child, sibling mean 1.0 → g = -1; 2: sibling mean 0 → g = 1
    # 3: b = .5*0 + .5*1.0 = .5 → g = 0; 4: b = .5*0 + .5*.5 = .25 → g = .75
    # 5: only child of 2: b = r_2 = 1 → g = -.5
    want = {1: -0.5, 2: 1.5, 3: 0.5, 4: 1.375, 5: 0.25}
    assert shaped == pytest.approx(want)
    adv = tree_advantages(t, lam=0.5, beta=0.5)
    assert list(adv.values()) == pytest.approx(grpo(list(want.values())))
    rows = node_records(t)
    assert [r["node_id"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["agent"] for r in rows] == ["a", "b", "b", "a", "a"]
    assert [r["parent"] for r in rows] == [0, 0, 1, 1, 2]
    assert [r["reward"] for r in rows] == [0.0, 1.0, 0.5, 1.0, 0.5]
    assert [r["shaped_reward"] for r in rows] == pytest.approx(list(want.values()))
    assert [r["advantage"] for r in rows] == pytest.approx(list(adv.values()))
    # the advantage is normalised over both agents together, not per agent
    a_rows = [r["advantage"] for r in rows if r["agent"] == "a"]
    assert sum(a_rows) != pytest.approx(0.0)


def test_lam_weights_the_siblings_as_in_the_paper():
    # Eq. 3: b = (1 - λ) r_parent + λ mean(siblings); raising λ leans on the siblings
    t = build([(0, "a", 0.2), (1, "a", 0.6), (1, "b", 1.0)])
    only_parent = shape_rewards(t, lam=0.0, beta=1.0)
    only_sibs = shape_rewards(t, lam=1.0, beta=1.0)
    assert only_parent[2] == pytest.approx(0.6 + (0.6 - 0.2))
    assert only_sibs[2] == pytest.approx(0.6 + (0.6 - 1.0))
    # λ = 0.3 by hand: node 2: b = 0.7 * 0.2 + 0.3 * 1.0 = 0.44 -> 0.6 + 0.5 * 0.16 = 0.68
    #                  node 3: b = 0.7 * 0.2 + 0.3 * 0.6 = 0.32 -> 1.0 + 0.5 * 0.68 = 1.34
    assert shape_rewards(t, lam=0.3, beta=0.5) == pytest.approx({1: 0.2, 2: 0.68, 3: 1.34})


def test_lam_hand_computed_tree_with_root_siblings_and_an_only_child():
    # root children 1, 2, 3; node 4 only child of 1; nodes 5, 6 children of 2; λ = 0.25, β = 0.4
    t = build([(0, "a", 0.0), (0, "b", 0.5), (0, "a", 1.0), (1, "b", 0.25), (2, "a", 1.0),
               (2, "b", 0.0)])
    want = {
        1: 0.0 + 0.4 * (0.0 - 0.75),                       # root child: sibling mean (0.5+1)/2
        2: 0.5 + 0.4 * (0.5 - 0.5),                        # sibling mean (0+1)/2
        3: 1.0 + 0.4 * (1.0 - 0.25),                       # sibling mean (0+0.5)/2
        4: 0.25 + 0.4 * (0.25 - 0.0),                      # only child: b = r_parent = 0
        5: 1.0 + 0.4 * (1.0 - (0.75 * 0.5 + 0.25 * 0.0)),  # b = (1-λ) r_2 + λ r_6
        6: 0.0 + 0.4 * (0.0 - (0.75 * 0.5 + 0.25 * 1.0)),  # b = (1-λ) r_2 + λ r_5
    }
    shaped = shape_rewards(t, lam=0.25, beta=0.4)
    assert shaped == pytest.approx(want, abs=1e-12)
    adv = tree_advantages(t, lam=0.25, beta=0.4)
    assert list(adv.values()) == pytest.approx(grpo(list(want.values())), abs=1e-12)


def test_old_alpha_is_refused_with_what_changed():
    t = build([(0, "a", 0.2), (1, "a", 0.6)])
    for fn in (shape_rewards, tree_advantages, node_records):
        with pytest.raises(TypeError, match=r"lam = 1 - alpha") as err:
            fn(t, alpha=0.5)
        assert "weights the siblings" in str(err.value)
        with pytest.raises(TypeError, match="by name"):   # old positional (tree, alpha, beta)
            fn(t, 0.5, 0.5)


def test_beta_zero_is_plain_grpo():
    t = build([(0, "a", 0.1), (0, "b", 0.9), (1, "a", 0.3), (3, "b", 1.0)])
    assert shape_rewards(t, beta=0.0) == {1: 0.1, 2: 0.9, 3: 0.3, 4: 1.0}
    assert list(tree_advantages(t, beta=0.0).values()) == pytest.approx(grpo([0.1, 0.9, 0.3, 1.0]))


def test_all_equal_is_degenerate():
    t = build([(0, "a", 0.3), (0, "b", 0.3), (1, "a", 0.3), (1, "a", 0.3), (3, "b", 0.3)])
    adv = tree_advantages(t)
    assert adv.degenerate and set(adv.values()) == {0.0}
    assert tree_advantages(SearchTree()) == {} and tree_advantages(SearchTree()).degenerate


def test_rewards_override():
    t = build([(0, "a", 1.0), (0, "b", 1.0), (1, "a", 1.0)])
    penalised = {2: 1.0 - 0.5}                       # node 2 overlong: r + penalty
    assert shape_rewards(t, rewards=penalised) == shape_rewards(
        build([(0, "a", 1.0), (0, "b", 0.5), (1, "a", 1.0)]))
    rows = node_records(t, rewards={1: -0.5})
    assert rows[0]["reward"] == -0.5 and rows[1]["reward"] == 1.0
    assert not tree_advantages(t, rewards=penalised).degenerate
    with pytest.raises(KeyError, match="node 7"):
        shape_rewards(t, rewards={7: 0.0})
    with pytest.raises(KeyError, match="node 0"):
        shape_rewards(t, rewards={0: 0.0})
    with pytest.raises(ValueError, match="finite"):
        tree_advantages(t, rewards={1: float("nan")})


def test_argument_checks():
    t = build([(0, "a", 0.3)])
    with pytest.raises(ValueError, match="lam"):
        shape_rewards(t, lam=1.5)
    with pytest.raises(ValueError, match="lam"):
        shape_rewards(t, lam=float("nan"))
    with pytest.raises(ValueError, match="beta"):
        shape_rewards(t, beta=-0.1)
    with pytest.raises(ValueError, match="eps"):
        tree_advantages(t, eps=-1.0)


def test_tree_advantages_is_a_dict_that_pickles():
    t = build([(0, "a", 0.3), (0, "a", 0.6)])
    adv = tree_advantages(t)
    assert isinstance(adv, dict) and isinstance(adv, TreeAdvantages)
    back = pickle.loads(pickle.dumps(adv))
    assert back == adv and back.degenerate is False


# ---------------------------------------------------------------- properties


@st.composite
def trees(draw, min_nodes=1):
    t = SearchTree()
    for _ in range(draw(st.integers(min_nodes, 25))):
        t.add(draw(st.integers(0, len(t))), draw(st.sampled_from(["a", "b", "c"])),
              reward=draw(st.floats(0, 1)))
    return t


def slow_shape(t, lam, beta):
    """Eqs. 3–5 written out per node, the long way, as the reference."""
    out = {}
    for n in t.nodes():
        sibs = [s.reward for s in t.children(n.parent) if s.id != n.id]
        if n.parent == 0:
            g = 0.0 if not sibs else n.reward - statistics.fmean(sibs)
        else:
            rp = t[n.parent].reward
            b = rp if not sibs else (1 - lam) * rp + lam * statistics.fmean(sibs)
            g = n.reward - b
        out[n.id] = n.reward + beta * g
    return out


@settings(max_examples=80, deadline=None)
@given(trees(), st.floats(0, 1), st.floats(0, 2))
def test_shaping_matches_the_equations(t, lam, beta):
    assert shape_rewards(t, lam=lam, beta=beta) == pytest.approx(slow_shape(t, lam, beta),
                                                                 abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(trees())
def test_beta_zero_property(t):
    assert shape_rewards(t, beta=0.0) == {n.id: n.reward for n in t.nodes()}
    adv = tree_advantages(t, beta=0.0)
    rewards = [n.reward for n in t.nodes()]
    if len(t) >= 2 and max(rewards) - min(rewards) > 1e-9:
        assert list(adv.values()) == pytest.approx(grpo(rewards), abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(trees(min_nodes=2), st.floats(0, 1), st.floats(0, 1))
def test_advantages_are_normalised(t, lam, beta):
    adv = tree_advantages(t, lam=lam, beta=beta)
    assert set(adv) == {n.id for n in t.nodes()}
    vals = list(adv.values())
    if adv.degenerate:
        assert vals == [0.0] * len(vals)
    else:
        assert statistics.fmean(vals) == pytest.approx(0.0, abs=1e-9)
        assert statistics.stdev(vals) == pytest.approx(adv.std / (adv.std + EPS), rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(trees(min_nodes=2), st.floats(-0.5, 0.5))
def test_advantages_ignore_a_constant_shift(t, shift):
    shifted = {n.id: n.reward + shift for n in t.nodes()}
    a, b = tree_advantages(t), tree_advantages(t, rewards=shifted)
    assume(not a.degenerate and a.std > 1e-3)
    assert b == pytest.approx(dict(a), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(trees(), st.floats(0, 1))
def test_equal_rewards_always_degenerate(t, r):
    adv = tree_advantages(t, rewards={n.id: r for n in t.nodes()})
    assert adv.degenerate and all(v == 0.0 for v in adv.values())

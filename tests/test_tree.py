"""SearchTree: building, navigation, and the lossless, versioned trees.jsonl dict form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mars2_env.tree import SCHEMA_VERSION, Node, SearchTree, TreeFormatError


def small_tree() -> SearchTree:
    t = SearchTree(problem_id="p1", metadata={"strategy": "mars2", "problem": {"title": "x"}})
    t.add(0, "a", response="r1", code="print(1)", reward=0.5,
          public={"verdict": "wrong_answer", "passed": 1, "total": 2, "reward": 0.5},
          private={"verdict": "passed", "passed": 3, "total": 3, "reward": 1.0},
          feedback="fb", token_ids=[1, 2, 3], logprobs=[-0.1, -2.5, -0.0],
          metadata={"finish_reason": "stop", "nested": {"k": [1, 2]}})
    t.add(0, "b", reward=0.0)
    t.add(1, "b", reward=1.0, code="print(2)")
    t.add(3, "a", reward=0.25)
    return t


def test_root_and_add_fields():
    t = small_tree()
    assert len(t) == 4
    root = t.root
    assert (root.id, root.parent, root.agent, root.depth) == (0, None, None, 0)
    n3 = t[3]
    assert (n3.id, n3.parent, n3.agent, n3.depth, n3.step, n3.reward) == (3, 1, "b", 2, 3, 1.0)
    assert t.node(4).depth == 3
    assert t[1].token_ids == [1, 2, 3] and t[1].logprobs == [-0.1, -2.5, -0.0]


def test_navigation():
    t = small_tree()
    assert [n.id for n in t.children(0)] == [1, 2]
    assert [n.id for n in t.children(1)] == [3]
    assert t.children(2) == []
    assert [n.id for n in t.path(4)] == [0, 1, 3, 4]
    assert [n.id for n in t.path(0)] == [0]
    assert [n.id for n in t.nodes()] == [1, 2, 3, 4]
    assert [n.id for n in t.nodes(agent="b")] == [2, 3]
    assert t.nodes(agent="zzz") == []
    assert t.agents == ["a", "b"]
    assert t.max_depth == 3


def test_add_validates_before_changing():
    t = small_tree()
    with pytest.raises(KeyError, match="unknown parent 9"):
        t.add(9, "a", reward=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        t.add(1, "a", reward=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        t.add(1, "a", reward=float("nan"))
    with pytest.raises(ValueError, match="agent"):
        t.add(1, "", reward=0.1)
    with pytest.raises(KeyError):
        t.node(5)
    assert len(t) == 4 and [c.id for c in t.children(1)] == [3]


def test_step_can_be_given():
    t = SearchTree()
    assert t.add(0, "a", step=7).step == 7
    assert t.add(0, "a").step == 2


def test_round_trip_lossless_and_schema():
    t = small_tree()
    d = t.to_dict()
    assert d["schema_version"] == SCHEMA_VERSION == 1
    assert [row["id"] for row in d["nodes"]] == [0, 1, 2, 3, 4]
    assert [row["parent"] for row in d["nodes"]] == [None, 0, 0, 1, 3]
    back = SearchTree.from_dict(json.loads(json.dumps(d)))
    assert back == t
    assert back.to_dict() == d
    assert back[1].metadata == {"finish_reason": "stop", "nested": {"k": [1, 2]}}
    assert back[1].token_ids == [1, 2, 3] and back[1].logprobs == [-0.1, -2.5, -0.0]
    assert back.problem_id == "p1" and back.metadata["strategy"] == "mars2"
    assert SearchTree.from_json(t.to_json()) == t
    # the dict is a copy: editing it does not touch the tree
    d["nodes"][1]["metadata"]["nested"]["k"].append(3)
    assert t[1].metadata["nested"]["k"] == [1, 2]


def test_round_trip_depth_10000_no_recursion():
    t = SearchTree(problem_id="deep")
    parent = 0
    for i in range(10_000):
        parent = t.add(parent, "a", reward=(i % 7) / 7).id
    assert t.max_depth == 10_000
    assert len(t.path(10_000)) == 10_001
    back = SearchTree.from_json(t.to_json())
    assert back == t and back[10_000].depth == 10_000


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d["nodes"][2].update(parent=5), "node 2.*parent"),
    (lambda d: d["nodes"][3].update(depth=7), "node 3.*depth"),
    (lambda d: d["nodes"][1].update(reward=2.0), "node 1.*reward"),
    (lambda d: d["nodes"][1].update(id=4), "node 1.*id"),
    (lambda d: d["nodes"][1].update(colour="red"), "node 1.*colour"),
    (lambda d: d["nodes"][0].update(parent=0), "node 0.*parent"),
    (lambda d: d["nodes"][1].pop("agent"), "node 1.*agent"),
    (lambda d: d["nodes"][1].update(token_ids=[1.5]), "token_ids"),
    (lambda d: d.update(nodes=[]), "nodes"),
])
def test_from_dict_rejects_bad_rows(mutate, match):
    d = small_tree().to_dict()
    mutate(d)
    with pytest.raises(TreeFormatError, match=match):
        SearchTree.from_dict(d)


def test_from_json_bad_text():
    with pytest.raises(TreeFormatError, match="not valid JSON"):
        SearchTree.from_json("{nope")


_text = st.text(max_size=20)
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                       st.floats(allow_nan=False, allow_infinity=False), _text)
_json = st.recursive(_json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)), max_leaves=8)


@st.composite
def random_trees(draw):
    t = SearchTree(problem_id=draw(_text),
                   metadata=draw(st.dictionaries(_text, _json, max_size=3)))
    for _ in range(draw(st.integers(0, 12))):
        parent = draw(st.integers(0, len(t)))
        t.add(parent, draw(st.sampled_from(["a", "b", "ü"])),
              response=draw(_text), code=draw(_text),
              reward=draw(st.floats(0, 1)),
              public=draw(st.none() | st.dictionaries(_text, _json, max_size=3)),
              feedback=draw(_text),
              token_ids=draw(st.none() | st.lists(st.integers(0, 50_000), max_size=5)),
              logprobs=draw(st.none() | st.lists(st.floats(-50, 0), max_size=5)),
              metadata=draw(st.dictionaries(_text, _json, max_size=3)))
    return t


@settings(max_examples=60, deadline=None)
@given(random_trees())
def test_round_trip_property(t):
    back = SearchTree.from_json(t.to_json())
    assert back == t
    for node in t.nodes():
        assert back.path(node.id)[-1] == node
        assert node.depth == len(t.path(node.id)) - 1


def test_node_defaults_are_independent():
    a = Node(id=1, parent=0, agent="a", depth=1, step=1)
    b = Node(id=2, parent=0, agent="a", depth=1, step=2)
    a.metadata["x"] = 1
    assert b.metadata == {}

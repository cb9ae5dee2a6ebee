"""The search tree of one problem: nodes in expansion order, array-indexed, no recursion.

Node 0 is a virtual root (no code, no agent, depth 0). Every other node is one program written
by one agent, either a fresh candidate (parent 0, "generate") or a refinement of its parent.
Node ids are the expansion order and index straight into the node list, so lookups are O(1)
and every walk (`path`, serialisation) is a loop, safe at any depth.

``trees.jsonl`` schema (``SearchTree.to_dict``), ``schema_version`` 1 — one JSON object a line::

    {"schema_version": 1,
     "problem_id": "abc123",
     "metadata": {...},                  # free dict: problem info, strategy, seed, ...
     "nodes": [                          # flat list in id order; nodes[i]["id"] == i
       {"id": 0, "parent": null, "agent": null, "depth": 0, "step": 0, ...},   # the virtual root
       {"id": 1, "parent": 0, "agent": "coder", "depth": 1, "step": 1,
        "response": "full model text", "code": "print(1)", "reward": 0.5,
        "public":  {"verdict": "wrong_answer", "passed": 1, "total": 2, "reward": 0.5} | null,
        "private": {...} | null,         # ExecutionResult.summary() dicts
        "feedback": "text shown to a refining agent",
        "token_ids": [int, ...] | null, "logprobs": [float, ...] | null,
        "metadata": {...}},
       ...]}

Every node carries all twelve keys. A parent always has a smaller id than its children, and
``depth`` equals the parent's depth plus one; `SearchTree.from_dict` checks both and raises
`TreeFormatError` naming the node and field otherwise. A reader meeting another
``schema_version`` refuses the row rather than guessing.

Any text is stored losslessly (a model may write NUL bytes or lone surrogates): lines are UTF-8
JSON with non-ASCII text as is, except a line holding a lone surrogate, which UTF-8 cannot
encode: that line is written with ``\\uXXXX`` escapes throughout (`json_line`), which every JSON
reader decodes back to the same string.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON that always encodes as UTF-8 and reads back exactly:
    readable non-ASCII text, or ``\\uXXXX`` escapes when a lone surrogate is in it."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj)
    return text

NODE_FIELDS: tuple[str, ...] = (
    "id", "parent", "agent", "depth", "step", "response", "code", "reward", "public", "private",
    "feedback", "token_ids", "logprobs", "metadata",
)


class TreeFormatError(ValueError):
    """A serialised tree does not match the schema; the message names the node and field."""


@dataclass
class Node:
    """One node of a search tree. `reward` is the raw reward in [0, 1]; `public` / `private`
    hold `ExecutionResult.summary()` dicts for the public and judging tests."""

    id: int
    parent: int | None
    agent: str | None
    depth: int
    step: int
    response: str = ""
    code: str = ""
    reward: float = 0.0
    public: dict | None = None
    private: dict | None = None
    feedback: str = ""
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def to_dict(self) -> dict[str, Any]:
        """This node as a JSON-ready dict (copies, so later edits do not leak into it)."""
        return {
            "id": self.id, "parent": self.parent, "agent": self.agent, "depth": self.depth,
            "step": self.step, "response": self.response, "code": self.code,
            "reward": self.reward,
            "public": copy.deepcopy(self.public), "private": copy.deepcopy(self.private),
            "feedback": self.feedback,
            "token_ids": None if self.token_ids is None else list(self.token_ids),
            "logprobs": None if self.logprobs is None else list(self.logprobs),
            "metadata": copy.deepcopy(self.metadata),
        }


def check_reward(reward: Any, what: str = "reward") -> float:
    """`reward` as a float, or ValueError if it is not a finite number in [0, 1]."""
    if isinstance(reward, bool) or not isinstance(reward, numbers.Real):
        raise ValueError(f"{what} must be a number in [0, 1], got {reward!r}")
    r = float(reward)
    if not (math.isfinite(r) and 0.0 <= r <= 1.0):
        raise ValueError(f"{what} must be in [0, 1], got {reward!r}")
    return r


class SearchTree:
    """All nodes of one problem's search, root first. ``tree[i]`` is node ``i``."""

    def __init__(self, problem_id: str = "", metadata: dict | None = None):
        self.problem_id = problem_id
        self.metadata: dict = {} if metadata is None else metadata
        self._nodes: list[Node] = [Node(id=0, parent=None, agent=None, depth=0, step=0)]
        self._children: list[list[int]] = [[]]

    # ------------------------------------------------------------------ building
    def add(self, parent: int, agent: str, *, response: str = "", code: str = "",
            reward: float = 0.0, public: dict | None = None, private: dict | None = None,
            feedback: str = "", token_ids: list[int] | None = None,
            logprobs: list[float] | None = None, metadata: dict | None = None,
            step: int | None = None) -> Node:
        """Append a node written by `agent` under node `parent` and return it.

        `step` defaults to the new node's id (one expansion per step); a batched search may
        pass its round number instead. Inputs are checked before anything changes.
        """
        self._check_id(parent, "parent")
        if not isinstance(agent, str) or not agent:
            raise ValueError(f"agent must be a non-empty string, got {agent!r}")
        r = check_reward(reward)
        new_id = len(self._nodes)
        node = Node(
            id=new_id, parent=parent, agent=agent, depth=self._nodes[parent].depth + 1,
            step=new_id if step is None else int(step), response=response, code=code, reward=r,
            public=public, private=private, feedback=feedback,
            token_ids=None if token_ids is None else list(token_ids),
            logprobs=None if logprobs is None else list(logprobs),
            metadata={} if metadata is None else metadata,
        )
        self._nodes.append(node)
        self._children.append([])
        self._children[parent].append(new_id)
        return node

    # ------------------------------------------------------------------ reading
    @property
    def root(self) -> Node:
        return self._nodes[0]

    def node(self, node_id: int) -> Node:
        self._check_id(node_id, "node id")
        return self._nodes[node_id]

    __getitem__ = node

    def __len__(self) -> int:
        """Number of real (non-root) nodes."""
        return len(self._nodes) - 1

    def __iter__(self) -> Iterator[Node]:
        """Non-root nodes in expansion order."""
        return iter(self._nodes[1:])

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, int) and not isinstance(node_id, bool) \
            and 0 <= node_id < len(self._nodes)

    def children(self, node_id: int) -> list[Node]:
        """Children of `node_id` in expansion order."""
        self._check_id(node_id, "node id")
        return [self._nodes[c] for c in self._children[node_id]]

    def child_ids(self, node_id: int) -> list[int]:
        self._check_id(node_id, "node id")
        return list(self._children[node_id])

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the root down to `node_id`, both included."""
        self._check_id(node_id, "node id")
        out = []
        cur: int | None = node_id
        while cur is not None:
            out.append(self._nodes[cur])
            cur = self._nodes[cur].parent
        out.reverse()
        return out

    def nodes(self, agent: str | None = None) -> list[Node]:
        """Non-root nodes in expansion order, only `agent`'s when given."""
        if agent is None:
            return self._nodes[1:]
        return [n for n in self._nodes[1:] if n.agent == agent]

    @property
    def agents(self) -> list[str]:
        """Agents that wrote nodes, in order of first appearance."""
        return list(dict.fromkeys(n.agent for n in self._nodes[1:]))

    @property
    def max_depth(self) -> int:
        return max((n.depth for n in self._nodes), default=0)

    def _check_id(self, node_id: Any, what: str) -> None:
        if isinstance(node_id, bool) or not isinstance(node_id, int):
            raise TypeError(f"{what} must be an int, got {node_id!r}")
        if not 0 <= node_id < len(self._nodes):
            raise KeyError(f"unknown {what} {node_id}: the tree has ids 0..{len(self._nodes) - 1}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchTree):
            return NotImplemented
        return (self.problem_id == other.problem_id and self.metadata == other.metadata
                and self._nodes == other._nodes)

    def __repr__(self) -> str:
        return (f"SearchTree(problem_id={self.problem_id!r}, nodes={len(self)}, "
                f"max_depth={self.max_depth})")

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The documented, versioned dict form (see the module docstring); a deep copy."""
        return {
            "schema_version": SCHEMA_VERSION,
            "problem_id": self.problem_id,
            "metadata": copy.deepcopy(self.metadata),
            "nodes": [n.to_dict() for n in self._nodes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchTree:
        """Rebuild a tree from `to_dict` output, checking the schema as it goes."""
        if not isinstance(d, dict):
            raise TreeFormatError(f"a tree must be a JSON object, got {type(d).__name__}")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise TreeFormatError(
                f"unsupported tree schema_version {version!r}; this reader knows {SCHEMA_VERSION}")
        unknown = set(d) - {"schema_version", "problem_id", "metadata", "nodes"}
        if unknown:
            raise TreeFormatError(f"unknown tree field(s) {sorted(unknown)}")
        problem_id = d.get("problem_id", "")
        if not isinstance(problem_id, str):
            raise TreeFormatError(f"field 'problem_id' must be a string, got {problem_id!r}")
        metadata = d.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise TreeFormatError(f"field 'metadata' must be an object, got {metadata!r}")
        rows = d.get("nodes")
        if not isinstance(rows, list) or not rows:
            raise TreeFormatError("field 'nodes' must be a non-empty list starting with the root")
        tree = cls(problem_id=problem_id, metadata=copy.deepcopy(metadata))
        tree._nodes = []
        tree._children = []
        for i, row in enumerate(rows):
            node = _node_from_row(row, i, tree._nodes)
            tree._nodes.append(node)
            tree._children.append([])
            if node.parent is not None:
                tree._children[node.parent].append(i)
        return tree

    def to_json(self, **json_kwargs: Any) -> str:
        """One JSON line (no newline) in the `to_dict` schema, always encodable as UTF-8."""
        if json_kwargs:
            return json.dumps(self.to_dict(), **json_kwargs)
        return json_line(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> SearchTree:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise TreeFormatError(f"tree is not valid JSON: {e}") from None
        return cls.from_dict(d)


def _node_from_row(row: Any, i: int, built: list[Node]) -> Node:
    where = f"node {i}"
    if not isinstance(row, dict):
        raise TreeFormatError(f"{where}: must be an object, got {type(row).__name__}")
    unknown = set(row) - set(NODE_FIELDS)
    if unknown:
        raise TreeFormatError(f"{where}: unknown field(s) {sorted(unknown)}")
    for key in ("id", "parent", "agent", "depth", "step"):
        if key not in row:
            raise TreeFormatError(f"{where}: missing field {key!r}")

    def want(key: str, ok: bool, expected: str) -> None:
        if not ok:
            raise TreeFormatError(f"{where}, field {key!r}: expected {expected}, got {row[key]!r}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    want("id", row["id"] == i and is_int(row["id"]), f"{i} (ids are the list positions)")
    parent = row["parent"]
    if i == 0:
        want("parent", parent is None, "null for the root")
        want("agent", row["agent"] is None, "null for the root")
        want("depth", row["depth"] == 0, "0 for the root")
    else:
        want("parent", is_int(parent) and 0 <= parent < i, f"an id in 0..{i - 1}")
        want("agent", isinstance(row["agent"], str) and row["agent"] != "", "a non-empty string")
        want("depth", is_int(row["depth"]) and row["depth"] == built[parent].depth + 1,
             f"parent depth + 1 = {built[parent].depth + 1}")
    want("step", is_int(row["step"]), "an int")
    for key in ("response", "code", "feedback"):
        if key in row:
            want(key, isinstance(row[key], str), "a string")
    try:
        reward = check_reward(row.get("reward", 0.0))
    except ValueError as e:
        raise TreeFormatError(f"{where}, field 'reward': {e}") from None
    for key in ("public", "private"):
        if row.get(key) is not None:
            want(key, isinstance(row[key], dict), "an object or null")
    if row.get("token_ids") is not None:
        want("token_ids", isinstance(row["token_ids"], list)
             and all(is_int(t) for t in row["token_ids"]), "a list of ints or null")
    if row.get("logprobs") is not None:
        want("logprobs", isinstance(row["logprobs"], list) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in row["logprobs"]),
            "a list of numbers or null")
    if row.get("metadata") is not None:
        want("metadata", isinstance(row["metadata"], dict), "an object")
    return Node(
        id=i, parent=parent, agent=row["agent"], depth=row["depth"], step=row["step"],
        response=row.get("response", ""), code=row.get("code", ""), reward=reward,
        public=copy.deepcopy(row.get("public")), private=copy.deepcopy(row.get("private")),
        feedback=row.get("feedback", ""),
        token_ids=None if row.get("token_ids") is None else list(row["token_ids"]),
        logprobs=None if row.get("logprobs") is None else [float(x) for x in row["logprobs"]],
        metadata=copy.deepcopy(row.get("metadata") or {}),
    )

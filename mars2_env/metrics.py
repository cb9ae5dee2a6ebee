"""Search metrics: unbiased pass@k, the paper's Pass@1(MCTS) latest-wins answer, and Pass@N."""

from __future__ import annotations

import numbers

from .tree import Node, SearchTree

JUDGES = ("public", "private", "all")


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al., 2021):
    ``1 - C(n - c, k) / C(n, k)``, computed as ``1 - prod_{i=n-c+1}^{n} (1 - k / i)``."""
    n, c, k = _check_count("n", n), _check_count("c", c), _check_count("k", k)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n={n}], got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def _score(node: Node) -> float:
    if node.public is not None and "reward" in node.public:
        return float(node.public["reward"])
    return node.reward


def select_latest_wins(tree: SearchTree) -> Node | None:
    """The answer node of Pass@1(MCTS): highest public-test reward (``node.public["reward"]``,
    or ``node.reward`` for a node without a public result), ties to the latest expansion.
    None for a tree without nodes."""
    best: Node | None = None
    best_score = float("-inf")
    for node in tree.nodes():
        s = _score(node)
        if s >= best_score:
            best, best_score = node, s
    return best


def _check_judge(judge: str) -> None:
    if judge not in JUDGES:
        raise ValueError(f"judge must be one of {JUDGES}, got {judge!r}")


def node_passes(node: Node, judge: str = "private") -> bool:
    """Whether a node passes the judging tests: ``node.<judge>["verdict"] == "passed"`` for
    judge "private" or "public"; both for "all". A node without that result does not pass."""
    _check_judge(judge)
    sides = ("public", "private") if judge == "all" else (judge,)
    return all((getattr(node, side, None) or {}).get("verdict") == "passed" for side in sides)


def judge_side(tree: SearchTree, judge: str = "private") -> str:
    """Which node result judges ``tree``: ``judge``, except ``"public"`` for a tree marked
    ``metadata["judge"] == "public"`` (its problem had no judge tests of its own, so the reward
    run over all its tests judges it; see `mars2_env.envcore.judge_plan`)."""
    _check_judge(judge)
    return "public" if tree.metadata.get("judge") == "public" else judge


def pass_at_n(tree: SearchTree, judge: str = "private") -> bool:
    """Whether any node passes the judging tests (`node_passes` on `judge_side`)."""
    side = judge_side(tree, judge)
    return any(node_passes(n, side) for n in tree.nodes())


def pass_at_1_mcts(tree: SearchTree, judge: str = "private") -> bool:
    """Whether the latest-wins answer node passes the judging tests (on `judge_side`)."""
    side = judge_side(tree, judge)
    node = select_latest_wins(tree)
    return node is not None and node_passes(node, side)

"""Per-tree and per-run metrics from saved search trees (the paper's Pass@1(MCTS) and Pass@N)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mars2_env.metrics import judge_side, node_passes, pass_at_k, select_latest_wins
from mars2_env.tree import Node, SearchTree


def judged(node: Node, judge: str, tree: SearchTree | None = None) -> bool:
    """`metrics.node_passes` on the side that judges ``tree`` (`metrics.judge_side`: a tree
    whose problem had no private tests is judged on its public run), except that judging on
    private tests a node that has none is an error (the run was searched without judge tests),
    not a failure."""
    side = judge if tree is None else judge_side(tree, judge)
    if side == "private" and node.private is None:
        raise ValueError(f"node {node.id} has no private-test result; run the search with "
                         "judge tests, or judge on 'public'")
    return node_passes(node, side)


def tree_metrics(tree: SearchTree, judge: str = "private") -> dict[str, Any]:
    """Pass@1(MCTS) (latest-wins node judged), Pass@N (any node judged), expansions per agent."""
    nodes = tree.nodes()
    answer = select_latest_wins(tree)
    return {
        "problem_id": tree.problem_id,
        "nodes": len(nodes),
        "best_public_reward": max((n.reward for n in nodes), default=0.0),
        "answer_node": answer.id if answer else None,
        "pass_at_1_mcts": bool(answer is not None and judged(answer, judge, tree)),
        "pass_at_n": any(judged(n, judge, tree) for n in nodes),
        "expansions": dict(Counter(n.agent for n in nodes)),
        "judged_on": judge_side(tree, judge),
        "reward_tests": tree.metadata.get("reward_tests", "some"),
    }


def run_metrics(trees: list[SearchTree], judge: str = "private") -> dict[str, Any]:
    """Means over trees, plus per-agent share of expansions and per-agent node Pass@1."""
    per_tree = [tree_metrics(t, judge) for t in trees]
    n = max(1, len(per_tree))
    agents = sorted({a for m in per_tree for a in m["expansions"]})
    total_nodes = sum(m["nodes"] for m in per_tree)
    per_agent: dict[str, Any] = {}
    for agent in agents:
        rates = []
        for t in trees:
            mine = t.nodes(agent=agent)
            if mine:
                rates.append(pass_at_k(len(mine), sum(judged(x, judge, t) for x in mine), 1))
        count = sum(m["expansions"].get(agent, 0) for m in per_tree)
        per_agent[agent] = {
            "expansions": count,
            "share": count / total_nodes if total_nodes else 0.0,
            "node_pass_at_1": sum(rates) / len(rates) if rates else 0.0,
        }
    return {
        "trees": len(per_tree),
        "nodes": total_nodes,
        "judge": judge,
        # how many trees were judged which way (problems without private tests: on their public
        # run), and how many had no reward tests (every node rewarded 0); see envcore.judge_plan
        "judged_on": dict(Counter(m["judged_on"] for m in per_tree)),
        "no_reward_tests": sum(m["reward_tests"] == "none" for m in per_tree),
        "pass_at_1_mcts": sum(m["pass_at_1_mcts"] for m in per_tree) / n,
        "pass_at_n": sum(m["pass_at_n"] for m in per_tree) / n,
        "per_agent": per_agent,
        "per_tree": per_tree,
    }


def judge_note(metrics: dict[str, Any]) -> str:
    """'; 40 trees judged on their public run (no private tests)' when the judge policy applied."""
    parts = []
    fallback = metrics.get("judged_on", {}).get("public", 0)
    if fallback and metrics.get("judge") != "public":
        parts.append(f"{fallback} trees judged on their public run (no {metrics['judge']} tests)")
    if metrics.get("no_reward_tests"):
        parts.append(f"{metrics['no_reward_tests']} trees had no reward tests (reward 0)")
    return "".join("; " + p for p in parts)


def read_trees(path: Path) -> list[SearchTree]:
    return list(iter_trees(path))


def iter_trees(path: Path) -> Iterator[SearchTree]:
    """Read `trees.jsonl`; a torn last line (interrupted write) is reported, not silently dropped."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) and not line.endswith("\n"):
                raise ValueError(f"{path}: line {i} is incomplete (an interrupted write); "
                                 "run with --resume to repair and continue") from None
            raise ValueError(f"{path}: line {i} is not valid JSON: {e}") from None
        yield SearchTree.from_dict(row)


def append_tree(path: Path, tree: SearchTree) -> None:
    """Append one tree as a line and flush it to disk, so an interruption loses only trees in flight."""
    import os

    with open(path, "a", encoding="utf-8") as f:
        f.write(tree.to_json() + "\n")  # lossless for any text, lone surrogates included
        f.flush()
        os.fsync(f.fileno())


def repair_trees_file(path: Path) -> list[SearchTree]:
    """For --resume: keep the complete lines, cut a torn last line, return the kept trees."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    keep_upto = raw.rfind(b"\n") + 1
    if keep_upto != len(raw):
        with open(path, "r+b") as f:
            f.truncate(keep_upto)
    return read_trees(path)


def order_trees_file(path: Path, problem_ids: list[str]) -> None:
    """Put a finished run's `trees.jsonl` in problem order. Trees are appended as they finish
    (so an interrupted run keeps them), and that order depends on timing; once every tree is
    in, the same run gives the same bytes. Lines are moved, never re-encoded; a tree of a
    problem not in `problem_ids` keeps its place after the others. Atomic (a temporary file)."""
    lines = path.read_bytes().splitlines(keepends=True)
    if not lines or not lines[-1].endswith(b"\n"):  # a torn line: not a finished run's file
        return
    rank = {pid: i for i, pid in enumerate(problem_ids)}
    keyed = [(rank.get(json.loads(line)["problem_id"], len(rank)), n, line)
             for n, line in enumerate(lines) if line.strip()]
    ordered = [line for _, _, line in sorted(keyed)]
    if ordered == lines:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(ordered))
    os.replace(tmp, path)


def format_table(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    rows = list(rows)
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)

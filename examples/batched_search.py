"""Many trees at once: batched generation per agent, batched execution, finished trees streamed.

    python examples/batched_search.py --problems 6 --budget 4 --max-trees 3 --expansions-per-tree 2

`pending()` groups every in-flight expansion by agent, so each agent answers its whole batch in
one generate call; `submit()` runs all the programs through the executor in parallel. With
`--expansions-per-tree 2` a tree has two expansions in flight per round (virtual loss keeps them
apart). The scripted policy stands in for LLMs: it reads the demo problems' bundled solutions.
"""

from __future__ import annotations

import argparse
import zlib

from mars2_env.metrics import pass_at_n
from mars2_env.problems import load_problems
from mars2_env.vector import BatchedSearch


def scripted_batch(problems):
    """policy(agent, observations) -> responses: a deterministic mix of wrong and right programs."""
    by_statement = {p.statement: p for p in problems}

    def policy(agent: str, observations: list[dict]) -> list[str]:
        out = []
        for obs in observations:
            meta = by_statement[obs["statement"]].metadata
            cands = [c for c, v in zip(meta["wrong_solutions"], meta["wrong_verdicts"], strict=True) if v != "time_limit"]
            cands.append(meta["reference_solution"])
            pick = zlib.crc32(f"{agent}|{obs['prompt']}|{obs['budget_left']}".encode()) % len(cands)
            out.append(f"```python\n{cands[pick].rstrip()}\n```")
        return out
    return policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=6)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--max-trees", type=int, default=3)
    parser.add_argument("--expansions-per-tree", type=int, default=2)
    parser.add_argument("--executor-workers", type=int, default=2, help="executor processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from mars2_env.execution import Executor

    problems = load_problems("builtin:demo")[: args.problems]
    policy = scripted_batch(problems)
    solved = 0
    with Executor(max_workers=args.executor_workers) as executor, BatchedSearch(
            problems, agents=["coder_0", "coder_1"], budget=args.budget, executor=executor,
            max_trees=args.max_trees, expansions_per_tree=args.expansions_per_tree,
            seed=args.seed) as search:
        round_no = 0
        while not search.done:
            batch = search.pending()  # {agent: [PendingExpansion, ...]}
            sizes = {agent: len(items) for agent, items in batch.items()}
            responses = {agent: policy(agent, [p.observation for p in items]) for agent, items in batch.items()}
            for tree in search.submit(responses):
                solved += pass_at_n(tree.tree)
                print(f"round {round_no}: finished tree {tree.index} ({tree.problem_id}): "
                      f"{len(tree.nodes)} nodes, solved={tree.solved}")
            print(f"round {round_no}: generated {sizes}")
            round_no += 1
    print(f"Pass@N on private tests: {solved}/{len(problems)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

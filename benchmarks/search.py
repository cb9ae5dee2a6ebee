"""Search at the executor's speed: `BatchedSearch` nodes/s ÷ the raw executor's on the same programs.

For each setting (trees in flight × expansions per tree) the benchmark runs, in one process and
on one warm `Executor`:

1. the asynchronous search (`BatchedSearch.run`: a tree whose results are in is generated for
   at once, while other trees' programs run) with two simulated agents (real execution), and
   records every program it hands to the executor;
2. the same programs through ``executor.run_many`` all at once: the raw executor's throughput,
   every worker busy as long as anything is left;
3. the round-by-round loop (`pending` / `submit`, every tree waits for the round's slowest
   program), for comparison.

It prints nodes/s of each and the ratios search ÷ raw and rounds ÷ raw (medians over
``--repeats``, the runs of one repeat back to back), and checks that the asynchronous and the
round-by-round search built the very same trees (fixed seed).

    .venv/bin/python benchmarks/search.py                 # ~3-6 min on 2 busy cores
    .venv/bin/python benchmarks/search.py --settings 1x4 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AGENTS = ("simulated:skill=0.5,refine=0.6", "simulated:skill=0.1,refine=0.2")


class Recording:
    """An executor that remembers every program it was given (and passes it on)."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.items: list[tuple] = []

    def submit_many(self, items, **kwargs):
        self.items.extend(items)
        return self.executor.submit_many(items, **kwargs)

    def run_many(self, items, **kwargs):
        self.items.extend(items)
        return self.executor.run_many(items, **kwargs)


def compare(a: dict, b: dict) -> str:
    """'yes' if the two runs' trees are equal, else how many differ and whether each first
    differs in an execution result of the same program (a test near its time limit on a busy
    machine) or in what the search chose."""
    timing = chosen = 0
    for pid in a:
        for na, nb in zip(a[pid]["nodes"], b[pid]["nodes"], strict=False):
            if na != nb:
                same_program = all(na[x] == nb[x] for x in ("agent", "parent", "code"))
                timing += same_program
                chosen += not same_program
                break
    if not timing and not chosen:
        return "yes"
    return f"{timing + chosen}/{len(a)} differ ({timing} first at a test's result, {chosen} in a choice)"


def search_once(problems, executor, *, trees: int, k: int, budget: int, seed: int,
                asynchronous: bool, landing: str = "in_order") -> tuple[float, int, dict, list]:
    """(seconds, nodes, {problem id: tree dict}, programs run) of one search."""
    from agents import make_agent
    from mars2_env.vector import BatchedSearch

    names = [f"coder_{i}" for i in range(len(AGENTS))]
    agents = {n: make_agent(s, name=n, seed=seed * 1000 + i, problems=problems)
              for i, (n, s) in enumerate(zip(names, AGENTS, strict=True))}
    recording = Recording(executor)
    search = BatchedSearch(problems, names, budget=budget, executor=recording, max_trees=trees,
                           expansions_per_tree=k, seed=seed, landing=landing)
    start = time.perf_counter()
    if asynchronous:
        finished = search.run(agents)
    else:
        finished = []
        while not search.done:
            finished.extend(search.step(agents))
    seconds = time.perf_counter() - start
    nodes = search.landed + search.discarded
    return seconds, nodes, {f.problem_id: f.tree.to_dict() for f in finished}, recording.items


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", default="builtin:demo")
    p.add_argument("--settings", nargs="+", default=["1x4", "4x2", "30x1"],
                   help="TREESxK: trees in flight x expansions per tree")
    p.add_argument("--budget", type=int, default=6, help="nodes per tree")
    p.add_argument("--limit", type=int, default=30, help="problems searched")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--workers", type=int, default=None, help="executor workers (default: cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--landing", default="in_order", choices=["in_order", "as_ready"],
                   help="BatchedSearch landing of the asynchronous search (as_ready: trees with "
                        "k > 1 depend on timing)")
    args = p.parse_args(argv)

    from mars2_env.execution import Executor
    from mars2_env.problems import load_problems

    problems = load_problems(args.problems)[: args.limit]
    settings = []
    for text in args.settings:
        trees, _, k = text.partition("x")
        settings.append((int(trees), int(k or 1)))
    loads = [os.getloadavg()[0]]
    rows = []
    with Executor(max_workers=args.workers) as executor:
        executor.run_many([(problems[0], "print(1)", "public")], stop_on_first_failure=False)
        print(f"{len(problems)} problems x {args.budget} nodes, agents {' '.join(AGENTS)}, "
              f"{executor.max_workers} executor workers, load average {loads[0]:.1f}")
        for trees, k in settings:
            ratios, round_ratios, rates = [], [], []
            same = "yes"
            for _ in range(args.repeats):
                t_async, n, made, items = search_once(problems, executor, trees=trees, k=k,
                                                      budget=args.budget, seed=args.seed,
                                                      asynchronous=True, landing=args.landing)
                start = time.perf_counter()
                executor.run_many(items, stop_on_first_failure=False)
                t_raw = time.perf_counter() - start
                t_rounds, n_rounds, made_rounds, _ = search_once(
                    problems, executor, trees=trees, k=k, budget=args.budget, seed=args.seed,
                    asynchronous=False)
                if same == "yes":
                    same = compare(made, made_rounds)
                ratios.append(t_raw / t_async)
                round_ratios.append(t_raw / t_rounds)
                rates.append((n / t_async, n / t_raw, n / t_rounds))
                loads.append(os.getloadavg()[0])
            a, r, o = (statistics.median(x) for x in zip(*rates, strict=True))
            rows.append((f"{trees} trees x {k}", a, r, o, statistics.median(ratios),
                         min(ratios), statistics.median(round_ratios), same))
    print(f"{'in flight':<14} {'search':>9} {'raw':>9} {'rounds':>9}  {'search/raw':>10} "
          f"{'(min)':>6}  {'rounds/raw':>10}  same trees")
    for name, a, r, o, ratio, low, rround, same in rows:
        print(f"{name:<14} {a:>7.1f}/s {r:>7.1f}/s {o:>7.1f}/s  {ratio:>10.2f} {low:>6.2f}  "
              f"{rround:>10.2f}  {same}")
    print(f"nodes/s; ratios are medians of {args.repeats}; load average {min(loads):.1f}-"
          f"{max(loads):.1f} during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())

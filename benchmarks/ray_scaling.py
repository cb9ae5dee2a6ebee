"""What Ray costs on one machine, and how execution scales with executor actors, measured in
the same run against the local baseline.

1. Execution: the same programs (the demo set's reference and wrong solutions on all their
   tests) through a local `Executor` with W workers, a `RayExecutor` with 1 actor of W workers,
   and one with W actors of 1 worker — the same cores. Programs/s and the ratio to local.
2. Search: `BatchedSearch` with two simulated agents (real execution, no verdict cache): agents
   in this process and a local `Executor`, vs generation actors and a `RayExecutor`. Nodes/s
   and the ratio. Actor start-up is excluded (paid once per run, reported separately).

Rounds alternate local / Ray so machine load hits both alike; each figure is the median.

    python benchmarks/ray_scaling.py [--workers 2] [--rounds 3] [--items 120] [--budget 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mars2_env.execution import Executor  # noqa: E402
from mars2_env.problems import load_problems  # noqa: E402


def programs(problems, n_items: int, executor: Executor) -> list[tuple]:
    """(problem, code, "all") items cycling through the demo programs that finish in under
    0.2 s on all their tests (slower ones make verdicts depend on the machine's load)."""
    pool = []
    for p in problems:
        for code in [p.metadata["reference_solution"], *p.metadata["wrong_solutions"]]:
            t0 = time.perf_counter()
            executor.run(p, code, "all", stop_on_first_failure=False)
            if time.perf_counter() - t0 < 0.2:
                pool.append((p, code, "all"))
    return [pool[i % len(pool)] for i in range(n_items)]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def search_nodes(problems, agents, executor, budget: int, max_trees: int) -> tuple[int, float]:
    from mars2_env.vector import BatchedSearch

    search = BatchedSearch(problems, list(agents), budget=budget, executor=executor,
                           max_trees=max_trees, seed=0)
    t0 = time.perf_counter()
    trees = search.run(agents)
    return sum(len(f.tree) - 1 for f in trees), time.perf_counter() - t0


def sim_specs(problems) -> dict:
    return {"coder_0": ("simulated:skill=0.5,refine=0.6", {"seed": 0, "problems": problems}),
            "coder_1": ("simulated:skill=0.1,refine=0.2", {"seed": 1, "problems": problems})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                    help="sandbox workers in all (default: one per core)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--items", type=int, default=120, help="programs per execution measurement")
    ap.add_argument("--budget", type=int, default=8, help="nodes per tree in the search part")
    ap.add_argument("--problems", type=int, default=30, help="demo problems searched")
    ap.add_argument("--max-trees", type=int, default=8)
    args = ap.parse_args(argv)

    import ray

    from agents import make_agent
    from mars2_ray.executor import RayExecutor
    from mars2_ray.generation import GenerationPool

    w = args.workers
    problems = load_problems("builtin:demo")[: args.problems]
    with Executor(max_workers=1) as probe:
        items = programs(problems, args.items, probe)
    tests = sum(len(p.select_tests(t)) for p, _, t in items)
    load_before = os.getloadavg()

    t0 = time.perf_counter()
    # logical CPUs for both Ray setups at once (they are timed one at a time)
    ray.init(address="local", num_cpus=2 * w, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 * 1024)
    init_s = time.perf_counter() - t0

    # ------------------------------------------------------------------ execution
    local = Executor(max_workers=w)
    one = RayExecutor(actors=1, workers_per_actor=w)
    many = RayExecutor(actors=w, workers_per_actor=1)
    t0 = time.perf_counter()
    for ex in (local, one, many):
        ex.run_many(items[:w * 2])                    # start workers and actors, warm up
    startup_s = time.perf_counter() - t0
    expected = [r.verdict for r in local.run_many(items, stop_on_first_failure=False)]
    times: dict[str, list[float]] = {"local": [], "ray1": [], "rayN": []}
    differ = 0
    for _ in range(args.rounds):
        for key, ex in (("local", local), ("ray1", one), ("rayN", many)):
            out: list = []
            times[key].append(timed(lambda ex=ex, out=out: out.extend(
                ex.run_many(items, stop_on_first_failure=False))))
            differ += sum(r.verdict != v for r, v in zip(out, expected, strict=True))
    for ex in (local, one, many):
        ex.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    print("execution measured; searching", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ search
    specs = sim_specs(problems)
    s_times: dict[str, list[float]] = {"local": [], "ray": []}
    nodes = 0
    with Executor(max_workers=w) as lex:
        rex = RayExecutor(actors=1, workers_per_actor=w)
        pools = {n: GenerationPool(s, {"name": n, **kw}) for n, (s, kw) in specs.items()}
        rex.actor_info()
        for pool in pools.values():
            pool.actor_info()
        lex.run_many([])
        for _ in range(args.rounds):
            agents = {n: make_agent(s, name=n, **kw) for n, (s, kw) in specs.items()}
            nodes, secs = search_nodes(problems, agents, lex, args.budget, args.max_trees)
            s_times["local"].append(secs)
            for n, (_s, kw) in specs.items():
                pools[n].rebuild({"name": n, **kw})   # same seeds as the local agents
            ray_nodes, secs = search_nodes(problems, pools, rex, args.budget, args.max_trees)
            assert ray_nodes == nodes
            s_times["ray"].append(secs)
        rex.close()
        for pool in pools.values():
            pool.close()
    ray.shutdown()
    s_med = {k: statistics.median(v) for k, v in s_times.items()}

    load_after = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, {w} sandbox workers per setup; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; ray.init {init_s:.1f} s, "
          f"actors + workers start {startup_s:.1f} s (once)")
    print(f"\nexecution: {len(items)} programs, {tests} tests, median of {args.rounds}; "
          f"{differ} verdicts differed from the first local run")
    print(f"{'setup':34} {'programs/s':>10} {'tests/s':>9} {'time vs local':>14}")
    for key, label in (("local", f"local Executor ({w} workers)"),
                       ("ray1", f"RayExecutor 1 actor x {w} workers"),
                       ("rayN", f"RayExecutor {w} actors x 1 worker")):
        print(f"{label:34} {len(items) / med[key]:10.1f} {tests / med[key]:9.0f} "
              f"{med[key] / med['local']:13.2f}x")
    print(f"\nsearch: {len(problems)} problems x {args.budget} nodes, 2 simulated agents, "
          f"{args.max_trees} trees in flight, median of {args.rounds}")
    print(f"{'setup':34} {'nodes/s':>10} {'time vs local':>24}")
    print(f"{'local (agents here, Executor)':34} {nodes / s_med['local']:10.1f} {1.0:23.2f}x")
    print(f"{'Ray (generation + executor actors)':34} {nodes / s_med['ray']:10.1f} "
          f"{s_med['ray'] / s_med['local']:23.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Per-step cost of our Thompson scheduler against TreeQuest's ABMCTSA, in one process.

Both sides grow one tree on the same synthetic reward function (below), beta and gaussian
priors, 1 and 3 agents (TreeQuest: actions). A *step* is one complete expansion: choose
(agent, parent), call the reward function, insert the node, update the posteriors —
``select`` + ``SearchTree.add`` + ``update`` for us, ``ABMCTSA.step(state, fns, inplace=True)``
for TreeQuest (its fastest mode; the default ``inplace=False`` deep-copies the whole state
every step and is slower still).

How it is measured: each side grows its tree from empty; when the tree reaches a checkpoint
size N (100, 1,000, 10,000), the next ``--window`` steps are timed and reported as ms/step at
N, in CPU time of this process (``time.process_time``, so other jobs on a shared machine do
not count against either side). TreeQuest's step costs grow with the tree (it sorts every node
twice per step; its gaussian agent choice replays every past reward), so growing it to 10,000
nodes takes from minutes to hours. It therefore grows under a time budget per configuration (``--tq-budget-s``); when the
budget runs out before a checkpoint, a window is timed at the size it reached, and that
figure is printed as a lower bound (``>=``) for the larger checkpoints, with the ratio as a
lower bound too. ``--full`` lifts the budget and measures every checkpoint for real.

    python benchmarks/scheduler.py            # default, < 3 minutes on 2 cores
    python benchmarks/scheduler.py --quick    # 100 and 1,000 nodes only, ~30 s
    python benchmarks/scheduler.py --full     # TreeQuest to 10,000 nodes too (hours)

Synthetic reward: a fresh candidate from agent i scores ``0.25 + 0.1 i`` plus N(0, 0.15)
noise; a refinement scores its parent's reward + 0.03 plus the same noise; clipped to [0, 1].
Each side draws its noise from its own seeded generator, so both see the same distribution.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mars2_env.scheduler import ThompsonScheduler  # noqa: E402
from mars2_env.tree import SearchTree  # noqa: E402

TARGET_RATIO = 20.0


def synthetic_reward(agent_index: int, parent_reward: float | None,
                     rng: np.random.Generator) -> float:
    base = 0.25 + 0.1 * agent_index if parent_reward is None else parent_reward + 0.03
    return float(min(1.0, max(0.0, base + rng.normal(0.0, 0.15))))


def ours_stepper(prior: str, n_agents: int, seed: int) -> tuple[Callable[[], None], Callable[[], int]]:
    agents = [f"agent{i}" for i in range(n_agents)]
    index = {a: i for i, a in enumerate(agents)}
    sched = ThompsonScheduler(agents, prior=prior, seed=seed)
    tree = SearchTree()
    rng = np.random.default_rng(seed + 1)

    def step() -> None:
        exp = sched.select(tree)
        parent = None if exp.parent_id == 0 else tree[exp.parent_id].reward
        node = tree.add(exp.parent_id, exp.agent,
                        reward=synthetic_reward(index[exp.agent], parent, rng))
        sched.update(tree, node)

    return step, lambda: tree.max_depth


def treequest_stepper(prior: str, n_agents: int, seed: int
                      ) -> tuple[Callable[[], None], Callable[[], int]]:
    import treequest as tq

    np.random.seed(seed)                       # TreeQuest samples from numpy's global state
    rng = np.random.default_rng(seed + 1)
    algo = tq.ABMCTSA(dist_type=prior)
    holder = {"state": algo.init_tree()}

    def make(i: int):
        def generate(parent_state: float | None) -> tuple[float, float]:
            r = synthetic_reward(i, parent_state, rng)
            return r, r
        return generate

    fns = {f"agent{i}": make(i) for i in range(n_agents)}

    def step() -> None:
        holder["state"] = algo.step(holder["state"], fns, inplace=True)

    def depth() -> int:
        best, stack = 0, [(holder["state"].tree.root, 0)]
        while stack:
            node, d = stack.pop()
            best = max(best, d)
            stack.extend((c, d + 1) for c in node.children)
        return best

    return step, depth


def measure(step: Callable[[], None], depth: Callable[[], int], sizes: list[int], window: int,
            budget_s: float | None, window_cap_s: float = 15.0) -> list[dict]:
    """Grow to each size in turn and time `window` steps there; with a budget, stop early and
    time a window at the size reached (marked ``partial``)."""
    rows: list[dict] = []
    n = 0
    start = time.perf_counter()

    def timed(at: int, partial: bool) -> dict:
        done, t0 = 0, time.process_time()
        while done < window:
            step()
            done += 1
            if done >= 3 and time.process_time() - t0 > window_cap_s:
                break
        ms = (time.process_time() - t0) / done * 1e3
        return {"nodes": at, "ms_per_step": ms, "steps_timed": done, "partial": partial,
                "depth": depth()}

    for size in sorted(sizes):
        while n < size:
            if budget_s is not None and time.perf_counter() - start > budget_s:
                row = timed(n, partial=True)
                rows.append(row)
                return rows
            step()
            n += 1
        row = timed(n, partial=False)
        n += row["steps_timed"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="100 and 1,000 nodes, short budget")
    p.add_argument("--full", action="store_true", help="no TreeQuest budget (very slow)")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="checkpoint sizes")
    p.add_argument("--window", type=int, default=None, help="steps timed at each checkpoint")
    p.add_argument("--tq-budget-s", type=float, default=None,
                   help="seconds TreeQuest may spend growing per configuration")
    p.add_argument("--priors", nargs="+", default=["beta", "gaussian"])
    p.add_argument("--agents", type=int, nargs="+", default=[1, 3])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    sizes = args.sizes or ([100, 1_000] if args.quick else [100, 1_000, 10_000])
    window = args.window or (10 if args.quick else 20)
    budget = None if args.full else (args.tq_budget_s or (6.0 if args.quick else 30.0))

    try:
        import treequest
        tq_version = getattr(treequest, "__version__", None)
        if tq_version is None:
            from importlib.metadata import version
            tq_version = version("treequest")
    except ImportError:
        tq_version = None
    print(f"python {platform.python_version()}, numpy {np.__version__}, treequest "
          f"{tq_version or 'not installed (ours only)'}; window {window} steps; TreeQuest "
          f"budget {'none' if budget is None else f'{budget:.0f} s'} per configuration")
    header = (f"{'prior':<9}{'agents':>6}{'nodes':>8}{'ours ms/step':>14}{'treequest ms/step':>19}"
              f"{'ratio':>10}{'depth ours/tq':>15}")
    print(header)
    print("-" * len(header))
    results = []
    for prior in args.priors:
        for n_agents in args.agents:
            ours = measure(*ours_stepper(prior, n_agents, args.seed), sizes, window, None)
            tq_rows = (measure(*treequest_stepper(prior, n_agents, args.seed), sizes, window,
                               budget) if tq_version else [])
            tq_by_size = {r["nodes"]: r for r in tq_rows if not r["partial"]}
            partial = next((r for r in tq_rows if r["partial"]), None)
            for row in ours:
                size = row["nodes"]
                tq = tq_by_size.get(size)
                entry = {"prior": prior, "agents": n_agents, "nodes": size,
                         "ours_ms": row["ms_per_step"], "ours_depth": row["depth"]}
                if tq is not None:
                    entry.update(tq_ms=tq["ms_per_step"], tq_depth=tq["depth"], bound=False)
                elif partial is not None and partial["nodes"] < size:
                    entry.update(tq_ms=partial["ms_per_step"], tq_depth=partial["depth"],
                                 bound=True, tq_nodes=partial["nodes"])
                results.append(entry)
                if "tq_ms" in entry:
                    ge = ">=" if entry["bound"] else ""
                    ratio = entry["tq_ms"] / entry["ours_ms"]
                    entry["ratio"] = ratio
                    tq_txt = f"{ge}{entry['tq_ms']:.2f}"
                    ratio_txt = f"{ge}{ratio:.0f}x"
                    depth_txt = f"{row['depth']}/{entry['tq_depth']}"
                else:
                    tq_txt, ratio_txt, depth_txt = "-", "-", f"{row['depth']}/-"
                print(f"{prior:<9}{n_agents:>6}{size:>8,}{row['ms_per_step']:>14.3f}{tq_txt:>19}"
                      f"{ratio_txt:>10}{depth_txt:>15}")
            if partial is not None:
                print(f"{'':<15}(TreeQuest reached {partial['nodes']:,} nodes within the budget; "
                      f"'>=' rows use its time there, a lower bound)")
            sys.stdout.flush()

    target = [e for e in results if e["agents"] == 3 and e["nodes"] == 1_000 and "ratio" in e]
    for e in target:
        verdict = "met" if e["ratio"] >= TARGET_RATIO else "NOT met"
        print(f"target >= {TARGET_RATIO:.0f}x at 1,000 nodes, 3 agents, {e['prior']}: "
              f"{e['ratio']:.0f}x ({verdict})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

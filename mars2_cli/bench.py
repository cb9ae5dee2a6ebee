"""`mars2 bench`: compare search strategies and agent mixes at fixed node budgets.

For every strategy × budget × seed the command runs a real `BatchedSearch` (real executor,
tree and scheduler) over the problems and measures Pass@1(MCTS) and Pass@N (judged on the
private tests), nodes per second and each agent's share of the expansions. The default agents
are two `SimulatedAgent`s (one strong, one weak), so the whole grid runs on a CPU in minutes;
real agent specs work too. Writes `bench.csv` (one row per strategy × budget: means over seeds,
their standard deviations and 95% confidence half-widths), `bench.json` (the same plus every single run) and `bench.png`
(Pass@1(MCTS) and Pass@N against budget, one line per strategy).

Every budget is a separate search (a larger budget's tree does not contain the smaller one for
most strategies); all runs share one `Executor`. Simulated agents only ever write programs from
a fixed pool, so by default results are memoised per (problem, program, tests): each distinct
program runs once, for real, and later copies reuse its verdict (`--no-cache` runs everything).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mars2_cli.backend import add_backend_arguments
from mars2_cli.common import (
    add_common_arguments,
    add_executor_workers,
    add_max_trees,
    resolve_out_dir,
    write_json,
)
from mars2_cli.strategies import STRATEGIES, scheduler_factory

DEFAULT_AGENTS = ["simulated:skill=0.5,refine=0.6", "simulated:skill=0.1,refine=0.2"]
DEFAULT_BUDGETS = [1, 2, 4, 8, 16]
DEFAULT_SEEDS = list(range(10))
MODEL_KINDS = ("hf", "vllm", "openai")
METRICS = ("pass_at_1_mcts", "pass_at_n", "nodes_per_s")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument("--problems", default="builtin:demo",
                   help="problem source (builtin:NAME or a file); simulated agents need "
                        "metadata reference_solution / wrong_solutions, as builtin:demo has")
    p.add_argument("--limit", type=int, default=None, help="use only the first N problems")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES),
                   metavar="STRATEGY",
                   help="strategies to compare: " + "; ".join(f"{k}: {v}" for k, v in STRATEGIES.items()))
    p.add_argument("--agents", nargs="+", default=list(DEFAULT_AGENTS),
                   help="agent specs (named coder_0, coder_1, ... in order): "
                        "simulated:skill=P,refine=Q[,seed=S], or any `mars2 search` spec "
                        "(hf:embedded, vllm:PATH, openai:URL#MODEL, replay:FILE, random)")
    p.add_argument("--budgets", nargs="+", type=int, default=list(DEFAULT_BUDGETS),
                   help="node budgets per tree")
    p.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS),
                   help="seeds; each strategy × budget runs once per seed")
    p.add_argument("--prior", default="beta", choices=["beta", "gaussian"],
                   help="Thompson prior of the mars2 / abmcts strategies")
    p.add_argument("--refine-scope", default=None, choices=["own", "any"],
                   help="which nodes an agent may refine under the mars2 strategy: own = only "
                        "nodes it wrote itself (the paper, the default), any = any node; abmcts "
                        "always uses any (it picks the node before the agent)")
    p.add_argument("--judge-tests", default="private", choices=["private", "all"],
                   help="tests that judge Pass@1(MCTS) / Pass@N (node rewards use public tests)")
    add_max_trees(p, None, "trees in flight at once (none: all problems)")
    p.add_argument("--expansions-per-tree", type=int, default=1,
                   help="expansions one tree may have in flight per round (virtual loss)")
    add_executor_workers(p)
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="execute every program, even one already judged on the same tests")
    p.add_argument("--temperature", type=float, default=1.0, help="model agents only")
    p.add_argument("--top-p", type=float, default=1.0, help="model agents only")
    p.add_argument("--max-new-tokens", type=int, default=512, help="model agents only")
    add_backend_arguments(p)


# --------------------------------------------------------------------------- execution cache

class CachedExecutor:
    """A real `Executor` whose results are memoised per (problem id, code, tests, stop flag).

    Programs run in a fresh sandboxed process and the grading is deterministic, so a verdict
    can be reused for an identical program (time limits aside, which are then also consistent).
    `executed` counts programs really run, `reused` those answered from the memo.
    """

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self._memo: dict[tuple, Any] = {}
        self.executed = 0
        self.reused = 0

    @staticmethod
    def _key(item: Sequence[Any], default_tests: Any, stop: bool) -> tuple:
        problem, code = item[0], item[1]
        tests = item[2] if len(item) == 3 else default_tests
        if not isinstance(tests, str):
            tests = tuple((t.input, t.output) for t in tests)
        return problem.id, code, tests, bool(stop)

    def run_many(self, items: Sequence[tuple], tests: Any = "all",
                 stop_on_first_failure: bool = True) -> list[Any]:
        keys = [self._key(item, tests, stop_on_first_failure) for item in items]
        todo: dict[tuple, tuple] = {}
        for key, item in zip(keys, items, strict=True):
            if key not in self._memo and key not in todo:
                todo[key] = tuple(item) if len(item) == 3 else (item[0], item[1], tests)
        if todo:
            results = self.executor.run_many(list(todo.values()),
                                             stop_on_first_failure=stop_on_first_failure)
            self._memo.update(zip(todo, results, strict=True))
        self.executed += len(todo)
        self.reused += len(items) - len(todo)
        return [self._memo[k] for k in keys]

    def run(self, problem: Any, code: str, tests: Any = "all",
            stop_on_first_failure: bool = True) -> Any:
        return self.run_many([(problem, code, tests)], stop_on_first_failure=stop_on_first_failure)[0]


def warm_cache(executor: CachedExecutor, problems: list, judge_tests: str) -> dict[str, Any]:
    """Run every program a simulated agent can write, on the reward and the judging tests, so
    the timed searches of every strategy see the same warm cache (fair nodes per second)."""
    from agents.simulated import format_response, pool_programs
    from mars2_env.prompts import extract_code

    items = []
    for p in problems:
        test_sets = [t for t in (p.select_tests("public"), p.select_tests(judge_tests)) if t]
        for program in pool_programs(p):
            code = extract_code(format_response(program))
            items += [(p, code, tests) for tests in test_sets]
    started = time.perf_counter()
    executor.run_many(items, stop_on_first_failure=False)  # BatchedSearch's default
    seconds = time.perf_counter() - started
    return {"programs": len(items), "seconds": seconds,
            "programs_per_s": len(items) / seconds if seconds > 0 else float("inf")}


# --------------------------------------------------------------------------- agents

def build_agents(specs: Sequence[str], args: argparse.Namespace, problems: list, seed: int,
                 reuse: dict[int, Any], make_agent: Any = None) -> dict[str, Any]:
    """Agents coder_0, coder_1, ... for one run; seeded as in `mars2 search` (seed*1000 + i).

    Cheap agents are rebuilt for every run so each run repeats on its own; model-backed agents
    are built once (kept in `reuse`) since loading a model per run would dominate the bench.
    `make_agent(spec, **overrides)` builds each (default `agents.make_agent`).
    """
    if make_agent is None:
        from agents import make_agent

    agents = {}
    for i, spec in enumerate(specs):
        name = f"coder_{i}"
        kind = spec.partition(":")[0]
        agent_seed = seed * 1000 + i
        if kind in MODEL_KINDS:
            if i not in reuse:
                reuse[i] = make_agent(spec, name=name, seed=agent_seed, temperature=args.temperature,
                                      top_p=args.top_p, max_new_tokens=args.max_new_tokens)
            agents[name] = reuse[i]
        elif kind == "replay":
            agents[name] = make_agent(spec, name=name, problems=problems)
        elif kind == "random":
            agents[name] = make_agent(spec, name=name, seed=agent_seed)
        else:
            agents[name] = make_agent(spec, name=name, seed=agent_seed, problems=problems)
    return agents


# --------------------------------------------------------------------------- one run

def run_one(problems: list, agents: dict[str, Any], strategy: str, budget: int, seed: int,
            executor: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One strategy × budget × seed search over all problems; its metrics as a flat dict."""
    from mars2_cli.summary import run_metrics
    from mars2_env.vector import BatchedSearch, respond

    names = list(agents)
    scope = getattr(args, "refine_scope", None) if strategy == "mars2" else None
    factory = scheduler_factory(strategy, names, prior=args.prior, refine_scope=scope)
    search = BatchedSearch(problems, names, budget=budget, scheduler_factory=factory,
                           executor=executor, max_trees=args.max_trees,
                           expansions_per_tree=args.expansions_per_tree, tests="public",
                           judge_tests=args.judge_tests, seed=seed)
    before = getattr(executor, "executed", None)
    trees = []
    started = time.perf_counter()
    while not search.done:
        trees.extend(fin.tree for fin in search.submit(respond(agents, search.pending())))
    seconds = time.perf_counter() - started
    metrics = run_metrics(trees, judge=args.judge_tests)
    row: dict[str, Any] = {
        "strategy": strategy, "budget": budget, "seed": seed, "trees": metrics["trees"],
        "nodes": metrics["nodes"], "seconds": seconds,
        "nodes_per_s": metrics["nodes"] / seconds if seconds > 0 else float("inf"),
        "pass_at_1_mcts": metrics["pass_at_1_mcts"], "pass_at_n": metrics["pass_at_n"],
    }
    for name in names:
        m = metrics["per_agent"].get(name, {"share": 0.0, "expansions": 0, "node_pass_at_1": 0.0})
        row[f"share_{name}"] = m["share"]
        row[f"expansions_{name}"] = m["expansions"]
        row[f"node_pass_at_1_{name}"] = m["node_pass_at_1"]
    if before is not None:
        row["programs_executed"] = executor.executed - before
    return row


# --------------------------------------------------------------------------- aggregation

def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (two-sided 95%).

    Exact values to df = 30, then the Cornish-Fisher expansion around the normal quantile
    (error below 1e-4 there), so the bench needs no scipy.
    """
    table = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
             2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
             2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(table):
        return table[df - 1]
    z = 1.959964
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def ci95(values: Sequence[float]) -> float:
    """Half-width of the 95% t-interval of the mean over seeds (each seed is an independent
    replicate of the whole problem set); 0 with one seed."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return 0.0
    return float(t_quantile_975(len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def aggregate(runs: list[dict[str, Any]], agent_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per strategy × budget (in first-seen order): means over seeds, sample standard
    deviations and 95% confidence half-widths (`_ci95`; 0 with one seed)."""
    import numpy as np

    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["strategy"], r["budget"]), []).append(r)
    keys = list(METRICS) + [f"share_{a}" for a in agent_names]
    rows = []
    for (strategy, budget), rs in groups.items():
        row: dict[str, Any] = {"strategy": strategy, "budget": budget, "seeds": len(rs),
                               "problems": rs[0]["trees"]}
        for k in keys:
            values = np.array([r[k] for r in rs], dtype=float)
            row[k] = float(values.mean())
            row[f"{k}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row[f"{k}_ci95"] = ci95(values)
        row["nodes"] = float(np.mean([r["nodes"] for r in rs]))
        row["seconds"] = float(np.mean([r["seconds"] for r in rs]))
        rows.append(row)
    return rows


def csv_columns(agent_names: Sequence[str]) -> list[str]:
    cols = ["strategy", "budget", "seeds", "problems"]
    for k in list(METRICS) + [f"share_{a}" for a in agent_names]:
        cols += [k, f"{k}_std", f"{k}_ci95"]
    return cols + ["nodes", "seconds"]


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def plot(path: Path, rows: list[dict[str, Any]], title: str) -> None:
    """Two panels, Pass@1(MCTS) and Pass@N against budget, one line (95% CI bars) per strategy."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    budgets = sorted({r["budget"] for r in rows})
    markers, styles = "osD^v", ["-", "--", "-.", ":", (0, (5, 1))]
    for ax, key, label in zip(axes, ("pass_at_1_mcts", "pass_at_n"), ("Pass@1(MCTS)", "Pass@N"), strict=True):
        for i, s in enumerate(strategies):
            mine = sorted((r for r in rows if r["strategy"] == s), key=lambda r: r["budget"])
            # dodge strategies a little along x so equal curves stay visible
            dodge = 2 ** (0.035 * (i - (len(strategies) - 1) / 2))
            ax.errorbar([r["budget"] * dodge for r in mine], [r[key] for r in mine],
                        yerr=[r[f"{key}_ci95"] for r in mine], marker=markers[i % len(markers)],
                        linestyle=styles[i % len(styles)], markersize=5, capsize=3, label=s)
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("node budget per problem")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of problems solved")
    axes[1].legend(loc="lower right", fontsize="small")
    fig.suptitle(title, fontsize="medium")
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------- the command

def _check(args: argparse.Namespace) -> None:
    for flag, values in (("--budgets", args.budgets), ("--seeds", args.seeds)):
        if not values:
            raise SystemExit(f"mars2 bench: {flag} needs at least one value")
    if any(b < 1 for b in args.budgets):
        raise SystemExit(f"mars2 bench: --budgets must all be >= 1, got {args.budgets}")
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        raise SystemExit(f"mars2 bench: unknown strategies {unknown}; choose from {list(STRATEGIES)}")
    if not args.agents:
        raise SystemExit("mars2 bench: --agents needs at least one spec")
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"mars2 bench: --limit must be >= 1, got {args.limit}")


def run(args: argparse.Namespace) -> int:
    from mars2_cli.backend import backend_options, open_backend, print_plan
    from mars2_cli.summary import format_table
    from mars2_env.problems import load_problems

    _check(args)
    ray_opts = backend_options(args, "bench", shards=False)
    if ray_opts is not None and ray_opts.dry_run:
        return print_plan(ray_opts, args.agents)
    out = resolve_out_dir(args)
    problems = load_problems(args.problems)
    if args.limit is not None:
        problems = problems[: args.limit]
    budgets = list(dict.fromkeys(args.budgets))
    seeds = list(dict.fromkeys(args.seeds))
    strategies = list(dict.fromkeys(args.strategies))
    names = [f"coder_{i}" for i in range(len(args.agents))]
    grid = [(s, b, seed) for s in strategies for b in budgets for seed in seeds]

    runs: list[dict[str, Any]] = []
    reuse: dict[int, Any] = {}
    started = time.perf_counter()
    with open_backend(args, ray_opts, args.agents) as backend:
        real = backend.executor
        real.run_many([])  # start the workers now, outside the timed searches
        executor = CachedExecutor(real) if args.cache else real
        warm = None
        if args.cache and any(a.partition(":")[0] == "simulated" for a in args.agents):
            warm = warm_cache(executor, problems, args.judge_tests)
            print(f"executed the {warm['programs']} simulated programs × test sets in "
                  f"{warm['seconds']:.1f} s ({warm['programs_per_s']:.1f}/s); searches reuse "
                  "these verdicts", file=sys.stderr, flush=True)
        for i, (strategy, budget, seed) in enumerate(grid, 1):
            agents = build_agents(args.agents, args, problems, seed, reuse, backend.make_agent)
            row = run_one(problems, agents, strategy, budget, seed, executor, args)
            runs.append(row)
            print(f"[{i}/{len(grid)}] {strategy} budget={budget} seed={seed}: "
                  f"Pass@1(MCTS) {row['pass_at_1_mcts']:.3f} Pass@N {row['pass_at_n']:.3f} "
                  f"{row['nodes_per_s']:.0f} nodes/s", file=sys.stderr, flush=True)
        sandbox = real.mode
    for agent in reuse.values():
        getattr(agent, "close", lambda: None)()
    total = time.perf_counter() - started

    rows = aggregate(runs, names)
    columns = csv_columns(names)
    write_csv(out / "bench.csv", rows, columns)
    title = (f"{len(problems)} problems from {args.problems}, seeds {seeds}; agents: "
             + ", ".join(f"{n}={s}" for n, s in zip(names, args.agents, strict=True)))
    plot(out / "bench.png", rows, title)
    write_json(out / "bench.json", {
        "config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "problems": [p.id for p in problems],
        "agents": dict(zip(names, args.agents, strict=True)),
        "judge": args.judge_tests,
        "sandbox": sandbox,
        "cache": ({"executed": executor.executed, "reused": executor.reused, "warm_up": warm}
                  if isinstance(executor, CachedExecutor) else None),
        "seconds": total,
        "rows": rows,
        "runs": runs,
    })

    table = [{"strategy": r["strategy"], "budget": r["budget"],
              "Pass@1(MCTS)": _pm(r, "pass_at_1_mcts"), "Pass@N": _pm(r, "pass_at_n"),
              "nodes/s": f"{r['nodes_per_s']:.0f}",
              **{f"share {a}": _pm(r, f"share_{a}") for a in names}} for r in rows]
    print(format_table(table, list(table[0])))
    print("\n" + "; ".join(f"{n} = {s}" for n, s in zip(names, args.agents, strict=True)))
    print(f"mean ± 95% confidence half-width over {len(seeds)} seeds")
    print(f"{len(problems)} problems × {len(seeds)} seeds, judged on {args.judge_tests} tests, "
          f"{total:.1f} s in all"
          + (f"; {executor.executed} programs executed, {executor.reused} verdicts reused"
             if isinstance(executor, CachedExecutor) else ""))
    print(f"wrote {out / 'bench.csv'}, {out / 'bench.png'}, {out / 'bench.json'}")
    return 0


def _pm(row: dict[str, Any], key: str) -> str:
    """Mean ± 95% confidence half-width over seeds."""
    return f"{row[key]:.3f}±{row[key + '_ci95']:.3f}"

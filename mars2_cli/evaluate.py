"""`mars2 eval`: the paper's metrics — Pass@1, Pass@1(MCTS) and Pass@N — per agent and for the system.

- Pass@1: `--samples n` independent samples per problem and agent (no search), unbiased estimator.
- Pass@1(MCTS): a search with `--budget` nodes rewarded by public tests; the answer is the
  latest-wins node, judged on the private tests (`--judge-tests all`: on all tests, as
  LiveCodeBench's leaderboard does).
- Pass@N: any node of the tree passes the judging tests.

`--from RUN [RUN ...]` recomputes from saved trees without generating; with `--diversity` it
prints the diversity table (Table 2 of the paper) for the runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mars2_cli.backend import add_backend_arguments
from mars2_cli.common import (
    add_common_arguments,
    add_executor_workers,
    add_max_trees,
    add_time_limit_argument,
    resolve_out_dir,
    write_json,
)
from mars2_cli.report import LABELS
from mars2_cli.strategies import REFINE_SCOPE_HELP, STRATEGIES, scheduler_factory
from mars2_cli.summary import format_table, judge_note, read_trees, run_metrics
from mars2_env.metrics import pass_at_k


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument("--from", dest="from_runs", nargs="+", type=Path, default=None,
                   help="recompute from saved runs (directories holding trees.jsonl)")
    p.add_argument("--diversity", action="store_true",
                   help="with --from: print the diversity table (AEC, DA@K, EA, NAUADC, G-Vendi)")
    p.add_argument("--problems", default="builtin:demo")
    p.add_argument("--agents", nargs="+", default=["hf:embedded", "hf:embedded"])
    p.add_argument("--samples", type=int, default=8,
                   help="independent samples per problem and agent for Pass@1 (0: skip)")
    p.add_argument("--budget", type=int, default=60, help="nodes per tree for Pass@1(MCTS)/Pass@N (0: skip)")
    p.add_argument("--strategy", default="mars2", choices=sorted(STRATEGIES))
    p.add_argument("--refine-scope", default=None, choices=["own", "any"], help=REFINE_SCOPE_HELP)
    p.add_argument("--prior", default="beta", choices=["beta", "gaussian"])
    p.add_argument("--judge-tests", default="private", choices=["private", "all"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None)
    add_max_trees(p, 8, "trees in flight at once")
    from mars2_cli.search import add_generation_arguments

    add_generation_arguments(p)
    add_executor_workers(p)
    add_time_limit_argument(p)
    from mars2_cli.diversity_report import add_diversity_arguments

    add_diversity_arguments(p)
    add_backend_arguments(p)


def sampling_pass_at_1(trees: list, judge: str) -> float:
    """Mean over problems of the unbiased pass@1 from each tree's independent samples."""
    from mars2_cli.summary import judged

    if not trees:
        return 0.0
    vals = [pass_at_k(len(t.nodes()), sum(judged(n, judge, t) for n in t.nodes()), 1)
            for t in trees]
    return sum(vals) / len(vals)


def run(args: argparse.Namespace) -> int:
    from mars2_cli.backend import backend_options, print_plan

    ray_opts = backend_options(args, "eval")
    if ray_opts is not None and args.from_runs:
        raise ValueError("--ray runs fresh searches; --from only recomputes saved ones")
    if ray_opts is not None and ray_opts.dry_run:
        return print_plan(ray_opts, args.agents)
    if args.from_runs:
        return _from_runs(args)
    if args.diversity:
        raise SystemExit("mars2 eval: --diversity needs --from RUN [RUN ...] (saved searches)")
    return _fresh(args, ray_opts)


def _from_runs(args: argparse.Namespace) -> int:
    if args.diversity:
        from mars2_cli.diversity_report import diversity_options, diversity_table

        print(diversity_table([Path(r) for r in args.from_runs],
                                **{**diversity_options(args), "judge": args.judge_tests}))
        return 0
    rows = []
    for run_dir in args.from_runs:
        run_dir = Path(run_dir)
        path = run_dir / "trees.jsonl"
        if not path.exists():
            raise SystemExit(f"mars2 eval: no trees.jsonl in {run_dir}")
        trees = read_trees(path)
        m = run_metrics(trees, judge=args.judge_tests)
        strategies = sorted({str((t.metadata or {}).get("strategy", "?")) for t in trees})
        row = {"run": str(run_dir), "strategy": ",".join(strategies), "trees": m["trees"],
               "nodes": m["nodes"], "pass_at_1_mcts": m["pass_at_1_mcts"],
               "pass_at_n": m["pass_at_n"],
               # the share of a tree's nodes that pass, averaged over trees: for independent
               # samples (strategy parallel) the unbiased Pass@1 of one sample
               "node_pass_at_1": sampling_pass_at_1(trees, args.judge_tests)}
        for sample_path in sorted((run_dir / "pass1").glob("*/trees.jsonl")):
            row[f"pass_at_1[{sample_path.parent.name}]"] = sampling_pass_at_1(
                read_trees(sample_path), args.judge_tests)
        rows.append(row)
        write_json(run_dir / f"metrics_{args.judge_tests}.json", {**m, **row})
    first = ["run", "strategy", "trees", "nodes", "pass_at_1_mcts", "pass_at_n", "node_pass_at_1"]
    cols = first + sorted({c for r in rows for c in r} - set(first))
    print(format_table([{LABELS.get(c, c): r.get(c, "") for c in cols} for r in rows],
                       [LABELS.get(c, c) for c in cols]))
    print(f"judged on {args.judge_tests} tests. {LABELS['pass_at_1_mcts']}: the latest-wins "
          f"node (best public-test reward) passes; {LABELS['pass_at_n']}: some node passes; "
          f"{LABELS['node_pass_at_1']}: the share of nodes that pass")
    return 0


def _fresh(args: argparse.Namespace, ray_opts: Any = None) -> int:
    from mars2_cli.backend import open_backend, search_trees
    from mars2_cli.search import check_agent_specs, make_agents, print_work_plan, templates
    from mars2_env.problems import load_problems

    check_agent_specs(args.agents)
    problems = load_problems(args.problems)[: args.limit]
    n_agents = len(args.agents)
    print_work_plan(len(problems), max(0, args.samples) * n_agents + max(0, args.budget),
                    args.agents, args.max_new_tokens, what="evaluation",
                    extra=f" ({n_agents} agents x {args.samples} independent samples + a "
                          f"{args.budget}-node {args.strategy} tree per problem)")
    rows = []
    with open_backend(args, ray_opts, args.agents) as backend:
        agents = make_agents(args.agents, args, problems, backend.make_agent)
        out = resolve_out_dir(args)
        results: dict[str, Any] = {"judge": args.judge_tests, "problems": args.problems,
                                   "agents": dict(zip(agents, args.agents, strict=True))}
        for name, agent in agents.items():
            if args.samples <= 0:
                break
            path = out / "pass1" / name / "trees.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            trees = search_trees(backend, problems, {name: agent}, path, strategy="parallel",
                                 budget=args.samples,
                                 scheduler_factory=scheduler_factory("parallel", [name]),
                                 max_trees=args.max_trees, judge_tests=args.judge_tests,
                                 seed=args.seed, templates=templates(args))
            value = sampling_pass_at_1(trees, args.judge_tests)
            results[f"pass_at_1[{name}]"] = value
            rows.append({"system": f"{name} ({args.agents[list(agents).index(name)]})",
                         "pass_at_1": value})
        if args.budget > 0:
            path = out / "trees.jsonl"
            path.unlink(missing_ok=True)
            factory = scheduler_factory(args.strategy, list(agents), prior=args.prior,
                                        refine_scope=args.refine_scope)
            trees = search_trees(backend, problems, agents, path, strategy=args.strategy,
                                 budget=args.budget, scheduler_factory=factory,
                                 max_trees=args.max_trees, judge_tests=args.judge_tests,
                                 seed=args.seed, templates=templates(args))
            order = {p.id: i for i, p in enumerate(problems)}  # trees arrive as they finish
            m = run_metrics(sorted(trees, key=lambda t: order[t.problem_id]),
                            judge=args.judge_tests)
            results.update({"pass_at_1_mcts": m["pass_at_1_mcts"], "pass_at_n": m["pass_at_n"],
                            "search": m})
            rows.append({"system": f"{args.strategy} ({len(agents)} agents, budget {args.budget})",
                         "pass_at_1_mcts": m["pass_at_1_mcts"], "pass_at_n": m["pass_at_n"]})
    write_json(out / "metrics.json", results)
    print(format_table(rows, ["system", "pass_at_1", "pass_at_1_mcts", "pass_at_n"]))
    note = judge_note(results["search"]) if "search" in results else ""
    print(f"judged on {args.judge_tests} tests{note}; wrote {out / 'metrics.json'}")
    return 0

"""`mars2 search`: the batched multi-agent tree search over a problem set — the main job.

Each finished tree is appended to `trees.jsonl` at once (so an interrupted run loses only the
trees in flight, and `--resume` continues without redoing finished ones); at the end the run
writes `metrics.json` and `report.html`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from mars2_cli.backend import add_backend_arguments
from mars2_cli.common import (
    add_common_arguments,
    add_executor_workers,
    add_max_trees,
    add_time_limit_argument,
    default_out_dir,
    write_json,
)
from mars2_cli.progress import SearchProgress, say
from mars2_cli.strategies import (
    REFINE_SCOPE_HELP,
    STRATEGIES,
    resolve_refine_scope,
    scheduler_factory,
)
from mars2_cli.summary import (
    append_tree,
    format_table,
    judge_note,
    order_trees_file,
    repair_trees_file,
    run_metrics,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument("--problems", default="builtin:demo",
                   help="problem source: builtin:NAME or a file (canonical JSONL, LiveCodeBench, "
                        "DeepCoder, HumanEval, MBPP)")
    p.add_argument("--agents", nargs="+", default=["hf:embedded", "hf:embedded"],
                   help="agent specs: hf:embedded, hf:PATH, vllm:PATH, openai:URL#MODEL, "
                        "replay:FILE, random")
    p.add_argument("--budget", type=int, default=16, help="nodes per tree")
    p.add_argument("--strategy", default="mars2", choices=sorted(STRATEGIES),
                   help="; ".join(f"{k}: {v}" for k, v in STRATEGIES.items()))
    p.add_argument("--prior", default="beta", choices=["beta", "gaussian"])
    p.add_argument("--refine-scope", default=None, choices=["own", "any"], help=REFINE_SCOPE_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="search only the first N problems")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out, skipping problems whose trees are saved")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier search in --out (trees.jsonl, "
                        "metrics.json, report.html, config.json)")
    p.add_argument("--tests", default="public", choices=["public", "all"],
                   help="tests whose pass rate is a node's reward")
    p.add_argument("--judge-tests", default="private", choices=["private", "all", "none"],
                   help="tests that judge Pass@1(MCTS) / Pass@N (none: skip judging)")
    add_max_trees(p, 8, "trees in flight at once (the generation batch is about this many "
                        "prompts)")
    p.add_argument("--expansions-per-tree", type=int, default=1,
                   help="expansions one tree may have in flight per round (virtual loss)")
    p.add_argument("--stop-on-solve", action="store_true",
                   help="end a tree as soon as a node passes the judging tests")
    add_generation_arguments(p)
    add_executor_workers(p)
    add_time_limit_argument(p)
    add_backend_arguments(p)


def add_generation_arguments(p: argparse.ArgumentParser) -> None:
    """Sampling and prompt options of model agents, shared by search and eval."""
    from mars2_env.prompts import TEMPLATE_STYLES

    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling")
    p.add_argument("--max-new-tokens", type=int, default=512, help="tokens per response at most")
    p.add_argument("--prompt-style", default="default", choices=sorted(TEMPLATE_STYLES),
                   help="prompt templates (mars2_env.prompts): default, or compact for very small "
                        "models")
    p.add_argument("--stop-at-code-block", action="store_true",
                   help="hf agents: end a response at its first complete ```python block "
                        "(a small model's text after it is chatter; saves most CPU time)")
    p.add_argument("--torch-threads", type=int, default=None, metavar="N",
                   help="hf agents on CPU: torch threads for generation (default: the cores "
                        "idle at each generation's start; fix it for trees that repeat bit for "
                        "bit, since the count changes float rounding)")


MODEL_KINDS = ("hf", "vllm", "openai")

#: settings a saved tree depends on: `--resume` refuses to mix trees made with other values
TREE_SETTINGS = ("problems", "agents", "strategy", "budget", "seed", "prior", "refine_scope",
                 "tests", "judge_tests", "expansions_per_tree", "stop_on_solve", "temperature",
                 "top_p", "max_new_tokens", "time_limit_policy", "prompt_style",
                 "stop_at_code_block")


def tree_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The `TREE_SETTINGS` of a run's options (``vars(args)`` or a saved config.json), with the
    strategy's default refine scope filled in."""
    saved = config.get("tree_settings")
    if isinstance(saved, dict):
        return {k: saved.get(k) for k in TREE_SETTINGS}
    out = {k: config.get(k) for k in TREE_SETTINGS}
    if out["strategy"] is not None:
        out["refine_scope"] = resolve_refine_scope(out["strategy"], out["refine_scope"])
    if isinstance(out["agents"], tuple):
        out["agents"] = list(out["agents"])
    return out


def check_resume_settings(out: Path, now: dict[str, Any]) -> None:
    """Refuse a `--resume` whose tree settings differ from those the run was started with,
    naming each difference (mixed trees would make the run's metrics meaningless)."""
    import json

    path = out / "config.json"
    if not path.is_file():
        raise SystemExit(f"mars2 search: --resume: {path} is missing, so the settings the saved "
                         "trees were made with are unknown; start a new run with another --out")
    try:
        before = tree_settings(json.loads(path.read_text()))
    except (ValueError, AttributeError) as e:
        raise SystemExit(f"mars2 search: --resume: cannot read {path}: {e}") from None
    diff = [f"{k}: {before[k]!r} then, {now[k]!r} now" for k in TREE_SETTINGS
            if k in before and before[k] != now[k]]
    if diff:
        raise SystemExit(f"mars2 search: --resume: {out} was started with other settings, and its "
                         "trees would not be one run's:\n  " + "\n  ".join(diff)
                         + "\nresume with the same settings, or choose another --out")


def make_agents(specs: list[str], args: argparse.Namespace, problems: list | None = None,
                make_agent: Any = None) -> dict[str, Any]:
    """Agent objects named coder_0, coder_1, ... in the order of their specs.

    Model backends get the sampling flags; scripted agents (replay, simulated) get the problem
    list so they can tell which problem an observation is about. `make_agent(spec, **overrides)`
    builds each one (default `agents.make_agent`; a Ray backend builds generation pools).
    """
    threads = getattr(args, "torch_threads", None)
    if threads is not None and threads < 1:
        raise SystemExit(f"--torch-threads must be >= 1, got {threads}")
    share_models = make_agent is None  # local agents of one hf spec share the loaded model
    if make_agent is None:
        from agents import make_agent

    agents = {}
    loaded: dict[str, Any] = {}  # hf spec -> its first agent: later ones share the model
    for i, spec in enumerate(specs):
        name = f"coder_{i}"
        kind = spec.partition(":")[0]
        seed = args.seed * 1000 + i
        if kind in MODEL_KINDS:
            overrides = dict(seed=seed, temperature=args.temperature, top_p=args.top_p,
                             max_new_tokens=args.max_new_tokens)
            if kind == "hf" and getattr(args, "stop_at_code_block", False):
                overrides["stop_at_code_block"] = True
            if kind == "hf" and threads:
                overrides["num_threads"] = threads
        elif kind == "replay":
            overrides = dict(problems=problems)
        elif kind == "random":
            overrides = dict(seed=seed)
        else:
            overrides = dict(seed=seed, problems=problems)
        if share_models and kind == "hf" and spec in loaded:
            from agents.hf import HFAgent

            first = loaded[spec]
            agents[name] = HFAgent(first.model, first.tokenizer, name=name, **overrides)
            continue
        agents[name] = make_agent(spec, name=name, **overrides)
        if kind == "hf":
            loaded[spec] = agents[name]
    return agents


def run(args: argparse.Namespace) -> int:
    from mars2_cli.backend import backend_options, open_backend, print_plan, search_trees
    from mars2_env.problems import load_problems

    ray_opts = backend_options(args, "search")
    if ray_opts is not None and ray_opts.dry_run:
        return print_plan(ray_opts, args.agents)
    if args.budget < 1:
        raise SystemExit("mars2 search: --budget must be >= 1")
    check_agent_specs(args.agents)  # a typo fails here, in well under a second
    out = planned_out_dir(args)
    trees_path = out / "trees.jsonl"
    if args.overwrite and args.resume:
        raise SystemExit("mars2 search: --overwrite and --resume contradict each other; pick one")
    if trees_path.exists() and not args.resume and not args.overwrite:
        raise SystemExit(f"mars2 search: {trees_path} exists; pass --resume to continue that run, "
                         "--overwrite to replace it, or choose another --out")
    problems = load_problems(args.problems)
    if args.limit is not None:
        problems = problems[: args.limit]
    # the scheduler's options are checked now, before anything slow (agent names are known)
    factory = scheduler_factory(args.strategy, [f"coder_{i}" for i in range(len(args.agents))],
                                prior=args.prior, refine_scope=args.refine_scope)
    settings = tree_settings(vars(args))
    if args.resume and trees_path.exists():
        check_resume_settings(out, settings)
    done = repair_trees_file(trees_path) if args.resume else []
    done_ids = {t.problem_id for t in done}
    todo = [p for p in problems if p.id not in done_ids]
    judge = None if args.judge_tests == "none" else args.judge_tests

    trees = list(done)
    if todo:
        print_work_plan(len(todo), args.budget, args.agents, args.max_new_tokens,
                        what="tree search")
        saved: list = []
        try:
            with open_backend(args, ray_opts, args.agents) as backend:
                agents = make_agents(args.agents, args, problems, backend.make_agent)
                if args.overwrite:  # only once the agents loaded: a failed start keeps old results
                    clear_run(out)
                out.mkdir(parents=True, exist_ok=True)  # only now: a failed start leaves no dir
                write_json(out / "config.json", {**{k: v for k, v in vars(args).items()
                                                    if not k.startswith("_")},
                                                 "tree_settings": settings})
                search_trees(
                    backend, problems, agents, trees_path, strategy=args.strategy,
                    already=len(done), total=len(problems), skip=done_ids, into=saved,
                    budget=args.budget, scheduler_factory=factory, max_trees=args.max_trees,
                    expansions_per_tree=args.expansions_per_tree, tests=args.tests,
                    judge_tests=judge, stop_on_solve=args.stop_on_solve, seed=args.seed,
                    templates=templates(args))
        except KeyboardInterrupt:
            # count what is on disk (the interrupt may fall between writing a tree and noting it),
            # cutting a line torn by the interrupt
            on_disk = len(repair_trees_file(trees_path))
            print(f"\nmars2 search: interrupted — {on_disk} trees saved in "
                  f"{trees_path}; continue with --resume", file=sys.stderr)
            return 130
        trees += saved
    if trees_path.exists():  # every tree is in: the file in problem order, the same bytes
        order_trees_file(trees_path, [p.id for p in problems])
    out.mkdir(parents=True, exist_ok=True)
    by_id = {t.problem_id: t for t in trees}
    ordered = [by_id[p.id] for p in problems if p.id in by_id]
    _finish(out, ordered, judge or "public", args)
    return 0


def templates(args: argparse.Namespace) -> Any:
    """The prompt templates chosen with --prompt-style."""
    from mars2_env.prompts import TEMPLATE_STYLES

    return TEMPLATE_STYLES[getattr(args, "prompt_style", "default")]


def check_agent_specs(specs: list[str]) -> None:
    """Validate every agent spec without loading a model (see `agents.check_spec`)."""
    from agents import check_spec

    for spec in specs:
        check_spec(spec)


def planned_out_dir(args: argparse.Namespace) -> Path:
    """The run directory (`--out`, else runs/<time>), not yet created."""
    if getattr(args, "out", None) is None:
        args.out = default_out_dir()
    return Path(args.out)


RUN_FILES = ("trees.jsonl", "metrics.json", "report.html", "config.json")


def clear_run(out: Path) -> None:
    """--overwrite: remove the files a previous search wrote into `out` (nothing else)."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def print_work_plan(problems: int, nodes: int, agents: list[str], max_new_tokens: int, *,
               what: str, extra: str = "") -> None:
    """One line of planned work before anything slow starts."""
    programs = problems * nodes
    say(f"planned {what}: {problems} problems x {nodes} nodes = {programs} programs{extra}, "
        f"each up to {max_new_tokens} new tokens, agents {' '.join(agents)}")


#: a generation call slower than this (seconds) makes the search loop wait for whole rounds
MODEL_BOUND_S = 0.5


def _search_loop(search: Any, agents: dict[str, Any], trees_path: Path, *,
                 already: int, total: int, strategy: str, into: list | None = None) -> list:
    """Run `search` to the end asynchronously (`mars2_env.vector`: a tree whose results are in
    is generated for while other trees' programs run; with a model slower than its programs,
    in whole rounds, so each generation call gets every tree), appending each finished tree to
    `trees_path` as it finishes (and to `into`, so a caller interrupted by Ctrl-C knows what
    was saved)."""
    from mars2_env.vector import respond

    finished_trees = [] if into is None else into
    first_batch = 0  # programs of the first generation batch: the estimate waits for them all
    reported = 0
    with SearchProgress(trees=total, budget=search.config.budget, trees_done=already,
                        desc=strategy) as progress:

        def save(finished: list) -> None:
            nonlocal reported
            # responses to trees solved earlier in their round (--stop-on-solve) add no node
            written = search.landed + search.discarded
            if written >= first_batch and written > reported:
                progress.programs(written - reported)
                reported = written
            for fin in finished:
                fin.tree.metadata.update({"strategy": strategy, "problem_title": fin.problem.title,
                                          "problem_statement": fin.problem.statement})
                append_tree(trees_path, fin.tree)
                finished_trees.append(fin.tree)
                progress.tree_done(fin.solved, unused=search.config.budget - len(fin.tree))

        asynchronous = search.order_free(agents)  # else rounds: see BatchedSearch.order_free
        while not search.done:
            save(search.collect(wait=False))
            batch = search.pending()
            if batch:
                started = time.monotonic()
                responses = respond(agents, batch)
                # a model whose call takes longer than its programs run gains nothing from
                # generating for the few trees that are ready first, and loses its batch: wait
                # for the round (the trees are the same either way)
                if time.monotonic() - started > MODEL_BOUND_S:
                    asynchronous = False
                save(search.submit(responses, wait=not asynchronous))
                first_batch = first_batch or sum(len(v) for v in batch.values())
            elif not search.done:
                save(search.collect())
        save([])
    return finished_trees


def _finish(out: Path, trees: list, judge: str, args: argparse.Namespace) -> None:
    from mars2_cli.report import LABELS, write_report

    metrics = run_metrics(trees, judge=judge)
    metrics.update({"strategy": args.strategy, "agents": list(args.agents), "budget": args.budget,
                    "problems": args.problems, "seed": args.seed})
    write_json(out / "metrics.json", metrics)
    write_report(out / "report.html", trees, metrics,
                 title=f"mars2 search — {args.strategy} on {args.problems}")
    cols = ["problem_id", "nodes", "best_public_reward", "pass_at_1_mcts", "pass_at_n"]
    print(format_table([{LABELS.get(c, c): r[c] for c in cols} for r in metrics["per_tree"]],
                       [LABELS.get(c, c) for c in cols]))
    print(f"\n{metrics['trees']} trees, {metrics['nodes']} nodes · "
          f"Pass@1(MCTS) {metrics['pass_at_1_mcts']:.3f} · Pass@N {metrics['pass_at_n']:.3f} "
          f"(judged on {judge} tests{judge_note(metrics)})")
    for agent, m in metrics["per_agent"].items():
        print(f"  {agent}: {m['expansions']} expansions ({m['share']:.0%}), "
              f"node Pass@1 {m['node_pass_at_1']:.3f}")
    print(f"wrote {out / 'trees.jsonl'}, {out / 'metrics.json'}, {out / 'report.html'}")

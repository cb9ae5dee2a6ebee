"""`mars2 filter`: drop problems that every sample solves or none does (no learning signal).

As in the paper's data preparation, each problem gets ``--samples`` independent samples per
agent (a ParallelSampling search); a problem is kept when its solve count over all samples
lies strictly between 0 and the number of samples. Writes ``OUT/problems.jsonl`` (the kept
problems, canonical format, usable as ``--problems`` of ``mars2 train``), ``OUT/filter.json``
(per-problem counts) and ``OUT/trees.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mars2_cli.common import default_out_dir

DEFAULTS: dict[str, Any] = {
    "problems": "builtin:demo",
    "limit": None,
    "agents": ["hf:embedded"],
    "samples": 8,
    "tests": "all",
    "max_new_tokens": 512,
    "temperature": 1.0,
    "top_p": 1.0,
    "max_trees": 16,
    "keep_all_solved": False,
    "keep_none_solved": False,
    "seed": 0,
    "executor_workers": None,
    "time_limit_policy": "dataset",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML file whose keys are these flags"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: runs/<time>)"
    )
    parser.add_argument("--problems", default=None, help="problem source (default builtin:demo)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N problems")
    parser.add_argument(
        "--agents", nargs="+", default=None, help="agent specs that sample (default hf:embedded)"
    )
    parser.add_argument(
        "--samples", type=int, default=None, help="samples per problem per agent (default 8)"
    )
    parser.add_argument(
        "--tests",
        choices=("public", "private", "all"),
        default=None,
        help="tests a sample must pass to count as solved (default all)",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=None, help="tokens per sample (default 512)"
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="sampling temperature (default 1.0)"
    )
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling (default 1.0)")
    parser.add_argument(
        "--max-trees", type=int, default=None, help="problems sampled at once (default 16)"
    )
    parser.add_argument(
        "--keep-all-solved",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep problems every sample solves (default: drop)",
    )
    parser.add_argument(
        "--keep-none-solved",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep problems no sample solves (default: drop)",
    )
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default 0)")
    parser.add_argument(
        "--executor-workers", type=int, default=None, help="sandbox workers (default: cores)"
    )
    parser.add_argument(
        "--time-limit-policy", default=None,
        help="per-test time limit: dataset (default), SECONDS or xFACTOR (see mars2 search --help)",
    )


def options(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults < YAML < flags."""
    opts = dict(DEFAULTS)
    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a mapping of flag names to values")
        for key, value in data.items():
            k = str(key).replace("-", "_")
            if k == "out":
                if args.out is None:
                    args.out = Path(value)
                continue
            if k not in DEFAULTS:
                raise ValueError(
                    f"unknown key {key!r} in {path}; valid keys: {', '.join(sorted(DEFAULTS))}, out"
                )
            opts[k] = value
    for k in DEFAULTS:
        v = getattr(args, k, None)
        if v is not None:
            opts[k] = v
    if isinstance(opts["agents"], str):
        opts["agents"] = [opts["agents"]]
    if int(opts["samples"]) < 1:
        raise ValueError(f"--samples must be >= 1, got {opts['samples']}")
    return opts


def _agent_kwargs(
    spec: str, name: str, opts: dict[str, Any], i: int, problems: list
) -> dict[str, Any]:
    """Constructor overrides each agent kind accepts."""
    kind = spec.split(":", 1)[0]
    seed = int(opts["seed"]) * 1000 + i
    if kind in ("hf", "vllm", "openai"):
        return dict(
            name=name,
            temperature=float(opts["temperature"]),
            top_p=float(opts["top_p"]),
            max_new_tokens=int(opts["max_new_tokens"]),
            seed=seed,
        )
    if kind == "replay":
        return dict(name=name, problems=problems)
    if kind == "random":
        return dict(name=name, seed=seed)
    return dict(name=name)


def filter_problems(opts: dict[str, Any], out: Path) -> dict[str, Any]:
    """Sample, count solves, write the kept problems; returns the summary."""
    from agents import make_agent
    from mars2_env.execution import Executor
    from mars2_env.problems import TimeLimitPolicy, load_problems, save_problems
    from mars2_env.scheduler import ParallelSampling
    from mars2_env.vector import BatchedSearch

    problems = load_problems(opts["problems"])
    if opts["limit"]:
        problems = problems[: int(opts["limit"])]
    names = [f"sampler_{i}" for i in range(len(opts["agents"]))]
    agents = {}
    for i, (name, spec) in enumerate(zip(names, opts["agents"], strict=True)):
        agents[name] = make_agent(spec, **_agent_kwargs(spec, name, opts, i, problems))
    n = int(opts["samples"]) * len(names)
    rows = []
    out.mkdir(parents=True, exist_ok=True)
    limits = TimeLimitPolicy.parse(opts["time_limit_policy"]).executor_options()
    with Executor(max_workers=opts["executor_workers"], **limits) as ex:
        search = BatchedSearch(
            problems,
            agents=names,
            budget=n,
            scheduler_factory=lambda: ParallelSampling(names),
            executor=ex,
            max_trees=int(opts["max_trees"]),
            tests=opts["tests"],
            judge_tests=None,
            seed=int(opts["seed"]),
        )
        finished = search.run(lambda a, obs: agents[a].generate(obs))
    by_id = {}
    with open(out / "trees.jsonl", "w") as f:
        for ft in finished:
            f.write(json.dumps(ft.tree.to_dict()) + "\n")
            solved = sum(
                1 for node in ft.tree.nodes() if (node.public or {}).get("verdict") == "passed"
            )
            by_id[ft.problem_id] = solved
    kept = []
    for p in problems:
        solved = by_id[p.id]
        keep = (
            (0 < solved < n)
            or (solved == n and opts["keep_all_solved"])
            or (solved == 0 and opts["keep_none_solved"])
        )
        rows.append({"problem_id": p.id, "solved": solved, "samples": n, "kept": keep})
        if keep:
            kept.append(p)
    save_problems(kept, out / "problems.jsonl")
    summary = {
        "problems": len(problems),
        "kept": len(kept),
        "samples_per_problem": n,
        "all_solved": sum(r["solved"] == n for r in rows),
        "none_solved": sum(r["solved"] == 0 for r in rows),
        "options": {k: v for k, v in opts.items()},
        "per_problem": rows,
    }
    (out / "filter.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    for agent in agents.values():
        close = getattr(agent, "close", None)
        if close:
            close()
    return summary


def run(args: argparse.Namespace) -> int:
    try:
        opts = options(args)
        out = Path(args.out) if args.out is not None else default_out_dir()
        summary = filter_problems(opts, out)
    except (ValueError, FileNotFoundError) as e:
        print(f"mars2 filter: {e}", file=sys.stderr)
        return 2
    print(
        f"kept {summary['kept']} of {summary['problems']} problems "
        f"({summary['all_solved']} solved by every sample, {summary['none_solved']} by none) "
        f"-> {out / 'problems.jsonl'}"
    )
    return 0

"""`mars2 data`: look at a problem file before spending GPU hours on it.

    mars2 data stats FILE [--json]      counts: problems, kinds, harnesses, tests per split,
                                        problems the judge policy applies to, time/memory limits
    mars2 data check FILE [--json]      run each row's reference solution (where the format
                                        carries one) through the executor; pass counts and every
                                        failing id with its verdict

``FILE`` is anything `load_problems` reads (``builtin:demo`` too). ``check`` also runs the
wrong solutions a row carries (``metadata["wrong_solutions"]``, the bundled demo set) and
reports any that pass. Exit status of ``check``: 0 when every reference passes and no wrong
solution does, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from mars2_cli.common import (
    add_executor_workers,
    add_time_limit_argument,
    executor_limits,
    write_json,
)

ACTIONS = ("stats", "check")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS, help="stats: counts; check: run reference solutions")
    p.add_argument("problems", help="problem file or bundled set (e.g. builtin:demo)")
    p.add_argument("--format", default=None,
                   help="row format (default: detected from the first row): canonical, "
                        "livecodebench, deepcoder, humaneval, mbpp")
    p.add_argument("--n-public", type=int, default=1,
                   help="tests made public for formats without a split (DeepCoder, MBPP)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--tests", default="public", choices=["public", "all"],
                   help="stats: the reward tests a search would use (for the judge policy counts)")
    p.add_argument("--judge-tests", default="private", choices=["private", "all", "none"],
                   help="stats: the judge tests a search would use (for the judge policy counts)")
    add_executor_workers(p)
    add_time_limit_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML file whose keys are these flags (flags on the command line win)")
    p.add_argument("--out", type=Path, default=None, help="also write DIR/data_<action>.json")


def run(args: argparse.Namespace) -> int:
    from mars2_env.problems import load_problems

    problems = load_problems(args.problems, format=args.format, n_public=args.n_public,
                             limit=args.limit)
    if args.action == "stats":
        result = dataset_stats(problems, tests=args.tests,
                               judge_tests=None if args.judge_tests == "none" else args.judge_tests)
        text = format_stats(result)
        status = 0
    else:
        result = check_references(problems, workers=args.executor_workers, **executor_limits(args))
        text = format_check(result)
        status = 0 if result["ok"] else 1
    result = {"problems_source": str(args.problems), **result}
    if args.out is not None:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / f"data_{args.action}.json", result)
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else text)
    return status


# ---------------------------------------------------------------------------------- stats

def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "max": 0, "total": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "total": sum(values)}


def _counts(values: list[Any]) -> dict[str, int]:
    """Value -> count, most common first (keys as text, so JSON keeps them)."""
    return {(f"{v:g}" if isinstance(v, float) else str(v)): n
            for v, n in Counter(values).most_common()}


def dataset_stats(problems: list, tests: str = "public",
                  judge_tests: str | None = "private") -> dict[str, Any]:
    """Per-dataset counts (pure: nothing runs). ``judge_policy`` counts the problems that
    `mars2_env.envcore.judge_plan` treats specially under these ``tests`` / ``judge_tests``."""
    from mars2_env.envcore import SearchConfig, judge_plan

    config = SearchConfig(budget=1, tests=tests, judge_tests=judge_tests)
    plans = [judge_plan(p, config) for p in problems]
    return {
        "problems": len(problems),
        "kinds": _counts([p.kind for p in problems]),
        "harnesses": _counts([p.harness for p in problems]),
        "sources": _counts([p.source or "-" for p in problems]),
        "shapes": _counts([p.metadata["shape"] for p in problems if "shape" in p.metadata]),
        "difficulties": _counts([p.difficulty for p in problems if p.difficulty]),
        "tests": {"public": _spread([len(p.public_tests) for p in problems]),
                  "private": _spread([len(p.private_tests) for p in problems])},
        "judge_policy": {
            "tests": tests, "judge_tests": judge_tests,
            "judged_on_public": [p.id for p, plan in zip(problems, plans, strict=True)
                                 if plan.fallback],
            "no_reward_tests": [p.id for p, plan in zip(problems, plans, strict=True)
                                if not plan.reward_tests],
        },
        "time_limit_s": _counts([float(p.time_limit_s) for p in problems]),
        "memory_limit_mb": _counts([int(p.memory_limit_mb) for p in problems]),
        "limits_from_statement": sum(p.metadata.get("limits_from") == "statement"
                                     for p in problems),
        "reference_solutions": sum(isinstance(p.metadata.get("reference_solution"), str)
                                   for p in problems),
    }


def _ids(ids: list[str], shown: int = 8) -> str:
    more = f", ... ({len(ids) - shown} more)" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def format_stats(s: dict[str, Any]) -> str:
    def line(counts: dict[str, int], unit: str = "") -> str:
        return ", ".join(f"{k}{unit} ×{n}" for k, n in counts.items()) or "-"

    def row(label: str, text: str) -> str:
        return f"  {label + ':':<16}{text}"

    jp = s["judge_policy"]
    out = [f"{s['problems']} problems", row("kinds", line(s["kinds"])),
           row("harnesses", line(s["harnesses"])), row("sources", line(s["sources"]))]
    if s["shapes"]:
        out.append(row("row shapes", line(s["shapes"])))
    if s["difficulties"]:
        out.append(row("difficulty", line(s["difficulties"])))
    for side in ("public", "private"):
        t = s["tests"][side]
        out.append(row(f"{side} tests", f"{t['total']} (per problem min {t['min']}, median "
                                         f"{t['median']:g}, max {t['max']})"))
    out.append(f"  judge policy (reward on {jp['tests']}, judge on {jp['judge_tests']}):")
    out.append(f"    no {jp['judge_tests']} tests, judged on their public run: "
               f"{len(jp['judged_on_public'])}"
               + (f" ({_ids(jp['judged_on_public'])})" if jp["judged_on_public"] else ""))
    out.append(f"    no {jp['tests']} tests, every node rewarded 0: {len(jp['no_reward_tests'])}"
               + (f" ({_ids(jp['no_reward_tests'])})" if jp["no_reward_tests"] else ""))
    out.append(row("time limits", f"{line(s['time_limit_s'], ' s')} "
                                  f"({s['limits_from_statement']} stated in the statement)"))
    out.append(row("memory limits", line(s["memory_limit_mb"], " MiB")))
    out.append(row("references", f"{s['reference_solutions']} problems carry a reference "
                                 "solution (mars2 data check runs them)"))
    return "\n".join(out)


# ---------------------------------------------------------------------------------- check

def _first_error(result: Any) -> str:
    for t in result.tests:
        if t.verdict.value != "passed":
            lines = [x for x in (t.error or "").strip().split("\n") if x.strip()]
            return lines[-1][:200] if lines else ""
    return ""


def _unique_tests(problem: Any) -> list:
    """All of a problem's tests, each once (HumanEval-like sets list one test as both)."""
    return list(dict.fromkeys(problem.tests))


def check_references(problems: list, workers: int | None = None, sandbox: str = "auto",
                     **limits: Any) -> dict[str, Any]:
    """Run every reference solution (and wrong solution) on all of its problem's tests.

    A reference that fails and a wrong solution that passes are listed with the verdict;
    ``ok`` is True when there are none. ``limits`` are `Executor` options (the time-limit
    policy). A progress bar runs on stderr when it is a terminal.
    """
    from tqdm import tqdm

    from mars2_env.execution import Executor

    jobs: list[tuple[Any, str, str]] = []  # (problem, code, "reference" | "wrong #i")
    for p in problems:
        ref = p.metadata.get("reference_solution")
        if isinstance(ref, str) and ref.strip():
            jobs.append((p, ref, "reference"))
        for i, wrong in enumerate(p.metadata.get("wrong_solutions") or []):
            if isinstance(wrong, str) and wrong.strip():
                jobs.append((p, wrong, f"wrong #{i}"))
    with_ref = sum(1 for _, _, what in jobs if what == "reference")
    failures, wrong_passing, passed = [], [], 0
    with Executor(max_workers=workers, sandbox=sandbox, **limits) as ex:
        chunk = 4 * ex.max_workers
        with tqdm(total=len(jobs), unit="program", desc="check", file=sys.stderr,
                  disable=None, dynamic_ncols=True) as bar:
            for start in range(0, len(jobs), chunk):
                part = jobs[start:start + chunk]
                results = ex.run_many([(p, code, _unique_tests(p)) for p, code, _ in part])
                for (p, _, what), r in zip(part, results, strict=True):
                    ok = r.verdict.value == "passed"
                    row = {"id": p.id, "verdict": r.verdict.value, "passed": r.passed,
                           "total": r.total, "error": _first_error(r)}
                    if what == "reference":
                        passed += ok
                        if not ok:
                            failures.append(row)
                    elif ok:
                        wrong_passing.append({**row, "solution": what})
                    bar.update(1)
                bar.set_postfix(failed=len(failures))
        mode = ex.mode
    return {"problems": len(problems), "with_reference": with_ref,
            "without_reference": len(problems) - with_ref, "passed": passed,
            "failed": len(failures), "failures": failures,
            "wrong_checked": len(jobs) - with_ref, "wrong_passing": wrong_passing,
            "limits": dict(limits), "sandbox": mode,
            "ok": not failures and not wrong_passing}


def format_check(c: dict[str, Any]) -> str:
    out = [f"reference solutions: {c['passed']}/{c['with_reference']} pass"
           f" ({c['without_reference']} of {c['problems']} problems have none)"]
    for f in c["failures"]:
        out.append(f"  FAIL {f['id']}: {f['verdict']} ({f['passed']}/{f['total']} tests)"
                   + (f" {f['error']}" if f["error"] else ""))
    if c["wrong_checked"]:
        out.append(f"wrong solutions: {c['wrong_checked'] - len(c['wrong_passing'])}/"
                   f"{c['wrong_checked']} fail as they should")
        for f in c["wrong_passing"]:
            out.append(f"  PASSES {f['id']} ({f['solution']}): the tests do not catch it")
    return "\n".join(out)

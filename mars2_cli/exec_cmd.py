"""`mars2 exec`: run one program against one problem's tests and print a verdict table.

    mars2 exec PROBLEMS.jsonl --id ID --code FILE [--tests public|private|all]

``PROBLEMS`` is anything `load_problems` reads (``builtin:demo`` too); ``--code -`` reads the
program from stdin. Exit status 0 when every selected test passes, 1 otherwise, 2 on bad input.
With ``--out DIR`` the full result is also written to ``DIR/result.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "problems": None,
    "id": None,
    "code": None,
    "tests": "all",
    "time_limit": None,
    "memory_limit": None,
    "executor_workers": 1,
    "sandbox": "auto",
    "stop_on_failure": False,
    "json": False,
    "width": 24,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problems", nargs="?", default=None,
                        help="problem file or bundled set (e.g. builtin:demo)")
    parser.add_argument("--id", default=None, help="id of the problem to run")
    parser.add_argument("--code", default=None, help="program file ('-' reads stdin)")
    parser.add_argument("--tests", choices=("public", "private", "all"), default=None,
                        help="which tests to run (default all)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="wall-clock seconds per test (default: the problem's)")
    parser.add_argument("--memory-limit", type=float, default=None,
                        help="MiB per test (default: the problem's)")
    parser.add_argument("--executor-workers", type=int, default=None,
                        help="sandbox worker processes (default 1)")
    from mars2_cli.common import _DeprecatedAlias

    parser.add_argument("--workers", dest="executor_workers", type=int, action=_DeprecatedAlias,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--sandbox", choices=("auto", "namespaces", "basic"), default=None,
                        help="isolation mode (default auto)")
    parser.add_argument("--stop-on-failure", action=argparse.BooleanOptionalAction, default=None,
                        help="stop at the first failing test (default: run them all)")
    parser.add_argument("--json", action=argparse.BooleanOptionalAction, default=None,
                        help="print the result as JSON instead of a table")
    parser.add_argument("--width", type=int, default=None, help="column width of the table (default 24)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML file whose keys are these flags (flags on the command line win)")
    parser.add_argument("--out", type=Path, default=None, help="also write DIR/result.json")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flag values, with the defaults filled in (``mars2`` applied ``--config`` already)."""
    out = {key: (getattr(args, key, None) if getattr(args, key, None) is not None else default)
           for key, default in DEFAULTS.items()}
    out["out"] = getattr(args, "out", None)
    return out


def _cell(text: str, width: int) -> str:
    one = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    if len(one) > width:
        one = one[: max(1, width - 3)] + "..."
    return one.ljust(width)


def format_table(result, width: int = 24) -> str:
    """One row per executed test, then the summary line."""
    from mars2_env.execution.feedback import tail_lines

    head = f"{'#':>3}  {'verdict':<14} {'input':<{width}} {'expected':<{width}} {'actual':<{width}}"
    head = head.rstrip()
    lines = [head, "-" * len(head)]
    for i, t in enumerate(result.tests, 1):
        lines.append(f"{i:>3}  {t.verdict.value:<14} {_cell(t.input, width)} "
                     f"{_cell(t.expected, width)} {_cell(t.actual, width)}".rstrip())
    not_run = result.total - len(result.tests)
    if not_run:
        lines.append(f"     ({not_run} more tests not run)")
    errors = [(i, t) for i, t in enumerate(result.tests, 1) if t.error]
    for i, t in errors[:3]:
        lines.append("")
        lines.append(f"test {i} error:")
        lines.extend("    " + x for x in tail_lines(t.error, 12).split("\n"))
    lines.append("")
    lines.append(f"verdict: {result.verdict.value}   passed {result.passed}/{result.total}   "
                 f"reward {result.reward:.3f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mars2_env.execution import Executor
    from mars2_env.problems import ProblemFormatError, load_problems

    try:
        cfg = _settings(args)
        if not cfg["problems"] or not cfg["id"] or not cfg["code"]:
            raise ValueError("need PROBLEMS, --id and --code (see mars2 exec --help)")
        problems = load_problems(cfg["problems"])
        by_id = {p.id: p for p in problems}
        if cfg["id"] not in by_id:
            some = ", ".join(list(by_id)[:8])
            raise ValueError(f"no problem with id {cfg['id']!r} in {cfg['problems']} "
                             f"({len(by_id)} problems, e.g. {some})")
        code_path = cfg["code"]
        code = sys.stdin.read() if code_path == "-" else Path(code_path).read_text()
    except (ValueError, OSError, ProblemFormatError) as e:
        print(f"mars2 exec: {e}", file=sys.stderr)
        return 2
    problem = by_id[cfg["id"]]
    limits: dict[str, Any] = {}
    if cfg["time_limit"] is not None:
        limits["time_limit_s"] = float(cfg["time_limit"])
    if cfg["memory_limit"] is not None:
        limits["memory_limit_mb"] = float(cfg["memory_limit"])
    try:
        with Executor(max_workers=int(cfg["executor_workers"]), sandbox=cfg["sandbox"], **limits) as ex:
            result = ex.run(problem, code, tests=cfg["tests"],
                            stop_on_first_failure=bool(cfg["stop_on_failure"]))
            mode = ex.mode
    except ValueError as e:
        print(f"mars2 exec: {e}", file=sys.stderr)
        return 2
    if cfg["json"]:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"problem {problem.id} ({problem.kind}), {result.total} tests ({cfg['tests']}), "
              f"sandbox: {mode}")
        print(format_table(result, int(cfg["width"])))
    if cfg["out"]:
        out = Path(cfg["out"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return 0 if result.verdict.value == "passed" else 1

"""`mars2 view RUN`: (re)write `report.html` for the trees saved in a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from mars2_cli.common import add_common_arguments
from mars2_cli.report import write_report
from mars2_cli.summary import read_trees, run_metrics


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument("run", type=Path, help="run directory holding trees.jsonl (or the file itself)")
    p.add_argument("--judge-tests", default="private", choices=["private", "all", "public"])


def run(args: argparse.Namespace) -> int:
    path = args.run / "trees.jsonl" if args.run.is_dir() else args.run
    if not path.exists():
        raise SystemExit(f"mars2 view: {path} not found")
    trees = read_trees(path)
    metrics = run_metrics(trees, judge=args.judge_tests)
    out_dir = Path(args.out) if args.out else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.html"
    write_report(report, trees, metrics, title=f"mars2 — {path}")
    print(f"wrote {report} ({len(trees)} trees)")
    return 0

"""Shared CLI plumbing: `--config FILE.yaml` whose keys are the subcommand's flags, and `--out`."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

import yaml


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags every subcommand shares: --config and --out."""
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML file whose keys are this command's flags (flags given on the "
                             "command line win)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: runs/<time>)")


#: Old spellings kept for one release as deprecated aliases: {old dest: new dest}.
#: One name each across subcommands: executor processes are `--executor-workers`, trees in
#: flight at once are `--max-trees`.
DEPRECATED: dict[str, str] = {"workers": "executor_workers", "trees_per_round": "max_trees"}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def deprecation_warning(old: str, new: str) -> None:
    print(f"mars2: {old} is deprecated and will be removed; use {new}", file=sys.stderr)


class _DeprecatedAlias(argparse.Action):
    """An old flag: warns once on stderr and stores into the new option's destination."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        deprecation_warning(option_string, _flag(self.dest))
        setattr(namespace, self.dest, values)


def add_executor_workers(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    """`--executor-workers N` (sandbox processes), with `--workers` as a deprecated alias."""
    parser.add_argument("--executor-workers", type=int, default=default,
                        help="sandbox worker processes that run the programs (none: one per core)")
    parser.add_argument("--workers", dest="executor_workers", type=int, action=_DeprecatedAlias,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_max_trees(parser: argparse.ArgumentParser, default: int | None, help: str) -> None:
    """`--max-trees N` (trees in flight at once), with `--trees-per-round` as a deprecated alias."""
    parser.add_argument("--max-trees", type=int, default=default, help=help)
    parser.add_argument("--trees-per-round", dest="max_trees", type=int,
                        action=_DeprecatedAlias, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)


def add_time_limit_argument(parser: argparse.ArgumentParser) -> None:
    """``--time-limit-policy``: how each problem's time limit becomes the per-test wall limit."""
    parser.add_argument(
        "--time-limit-policy", default="dataset",
        help="per-test time limit: 'dataset' (each problem's own: the statement's limit where "
             "the format states one, else 6 s), SECONDS for every test ('6', '6s'), or a scale "
             "factor of the dataset's limit ('x3'), since Python here is slower than the judges'")


def executor_limits(args: argparse.Namespace) -> dict[str, float]:
    """`Executor` options for the parsed ``--time-limit-policy`` (a bad value is a ValueError)."""
    from mars2_env.problems import TimeLimitPolicy

    return TimeLimitPolicy.parse(getattr(args, "time_limit_policy", None)).executor_options()


def default_out_dir() -> Path:
    return Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _explicit_dests(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Names of the options the user typed on the command line (not defaults)."""
    saved = {a.dest: a.default for a in parser._actions}
    required = {a.dest: a.required for a in parser._actions}
    try:
        for a in parser._actions:
            a.default = argparse.SUPPRESS
            a.required = False
        ns, _ = parser.parse_known_args(argv)
    finally:
        for a in parser._actions:
            a.default = saved[a.dest]
            a.required = required[a.dest]
    return set(vars(ns))


def apply_config(args: argparse.Namespace, parser: argparse.ArgumentParser,
                 argv: list[str]) -> argparse.Namespace:
    """Fill `args` from `args.config` (YAML), keeping any flag typed on the command line.

    Keys may use dashes or underscores. An unknown key is an error naming it and the valid keys.
    """
    if getattr(args, "config", None) is None:
        return args
    path = Path(args.config)
    if not path.is_file():
        raise SystemExit(f"mars2: config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SystemExit(f"mars2: {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"mars2: {path} must hold a mapping of flag names to values")
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    explicit = _explicit_dests(parser, argv)
    for key, value in data.items():
        dest = str(key).replace("-", "_")
        if dest in DEPRECATED and DEPRECATED[dest] in actions:
            deprecation_warning(f"key {key!r} in {path}", repr(DEPRECATED[dest]))
            dest = DEPRECATED[dest]
        if dest not in actions:
            valid = ", ".join(sorted(actions))
            raise SystemExit(f"mars2: unknown key {key!r} in {path}; valid keys: {valid}")
        if dest in explicit:
            continue
        action = actions[dest]
        if value is not None and action.type is not None and not isinstance(value, list):
            value = action.type(value)
        elif isinstance(value, list) and action.type is not None:
            value = [action.type(v) for v in value]
        setattr(args, dest, value)
    return args


def resolve_out_dir(args: argparse.Namespace) -> Path:
    out = Path(args.out) if getattr(args, "out", None) else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (tmp file + rename) so a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)

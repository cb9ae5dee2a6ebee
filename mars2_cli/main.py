"""The `mars2` command line: one subcommand a module, imported only when used.

This is the one place that wires `mars2_env`, `agents` and `train` together.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> (module under mars2_cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "search": ("search", "run the batched multi-agent tree search over problems"),
    "eval": ("evaluate", "Pass@1, Pass@1(MCTS), Pass@N (and diversity) from a run or fresh samples"),
    "train": ("train_cmd", "train agents with GSPO in grpo / rs2 / mars2 mode"),
    "bench": ("bench", "compare search strategies and agent mixes at a fixed node budget"),
    "view": ("view", "write report.html for saved trees"),
    "exec": ("exec_cmd", "run one program against a problem's tests and print the verdicts"),
    "filter": ("filter_cmd", "drop problems every sample solves or none does"),
    "data": ("data_cmd", "dataset stats, and a check that reference solutions pass (stats | check)"),
}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (argparse's own formatter skips options
    without help text and prints ``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default:" in text or "(default" in text:
            return text
        if not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        default = action.default
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                               argparse._HelpAction, argparse._VersionAction)):
            return text if not isinstance(action, argparse._StoreFalseAction) else \
                f"{text} (default: on)".strip()
        if default is None:
            return f"{text} (default: none)".strip()
        if isinstance(default, (list, tuple)):
            shown = " ".join(str(x) for x in default)
        else:
            shown = str(default)
        return f"{text} (default: {shown})".strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mars2", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(f"mars2_cli.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"mars2_cli.{module}":
                raise
            continue  # subcommand not built yet
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=DefaultsHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from mars2_cli.common import apply_config

    sub_argv = argv[argv.index(args.command) + 1:]
    apply_config(args, _subparser(parser, args.command), sub_argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:
        # errors a user can cause (bad file, option or problem id): one clear line, no
        # traceback (MARS2_DEBUG=1 raises it instead)
        if os.environ.get("MARS2_DEBUG"):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"mars2 {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if os.environ.get("MARS2_DEBUG"):
            raise
        print(f"\nmars2 {args.command}: interrupted", file=sys.stderr)
        return 130


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


if __name__ == "__main__":
    sys.exit(main())

"""`mars2 train`: GRPO / RS² / MARS² training of agents with GSPO learners (see train/).

Every field of `train.config.Mars2TrainConfig` is a flag (``max_steps`` -> ``--max-steps``)
and a key of ``--config FILE.yaml``; flags typed on the command line win over the file.
``--resume`` continues the run in ``--out`` from its latest checkpoint, reading the run's
own ``config.yaml`` unless ``--config`` is given (flags such as ``--max-steps`` may extend it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mars2_cli.common import default_out_dir


def _fields() -> list[dataclasses.Field]:
    from train.config import Mars2TrainConfig

    return [f for f in dataclasses.fields(Mars2TrainConfig) if f.metadata.get("cli", True)]


class _Renamed(argparse.Action):
    """A removed flag: fail with what replaced it (``train.config.RENAMED_OPTIONS``)."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        from train.config import renamed_option_error

        parser.error(renamed_option_error(self.dest, option_string or self.dest))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from train.config import RENAMED_OPTIONS, field_type

    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML file whose keys are this command's flags (flags on the command line win)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: runs/<time>)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    for old in RENAMED_OPTIONS:
        parser.add_argument(
            "--" + old.replace("_", "-"), dest=old, action=_Renamed, help=argparse.SUPPRESS
        )
    group = parser.add_argument_group("training options (also YAML keys)")
    for f in _fields():
        tp, is_list, optional = field_type(f)
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if "choices" in f.metadata:
            kw["choices"] = list(f.metadata["choices"])
        if tp is bool and not is_list:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif is_list:
            group.add_argument(flag, nargs="*", metavar=tp.__name__.upper(), **kw)
        else:
            metavar = tp.__name__.upper() + ("|none" if optional else "")
            group.add_argument(flag, metavar=metavar, **kw)
    from mars2_cli.common import _DeprecatedAlias

    group.add_argument("--trees-per-round", dest="max_trees", action=_DeprecatedAlias,
                       default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def build_config(args: argparse.Namespace):
    """Merge defaults < YAML (--config, or the run's config.yaml on --resume) < flags."""
    from train.config import Mars2TrainConfig

    data: dict[str, Any] = {}
    source = "command line"
    path = args.config
    if (
        path is None
        and args.resume
        and args.out is not None
        and (Path(args.out) / "config.yaml").is_file()
    ):
        path = Path(args.out) / "config.yaml"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path} is not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of option names to values")
        data.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
        source = str(path)
    for f in _fields():
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    out = args.out if args.out is not None else data.pop("out", None)
    resume = bool(args.resume or data.pop("resume", False))
    data.pop("out", None)
    data.pop("resume", None)
    cfg = Mars2TrainConfig.from_dict(data, source=source)
    return cfg, Path(out) if out is not None else default_out_dir(), resume


def run(args: argparse.Namespace) -> int:
    try:
        cfg, out, resume = build_config(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"mars2 train: {e}", file=sys.stderr)
        return 2
    if resume and not (out / "checkpoints").is_dir():
        print(f"mars2 train: --resume: no checkpoints under {out}", file=sys.stderr)
        return 2
    from train.loop import train

    print(f"mars2 train: mode={cfg.mode} agents={cfg.names} out={out}", file=sys.stderr)
    try:
        summary = train(cfg, out, resume=resume)
    except (ValueError, FileNotFoundError) as e:
        print(f"mars2 train: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0

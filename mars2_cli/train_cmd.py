"""`mars2 train`: GRPO / RS² / MARS² training of agents with GSPO learners (see train/).

Every field of `train.config.Mars2TrainConfig` is a flag (``max_steps`` -> ``--max-steps``)
and a key of ``--config FILE.yaml``; flags typed on the command line win over the file.
``--resume`` continues the run in ``--out`` from its latest checkpoint, reading the run's
own ``config.yaml`` unless ``--config`` is given (flags such as ``--max-steps`` may extend it).
``--ray [ADDRESS]`` runs the learners, generation engines and executors in Ray actors
(`mars2_ray.train`); its flags (and YAML keys) are those of `mars2_ray.options`, and
``--dry-run`` prints the placement plan and exits.
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
from mars2_ray.options import _FLAGS as RAY_DESTS
from mars2_ray.options import add_ray_arguments, ray_options


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
    add_ray_arguments(parser, learners=True)


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
        for key, value in loaded.items():
            dest = str(key).replace("-", "_")
            if dest in ("ray", *RAY_DESTS):
                _ray_from_file(args, dest, value)
            else:
                data[dest] = value
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


def _ray_from_file(args: argparse.Namespace, dest: str, value: Any) -> None:
    """A Ray key of the YAML file (``ray: auto``, ``learner_gpus: 8``, ...) sets its flag unless
    the command line gave it; `ray_options` then checks it like a typed flag."""
    if getattr(args, dest, None) not in (None, False):
        return
    if dest == "ray":
        value = None if value is None or value is False else str(value)
    setattr(args, dest, value)


def run(args: argparse.Namespace) -> int:
    try:
        cfg, out, resume = build_config(args)
        opts = ray_options(args)
        if opts is not None:
            from mars2_ray.train import check_train_options

            opts = check_train_options(opts, cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"mars2 train: {e}", file=sys.stderr)
        return 2
    if opts is not None and opts.dry_run:
        return _dry_run(opts, cfg)
    if resume and not (out / "checkpoints").is_dir():
        print(f"mars2 train: --resume: no checkpoints under {out}", file=sys.stderr)
        return 2
    print(f"mars2 train: mode={cfg.mode} agents={cfg.names} out={out}"
          + (f" ray={opts.address}" if opts is not None else ""), file=sys.stderr)
    try:
        if opts is None:
            from train.loop import train

            summary = train(cfg, out, resume=resume)
        else:
            from mars2_ray.train import train_on_ray

            summary = train_on_ray(cfg, out, opts, resume=resume)
    except ImportError as e:
        print(f"mars2 train: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"mars2 train: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def _dry_run(opts: Any, cfg: Any) -> int:
    """Print where every learner, engine and executor would go; 0 if it all fits, else 2."""
    from mars2_cli.backend import show_plan
    from mars2_ray.session import preview_plan

    try:
        plan = preview_plan(opts, list(zip(cfg.names, cfg.agents, strict=True)), learners=True)
    except (ImportError, ConnectionError) as exc:
        print(f"mars2 train: {exc} (plan a cluster without Ray: --dry-run --cluster "
              "3:cpus=96,gpus=8)", file=sys.stderr)
        return 2
    return show_plan(plan)

"""Does it learn? Held-out Pass@1 of the embedded model before and after `mars2 train` on a CPU.

For each ``--modes`` entry (grpo, rs2, mars2; `make learn` runs mars2, `make learn-compare` all
three with the same budget):

1. the base model's Pass@1 on the held-out problems (``--eval-samples`` first attempts per
   problem, unbiased estimator, 95% interval; `train.heldout`), measured once per output
   directory and shared by every mode;
2. training with the config (`train.loop.TrainLoop`) for as many GSPO updates as fit in the
   config's ``max_time_s`` (no new rollout round starts after it); ``--eval-every K`` also
   measures held-out Pass@1 every K updates of an agent (not counted in the budget);
3. Pass@1 of every agent's saved model (``OUT/MODE/final/AGENT``, loaded back from disk) on the
   same problems, and the change against the base with its interval.

Writes ``OUT/learning.json`` (every number, the load average, the commands) and
``OUT/learning.png`` (training reward, held-out Pass@1 with intervals, KL, response length, clip
fraction and the training solve rate, per agent and mode, against update step). Each mode's run
directory holds ``metrics.jsonl``, ``trees.jsonl`` and TensorBoard logs (``report_to`` in the
config) under ``learners/AGENT/runs``.

    .venv/bin/python scripts/learn.py --config examples/configs/learn_cpu.yaml --out runs/learn
    .venv/bin/python scripts/learn.py --config examples/configs/learn_cpu.yaml \\
        --modes grpo rs2 mars2 --out runs/learn-compare
    .venv/bin/python scripts/learn.py --config examples/configs/learn_cpu.yaml \\
        --modes grpo rs2 --out runs/learn --add    # the comparison, after `make learn`
    .venv/bin/python scripts/learn.py --config examples/configs/learn_cpu.yaml --out runs/x \\
        --set max_time_s=60 --eval-samples 4     # any config key can be overridden
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: metrics.jsonl update-row keys plotted, and the name each has in learning.json
SERIES = {
    "reward": "reward",
    "kl": "kl",
    "completions/mean_length": "response_length",
    "clip_ratio/region_mean": "clip_fraction",
    "loss": "loss",
    "entropy": "entropy",
    "grad_norm": "grad_norm",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=ROOT / "examples/configs/learn_cpu.yaml")
    p.add_argument("--out", type=Path, default=ROOT / "runs/learn")
    p.add_argument("--modes", nargs="+", default=["mars2"], choices=["grpo", "rs2", "mars2"])
    p.add_argument("--heldout", default="builtin:warmup_heldout",
                   help="problems Pass@1 is measured on (none of them is trained on)")
    p.add_argument("--eval-samples", type=int, default=16, help="samples per held-out problem")
    p.add_argument("--heldout-limit", type=int, default=None,
                   help="evaluate only the first N held-out problems (quick checks)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="also measure held-out Pass@1 every K updates of an agent (0: only "
                        "before and after)")
    p.add_argument("--eval-seed", type=int, default=1234)
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config keys (YAML values), e.g. max_time_s=60 budget=4")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an --out that holds an earlier run")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--evaluate-only", action="store_true",
                   help="do not train: evaluate the saved models of the runs already in --out "
                        "(finishes a run interrupted after training; reuses OUT/base_eval.json "
                        "when it has the same held-out problems and samples)")
    p.add_argument("--add", action="store_true",
                   help="add --modes to the run already in --out: reuse its base evaluation and "
                        "keep its other modes (`make learn`, then `--modes grpo rs2 --add`, is "
                        "`make learn-compare` in two sittings); refused when the held-out setting "
                        "or the training settings differ from the earlier modes'")
    p.add_argument("--plot-only", action="store_true",
                   help="redraw OUT/learning.png from OUT/learning.json and print the summary")
    return p.parse_args(argv)


def load_config(path: Path, overrides: list[str], mode: str) -> Any:
    from train.config import Mars2TrainConfig

    data = yaml.safe_load(path.read_text()) or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"learn.py: --set takes KEY=VALUE, got {item!r}")
        data[key.replace("-", "_")] = yaml.safe_load(value)
    data["mode"] = mode
    return Mars2TrainConfig.from_dict(data, source=str(path))


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def eval_agent(model_or_path: Any, cfg: Any, seed: int, samples: int, tokenizer: Any = None):
    """An HFAgent with the training run's sampling settings (same prompt, temperature, length)."""
    from agents.hf import HFAgent

    kw = dict(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
              stop_at_code_block=cfg.stop_at_code_block, seed=seed,
              batch_size=max(2 * samples, cfg.generation_batch_size),
              num_threads=cfg.torch_threads)
    if model_or_path in ("embedded", "hf:embedded"):
        return HFAgent.embedded(**kw)
    if isinstance(model_or_path, str) and model_or_path.startswith("hf:"):
        return HFAgent.from_pretrained(model_or_path[3:], **kw)
    if isinstance(model_or_path, (str, Path)):
        return HFAgent.from_pretrained(str(model_or_path), **kw)
    return HFAgent(model_or_path, tokenizer, **kw)


def evaluate(agent: Any, problems: list, cfg: Any, samples: int, executor: Any) -> Any:
    from mars2_env.prompts import TEMPLATE_STYLES
    from train.heldout import evaluate_pass_at_1

    t0 = time.perf_counter()
    res = evaluate_pass_at_1(agent, problems, samples, executor,
                             templates=TEMPLATE_STYLES[cfg.prompt_style], tests="all")
    print(f"    held-out Pass@1 {res.pass_at_1:.3f} [{res.ci95[0]:.3f}, {res.ci95[1]:.3f}] "
          f"({len(problems)} problems x {samples}; {time.perf_counter() - t0:.0f} s, "
          f"load {load_avg()[0]})", flush=True)
    return res


def reward_trend(updates: list[int], rewards: list[float]) -> dict[str, Any]:
    """Least-squares slope of training reward per update, and first- vs second-half means."""
    pts = [(u, r) for u, r in zip(updates, rewards, strict=True)
           if r is not None and math.isfinite(r)]
    out: dict[str, Any] = {"updates": len(pts), "slope_per_update": None,
                           "first_half_mean": None, "second_half_mean": None}
    if not pts:
        return out
    half = len(pts) // 2
    if half:
        out["first_half_mean"] = sum(r for _, r in pts[:half]) / half
        out["second_half_mean"] = sum(r for _, r in pts[half:]) / (len(pts) - half)
    if len(pts) >= 2:
        mu = sum(u for u, _ in pts) / len(pts)
        mr = sum(r for _, r in pts) / len(pts)
        sxx = sum((u - mu) ** 2 for u, _ in pts)
        out["slope_per_update"] = (sum((u - mu) * (r - mr) for u, r in pts) / sxx) if sxx else 0.0
    return out


def series_from_metrics(path: Path, names: list[str]) -> tuple[dict, list[dict]]:
    """Per-agent update series and the round rows of a run's metrics.jsonl."""
    series = {n: {"update": [], **{v: [] for v in SERIES.values()}} for n in names}
    rounds = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("event") == "update":
            s = series[row["agent"]]
            s["update"].append(row["update"])
            for key, name in SERIES.items():
                s[name].append(row.get(key))
        elif row.get("event") == "round":
            rounds.append({k: row[k] for k in ("round", "trees", "nodes", "solved", "pass_rate",
                                               "reward_mean", "reward_penalised_mean",
                                               "samples", "updates", "round_time_s", "agents")})
    return series, rounds


def write_tensorboard(run_dir: Path, name: str, evals: list[dict]) -> None:
    """Held-out Pass@1 next to TRL's own scalars (one event file per agent)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: the numbers are in learning.json anyway
        return
    with SummaryWriter(str(run_dir / "learners" / name / "runs" / "heldout")) as w:
        for e in evals:
            w.add_scalar("heldout/pass_at_1", e["pass_at_1"], e["update"])
            w.add_scalar("heldout/ci95_low", e["ci95"][0], e["update"])
            w.add_scalar("heldout/ci95_high", e["ci95"][1], e["update"])


def train_mode(mode: str, args: argparse.Namespace, heldout: list, base: Any,
               executor: Any) -> dict[str, Any]:
    """Train one mode for the time budget (unless ``--evaluate-only``), then evaluate every
    agent's saved model."""
    import gc

    from train.loop import TrainLoop

    cfg = load_config(args.config, args.overrides, mode)
    run_dir = args.out / mode
    if cfg.max_time_s is None:
        raise SystemExit("learn.py: the config needs max_time_s (the training time budget)")
    info_path = run_dir / "learn_train.json"
    if args.evaluate_only:
        missing = [n for n in cfg.names if not (run_dir / "final" / n).is_dir()]
        if missing:
            raise SystemExit(f"learn.py: --evaluate-only: no saved model of {missing} under "
                             f"{run_dir / 'final'}")
        info = json.loads(info_path.read_text()) if info_path.is_file() else {
            "load_avg_during_training": None, "evals": []}
    else:
        print(f"[{mode}] training for up to {cfg.max_time_s / 60:.1f} min "
              f"(load {load_avg()[0]}) -> {run_dir}", flush=True)
        loads = [load_avg()[0]]
        mid_evals: list[dict] = []
        t_train = 0.0
        with TrainLoop(cfg, run_dir) as loop:
            cfg.to_yaml(run_dir / "config.yaml")
            next_eval = {n: args.eval_every for n in cfg.names}
            while (not loop.done and t_train < cfg.max_time_s
                   and (cfg.max_rounds is None or loop.round < cfg.max_rounds)):
                t0 = time.perf_counter()
                row = loop.run_round()
                t_train += time.perf_counter() - t0
                loads.append(load_avg()[0])
                print(f"  [{mode}] round {row['round']}: {t_train / 60:.1f} min, updates "
                      f"{row['updates']}, node reward {row['reward_mean']:.3f}, solved trees "
                      f"{row['solved']}/{row['trees']}, load {loads[-1]}", flush=True)
                for name, learner in loop.learners.items():
                    if args.eval_every and learner.updates >= next_eval[name]:
                        next_eval[name] = learner.updates + args.eval_every
                        print(f"    [{mode}] {name} after {learner.updates} updates:", flush=True)
                        agent = eval_agent(learner.model, cfg, args.eval_seed, args.eval_samples,
                                           tokenizer=learner.tokenizer)
                        res = evaluate(agent, heldout, cfg, args.eval_samples, executor)
                        mid_evals.append({"agent": name, "update": learner.updates,
                                          **res.to_dict()})
            loop.checkpoint()   # so `mars2 train --resume --out RUN` can continue this run
            loop.save_final()
        info = {"train_time_s": round(t_train, 1), "evals": mid_evals,
                "load_avg_during_training": {"min": min(loads), "max": max(loads),
                                             "mean": round(sum(loads) / len(loads), 2)}}
        write_json(info_path, info)   # what --evaluate-only needs to finish an interrupted run
        gc.collect()
    return evaluate_mode(mode, cfg, run_dir, info, args, heldout, base, executor)


def evaluate_mode(mode: str, cfg: Any, run_dir: Path, info: dict, args: argparse.Namespace,
                  heldout: list, base: Any, executor: Any) -> dict[str, Any]:
    """Held-out Pass@1 of each agent's saved model, and the run's logged series."""
    import gc

    from train.heldout import difference

    series, rounds = series_from_metrics(run_dir / "metrics.jsonl", cfg.names)
    updates = {n: len(series[n]["update"]) for n in cfg.names}
    evals = [{"agent": n, "update": 0, **base.to_dict()} for n in cfg.names] + info["evals"]
    after, improvement = {}, {}
    for name in cfg.names:
        print(f"  [{mode}] {name}: {updates[name]} updates; evaluating its saved model", flush=True)
        agent = eval_agent(run_dir / "final" / name, cfg, args.eval_seed, args.eval_samples)
        res = evaluate(agent, heldout, cfg, args.eval_samples, executor)
        del agent
        gc.collect()
        after[name] = res.to_dict()
        improvement[name] = difference(res, base)
        if not any(e["agent"] == name and e["update"] == updates[name] for e in evals):
            evals.append({"agent": name, "update": updates[name], **res.to_dict()})
    evals.sort(key=lambda e: (e["agent"], e["update"]))
    for name in cfg.names:
        write_tensorboard(run_dir, name, [e for e in evals if e["agent"] == name])
    return {
        "config": cfg.to_dict(),
        "run_dir": str(run_dir),
        "train_time_s": info.get("train_time_s",
                                 round(sum(r["round_time_s"] for r in rounds), 1)),
        "rounds": len(rounds),
        "updates": updates,
        "load_avg_during_training": info["load_avg_during_training"],
        "after": after,
        "improvement": improvement,
        "evals": evals,
        "series": series,
        "reward_trend": {n: reward_trend(series[n]["update"], series[n]["reward"])
                         for n in cfg.names},
        "round_rows": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from mars2_env.execution import Executor
    from mars2_env.problems import load_problems
    from train.heldout import HeldoutEval

    out_json = args.out / "learning.json"
    if args.plot_only:
        result = json.loads(out_json.read_text())
        plot(result, args.out / "learning.png")
        print(summary(result))
        return 0
    earlier = [d for d in [out_json, args.out / "base_eval.json", *(args.out / m for m in args.modes)]
               if d.exists()]
    if args.evaluate_only:
        earlier = []
    kept: dict[str, Any] = {}   # --add: the earlier run's modes that are not run again
    if args.add:
        previous = json.loads(out_json.read_text()) if out_json.is_file() else {"modes": {}}
        kept = {m: r for m, r in previous["modes"].items() if m not in args.modes}
        if not kept:
            raise SystemExit(f"learn.py: --add: {out_json} holds no finished mode to add to")
        if not (args.out / "base_eval.json").is_file():
            raise SystemExit(f"learn.py: --add: {args.out / 'base_eval.json'} is missing: the "
                             "earlier modes' base evaluation cannot be reused")
        earlier = [args.out / m for m in args.modes if (args.out / m).exists()]
    if earlier and not args.overwrite:
        print(f"learn.py: {args.out} holds an earlier run; pass --overwrite or another --out",
              file=sys.stderr)
        return 2
    for d in earlier:   # only what this script writes there
        shutil.rmtree(d) if d.is_dir() else d.unlink()
    args.out.mkdir(parents=True, exist_ok=True)
    cfg0 = load_config(args.config, args.overrides, args.modes[0])
    heldout = load_problems(args.heldout, limit=args.heldout_limit)
    train_ids = {p.id for p in load_problems(cfg0.problems)}
    shared = sorted(train_ids & {p.id for p in heldout})
    if len(set(cfg0.agents)) != 1 or not cfg0.agents[0].startswith("hf:"):
        raise SystemExit("learn.py: every agent must start from the same hf: model (the base "
                         f"that is evaluated before training), got {cfg0.agents}")
    if shared:
        raise SystemExit(f"learn.py: held-out problems are also trained on: {shared}")
    result: dict[str, Any] = {
        "command": "python scripts/learn.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "load_avg_start": load_avg(),
        "heldout": {"source": args.heldout, "problems": [p.id for p in heldout],
                    "samples": args.eval_samples, "tests": "all", "seed": args.eval_seed},
        "train_problems": sorted(train_ids),
        "modes": {},
    }
    if kept:
        settings = {k: v for k, v in cfg0.to_dict().items() if k != "mode"}
        for mode, r in kept.items():
            theirs = {k: v for k, v in r["config"].items() if k != "mode"}
            differ = sorted(k for k in settings.keys() | theirs.keys()
                            if settings.get(k) != theirs.get(k))
            if differ:
                raise SystemExit(f"learn.py: --add: the {mode} run in {args.out} was trained "
                                 f"with other settings ({', '.join(differ)}): not the same budget")
        result["modes"] = dict(kept)
        result["added_to"] = previous["command"]
    started = time.perf_counter()
    with Executor(max_workers=cfg0.executor_workers) as executor:
        base = None
        base_path = args.out / "base_eval.json"
        if (args.evaluate_only or args.add) and base_path.is_file():
            saved = json.loads(base_path.read_text())
            if args.add and saved["heldout"] != result["heldout"]:
                raise SystemExit(f"learn.py: --add: {base_path} was measured with another "
                                 f"held-out setting ({saved['heldout']}, now "
                                 f"{result['heldout']}): the modes would not compare")
            if saved["heldout"] == result["heldout"]:
                base = HeldoutEval(**{k: v for k, v in saved["base"].items()
                                      if k in ("samples", "solved", "mean_length",
                                               "code_block_rate", "parses_rate", "verdicts")})
                print(f"base model: from {base_path}", flush=True)
        if base is None:
            print(f"base model, held-out {args.heldout}:", flush=True)
            base = evaluate(eval_agent(cfg0.agents[0], cfg0, args.eval_seed, args.eval_samples),
                            heldout, cfg0, args.eval_samples, executor)
            write_json(base_path, {"heldout": result["heldout"], "base": base.to_dict()})
        result["base"] = base.to_dict()
        for mode in args.modes:
            result["modes"][mode] = train_mode(mode, args, heldout, base, executor)
            write_json(out_json, result)   # each finished mode is kept
    result["load_avg_end"] = load_avg()
    result["total_time_s"] = round(time.perf_counter() - started, 1)
    write_json(out_json, result)
    if not args.no_plot:
        plot(result, args.out / "learning.png")
    print(summary(result))
    print(f"wrote {out_json}" + ("" if args.no_plot else f" and {args.out / 'learning.png'}"))
    return 0


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    tmp.replace(path)


def summary(result: dict) -> str:
    b = result["base"]
    lines = [f"held-out Pass@1 ({len(result['heldout']['problems'])} problems x "
             f"{result['heldout']['samples']} samples, 95% CI):",
             f"  base                {b['pass_at_1']:.3f} [{b['ci95'][0]:.3f}, {b['ci95'][1]:.3f}]"]
    for mode, m in result["modes"].items():
        for name, a in m["after"].items():
            d = m["improvement"][name]
            t = m["reward_trend"][name]
            slope = "n/a" if t["slope_per_update"] is None else f"{t['slope_per_update']:+.4f}"
            lines.append(
                f"  {mode:5s} {name:8s} {m['updates'][name]:3d} upd  {a['pass_at_1']:.3f} "
                f"[{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]  change {d['delta']:+.3f} "
                f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
                f"{' (CI includes 0)' if d['ci_includes_zero'] else ''}; "
                f"train reward slope {slope}/update")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Six panels against update step; one colour per mode, one line style per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    panels = [("reward", "training reward (batch mean)"), (None, "held-out Pass@1 (95% CI)"),
              ("kl", "KL to the initial model"), ("response_length", "response length (tokens)"),
              ("clip_fraction", "GSPO clip fraction"), ("round_pass", "training trees solved")]
    colours = {"mars2": "tab:red", "rs2": "tab:blue", "grpo": "tab:green"}
    styles = ["-", "--", ":", "-."]
    base = result["base"]
    for ax, (_key, title) in zip(axes.flat, panels, strict=True):
        ax.set_title(title)
        ax.set_xlabel("update step (per agent)")
        ax.grid(alpha=0.3)
    for mode, m in result["modes"].items():
        c = colours.get(mode, "k")
        for ai, (name, s) in enumerate(m["series"].items()):
            ls = styles[ai % len(styles)]
            label = f"{mode} {name}"
            for ax, (key, _) in zip(axes.flat, panels, strict=True):
                if key in (None, "round_pass"):
                    continue
                pts = [(u, v) for u, v in zip(s["update"], s[key], strict=True) if v is not None]
                if pts:
                    ax.plot(*zip(*pts, strict=True), ls, color=c, marker=".", label=label)
            ev = [e for e in m["evals"] if e["agent"] == name]
            x = [e["update"] + 0.15 * (ai - 0.5) for e in ev]
            y = [e["pass_at_1"] for e in ev]
            err = [[e["pass_at_1"] - e["ci95"][0] for e in ev],
                   [e["ci95"][1] - e["pass_at_1"] for e in ev]]
            axes[0, 1].errorbar(x, y, yerr=err, fmt="o" + ls, color=c, capsize=4, label=label)
        # training solve rate per round, placed at the mean update count reached in that round
        xs = [sum(r["updates"].values()) / len(r["updates"]) for r in m["round_rows"]]
        ys = [r["pass_rate"] for r in m["round_rows"]]
        axes[1, 2].plot(xs, ys, "-o", color=c, label=f"{mode} (all agents, per round)")
    axes[0, 1].axhspan(base["ci95"][0], base["ci95"][1], color="grey", alpha=0.15,
                       label="base model 95% CI")
    axes[0, 1].set_ylim(0, 1)
    axes[1, 2].set_ylim(0, 1)
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    h = result["heldout"]
    fig.suptitle(f"SmolLM2-135M on builtin:warmup, {', '.join(result['modes'])}: held-out "
                 f"{len(h['problems'])} problems x {h['samples']} samples; load avg at start "
                 f"{result['load_avg_start'][0]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

"""Training on Ray vs the single-process loop on this machine: time per round and where it goes
(generation / execution / learner update / weight sync), measured in the same run.

Both loops train the same config (two agents, MARS² mode, a tiny random Llama by default or
any ``hf:`` model) on the same problems and seed, round by round in turn, so machine load hits
both alike: the local `train.loop.TrainLoop` (agents sample from the learners' own models, so a
sync is free) and `mars2_ray.train.RayTrainLoop` (one learner actor and one generation engine
per agent, an executor actor; each update's weights go through the object store to that agent's
engine). Actor start-up is paid once per run and reported apart. The update losses of the two
loops are compared too (they agree to float-sum order).

The figures a user needs to size a cluster: the share of a round each part takes, and what the
Ray indirection (object store, actor calls) adds to each on one machine.

    python benchmarks/ray_train.py [--rounds 4] [--model tiny|hf:embedded|hf:PATH] [--budget 4] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PARTS = ("generation", "execution", "update", "sync")


def make_config(model: str, args: argparse.Namespace):
    from train.config import Mars2TrainConfig

    return Mars2TrainConfig(
        agents=[model, model], mode="mars2", budget=args.budget,
        max_trees=args.trees_per_round, buffer_threshold=args.batch,
        per_device_train_batch_size=args.batch, max_new_tokens=args.max_new_tokens,
        overlong_max_length=args.max_new_tokens, overlong_buffer_length=args.max_new_tokens // 2,
        max_steps=10_000, max_rounds=args.rounds, learning_rate=1e-4, seed=0,
        checkpoint_every=10_000, save_final=False, progress=False, executor_workers=1,
        torch_threads=1)


def round_rows(out: Path) -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return ([r for r in rows if r["event"] == "round"],
            [r for r in rows if r["event"] == "update"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="rollout rounds per loop")
    ap.add_argument("--model", default="tiny",
                    help="tiny (a random 2-layer Llama, fast) or an hf: spec (hf:embedded)")
    ap.add_argument("--hidden-size", type=int, default=64, help="of the tiny model")
    ap.add_argument("--budget", type=int, default=4, help="nodes per tree")
    ap.add_argument("--trees-per-round", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4, help="samples per learner update")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--keep", action="store_true", help="keep both runs' outputs")
    args = ap.parse_args(argv)

    import ray

    from mars2_env.execution import Executor
    from mars2_env.problems import load_problems
    from mars2_ray.options import RayOptions
    from mars2_ray.session import RaySession
    from mars2_ray.train import RayTrainLoop, check_train_options
    from train.loop import TrainLoop
    from train.tiny import save_tiny

    work = Path(tempfile.mkdtemp(prefix="mars2-ray-train-"))
    model = args.model
    if model == "tiny":
        model = "hf:" + str(save_tiny(work / "tiny", hidden_size=args.hidden_size))
    cfg = make_config(model, args)
    problems = load_problems("builtin:demo")
    load_before = os.getloadavg()

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=6, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 * 1024)
    init_s = time.perf_counter() - t0
    opts = check_train_options(RayOptions(executor_cpus=1), cfg)
    t0 = time.perf_counter()
    with Executor(max_workers=1) as ex, \
            RaySession(opts, list(zip(cfg.names, cfg.agents, strict=True)),
                       learners=True) as session, \
            TrainLoop(cfg, work / "local", problems=problems, executor=ex) as local, \
            RayTrainLoop(cfg, work / "ray", session, problems=problems) as remote:
        start_s = time.perf_counter() - t0        # local models + Ray actors, once per run
        for _ in range(args.rounds):              # in turn, so load hits both alike
            local.run(max_rounds=1)
            remote.run(max_rounds=1)
    ray.shutdown()
    load_after = os.getloadavg()

    local_rounds, local_updates = round_rows(work / "local")
    ray_rounds, ray_updates = round_rows(work / "ray")
    losses = [abs(a["loss"] - b["loss"]) for a, b in zip(local_updates, ray_updates,
                                                         strict=True)]
    print(f"{os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; ray.init {init_s:.1f} s; models + actors start "
          f"{start_s:.1f} s (once per run)")
    print(f"model {args.model}; {args.rounds} rounds x {args.trees_per_round} trees x "
          f"{args.budget} nodes, 2 agents, {args.batch} samples per update; "
          f"{len(local_updates)} updates in each loop, max |loss difference| "
          f"{max(losses, default=0.0):.1e}")
    print(f"\n{'per round (median)':22} {'local s':>9} {'share':>7} {'Ray s':>9} {'share':>7} "
          f"{'Ray / local':>12}")
    med = {}
    for part in (*PARTS, "round"):
        key = "round_time_s" if part == "round" else f"time_{part}_s"
        med[part] = (statistics.median(r[key] for r in local_rounds),
                     statistics.median(r[key] for r in ray_rounds))
    for part in (*PARTS, "round"):
        lo, re = med[part]
        lshare = lo / med["round"][0] if med["round"][0] else 0.0
        rshare = re / med["round"][1] if med["round"][1] else 0.0
        ratio = f"{re / lo:11.2f}x" if lo > 1e-4 else f"{'(local ~0)':>12}"
        print(f"{part:22} {lo:9.3f} {lshare:6.0%} {re:9.3f} {rshare:6.0%} {ratio}")
    rollout = [sum(r[f"time_{p}_s"] for p in ("generation", "execution")) for r in ray_rounds]
    learn = [sum(r[f"time_{p}_s"] for p in ("update", "sync")) for r in ray_rounds]
    lrollout = [sum(r[f"time_{p}_s"] for p in ("generation", "execution")) for r in local_rounds]
    llearn = [sum(r[f"time_{p}_s"] for p in ("update", "sync")) for r in local_rounds]
    print(f"\nrollout (generation + execution) per round: local {statistics.median(lrollout):.3f}"
          f" s, Ray {statistics.median(rollout):.3f} s "
          f"({statistics.median(rollout) / max(statistics.median(lrollout), 1e-9):.2f}x)")
    print(f"learning (update + sync) per round with an update: local "
          f"{statistics.median([x for x in llearn if x > 0] or [0]):.3f} s, Ray "
          f"{statistics.median([x for x in learn if x > 0] or [0]):.3f} s")
    if args.keep:
        print(f"(outputs under {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

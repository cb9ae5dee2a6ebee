"""Train two tiny random agents with MARS² in seconds, from Python.

    python examples/train_tiny.py --out runs/train_tiny [--mode grpo|rs2|mars2] [--steps 2]

The agents are random 2-layer Llamas with a byte-level tokenizer (train.tiny), so they
write garbage and every program fails; what they learn from is the DAPO overlong
penalty (coder_0 may write 6 tokens, coder_1 24, the penalty's maximum). The point is the
API: a `Mars2TrainConfig`, a `TrainLoop` over the real environment and executor, the
per-agent GSPO learners, `metrics.jsonl`, checkpoints and `resume()`. Swap the agent
specs for `hf:embedded` (or `vllm:PATH` on a GPU) to train real models the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from train.config import Mars2TrainConfig
from train.loop import TrainLoop
from train.tiny import save_tiny


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/train_tiny"))
    ap.add_argument("--mode", choices=("grpo", "rs2", "mars2"), default="mars2")
    ap.add_argument("--steps", type=int, default=2, help="updates per learner")
    ap.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )
    args = ap.parse_args(argv)

    model_dir = args.out / "tiny_model"
    if not (model_dir / "config.json").exists():
        save_tiny(model_dir)  # random weights + byte tokenizer, loadable as hf:DIR
    config = Mars2TrainConfig(
        mode=args.mode,
        agents=[f"hf:{model_dir}", f"hf:{model_dir}"],
        agent_max_new_tokens=[
            6,
            24,
        ],  # different lengths -> the overlong penalty separates the nodes
        problems="builtin:demo",
        limit=3,
        budget=4,
        max_trees=2,  # 4 nodes per tree, 2 trees per round
        max_new_tokens=24,
        overlong_max_length=24,
        overlong_buffer_length=16,
        buffer_threshold=4,
        per_device_train_batch_size=2,  # one update = 4 node samples
        max_steps=args.steps,
        learning_rate=1e-3,
        checkpoint_every=1,
        max_rounds=20,
        executor_workers=1,
        torch_threads=1,
        progress=False,
        seed=0,
    )
    with TrainLoop(config, args.out) as loop:
        if args.resume:
            loop.resume()
        summary = loop.run()
    for row in map(json.loads, (args.out / "metrics.jsonl").read_text().splitlines()):
        if row["event"] == "update":
            print(
                f"round {row['round']:>2}  {row['agent']}  update {row['update']}  loss {row['loss']:+.4f}  "
                f"kl {row['kl']:.2e}  reward {row['reward']:+.3f}  |adv| {row['advantages/abs_mean']:.3f}"
            )
    print(json.dumps(summary, sort_keys=True))
    return summary


if __name__ == "__main__":
    main()

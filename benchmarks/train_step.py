"""One learner update against plain ``trl.GRPOTrainer`` doing the same GSPO step, in one process.

Both sides train a copy of the embedded model (SmolLM2-135M-Instruct, fp32, bf16 off) on the
same batch: real prompts of the bundled demo problems (chat template) and program-like
completions of ``--completion-tokens`` tokens, advantages of both signs, rollout logprobs from
the model itself plus noise (what a sampler returns). The GSPO settings are the learner's
(``train.learner.make_grpo_config``): ``importance_sampling_level="sequence"``, ε 3e-4 / 4e-4,
plain k3 KL ``beta=1e-3`` to a frozen reference, one optimizer step per batch in micro-batches
of ``--micro-batch``.

* **TRL**: ``GRPOTrainer.train()`` for one step. Its generation is replaced by the fixed batch
  and what TRL's own ``_generate_and_score_completions`` computes after generating: the
  reference log-probs (its ``_get_per_token_logps_and_entropies``) and, by TRL's rule, no old
  log-probs (one optimizer step per batch). Rewards are not computed (the advantages are given).
  Timed from ``on_step_begin`` to ``on_step_end``.
* **ours**: ``train.learner.Learner.step`` (``Mars2GRPOTrainer``: padding the buffer samples,
  the reference pass, TIS folded into the advantages, TRL's loss, clipping, AdamW, logging).
* **ours, old pass**: the same learner with ``force_old_logps`` (the extra no-grad pass over the
  batch that ran before it was skipped as TRL skips it).

The three alternate within each repeat; the first repeat warms up (AdamW state, allocator) and
is not counted. Each update is split into log-prob passes (no-grad forwards: reference, old),
the loss forward, backward, optimizer step, and the rest (clipping, padding, bookkeeping).

    .venv/bin/python benchmarks/train_step.py            # 8 samples x 128 tokens, 3 repeats
    .venv/bin/python benchmarks/train_step.py --quick    # 2 samples x 128 tokens, 2 repeats

Target: ours / TRL <= 1.05 (medians over repeats). Wall and CPU time of this process are both
printed; on a shared, loaded machine use ``--threads 1`` and read the CPU-time ratio (other
jobs do not count in it, and one thread does not spin-wait on a descheduled sibling).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from transformers.trainer_callback import PrinterCallback, ProgressCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from train.batch import build_batch  # noqa: E402
from train.buffer import NodeSample  # noqa: E402
from train.learner import Learner, make_grpo_config  # noqa: E402

TARGET_RATIO = 1.05
PARTS = ("logprob_passes", "forward", "backward", "optimizer")
PROGRAM = (
    "import sys\n\ndef main():\n    data = sys.stdin.read().split()\n    n = int(data[0])\n"
    "    values = [int(x) for x in data[1:1 + n]]\n    total = 0\n    for v in values:\n"
    "        if v % 2 == 0:\n            total += v\n    print(total)\n\nmain()\n"
)


def make_samples(model, tok, n: int, completion_tokens: int, prompt_tokens: int | None = None,
                 seed: int = 0) -> list[NodeSample]:
    """``n`` samples: demo-problem prompts, program completions of varied length, logprobs."""
    from mars2_env.problems import load_problems
    from mars2_env.prompts import render_messages

    problems = load_problems("builtin:demo")
    code_ids = tok("```python\n" + PROGRAM * 20)["input_ids"]
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n):
        messages = render_messages(problems[i % len(problems)])
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
            prompt = prompt["input_ids"]
        prompt = list(prompt)[-prompt_tokens:] if prompt_tokens else list(prompt)
        length = completion_tokens - (i * completion_tokens) // (2 * n)  # 1/2 .. 1 x the maximum
        completion = code_ids[i : i + length]
        with torch.no_grad():
            ids = torch.tensor([list(prompt) + completion])
            logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
            logps = logits.log_softmax(-1).gather(1, torch.tensor(completion)[:, None])[:, 0]
        noisy = logps + 0.05 * torch.randn(logps.shape, generator=gen)  # a sampler's mismatch
        advantage = (1.0 if i % 2 == 0 else -1.0) * (0.5 + i / n)
        samples.append(NodeSample(list(prompt), completion, advantage, logprobs=noisy.tolist()))
    return samples


def clocks() -> tuple[float, float]:
    """(wall, CPU time of this process): CPU time does not count other jobs on a shared box."""
    return time.perf_counter(), time.process_time()


class Split:
    """Wall and CPU time of each part of an update, accumulated by wrappers on the trainer."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.t = dict.fromkeys(PARTS, 0.0)
        self.cpu = dict.fromkeys(PARTS, 0.0)

    def wrap(self, fn, part_of):
        def timed(*a, **k):
            w0, c0 = clocks()
            try:
                return fn(*a, **k)
            finally:
                w1, c1 = clocks()
                self.t[part_of()] += w1 - w0
                self.cpu[part_of()] += c1 - c0

        return timed

    def instrument(self, trainer: GRPOTrainer, torch_optimizer: torch.optim.Optimizer) -> None:
        trainer._get_per_token_logps_and_entropies = self.wrap(
            trainer._get_per_token_logps_and_entropies,
            lambda: "forward" if torch.is_grad_enabled() else "logprob_passes",
        )
        trainer.accelerator.backward = self.wrap(trainer.accelerator.backward, lambda: "backward")
        torch_optimizer.step = self.wrap(torch_optimizer.step, lambda: "optimizer")


def trl_trainer(model, tok, grpo_args: GRPOConfig, fixed: dict[str, torch.Tensor]) -> GRPOTrainer:
    """Plain GRPOTrainer whose generation returns ``fixed``, scored as TRL scores it."""

    def reward(*_: Any, **__: Any) -> list[float]:
        raise AssertionError("rewards are given by the fixed batch")

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=grpo_args,
        train_dataset=Dataset.from_dict({"prompt": ["x"] * grpo_args.generation_batch_size}),
        processing_class=tok,
    )
    if trainer.ref_model is not None:
        ref = trainer.accelerator.unwrap_model(trainer.ref_model)
        assert next(ref.parameters()).dtype == torch.float32, "TRL's reference is not fp32"

    def generate_and_score(_generation_batch: Any) -> dict[str, Any]:
        out = dict(fixed)
        input_ids = torch.cat([fixed["prompt_ids"], fixed["completion_ids"]], dim=1)
        mask = torch.cat([fixed["prompt_mask"], fixed["completion_mask"]], dim=1)
        keep = fixed["completion_ids"].size(1)
        batch_size = grpo_args.per_device_train_batch_size
        generate_every = grpo_args.steps_per_generation * trainer.num_iterations
        with torch.no_grad():
            if grpo_args.gradient_accumulation_steps % generate_every != 0:  # TRL's rule
                out["old_per_token_logps"] = trainer._get_per_token_logps_and_entropies(
                    trainer.model, input_ids, mask, keep, batch_size=batch_size
                )[0]
            if trainer.beta != 0.0:
                out["ref_per_token_logps"] = trainer._get_per_token_logps_and_entropies(
                    trainer.ref_model, input_ids, mask, keep, batch_size=batch_size
                )[0]
        return out

    trainer._generate_and_score_completions = generate_and_score
    return trainer


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []
        self._t0 = (0.0, 0.0)

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = clocks()

    def on_step_end(self, args, state, control, **kwargs):
        w, c = clocks()
        self.times.append((w - self._t0[0], c - self._t0[1]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=8, help="samples per update (buffer batch)")
    ap.add_argument("--micro-batch", type=int, default=4, help="per_device_train_batch_size")
    ap.add_argument("--completion-tokens", type=int, default=128, help="longest completion")
    ap.add_argument("--prompt-tokens", type=int, default=None,
                    help="keep only the last N prompt tokens (default: whole prompts, ~300)")
    ap.add_argument("--repeats", type=int, default=3, help="timed updates per side")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    ap.add_argument("--quick", action="store_true",
                    help="2 samples (micro-batch 1) of 96 prompt + 32 completion tokens, 2 repeats")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.micro_batch, args.completion_tokens, args.repeats = 2, 1, 32, 2
        args.prompt_tokens = 96
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from agents.embedded import embedded_model_path

    path = str(embedded_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    samples = make_samples(base, tok, args.samples, args.completion_tokens, args.prompt_tokens)
    tokens = sum(len(s.prompt_ids) + len(s.completion_ids) for s in samples)
    work = Path(tempfile.mkdtemp(prefix="mars2_train_step_"))

    def config(name: str) -> GRPOConfig:
        return make_grpo_config(work / name, args.samples, args.micro_batch, seed=0,
                                max_completion_length=args.completion_tokens, temperature=1.0)

    ours = Learner("bench", copy.deepcopy(base), tok, config("ours"),
                   max_updates=2 * (args.repeats + 1), tis_cap=2.0)
    ours_split = Split()
    ours_split.instrument(ours.trainer, ours.trainer.optimizer.optimizer)

    trl_args = config("trl")
    trl_args.max_steps = 1
    trl_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    fixed = build_batch(samples, tok.pad_token_id)
    fixed = {k: fixed[k] for k in ("prompt_ids", "prompt_mask", "completion_ids",
                                    "completion_mask", "advantages", "num_items_in_batch")}
    trl = trl_trainer(trl_model, tok, trl_args, fixed)
    timer = StepTimer()
    trl.add_callback(timer)
    for cb in (PrinterCallback, ProgressCallback):
        trl.remove_callback(cb)
    trl_split = Split()
    trl_split.instrument(trl, trl.create_optimizer())

    rows: dict[str, list[dict[str, float]]] = {"trl": [], "ours": [], "ours_old_pass": []}
    for rep in range(args.repeats + 1):
        for side in ("ours", "trl", "ours_old_pass"):
            if side == "trl":
                split = trl_split
                split.reset()
                trl.train()
                wall, cpu = timer.times[-1]
            else:
                ours.trainer.force_old_logps = side == "ours_old_pass"
                split = ours_split
                split.reset()
                w0, c0 = clocks()
                ours.step(list(samples))
                wall, cpu = (b - a for a, b in zip((w0, c0), clocks(), strict=True))
            row = {"total": wall, **split.t, "cpu_total": cpu,
                   **{f"cpu_{p}": v for p, v in split.cpu.items()}}
            row["other"] = row["total"] - sum(row[p] for p in PARTS)
            row["cpu_other"] = row["cpu_total"] - sum(row[f"cpu_{p}"] for p in PARTS)
            if rep:  # the first repeat warms up
                rows[side].append(row)
            print(f"  repeat {rep}{' (warm-up)' if not rep else ''} {side:>14}: "
                  f"{wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[side])

    keys = ("total", *PARTS, "other")

    result = {
        "samples": args.samples, "micro_batch": args.micro_batch, "tokens": tokens,
        "threads": args.threads, "repeats": args.repeats,
        "load_average": os.getloadavg(),
        "median_s": {s: {k: med(s, k) for k in keys} for s in rows},
        "median_cpu_s": {s: {k: med(s, f"cpu_{k}") for k in keys} for s in rows},
        "min_total_s": {s: min(r["total"] for r in rows[s]) for s in rows},
    }
    for clock in ("median_s", "median_cpu_s"):
        m = result[clock]
        result[f"ratio_ours_vs_trl_{clock}"] = m["ours"]["total"] / m["trl"]["total"]
        result[f"ratio_old_pass_vs_trl_{clock}"] = m["ours_old_pass"]["total"] / m["trl"]["total"]
    print(f"\none GSPO update, SmolLM2-135M fp32, {args.samples} samples ({tokens} tokens), "
          f"micro-batch {args.micro_batch}, {args.threads} threads; median of {args.repeats} "
          f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for clock, title in (("median_s", "wall s"), ("median_cpu_s", "CPU s (this process)")):
        print(f"\n{title:>20} {'total':>8} " + " ".join(f"{p:>14}" for p in (*PARTS, "other")))
        for side, label in (("trl", "trl.GRPOTrainer"), ("ours", "Learner"),
                            ("ours_old_pass", "Learner+old pass")):
            m = result[clock][side]
            print(f"{label:>20} {m['total']:>8.2f} " + " ".join(f"{m[p]:>14.2f}" for p in keys[1:]))
        print(f"ratio Learner / GRPOTrainer: {result[f'ratio_ours_vs_trl_{clock}']:.3f} "
              f"(target <= {TARGET_RATIO}); with the old pass (before the skip): "
              f"{result[f'ratio_old_pass_vs_trl_{clock}']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

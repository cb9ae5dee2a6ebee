"""One learner per agent: its model, optimizer, LR schedule, buffer and update counter.

The rollout loop decides *when* to update (the buffer reached its threshold, per agent
and independently of the others: MARS² Appendix B); the learner does one update: TRL's
``training_step`` on each micro-batch (TRL's ``_prepare_inputs`` turns the buffer batch
into micro-batches through our ``_generate_and_score_completions``), then gradient
clipping, an optimizer step and a scheduler step, exactly the sequence of
``transformers.Trainer``'s inner loop, followed by TRL's ``log`` so ``report_to``
(TensorBoard, W&B) sees the same metrics as ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerState
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import GRPOConfig

from train.buffer import NodeSample, SampleBuffer
from train.trainer import Mars2GRPOTrainer, smallest_group


def make_grpo_config(
    output_dir: str | os.PathLike,
    buffer_threshold: int,
    micro_batch_size: int,
    optimizer_steps_per_batch: int = 1,
    world_size: int = 1,
    **overrides: Any,
) -> GRPOConfig:
    """GRPOConfig whose generation batch is one buffer batch.

    ``generation_batch_size = buffer_threshold`` samples per update, split into
    ``steps_per_generation = buffer_threshold / micro_batch_size`` micro-batches (per process:
    with ``world_size`` data-parallel processes, accelerate / DeepSpeed ranks, each takes
    ``buffer_threshold / world_size`` of the samples, so ``steps_per_generation`` is divided by
    ``world_size``; the processes must already be set up, RANK / WORLD_SIZE in the environment,
    since TRL reads the world size when the config is built). Their
    gradients accumulate in ``gradient_accumulation_steps = steps_per_generation /
    optimizer_steps_per_batch`` micro-batches per optimizer step, so one buffer batch gives
    ``optimizer_steps_per_batch`` optimizer steps (the paper's rollout batch 512 / train batch
    256 is 2); every step after the first trains on samples scored by the weights before it,
    which is where GSPO's clipping acts. ``num_iterations`` > 1 repeats the whole batch.
    The KL is plain k3 (``use_bias_correction_kl=False``), as in the paper.
    ``num_generations`` only has to satisfy TRL's checks (groups come from the trees).
    """
    if optimizer_steps_per_batch < 1:
        raise ValueError(f"optimizer_steps_per_batch must be >= 1, got {optimizer_steps_per_batch}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if micro_batch_size < 1 or buffer_threshold % (
        micro_batch_size * optimizer_steps_per_batch * world_size
    ):
        raise ValueError(
            f"buffer_threshold ({buffer_threshold}) must be a multiple of per_device_train_batch_size "
            f"({micro_batch_size}) x optimizer_steps_per_batch ({optimizer_steps_per_batch})"
            + (f" x learner processes ({world_size})" if world_size > 1 else "")
        )
    steps = buffer_threshold // (micro_batch_size * world_size)
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=micro_batch_size,
        steps_per_generation=steps,
        gradient_accumulation_steps=steps // optimizer_steps_per_batch,
        num_generations=smallest_group(buffer_threshold),
        importance_sampling_level="sequence",
        loss_type="grpo",
        epsilon=3e-4,
        epsilon_high=4e-4,
        beta=1e-3,
        use_bias_correction_kl=False,
        learning_rate=1e-6,
        lr_scheduler_type="constant",
        bf16=False,
        activation_checkpointing=False,
        disable_dropout=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        log_completions=False,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


class Learner:
    """Trains one agent's model on the nodes that agent wrote."""

    def __init__(
        self,
        name: str,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        args: GRPOConfig,
        max_updates: int,
        tis_cap: float | None = 2.0,
        tis_level: str = "token",
        ref_model: PreTrainedModel | None = None,
        force_old_logps: bool = False,
    ) -> None:
        if max_updates < 1:
            raise ValueError(f"max_updates must be >= 1, got {max_updates}")
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.max_updates = int(max_updates)
        self.buffer = SampleBuffer(args.generation_batch_size)
        self.updates = 0
        self.trainer = Mars2GRPOTrainer(
            model,
            args,
            tokenizer,
            ref_model=ref_model,
            tis_cap=tis_cap,
            tis_level=tis_level,
            force_old_logps=force_old_logps,
        )
        t = self.trainer
        for cb in (PrinterCallback, ProgressCallback):
            t.remove_callback(cb)
        total_steps = self.max_updates * self.optimizer_steps_per_update
        if t.is_deepspeed_enabled:
            # transformers' own DeepSpeed set-up (Trainer._inner_training_loop): fill the
            # config's "auto" values, build the optimizer / scheduler it names, then wrap
            from transformers.integrations.deepspeed import deepspeed_init

            t.optimizer, t.lr_scheduler = deepspeed_init(t, num_training_steps=total_steps)
            if type(t.lr_scheduler).__name__ == "DummyScheduler":
                t.model_wrapped, t.optimizer, t.lr_scheduler = t.accelerator.prepare(
                    t.model, t.optimizer, t.lr_scheduler
                )
            else:
                t.model_wrapped, t.optimizer = t.accelerator.prepare(t.model, t.optimizer)
            t.deepspeed = t.model_wrapped
        else:
            t.create_optimizer()
            t.model_wrapped, t.optimizer = t.accelerator.prepare(t.model, t.optimizer)
        t.create_scheduler(num_training_steps=total_steps, optimizer=t.optimizer)
        t.state = TrainerState()
        t.state.max_steps = total_steps
        t.state.logging_steps = 1
        t.state.train_batch_size = args.per_device_train_batch_size
        for attr in ("model", "optimizer", "lr_scheduler"):
            setattr(t.callback_handler, attr, getattr(t, attr))
        t._initial_num_input_tokens_seen = 0
        t.current_gradient_accumulation_steps = args.gradient_accumulation_steps
        t.control = t.callback_handler.on_train_begin(t.args, t.state, t.control)

    @property
    def done(self) -> bool:
        return self.updates >= self.max_updates

    @property
    def optimizer_steps_per_update(self) -> int:
        """Optimizer steps one update takes: steps per buffer batch x passes (num_iterations)."""
        args = self.trainer.args
        micro = args.steps_per_generation * self.trainer.num_iterations
        return -(-micro // args.gradient_accumulation_steps)

    def ready(self) -> bool:
        """True when the buffer holds a full batch and updates remain."""
        return not self.done and self.buffer.ready()

    def drop_stale(self, max_staleness: int | None) -> int:
        """Drop buffered samples more than ``max_staleness`` updates behind this learner (made by
        a policy older than ``updates - max_staleness``); returns how many (None: keep all)."""
        return self.buffer.drop_stale(self.updates, max_staleness)

    @property
    def local_batch_size(self) -> int:
        """Samples this process trains on per update (the batch / data-parallel processes)."""
        args = self.trainer.args
        return args.generation_batch_size // self.trainer.accelerator.num_processes

    def update(self) -> dict[str, float]:
        """One update on the oldest full batch of the buffer; returns the logged metrics, with
        how many updates behind the learner its samples' policies were (``policy_lag_*``).

        With several data-parallel processes every process holds the same buffer and trains
        on its own contiguous share of the batch."""
        batch = self.buffer.pop_batch()
        lags = [self.updates - s.policy_version for s in batch]
        n, rank = self.local_batch_size, self.trainer.accelerator.process_index
        logs = self.step(batch[rank * n : (rank + 1) * n])
        logs["policy_lag_mean"] = sum(lags) / len(lags)
        logs["policy_lag_max"] = max(lags)
        return logs

    def step(self, samples: list[NodeSample]) -> dict[str, float]:
        """Train on exactly ``generation_batch_size`` samples (one TRL generation batch; this
        process's share of it when there are several)."""
        t = self.trainer
        args = t.args
        if len(samples) != self.local_batch_size:
            raise ValueError(
                f"{self.name}: got {len(samples)} samples, the batch size is {self.local_batch_size}"
            )
        generate_every = args.steps_per_generation * t.num_iterations
        if t._step % generate_every:
            raise RuntimeError(
                f"{self.name}: trainer is mid-batch (step {t._step}); cannot start a new update"
            )
        model = t.model_wrapped
        start = time.perf_counter()
        t.current_gradient_accumulation_steps = args.gradient_accumulation_steps
        step_losses: list[float] = []  # the objective of each optimizer step
        window = 0.0
        grad_norm = None
        learning_rate = None
        model.zero_grad()
        for i in range(generate_every):
            sync = (i + 1) % args.gradient_accumulation_steps == 0 or i == generate_every - 1
            t.accelerator.gradient_state._set_sync_gradients(sync)
            if i % args.gradient_accumulation_steps == 0:
                t.control = t.callback_handler.on_step_begin(args, t.state, t.control)
            # TRL returns each micro-batch's loss already divided by gradient_accumulation_steps
            # (what it back-propagates), so their sum over a window is that step's objective
            window += float(t.training_step(model, samples, None))
            if sync:
                step_losses.append(window)
                window = 0.0
                grad_norm = (
                    t._clip_grad_norm(model)
                    if args.max_grad_norm and args.max_grad_norm > 0
                    else None
                )
                grad_norm = t._get_grad_norm(model, grad_norm=grad_norm)
                t.control = t.callback_handler.on_pre_optimizer_step(args, t.state, t.control)
                t.optimizer.step()
                t.control = t.callback_handler.on_optimizer_step(args, t.state, t.control)
                learning_rate = t._get_learning_rate()
                if not t.accelerator.optimizer_step_was_skipped:
                    t.lr_scheduler.step()
                model.zero_grad()
                t.state.global_step += 1
                t.control = t.callback_handler.on_step_end(args, t.state, t.control)
        elapsed = time.perf_counter() - start
        self.updates += 1
        tokens = sum(len(s.prompt_ids) + len(s.completion_ids) for s in samples)
        t.state.num_input_tokens_seen += tokens
        logs: dict[str, Any] = {
            "loss": sum(step_losses) / len(step_losses),
            "optimizer_steps": len(step_losses),
            "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
            "learning_rate": float(learning_rate) if learning_rate is not None else float("nan"),
            "update": self.updates,
            "train_tokens_per_s": tokens * t.num_iterations / max(elapsed, 1e-9),
            "update_time_s": elapsed,
        }
        t.log(
            logs
        )  # TRL adds its averaged metrics (kl, entropy, clip_ratio/*, ...) into `logs` and reports them
        logs["update"] = self.updates
        return logs

    # ---- checkpoints -------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> None:
        """Write everything needed to continue bit-for-bit (model, optimizer, scheduler, buffer, counters)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        t = self.trainer
        torch.save(self.model.state_dict(), d / "model.pt")
        torch.save(t.optimizer.state_dict(), d / "optimizer.pt")
        torch.save(t.lr_scheduler.state_dict(), d / "scheduler.pt")
        (d / "learner.json").write_text(json.dumps(self.counters()))

    def counters(self) -> dict[str, Any]:
        """What ``learner.json`` holds: the update and step counters and the buffer."""
        t = self.trainer
        return {
            "name": self.name,
            "updates": self.updates,
            "global_step": t.state.global_step,
            "trl_step": t._step,
            "total_train_tokens": t._total_train_tokens,
            "num_input_tokens_seen": t.state.num_input_tokens_seen,
            "buffer": self.buffer.state_dict(),
        }

    def load(self, directory: str | os.PathLike) -> None:
        """Restore what ``save`` wrote into this (freshly built, identically configured) learner."""
        d = Path(directory)
        state = json.loads((d / "learner.json").read_text())
        if state["name"] != self.name:
            raise ValueError(
                f"checkpoint {d} belongs to learner {state['name']!r}, not {self.name!r}"
            )
        t = self.trainer
        self.model.load_state_dict(
            torch.load(d / "model.pt", map_location="cpu", weights_only=True)
        )
        t.optimizer.load_state_dict(
            torch.load(d / "optimizer.pt", map_location="cpu", weights_only=True)
        )
        t.lr_scheduler.load_state_dict(
            torch.load(d / "scheduler.pt", map_location="cpu", weights_only=True)
        )
        self.load_counters(state)

    def load_counters(self, state: dict[str, Any]) -> None:
        """Restore what `counters` returned."""
        t = self.trainer
        self.updates = int(state["updates"])
        t.state.global_step = int(state["global_step"])
        t._step = int(state["trl_step"])
        t._total_train_tokens = int(state["total_train_tokens"])
        t.state.num_input_tokens_seen = int(state["num_input_tokens_seen"])
        t._buffered_inputs = None
        self.buffer.load_state_dict(state["buffer"])

    def close(self) -> None:
        t = self.trainer
        t.control = t.callback_handler.on_train_end(t.args, t.state, t.control)

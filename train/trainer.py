"""`trl.GRPOTrainer` whose batches come from a learner's buffer of tree nodes.

The main override is ``_generate_and_score_completions``: instead of sampling G
completions per dataset prompt and scoring them with reward functions, it pads the
buffer samples it is handed (prompt / completion ids, rollout logprobs, tree advantages),
computes ``ref_per_token_logps`` (and ``old_per_token_logps`` when needed, see below) with
TRL's own helper, folds the truncated importance-sampling weight into the advantages, and
returns the dict TRL's unchanged ``_compute_loss`` consumes. GSPO is TRL's
``importance_sampling_level="sequence"``.

The old-log-prob pass is skipped, as TRL skips it, when the batch is trained on by exactly one
optimizer step (``num_iterations == 1`` and ``gradient_accumulation_steps`` a multiple of
``steps_per_generation``): the weights cannot change between scoring and the loss, so the
old log-probs are the loss forward's own, detached (TRL's ``old_per_token_logps = None``).
TIS needs them too; in that case its weight ``min(pi_old / pi_rollout, C)`` is computed from
those same detached log-probs inside the loss forward (``_compute_loss`` /
``_get_per_token_logps_and_entropies`` below), which is the same value the extra pass would
give, whatever policy version wrote the samples.

TRL's private batch contract changes between releases; ``TESTED_TRL_VERSIONS`` lists the
releases this was checked against and ``tests/test_train_contract.py`` fails loudly when
the keys below stop matching TRL's source.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
import trl
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.trainer.utils import add_fused_lm_head, disable_dropout_in_model

from train.batch import build_batch
from train.buffer import as_sample
from train.tis import TIS_LEVELS, fold_into_advantages, tis_weights

TESTED_TRL_VERSIONS = ("1.16.0",)

# Keys of the dict ``_generate_and_score_completions`` returns that TRL's loss reads.
REQUIRED_BATCH_KEYS = (
    "prompt_ids",
    "prompt_mask",
    "completion_ids",
    "completion_mask",
    "advantages",
    "num_items_in_batch",
)
# Keys TRL's loss reads when present (old logps: multi-iteration / off-policy; ref: beta != 0;
# sampling logps: the off-policy sequence mask).
OPTIONAL_BATCH_KEYS = ("old_per_token_logps", "ref_per_token_logps", "sampling_per_token_logps")
# Our own key: rollout logprobs whose TIS weight the loss forward computes (old-logp pass skipped).
DEFERRED_TIS_KEY = "mars2_tis_rollout_logps"


def check_trl_version(strict: bool = False) -> None:
    """Warn (or raise when ``strict``) if the installed TRL is not one this was tested with."""
    if trl.__version__ not in TESTED_TRL_VERSIONS:
        msg = (
            f"train/ was tested with trl {', '.join(TESTED_TRL_VERSIONS)} but trl {trl.__version__} is installed; "
            "run tests/test_train_contract.py to check that GRPOTrainer's batch keys still match"
        )
        if strict:
            raise RuntimeError(msg)
        warnings.warn(msg, stacklevel=2)


def tree_advantage_reward(*args: Any, **kwargs: Any) -> list[float]:
    """Placeholder reward function: TRL requires one, but rewards come from the search tree."""
    raise RuntimeError(
        "Mars2GRPOTrainer takes advantages from the search tree; reward functions are never called"
    )


def _placeholder_dataset(n: int) -> Dataset:
    return Dataset.from_dict({"prompt": [""] * max(1, n)})


def smallest_group(n: int) -> int:
    """Smallest divisor >= 2 of ``n`` (TRL's ``num_generations``, inert here: groups come from trees)."""
    if n < 2:
        raise ValueError(f"a generation batch needs at least 2 samples, got {n}")
    for d in range(2, n + 1):
        if n % d == 0:
            return d
    return n


class Mars2GRPOTrainer(GRPOTrainer):
    """GRPO/GSPO trainer fed from a buffer of search-tree node samples.

    ``_prepare_inputs`` (TRL's) calls the override with the list passed to
    ``training_step``: a list of ``NodeSample`` (or dicts with its keys) of length
    ``args.generation_batch_size``; TRL shuffles and splits the returned batch into
    ``steps_per_generation`` micro-batches of ``per_device_train_batch_size``.

    ``ref_model``: the frozen KL reference when ``args.beta != 0`` (default: a copy of
    ``model`` taken before training, so no second load from disk is needed).

    ``force_old_logps``: always run the old-log-prob pass, even when it provably equals the
    loss forward's log-probs (the module doc); for checking and benchmarking the skip.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        args: GRPOConfig,
        processing_class: PreTrainedTokenizerBase,
        ref_model: PreTrainedModel | None = None,
        tis_cap: float | None = 2.0,
        tis_level: str = "token",
        callbacks: list[TrainerCallback] | None = None,
        force_old_logps: bool = False,
    ) -> None:
        check_trl_version()
        if isinstance(model, str):
            raise TypeError(
                "pass an instantiated model; the agent and its learner share one model object"
            )
        if processing_class is None:
            raise ValueError("processing_class (the agent's tokenizer) is required")
        if tis_level not in TIS_LEVELS:
            raise ValueError(f"unknown tis_level {tis_level!r}; choose one of {TIS_LEVELS}")
        if tis_cap is not None and tis_cap <= 0:
            raise ValueError(f"tis_cap must be positive or None (off), got {tis_cap}")
        if args.use_vllm:
            raise ValueError(
                "use_vllm=True makes TRL generate; here agents generate and the learner trains on their nodes. "
                "Use a vllm: agent spec instead."
            )
        self.tis_cap = tis_cap
        self.tis_level = tis_level
        self.force_old_logps = bool(force_old_logps)
        self._in_train_flow = False  # set while TRL's training flow scores a generation batch
        self._pending_tis: tuple[dict[str, Any], torch.Tensor] | None = None
        beta = args.beta
        if beta != 0.0 and ref_model is None:
            ref_model = copy.deepcopy(model)  # before TRL patches the forward of `model`
        # TRL would build the reference by re-loading the model from its name; we hand it ours.
        args.beta = 0.0
        try:
            super().__init__(
                model=model,
                reward_funcs=[tree_advantage_reward],
                args=args,
                train_dataset=_placeholder_dataset(args.generation_batch_size),
                processing_class=processing_class,
                callbacks=callbacks,
            )
        finally:
            args.beta = beta
        self.beta = beta
        if beta != 0.0:
            ref_model.requires_grad_(False)
            ref_model.eval()
            if args.disable_dropout:
                disable_dropout_in_model(ref_model)
            add_fused_lm_head(
                ref_model,
                temperature=self.temperature,
                cast_lm_head_to_fp32=args.cast_lm_head_to_fp32,
            )
            # as TRL prepares its own reference: DeepSpeed / FSDP shard it like the policy
            if self.is_deepspeed_enabled:
                self.ref_model = prepare_deepspeed(ref_model, self.accelerator)
            elif self.is_fsdp_enabled:
                self.ref_model = prepare_fsdp(ref_model, self.accelerator)
            else:
                self.ref_model = self.accelerator.prepare_model(ref_model, evaluation_mode=True)

    def _generate_and_score_completions(self, inputs: list[Any]) -> dict[str, torch.Tensor | Any]:
        """Batch of buffer samples in the layout TRL's ``_compute_loss`` reads (see module doc)."""
        device = self.accelerator.device
        mode = "train" if self.model.training else "eval"
        samples = [as_sample(x) for x in inputs]
        batch = build_batch(samples, self._tokenizer.pad_token_id, device, self.pad_to_multiple_of)
        prompt_ids, prompt_mask = batch["prompt_ids"], batch["prompt_mask"]
        completion_ids, completion_mask = batch["completion_ids"], batch["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        logits_to_keep = completion_ids.size(1)
        chunk = (
            self.args.per_device_train_batch_size
            if mode == "train"
            else self.args.per_device_eval_batch_size
        )

        rollout_logps = batch["rollout_logps"]
        use_tis = self.tis_cap is not None and bool(batch["has_rollout_logps"].any())
        need_old = not self.old_logps_are_current()

        old_per_token_logps = ref_per_token_logps = None
        with torch.no_grad():
            if need_old:
                old_per_token_logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, logits_to_keep, batch_size=chunk
                )
            if self.beta != 0.0:
                ref_per_token_logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.ref_model, input_ids, attention_mask, logits_to_keep, batch_size=chunk
                )

        advantages = batch["advantages"]
        metrics = self._metrics[mode]
        if use_tis and old_per_token_logps is not None:
            advantages = self._apply_tis(
                advantages, old_per_token_logps, rollout_logps, completion_mask, mode
            )

        lengths = completion_mask.sum(1).float()
        rewards = batch["rewards"]
        metrics["reward"].append(rewards.mean().item())
        metrics["reward_std"].append(rewards.std().item() if len(samples) > 1 else 0.0)
        metrics["advantages/mean"].append(batch["advantages"].mean().item())
        metrics["advantages/abs_mean"].append(batch["advantages"].abs().mean().item())
        metrics["completions/mean_length"].append(lengths.mean().item())
        metrics["completions/clipped_ratio"].append(
            sum(s.truncated for s in samples) / len(samples)
        )
        self._total_train_tokens += int(attention_mask.sum().item())
        metrics["num_tokens"].append(float(self._total_train_tokens))

        output: dict[str, torch.Tensor | Any] = {
            "prompt_ids": prompt_ids,
            "prompt_mask": prompt_mask,
            "completion_ids": completion_ids,
            "completion_mask": completion_mask,
            "advantages": advantages,
            "num_items_in_batch": batch["num_items_in_batch"],
        }
        if old_per_token_logps is not None:
            output["old_per_token_logps"] = old_per_token_logps
        elif use_tis:
            output[DEFERRED_TIS_KEY] = rollout_logps  # weighted in the loss forward
        if ref_per_token_logps is not None:
            output["ref_per_token_logps"] = ref_per_token_logps
        if bool(batch["has_rollout_logps"].all()):
            output["sampling_per_token_logps"] = rollout_logps
        return output

    # ---- the old-log-prob pass and TIS --------------------------------------------------

    def old_logps_are_current(self) -> bool:
        """True when the old-log-prob pass would equal the loss forward's log-probs (TRL's rule).

        Only inside TRL's training flow (``_prepare_inputs`` scoring a generation batch that
        the loss then consumes), with one optimizer step per batch and one pass over it, and
        unless ``force_old_logps``. A direct call (tests, evaluation) always scores.
        """
        generate_every = self.args.steps_per_generation * self.num_iterations
        return (
            self._in_train_flow
            and not self.force_old_logps
            and self.args.gradient_accumulation_steps % generate_every == 0
        )

    def _prepare_inputs(self, generation_batch: Any) -> dict[str, torch.Tensor | Any]:
        self._in_train_flow = self.model.training
        try:
            return super()._prepare_inputs(generation_batch)
        finally:
            self._in_train_flow = False

    def _apply_tis(
        self,
        advantages: torch.Tensor,
        train_logps: torch.Tensor,
        rollout_logps: torch.Tensor,
        completion_mask: torch.Tensor,
        mode: str,
    ) -> torch.Tensor:
        """Advantages times the TIS weights ``min(pi_train / pi_rollout, cap)``; logs their stats."""
        weights = tis_weights(
            train_logps, rollout_logps, completion_mask, self.tis_cap, self.tis_level
        )
        metrics = self._metrics[mode]
        known = completion_mask.bool() & ~torch.isnan(rollout_logps)
        w = weights[known] if self.tis_level == "token" else weights.flatten()
        if w.numel():
            metrics["tis/weight_mean"].append(w.mean().item())
            metrics["tis/weight_min"].append(w.min().item())
            metrics["tis/capped_frac"].append((w >= self.tis_cap).float().mean().item())
        delta = (train_logps - rollout_logps).abs()[known]
        if delta.numel():
            metrics["sampling/sampling_logp_difference/mean"].append(delta.mean().item())
            metrics["sampling/sampling_logp_difference/max"].append(delta.max().item())
        return fold_into_advantages(advantages, weights)

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        """TRL's loss; a micro-batch with deferred TIS gets its weights from the loss forward.

        TRL's ``_compute_loss`` computes the policy's log-probs first and reads
        ``inputs["advantages"]`` after (``tests/test_train_contract.py`` pins that order), so
        the hook in ``_get_per_token_logps_and_entropies`` folds the weights, computed from
        those log-probs detached, into a copy of the micro-batch before the loss reads it.
        """
        rollout_logps = inputs.get(DEFERRED_TIS_KEY)
        if rollout_logps is None:
            return super()._compute_loss(model, inputs)
        inputs = {k: v for k, v in inputs.items() if k != DEFERRED_TIS_KEY}
        self._pending_tis = (inputs, rollout_logps)
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            pending, self._pending_tis = self._pending_tis, None
        if pending is not None:
            raise RuntimeError(
                "TRL's _compute_loss did not compute the policy log-probs before reading the "
                "advantages; the deferred TIS weight was never applied (see tests/test_train_contract.py)"
            )
        return loss

    def _get_per_token_logps_and_entropies(
        self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        logits_to_keep: int, *args: Any, **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        out = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )
        if self._pending_tis is not None:
            inputs, rollout_logps = self._pending_tis
            self._pending_tis = None
            mode = "train" if self.model.training else "eval"
            inputs["advantages"] = self._apply_tis(
                inputs["advantages"], out[0].detach(), rollout_logps,
                inputs["completion_mask"], mode,
            )
        return out

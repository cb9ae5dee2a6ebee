"""Contract between train.trainer.Mars2GRPOTrainer and TRL's private GRPOTrainer internals.

The override of `_generate_and_score_completions` relies on which batch keys TRL's own
version returns and which keys `_compute_loss` reads. This file reads TRL's source and
fails loudly (naming the keys) when a TRL release changes them, and checks every private
method and config field the learner calls still exists with the expected signature.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

trl = pytest.importorskip("trl")
torch = pytest.importorskip("torch")

from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from train.trainer import (  # noqa: E402
    OPTIONAL_BATCH_KEYS,
    REQUIRED_BATCH_KEYS,
    TESTED_TRL_VERSIONS,
)

# What TRL 1.16.0 does (recorded from its source). A change here means re-checking the override.
TRL_OUTPUT_KEYS = {
    "prompt_ids",
    "prompt_mask",
    "completion_ids",
    "completion_mask",
    "advantages",
    "num_items_in_batch",
}
TRL_CONDITIONAL_OUTPUT_KEYS = {
    "old_per_token_logps",
    "importance_sampling_ratio",
    "sampling_per_token_logps",
    "ref_per_token_logps",
    "pixel_values",
    "image_grid_thw",
    "pixel_attention_mask",
    "spatial_shapes",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
    "num_images",
    "num_tiles",
    "tool_mask",
}
# keys `_compute_loss` reads with inputs[...] (KeyError if missing on the path that reads it)
LOSS_SUBSCRIPT_KEYS = {
    "prompt_ids",
    "prompt_mask",
    "completion_ids",
    "completion_mask",
    "advantages",
    "num_items_in_batch",
    "ref_per_token_logps",  # only when beta != 0
    "importance_sampling_ratio",  # only when TRL generates with vLLM (never here)
    "tool_mask",  # only when "tool_mask" in inputs
}
LOSS_GET_KEYS = {
    "old_per_token_logps",
    "sampling_per_token_logps",
    "importance_sampling_ratio",
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
}


def _keys(fn) -> dict[str, set]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    out = {"literal": set(), "assigned": set(), "subscript": set(), "get": set(), "contains": set()}
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Name) and t.id == "output" and isinstance(n.value, ast.Dict):
                    out["literal"] |= {k.value for k in n.value.keys if isinstance(k, ast.Constant)}
                if (
                    isinstance(t, ast.Subscript)
                    and isinstance(t.value, ast.Name)
                    and t.value.id == "output"
                    and isinstance(t.slice, ast.Constant)
                ):
                    out["assigned"].add(t.slice.value)
        if (
            isinstance(n, ast.Subscript)
            and isinstance(n.value, ast.Name)
            and n.value.id == "inputs"
            and isinstance(n.slice, ast.Constant)
            and isinstance(n.ctx, ast.Load)
        ):
            out["subscript"].add(n.slice.value)
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "get"
            and isinstance(n.func.value, ast.Name)
            and n.func.value.id == "inputs"
            and n.args
            and isinstance(n.args[0], ast.Constant)
        ):
            out["get"].add(n.args[0].value)
        if (
            isinstance(n, ast.Compare)
            and isinstance(n.left, ast.Constant)
            and any(isinstance(c, ast.Name) and c.id == "inputs" for c in n.comparators)
        ):
            out["contains"].add(n.left.value)
    return out


def _diff(name: str, got: set, want: set) -> str:
    return f"{name}: TRL {trl.__version__} added {sorted(got - want)}, removed {sorted(want - got)}"


def test_trl_version_is_pinned_and_tested():
    assert trl.__version__ in TESTED_TRL_VERSIONS, (
        f"trl {trl.__version__} is not in TESTED_TRL_VERSIONS {TESTED_TRL_VERSIONS}: re-run this file, "
        "then add the version to train/trainer.py"
    )


def test_generate_and_score_returns_the_keys_we_build():
    k = _keys(GRPOTrainer._generate_and_score_completions)
    assert k["literal"] == TRL_OUTPUT_KEYS, _diff(
        "always-returned batch keys", k["literal"], TRL_OUTPUT_KEYS
    )
    assert k["assigned"] == TRL_CONDITIONAL_OUTPUT_KEYS, _diff(
        "conditional batch keys", k["assigned"], TRL_CONDITIONAL_OUTPUT_KEYS
    )
    assert set(REQUIRED_BATCH_KEYS) == TRL_OUTPUT_KEYS
    assert set(OPTIONAL_BATCH_KEYS) <= TRL_CONDITIONAL_OUTPUT_KEYS


def test_compute_loss_reads_only_keys_we_provide():
    k = _keys(GRPOTrainer._compute_loss)
    assert k["subscript"] == LOSS_SUBSCRIPT_KEYS, _diff(
        "inputs[...] keys of _compute_loss", k["subscript"], LOSS_SUBSCRIPT_KEYS
    )
    assert k["get"] == LOSS_GET_KEYS, _diff(
        "inputs.get(...) keys of _compute_loss", k["get"], LOSS_GET_KEYS
    )
    assert k["contains"] == {"tool_mask"}
    # the unconditional reads are exactly what our override always returns
    unconditional = LOSS_SUBSCRIPT_KEYS - {
        "ref_per_token_logps",
        "importance_sampling_ratio",
        "tool_mask",
    }
    assert unconditional == set(REQUIRED_BATCH_KEYS)
    # the TIS weight is folded into the advantages because TRL applies its own ratio only with vLLM
    src = inspect.getsource(GRPOTrainer._compute_loss)
    assert "self.use_vllm and self.vllm_importance_sampling_correction" in src
    assert "advantages.dim() == 1" in src, "TRL no longer accepts (B, T) advantages the same way"
    assert 'self.importance_sampling_level == "sequence"' in src


def test_private_methods_we_call_keep_their_signatures():
    from transformers import Trainer

    def params(fn):
        return list(inspect.signature(fn).parameters)

    assert params(GRPOTrainer._generate_and_score_completions) == ["self", "inputs"]
    assert params(GRPOTrainer._get_per_token_logps_and_entropies)[:5] == [
        "self",
        "model",
        "input_ids",
        "attention_mask",
        "logits_to_keep",
    ]
    assert "batch_size" in params(GRPOTrainer._get_per_token_logps_and_entropies)
    assert params(GRPOTrainer.training_step) == ["self", "model", "inputs", "num_items_in_batch"]
    assert params(GRPOTrainer._prepare_inputs) == ["self", "generation_batch"]
    assert params(Trainer._clip_grad_norm) == ["self", "model"]
    assert params(Trainer._get_grad_norm) == ["self", "model", "grad_norm"]
    assert params(Trainer.create_scheduler) == ["self", "num_training_steps", "optimizer"]
    assert params(Trainer._get_learning_rate) == ["self"]
    from accelerate.state import GradientState

    assert hasattr(GradientState, "_set_sync_gradients")  # the learner syncs like Trainer's loop
    # _prepare_inputs generates once per steps_per_generation * num_iterations steps and indexes the buffer
    src = inspect.getsource(GRPOTrainer._prepare_inputs)
    assert "self._generate_and_score_completions(generation_batch)" in src
    assert "self._buffered_inputs[self._step % self.args.steps_per_generation]" in src


def test_grpo_config_fields_exist():
    fields = set(GRPOConfig.__dataclass_fields__)
    needed = {
        "importance_sampling_level",
        "epsilon",
        "epsilon_high",
        "beta",
        "loss_type",
        "num_generations",
        "steps_per_generation",
        "generation_batch_size",
        "num_iterations",
        "temperature",
        "disable_dropout",
        "cast_lm_head_to_fp32",
        "use_vllm",
        "activation_checkpointing",
        "use_cpu",
        "bf16",
    }
    assert needed <= fields, f"GRPOConfig lost {sorted(needed - fields)}"


def test_compute_loss_computes_logps_before_reading_the_advantages():
    """Deferred TIS (old-log-prob pass skipped) folds its weights into the micro-batch from
    inside the loss forward; that works only while TRL's `_compute_loss` calls
    `_get_per_token_logps_and_entropies` before it reads `inputs["advantages"]`."""
    src = inspect.getsource(GRPOTrainer._compute_loss)
    forward = src.find("self._get_per_token_logps_and_entropies(")
    advantages = src.find('inputs["advantages"]')
    assert 0 < forward < advantages, "TRL reads the advantages before the policy forward"
    assert src.count("self._get_per_token_logps_and_entropies(") == 1
    # and TRL itself skips the old pass under the same rule we follow
    gen = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert "self.args.gradient_accumulation_steps % generate_every != 0" in gen
    assert "per_token_logps.detach() if old_per_token_logps is None" in src

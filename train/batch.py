"""Turn buffer samples into the padded tensors TRL's GRPO loss consumes.

Layout (the same as ``GRPOTrainer._generate_and_score_completions``): prompts are
left-padded so every completion starts at the same column, completions are right-padded;
masks are 1 on real tokens. Rollout logprobs are right-padded with 0 and are NaN for a
sample whose backend returned none.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from train.buffer import NodeSample


def _round_up(n: int, multiple: int | None) -> int:
    if not multiple:
        return n
    return ((n + multiple - 1) // multiple) * multiple


def pad_sequences(
    seqs: Sequence[Sequence[int | float]],
    pad_value: int | float,
    side: str,
    dtype: torch.dtype,
    min_length: int = 0,
    pad_to_multiple_of: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to a ``(B, L)`` tensor and its 0/1 mask; ``side`` is ``"left"`` or ``"right"``."""
    if side not in ("left", "right"):
        raise ValueError(f"padding side must be 'left' or 'right', got {side!r}")
    length = _round_up(max([min_length, *(len(s) for s in seqs)]), pad_to_multiple_of)
    out = torch.full((len(seqs), length), pad_value, dtype=dtype)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for i, s in enumerate(seqs):
        if not len(s):
            continue
        values = torch.tensor(list(s), dtype=dtype)
        if side == "left":
            out[i, length - len(s) :] = values
            mask[i, length - len(s) :] = 1
        else:
            out[i, : len(s)] = values
            mask[i, : len(s)] = 1
    return out, mask


def build_batch(
    samples: Sequence[NodeSample],
    pad_token_id: int,
    device: torch.device | str = "cpu",
    pad_to_multiple_of: int | None = None,
) -> dict[str, torch.Tensor]:
    """Padded batch of ``samples``.

    Returns ``prompt_ids``, ``prompt_mask`` (left-padded), ``completion_ids``,
    ``completion_mask`` (right-padded, at least one column so TRL's ``logits_to_keep`` is
    never 0), ``advantages`` (B,), ``rollout_logps`` (B, C), ``has_rollout_logps`` (B,),
    ``rewards`` (B,) and ``num_items_in_batch`` (number of completion tokens).
    """
    if not samples:
        raise ValueError("cannot build a batch from zero samples")
    if pad_token_id is None:
        raise ValueError("the tokenizer has no pad token id; set tokenizer.pad_token")
    prompt_ids, prompt_mask = pad_sequences(
        [s.prompt_ids for s in samples], pad_token_id, "left", torch.long, 1, pad_to_multiple_of
    )
    completion_ids, completion_mask = pad_sequences(
        [s.completion_ids for s in samples],
        pad_token_id,
        "right",
        torch.long,
        1,
        pad_to_multiple_of,
    )
    nan = float("nan")
    rollout_logps, _ = pad_sequences(
        [s.logprobs if s.logprobs is not None else [nan] * len(s.completion_ids) for s in samples],
        0.0,
        "right",
        torch.float32,
        completion_ids.shape[1],
    )
    batch = {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.tensor([float(s.advantage) for s in samples], dtype=torch.float32),
        "rollout_logps": rollout_logps,
        "has_rollout_logps": torch.tensor([s.logprobs is not None for s in samples]),
        "rewards": torch.tensor([float(s.reward) for s in samples], dtype=torch.float32),
        "num_items_in_batch": completion_mask.sum(),
    }
    return {k: v.to(device) for k, v in batch.items()}

"""Batch building, TIS weights, sample buffer and config (no model needed)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from train.batch import build_batch, pad_sequences  # noqa: E402
from train.buffer import NodeSample, SampleBuffer  # noqa: E402
from train.config import Mars2TrainConfig  # noqa: E402
from train.tis import fold_into_advantages, tis_weights  # noqa: E402

PAD = 0


def _samples():
    return [
        NodeSample([5, 6, 7], [8, 9], 1.5, logprobs=[-0.5, -1.0], reward=1.0),
        NodeSample([5], [10, 11, 12], -0.5, logprobs=None, reward=0.0),
    ]


def test_build_batch_pads_prompts_left_and_completions_right():
    b = build_batch(_samples(), PAD)
    assert b["prompt_ids"].tolist() == [[5, 6, 7], [0, 0, 5]]
    assert b["prompt_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert b["completion_ids"].tolist() == [[8, 9, 0], [10, 11, 12]]
    assert b["completion_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert b["advantages"].tolist() == [1.5, -0.5]
    assert b["rewards"].tolist() == [1.0, 0.0]
    assert b["num_items_in_batch"].item() == 5
    assert b["has_rollout_logps"].tolist() == [True, False]
    lp = b["rollout_logps"]
    assert lp[0].tolist() == [-0.5, -1.0, 0.0]
    assert all(math.isnan(x) for x in lp[1].tolist())
    assert b["prompt_ids"].dtype == torch.long and b["advantages"].dtype == torch.float32


def test_build_batch_keeps_one_completion_column_for_empty_completions():
    b = build_batch([NodeSample([1, 2], [], 1.0), NodeSample([3], [], -1.0)], PAD)
    assert b["completion_ids"].shape == (2, 1)
    assert b["completion_mask"].sum().item() == 0


def test_pad_to_multiple_and_errors():
    ids, mask = pad_sequences([[1, 2, 3]], 0, "right", torch.long, pad_to_multiple_of=4)
    assert ids.tolist() == [[1, 2, 3, 0]] and mask.tolist() == [[1, 1, 1, 0]]
    with pytest.raises(ValueError, match="padding side"):
        pad_sequences([[1]], 0, "middle", torch.long)
    with pytest.raises(ValueError, match="zero samples"):
        build_batch([], PAD)


def test_sample_validation_names_the_problem():
    with pytest.raises(ValueError, match="2 logprobs for 1 completion tokens"):
        NodeSample([1], [2], 0.0, logprobs=[-1.0, -2.0], agent="a", problem_id="p", node_id=3)
    with pytest.raises(ValueError, match="empty prompt_ids"):
        NodeSample([], [2], 0.0)
    with pytest.raises(ValueError, match="finite"):
        NodeSample([1], [2], float("nan"))


def test_tis_weights_token_level_truncate_and_ignore_unknown():
    train = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, 0.0]])
    rollout = torch.tensor([[-1.5, -3.0, 0.0], [float("nan"), -1.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    w = tis_weights(train, rollout, mask, cap=2.0, level="token")
    assert w.shape == (2, 3)
    assert w[0, 0].item() == pytest.approx(math.exp(0.5))  # 1.6487 < cap
    assert w[0, 1].item() == pytest.approx(2.0)  # exp(2) = 7.39 truncated to the cap
    assert w[0, 2].item() == 1.0  # padding
    assert w[1, 0].item() == 1.0  # unknown rollout logprob: no correction
    assert w[1, 1].item() == pytest.approx(math.exp(-1.0))  # ratios below 1 are kept


def test_tis_weights_sequence_level_is_product_of_ratios():
    train = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    rollout = torch.tensor([[-1.2, -1.1], [-0.1, -2.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    w = tis_weights(train, rollout, mask, cap=2.0, level="sequence")
    assert w.shape == (2, 1)
    assert w[0, 0].item() == pytest.approx(math.exp(0.3))
    assert w[1, 0].item() == pytest.approx(math.exp(-0.9))
    with pytest.raises(ValueError, match="unknown tis level"):
        tis_weights(train, rollout, mask, level="bogus")
    with pytest.raises(ValueError, match="cap"):
        tis_weights(train, rollout, mask, cap=0)


def test_fold_into_advantages():
    adv = torch.tensor([2.0, -1.0])
    w = torch.tensor([[0.5, 1.0], [2.0, 1.0]])
    assert fold_into_advantages(adv, w).tolist() == [[1.0, 2.0], [-2.0, -1.0]]
    assert fold_into_advantages(adv, torch.tensor([[0.5], [2.0]])).tolist() == [[1.0], [-2.0]]


def test_buffer_fifo_threshold_and_state_roundtrip():
    buf = SampleBuffer(2)
    s = [NodeSample([1], [i], float(i)) for i in range(3)]
    buf.add(s[0])
    assert not buf.ready()
    with pytest.raises(RuntimeError, match="fewer than the threshold"):
        buf.pop_batch()
    buf.extend(s[1:])
    assert buf.ready()
    state = buf.state_dict()
    assert [x.advantage for x in buf.pop_batch()] == [0.0, 1.0]
    assert len(buf) == 1
    other = SampleBuffer(5)
    other.load_state_dict(state)
    assert other.threshold == 2 and len(other) == 3 and other.total_added == 3
    assert [x.completion_ids for x in other] == [[0], [1], [2]]
    with pytest.raises(ValueError, match=">= 2"):
        SampleBuffer(1)


def test_config_validation_yaml_and_overrides(tmp_path):
    cfg = Mars2TrainConfig()
    assert cfg.names == ["coder_0", "coder_1"]
    assert cfg.overlong == (512, 128)
    p = tmp_path / "c.yaml"
    p.write_text("mode: rs2\nagents: [hf:embedded]\nmax-steps: 3\ntis_cap: none\n")
    cfg = Mars2TrainConfig.from_yaml(p, budget=4)
    assert (cfg.mode, cfg.agents, cfg.max_steps, cfg.tis_cap, cfg.budget) == (
        "rs2",
        ["hf:embedded"],
        3,
        None,
        4,
    )
    assert Mars2TrainConfig.from_dict({k: v for k, v in cfg.to_dict().items()}) == cfg
    p.write_text("max_stepz: 3\n")
    with pytest.raises(ValueError, match="unknown option 'max_stepz'.*max_steps"):
        Mars2TrainConfig.from_yaml(p)
    with pytest.raises(ValueError, match="multiple of per_device_train_batch_size"):
        Mars2TrainConfig(buffer_threshold=6, per_device_train_batch_size=4)
    with pytest.raises(ValueError, match="mode must be one of"):
        Mars2TrainConfig(mode="ppo")
    with pytest.raises(ValueError, match="max_steps in config must be int"):
        Mars2TrainConfig.from_dict({"max_steps": "many"})
    with pytest.raises(ValueError, match="unique"):
        Mars2TrainConfig(agent_names=["a", "a"])

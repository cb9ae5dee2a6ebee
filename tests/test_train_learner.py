"""The GSPO learner on a tiny random Llama (SmolLM2's architecture): direction, batch, checkpoints."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train.buffer import NodeSample  # noqa: E402
from train.learner import Learner, make_grpo_config  # noqa: E402
from train.tiny import tiny_llama, tiny_tokenizer  # noqa: E402
from train.trainer import REQUIRED_BATCH_KEYS  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _learner(tmp_path, tok, threshold=2, micro=2, **kw):
    model = tiny_llama(tok, seed=0)
    args = make_grpo_config(tmp_path / "out", threshold, micro, seed=0, **kw)
    return Learner("coder_0", model, tok, args, max_updates=4)


def _seq_logprob(model, prompt, completion) -> float:
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    return logits.log_softmax(-1).gather(1, torch.tensor(completion)[:, None]).sum().item()


def _pair(tok):
    p = tok("def f(x):")["input_ids"]
    good = tok(" return x + 1")["input_ids"]
    bad = tok(" pass  # ???")["input_ids"]
    return p, good, bad


def test_one_gspo_step_moves_logprobs_in_the_advantage_direction(tmp_path, tok):
    learner = _learner(tmp_path, tok, learning_rate=1e-3)
    model = learner.model
    p, good, bad = _pair(tok)
    before = (_seq_logprob(model, p, good), _seq_logprob(model, p, bad))
    logs = learner.step([NodeSample(p, good, 1.0), NodeSample(p, bad, -1.0)])
    after = (_seq_logprob(model, p, good), _seq_logprob(model, p, bad))
    assert after[0] > before[0], (before, after)
    assert after[1] < before[1], (before, after)
    assert learner.updates == 1 and learner.trainer.state.global_step == 1
    assert logs["kl"] == pytest.approx(0.0, abs=1e-6)  # the reference is the model before the step
    for key in (
        "loss",
        "grad_norm",
        "learning_rate",
        "entropy",
        "clip_ratio/region_mean",
        "reward",
        "advantages/abs_mean",
        "train_tokens_per_s",
    ):
        assert key in logs and math.isfinite(logs[key]), key


def test_override_builds_trl_batch_with_old_ref_logps_and_tis(tmp_path, tok):
    learner = _learner(tmp_path, tok, threshold=2, micro=1, beta=0.01)
    trainer = learner.trainer
    p, good, bad = _pair(tok)
    samples = [NodeSample(p, good, 1.0), NodeSample(p[:3], bad, -1.0)]
    # rollout logprobs = the model's own (TIS weight 1) for the first; 1.0 nat lower for the second
    own = [
        torch.tensor(_token_logps(learner.model, s.prompt_ids, s.completion_ids)) for s in samples
    ]
    samples[0].logprobs = own[0].tolist()
    samples[1].logprobs = (own[1] - 1.0).tolist()
    learner.model.train()
    out = trainer._generate_and_score_completions(samples)
    assert set(REQUIRED_BATCH_KEYS) <= set(out)
    assert {"old_per_token_logps", "ref_per_token_logps", "sampling_per_token_logps"} <= set(out)
    c = out["completion_mask"]
    assert out["prompt_mask"][1].tolist() == [0] * (len(p) - 3) + [1] * 3  # left padded
    assert c.sum(1).tolist() == [len(good), len(bad)]
    assert (
        c[0, : len(good)].all() and not c[0, len(good) :].any() if c.shape[1] > len(good) else True
    )
    old = out["old_per_token_logps"]
    assert torch.allclose(old[0, : len(good)], own[0], atol=1e-4)
    assert torch.allclose(out["ref_per_token_logps"] * c, old * c, atol=1e-4)
    adv = out["advantages"]
    assert adv.shape == c.shape  # TIS folded per token
    assert torch.allclose(adv[0, : len(good)], torch.ones(len(good)), atol=1e-3)
    # ratio exp(+1) = 2.718 is truncated to the cap 2, times advantage -1
    assert torch.allclose(adv[1, : len(bad)], torch.full((len(bad),), -2.0), atol=1e-4)
    assert out["num_items_in_batch"].item() == len(good) + len(bad)
    # TRL's unchanged loss accepts it
    loss = trainer._compute_loss(learner.model, out)
    assert loss.ndim == 0 and torch.isfinite(loss)


def _token_logps(model, prompt, completion):
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    return logits.log_softmax(-1).gather(1, torch.tensor(completion)[:, None])[:, 0].tolist()


def test_micro_batches_accumulate_into_one_optimizer_step(tmp_path, tok):
    learner = _learner(tmp_path, tok, threshold=4, micro=2, learning_rate=1e-3)
    p, good, bad = _pair(tok)
    samples = [NodeSample(p, good, 1.0), NodeSample(p, bad, -1.0)] * 2
    learner.buffer.extend(samples)
    assert learner.ready()
    learner.update()
    assert learner.trainer.state.global_step == 1 and learner.trainer._step == 2
    assert len(learner.buffer) == 0
    with pytest.raises(ValueError, match="got 2 samples, the batch size is 4"):
        learner.step(samples[:2])


def test_checkpoint_resume_is_bit_for_bit(tmp_path, tok):
    p, good, bad = _pair(tok)
    batches = [
        [NodeSample(p, good, 1.0), NodeSample(p, bad, -1.0)],
        [NodeSample(p, bad, 0.5), NodeSample(p, good, -0.5)],
        [NodeSample(p, good, -1.0), NodeSample(p, bad, 1.0)],
    ]

    def run(learner, bs):
        return [learner.step(list(b))["loss"] for b in bs]

    a = _learner(tmp_path / "a", tok, learning_rate=1e-2)
    torch.manual_seed(123)
    losses_a = run(a, batches)

    b = _learner(tmp_path / "b", tok, learning_rate=1e-2)
    torch.manual_seed(123)
    losses_b = run(b, batches[:1])
    b.buffer.add(NodeSample(p, good, 0.25))
    b.save(tmp_path / "ckpt")
    rng = torch.get_rng_state()
    c = _learner(tmp_path / "c", tok, learning_rate=1e-2)
    c.load(tmp_path / "ckpt")
    torch.set_rng_state(rng)
    losses_b += run(c, batches[1:])
    assert losses_a == losses_b
    assert c.updates == 3 and len(c.buffer) == 1
    sa, sc = a.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sc[k]) for k in sa)
    with pytest.raises(ValueError, match="belongs to learner"):
        Learner("other", tiny_llama(tok), tok, make_grpo_config(tmp_path / "d", 2, 2), 1).load(
            tmp_path / "ckpt"
        )


def test_a_learner_checkpoint_holds_each_tensor_once(tmp_path, tok):
    """A checkpoint is the weights plus AdamW's two moments, fp32, each written once: no frozen
    KL reference, no second copy of the tied embedding, no second format of the same state.
    (For SmolLM2-135M that is 0.54 + 1.08 GB per agent, all of it needed for an exact resume.)"""
    from train.trainer import Mars2GRPOTrainer

    model = tiny_llama(tok, seed=0)
    args = make_grpo_config(tmp_path / "out", 2, 2, seed=0, beta=1e-3)  # with a KL reference
    lr = Learner("coder_0", model, tok, args, max_updates=4)
    assert isinstance(lr.trainer, Mars2GRPOTrainer) and lr.trainer.ref_model is not None
    p, good, bad = _pair(tok)
    lr.step([NodeSample(p, good, 1.0), NodeSample(p, bad, -1.0)])
    lr.save(tmp_path / "ckpt")
    param_bytes = sum(t.numel() * t.element_size() for t in model.parameters())  # tied: once
    files = {f.name: f.stat().st_size for f in (tmp_path / "ckpt").iterdir()}
    tensors = files["model.pt"] + files["optimizer.pt"]
    assert 3 * param_bytes <= tensors <= 3 * param_bytes * 1.02 + 96_000, (files, param_bytes)
    assert sum(files.values()) - tensors < 16_000  # the rest is counters, buffer, LR schedule
    assert set(files) == {"model.pt", "optimizer.pt", "scheduler.pt", "learner.json"}

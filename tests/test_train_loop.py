"""The rollout/update loop end to end with tiny random Llama agents (real executor, real trees).

The tiny models write garbage, so every program fails; the learning signal comes from the
DAPO overlong penalty: coder_0 may write 6 tokens, coder_1 24 (cut at the overlong maximum),
so a tree where both wrote has non-zero advantages.
"""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train.config import Mars2TrainConfig  # noqa: E402
from train.loop import TrainLoop, is_timing_key  # noqa: E402
from train.tiny import save_tiny  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def executor():
    from mars2_env.execution import Executor

    with Executor(max_workers=1) as ex:
        yield ex


def _agents(tiny_dir, names, lengths=(6, 24)):
    from agents.hf import HFAgent

    return {
        n: HFAgent.from_pretrained(
            str(tiny_dir), name=n, max_new_tokens=lengths[i % 2], seed=10 + i, num_threads=1
        )
        for i, n in enumerate(names)
    }


def _config(tiny_dir, **overrides):
    """The small two-agent config every loop test starts from."""
    kw = dict(
        agents=[f"hf:{tiny_dir}"] * 2,
        budget=4,
        max_trees=2,
        buffer_threshold=4,
        per_device_train_batch_size=2,
        max_new_tokens=24,
        overlong_max_length=24,
        overlong_buffer_length=16,
        max_steps=2,
        learning_rate=1e-3,
        progress=False,
        seed=0,
        max_rounds=8,
    )
    kw.update(overrides)
    return Mars2TrainConfig(**kw)


def _loop(out, tiny_dir, problems, executor, **overrides):
    cfg = _config(tiny_dir, **{"checkpoint_every": 1, **overrides})
    return TrainLoop(
        cfg, out, agents=_agents(tiny_dir, cfg.names), problems=problems[:3], executor=executor
    )


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _strip_timing(rows):
    return [{k: v for k, v in r.items() if not is_timing_key(k)} for r in rows]


def test_mars2_loop_updates_each_learner_and_logs(tmp_path, tiny_dir, demo_problems, executor):
    with _loop(tmp_path, tiny_dir, demo_problems, executor) as loop:
        assert loop.groups() == [["coder_0", "coder_1"]]
        summary = loop.run()
    assert summary["done"] and summary["updates"] == {"coder_0": 2, "coder_1": 2}
    rows = _rows(tmp_path / "metrics.jsonl")
    rounds = [r for r in rows if r["event"] == "round"]
    updates = [r for r in rows if r["event"] == "update"]
    assert len(rounds) == summary["rounds"] and len(updates) == 4
    assert {r["agent"] for r in updates} == {"coder_0", "coder_1"}
    for r in updates:
        for key in (
            "loss",
            "kl",
            "entropy",
            "clip_ratio/region_mean",
            "grad_norm",
            "learning_rate",
            "reward",
            "advantages/abs_mean",
            "train_tokens_per_s",
            "tis/weight_mean",
        ):
            assert r.get(key) is not None, key
        assert 1 <= r["torch_threads"] <= len(os.sched_getaffinity(0))  # chosen per update
    assert sum(r["trees"] for r in rounds) == 2 * len(rounds)
    assert all(r["nodes"] == 4 * r["trees"] for r in rounds)
    assert rounds[-1]["updates"] == {"coder_0": 2, "coder_1": 2}
    trees = _rows(tmp_path / "trees.jsonl")
    assert len(trees) == 2 * len(rounds)
    assert any(not t["metadata"]["degenerate"] for t in trees)
    assert all(t["metadata"]["mode"] == "mars2" for t in trees)
    ckpts = tmp_path / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == f"round-{summary['rounds']:06d}"
    assert len([p for p in ckpts.iterdir() if p.is_dir()]) <= 2
    assert (tmp_path / "final" / "coder_0" / "config.json").is_file()
    assert (tmp_path / "config.yaml").is_file()


def test_a_fixed_thread_count_holds_for_generation_and_updates(tmp_path, tiny_dir, demo_problems,
                                                                executor):
    """``torch_threads`` fixes the agents' generation threads too (built from the config), and
    each update logs that count; unset, an agent follows the cores idle at each generation."""
    import torch

    before = torch.get_num_threads()
    try:
        cfg = _config(tiny_dir, torch_threads=1)
        with TrainLoop(cfg, tmp_path, problems=demo_problems[:3], executor=executor) as loop:
            assert [a.threads_now() for a in loop.agents.values()] == [1, 1]
            assert not any(a.follow_executor for a in loop.agents.values())
            loop.run()
        updates = [r for r in _rows(tmp_path / "metrics.jsonl") if r["event"] == "update"]
        assert updates and {r["torch_threads"] for r in updates} == {1}
        free = TrainLoop(_config(tiny_dir), tmp_path / "free", problems=demo_problems[:3],
                         executor=executor)
        with free:
            assert all(a.follow_executor for a in free.agents.values())
    finally:
        torch.set_num_threads(before)


def test_a_round_with_more_trees_than_problems_searches_some_twice(tmp_path, tiny_dir,
                                                                   demo_problems, executor):
    """5 trees a round over 3 problems: the round spans two epochs of the data and searches the
    problems it meets twice as two trees (it used to stop: "problem ids must be unique")."""
    with _loop(tmp_path, tiny_dir, demo_problems, executor, max_trees=5, max_rounds=1) as loop:
        ids = [p.id for p in loop.round_problems(0)]
        assert len(ids) == 5 and set(ids) == {p.id for p in demo_problems[:3]}
        loop.run()
    trees = _rows(tmp_path / "trees.jsonl")
    assert sorted(t["problem_id"] for t in trees) == sorted(ids)


def _weights_hash(state: dict) -> str:
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("steps", [1, 2])
def test_resume_repeats_the_uninterrupted_run_exactly(
    tmp_path, tiny_dir, demo_problems, executor, steps
):
    """Interrupted and resumed = uninterrupted, hash for hash (metrics, trees, weights), also
    with two optimizer steps per buffer batch (the paper's regime). Threads fixed, as a run that
    must repeat bit for bit needs them: a count that followed the load would change rounding."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    kw = {"optimizer_steps_per_batch": steps, "torch_threads": 1}
    with _loop(full, tiny_dir, demo_problems, executor, **kw) as loop:
        loop.run()
        weights_full = {
            n: {k: v.clone() for k, v in lr.model.state_dict().items()}
            for n, lr in loop.learners.items()
        }
    with _loop(cut, tiny_dir, demo_problems, executor, **kw) as loop:
        loop.run(max_rounds=1)  # "interrupted" after one round (a checkpoint is taken at the stop)
        assert loop.round == 1
    # a crash mid-round leaves partial lines behind; resume cuts them off
    with open(cut / "metrics.jsonl", "a") as f:
        f.write('{"event": "round", "partial": true}\n')
    with _loop(cut, tiny_dir, demo_problems, executor, **kw) as loop:
        assert loop.resume()
        assert loop.round == 1
        loop.run()
        weights_cut = {n: lr.model.state_dict() for n, lr in loop.learners.items()}
    assert _strip_timing(_rows(full / "metrics.jsonl")) == _strip_timing(
        _rows(cut / "metrics.jsonl")
    )
    assert (full / "trees.jsonl").read_bytes() == (cut / "trees.jsonl").read_bytes()
    for n in weights_full:
        assert _weights_hash(weights_full[n]) == _weights_hash(weights_cut[n]), n
    updates = [r for r in _rows(full / "metrics.jsonl") if r["event"] == "update"]
    assert updates and all(r["optimizer_steps"] == steps for r in updates)


def test_grpo_and_rs2_search_each_agent_alone(tmp_path, tiny_dir, demo_problems, executor):
    with _loop(
        tmp_path / "grpo", tiny_dir, demo_problems, executor, mode="grpo", max_rounds=1
    ) as loop:
        assert loop.groups() == [["coder_0"], ["coder_1"]]
        assert loop.shaping() == (0.5, 0.0)
        loop.run()
    trees = _rows(tmp_path / "grpo" / "trees.jsonl")
    assert len(trees) == 4  # 2 problems x 2 agents
    for t in trees:
        nodes = t["nodes"][1:]
        assert all(n["parent"] == 0 for n in nodes)  # a group of independent samples
        assert len({n["agent"] for n in nodes}) == 1
    with _loop(
        tmp_path / "rs2", tiny_dir, demo_problems, executor, mode="rs2", max_rounds=1
    ) as loop:
        assert loop.groups() == [["coder_0"], ["coder_1"]] and loop.shaping() == (0.5, 0.5)


def test_round_problems_are_a_seeded_epoch_shuffle(tmp_path, tiny_dir, demo_problems, executor):
    with _loop(tmp_path, tiny_dir, demo_problems, executor, max_trees=2) as loop:
        ids = [p.id for r in range(3) for p in loop.round_problems(r)]
    three = [p.id for p in demo_problems[:3]]
    assert sorted(ids[:3]) == sorted(three) and sorted(ids[3:6]) == sorted(three)
    with _loop(tmp_path / "b", tiny_dir, demo_problems, executor, max_trees=2) as loop:
        assert ids == [p.id for r in range(3) for p in loop.round_problems(r)]


def test_example_train_tiny_runs(tmp_path):
    import runpy

    mod = runpy.run_path(
        str(
            __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "train_tiny.py"
        )
    )
    summary = mod["main"](["--out", str(tmp_path / "run"), "--steps", "1"])
    assert summary["done"] and summary["updates"] == {"coder_0": 1, "coder_1": 1}
    assert (tmp_path / "run" / "checkpoints" / "latest").is_file()


def test_report_to_tensorboard_gets_the_update_metrics(tmp_path, tiny_dir, demo_problems, executor):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with _loop(
        tmp_path, tiny_dir, demo_problems, executor, report_to=["tensorboard"], max_steps=1
    ) as loop:
        loop.run()
    updates = [r for r in _rows(tmp_path / "metrics.jsonl") if r["event"] == "update"]
    for name in ("coder_0", "coder_1"):
        (run_dir,) = (tmp_path / "learners" / name / "runs").iterdir()
        ea = EventAccumulator(str(run_dir))
        ea.Reload()
        assert {"train/loss", "train/kl", "train/entropy"} <= set(ea.Tags()["scalars"])
        logged = [r["loss"] for r in updates if r["agent"] == name]
        assert [e.value for e in ea.Scalars("train/loss")] == pytest.approx(logged)


class _EngineAgent:
    """Stands in for a VLLMAgent: samples from its own copy of the weights, synced by load_weights."""

    def __init__(self, tiny_dir, name, max_new_tokens, seed):
        from agents.hf import HFAgent

        self._inner = HFAgent.from_pretrained(
            str(tiny_dir), name=name, max_new_tokens=max_new_tokens, seed=seed, num_threads=1
        )
        self.name, self.tokenizer, self.model_path = name, self._inner.tokenizer, str(tiny_dir)
        self.synced = 0

    def generate(self, observations):
        return self._inner.generate(observations)

    def load_weights(self, state_dict):
        self._inner.model.load_state_dict(state_dict)
        self.synced += 1


def test_engine_agents_get_the_new_weights_after_each_update(
    tmp_path, tiny_dir, demo_problems, executor
):
    cfg = _config(tiny_dir, agents=[f"vllm:{tiny_dir}"] * 2, max_steps=1)
    agents = {n: _EngineAgent(tiny_dir, n, (6, 24)[i], 10 + i) for i, n in enumerate(cfg.names)}
    with TrainLoop(
        cfg, tmp_path, agents=agents, problems=demo_problems[:3], executor=executor
    ) as loop:
        assert loop._shared == {"coder_0": False, "coder_1": False}
        loop.run()
        for name, agent in agents.items():
            assert agent.synced == loop.learners[name].updates == 1
            trained = loop.learners[name].model.state_dict()
            served = agent._inner.model.state_dict()
            assert all(torch.equal(trained[k], served[k]) for k in trained)
            assert loop.learners[name].model is not agent._inner.model


def test_checkpoint_every_counts_rounds_and_keep_last_prunes(
    tmp_path, tiny_dir, demo_problems, executor, monkeypatch
):
    """Checkpoints after rounds 2 and 4 (every 2) and at the stop (round 5), whether or not
    a round updated; keep_last=2 leaves the two newest on disk."""
    import train.loop

    written = []
    real = train.loop.save_checkpoint

    def spy(root, name, *a, **kw):
        written.append(name)
        return real(root, name, *a, **kw)

    monkeypatch.setattr(train.loop, "save_checkpoint", spy)
    with _loop(tmp_path, tiny_dir, demo_problems, executor, checkpoint_every=2, keep_last=2,
               max_steps=50, max_rounds=5) as loop:
        loop.run()
    assert written == ["round-000002", "round-000004", "round-000005"]
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.is_dir()) == written[1:]
    assert (ckpts / "latest").read_text().strip() == "round-000005"

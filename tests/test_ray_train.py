"""`mars2 train --ray` on a local Ray with two tiny random Llama agents: one learner actor and
one generation engine per agent, executor actors, weight sync through the object store.

Starting the actors (each imports torch / transformers / TRL) is most of the cost, so one Ray
run serves several tests: it is compared with the single-process loop on the same config and
seed (same trees and stale-sample drops, losses and weights within 1e-5); after every sync each
engine serves its own learner's weights (equal hashes) and not the other agent's; coder_0's
engine is killed between updates and its replacement serves the latest weights (and changes
nothing in the run); then the same actors are sent back to a mid-run checkpoint (each learner
restoring its own shard) and repeat the rest of the run exactly. The slow test does the
interruption as a user would: `mars2 train --ray` stopped, then `--resume` in fresh processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")
pytest.importorskip("trl")

# actors that import torch, transformers and TRL take minutes to start on 2 cores: make test
# and CI run these, a bare pytest leaves them out
pytestmark = pytest.mark.slow

from mars2_env.execution import Executor  # noqa: E402
from mars2_ray.options import RayOptions  # noqa: E402
from mars2_ray.session import RaySession  # noqa: E402
from mars2_ray.train import RayTrainLoop, check_train_options  # noqa: E402
from train.config import Mars2TrainConfig  # noqa: E402
from train.loop import TrainLoop, is_timing_key  # noqa: E402
from train.tiny import save_tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False,
             object_store_memory=150 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def problems(demo_problems):
    return demo_problems[:3]


def config(tiny_dir, **overrides) -> Mars2TrainConfig:
    """Two agents; coder_0 writes 6 tokens, coder_1 24 (cut by the overlong penalty), so trees
    have a learning signal; two updates per learner; samples from an older policy dropped
    (max_staleness 0), so the drop decisions are compared too. One torch thread everywhere: runs
    are compared bit for bit, and a thread count that followed the load would change rounding."""
    kw = dict(agents=[f"hf:{tiny_dir}"] * 2, agent_max_new_tokens=[6, 24], max_new_tokens=24,
              budget=4, max_trees=2, buffer_threshold=4, per_device_train_batch_size=4,
              overlong_max_length=24, overlong_buffer_length=16, max_steps=2,
              learning_rate=1e-3, max_staleness=0, progress=False, seed=0, max_rounds=8,
              checkpoint_every=1, keep_last=100, executor_workers=1, torch_threads=1)
    kw.update(overrides)
    return Mars2TrainConfig(**kw)


def session(cfg: Mars2TrainConfig, **options) -> RaySession:
    opts = check_train_options(RayOptions(executor_cpus=1, **options), cfg)
    return RaySession(opts, list(zip(cfg.names, cfg.agents, strict=True)), learners=True)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(rs):
    return [{k: v for k, v in r.items() if not is_timing_key(k)} for r in rs]


def assert_same_trees(got, want):
    """Node for node the same trees; logprobs to 1e-5: each learner process shuffles its batch
    with its own seeded generator (one process shares one generator between learners), so the
    updated weights differ in the last bits of float sums."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert {k: v for k, v in a.items() if k != "nodes"} == {
            k: v for k, v in b.items() if k != "nodes"}
        assert len(a["nodes"]) == len(b["nodes"])
        for x, y in zip(a["nodes"], b["nodes"], strict=True):
            assert {k: v for k, v in x.items() if k != "logprobs"} == {
                k: v for k, v in y.items() if k != "logprobs"}
            assert (x["logprobs"] is None) == (y["logprobs"] is None)
            if x["logprobs"] is not None:
                assert x["logprobs"] == pytest.approx(y["logprobs"], rel=1e-5, abs=1e-6)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, tiny_dir, problems):
    out = tmp_path_factory.mktemp("local")
    with Executor(max_workers=1) as ex, TrainLoop(config(tiny_dir), out, problems=problems,
                                                  executor=ex) as loop:
        summary = loop.run()
        weights = {n: {k: v.clone() for k, v in lr.model.state_dict().items()}
                   for n, lr in loop.learners.items()}
    return out, summary, weights


def mid_run_checkpoint(out):
    """The first checkpoint taken after an update and before the end: learners half-way, so
    the resume restores optimizer, LR schedule, buffers and sampling states mid-run."""
    for ckpt in sorted((out / "checkpoints").glob("round-*")):
        updates = json.loads((ckpt / "loop.json").read_text())["updates"]
        if 0 < sum(updates.values()) < 4:
            return ckpt, updates
    raise AssertionError(f"no mid-run checkpoint under {out / 'checkpoints'}")


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory, tiny_dir, problems):
    """The Ray run, round by round: hashes before any update, coder_0's engine killed once both
    learners updated, the run to its end, then back to a mid-run checkpoint and on to the end
    again in the same actors."""
    out = tmp_path_factory.mktemp("ray")
    cfg = config(tiny_dir)
    rec: dict = {"out": out}
    with session(cfg) as s, RayTrainLoop(cfg, out, s, problems=problems) as loop:
        rec["processes"] = [p["world"] for lr in loop.learners.values() for p in lr.processes]
        rec["start"] = loop.weights_hashes()
        while min(lr.updates for lr in loop.learners.values()) < 1:
            loop.run(max_rounds=1)
        rec["killed_at"] = {n: lr.updates for n, lr in loop.learners.items()}
        rec["done_at_kill"] = loop.done
        rec["before_kill"] = loop.weights_hashes()
        pool = loop.agents["coder_0"]
        ray.kill(pool.slots[0].handle, no_restart=True)
        loop.run(max_rounds=1)
        rec["restarts"] = pool.restarts
        rec["after_kill"] = loop.weights_hashes()
        rec["summary"] = loop.run()
        rec["final"] = loop.weights_hashes()
        rec["weights"] = {n: ray.get(lr.publish_weights()) for n, lr in loop.learners.items()}
        rec["metrics"] = rows(out / "metrics.jsonl")
        rec["trees"] = (out / "trees.jsonl").read_bytes()
        ckpt, rec["resumed_updates"] = mid_run_checkpoint(out)
        rec["checkpoint"] = ckpt
        rec["shard_files"] = {n: {p.name for p in (ckpt / "learners" / n).iterdir()}
                              for n in loop.names}
        assert loop.resume(ckpt)
        rec["resumed_round"] = loop.round
        rec["resumed_summary"] = loop.run()
        rec["resumed_final"] = loop.weights_hashes()
        rec["resumed_metrics"] = rows(out / "metrics.jsonl")
        rec["resumed_trees"] = (out / "trees.jsonl").read_bytes()
    return rec


def test_ray_training_is_the_single_process_loop(local_run, ray_run):
    """Same trees (logprobs to 1e-5), same losses (within 1e-5), same stale-sample drops and
    counters, same final weights (to 1e-5); each node records the policy version that wrote it."""
    local_out, local_summary, local_weights = local_run
    ray_summary = ray_run["summary"]
    assert ray_run["processes"] == [1, 1]         # one learner process per agent
    assert ray_summary["done"] and ray_summary["updates"] == {"coder_0": 2, "coder_1": 2}
    assert {k: v for k, v in ray_summary.items() if k != "time_s"} == {
        k: v for k, v in local_summary.items() if k != "time_s"}
    assert ray_summary["stale_dropped"] > 0          # the bound did act, alike in both loops
    assert_same_trees([json.loads(t) for t in ray_run["trees"].decode().splitlines()],
                      rows(local_out / "trees.jsonl"))
    local_rows, ray_rows = rows(local_out / "metrics.jsonl"), ray_run["metrics"]
    assert [(r["event"], r.get("agent")) for r in ray_rows] == [
        (r["event"], r.get("agent")) for r in local_rows]
    updates = [(a, b) for a, b in zip(local_rows, ray_rows, strict=True)
               if a["event"] == "update"]
    assert len(updates) == 4
    for a, b in updates:
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
        assert (b["update"], b["stale_dropped"], b["buffer_left"], b["policy_lag_max"]) == (
            a["update"], a["stale_dropped"], a["buffer_left"], a["policy_lag_max"])
        assert b["policy_lag_max"] == 0                # max_staleness 0: only current samples
    for a, b in zip(local_rows, ray_rows, strict=True):
        if a["event"] == "round":
            assert {k: v for k, v in b.items() if not is_timing_key(k)} == {
                k: v for k, v in a.items() if not is_timing_key(k)}
            assert b["time_update_s"] >= 0 and b["time_sync_s"] >= 0
    assert sum(r["time_update_s"] > 0 for r in ray_rows if r["event"] == "round") >= 2
    for name, state in local_weights.items():
        for key, value in state.items():
            torch.testing.assert_close(ray_run["weights"][name][key], value, rtol=1e-5,
                                       atol=1e-6)
    versions = [n["metadata"].get("policy_version")
                for t in ray_run["trees"].decode().splitlines()
                for n in json.loads(t)["nodes"] if n["agent"] is not None]
    assert {0, 1} <= set(versions) <= {0, 1, 2}


def test_each_engine_serves_its_own_learners_weights(ray_run):
    """Before any update both agents hold the same tiny model; after their updates each engine
    holds exactly its learner's weights, which differ from the other agent's and the start."""
    start, final = ray_run["start"], ray_run["final"]
    assert start["coder_0"] == start["coder_1"]
    assert start["coder_0"]["engines"] == [start["coder_0"]["learner"]]
    for name, h in final.items():
        assert h["engines"] == [h["learner"]], name
        assert h["learner"] != start[name]["learner"], name
    assert final["coder_0"]["learner"] != final["coder_1"]["learner"]


def test_killed_engine_restarts_with_the_latest_weights(ray_run):
    """coder_0's engine died after both learners' first update, before their second: the
    replacement serves its learner's latest weights (not the spec's) and the run is the
    undisturbed one (`test_ray_training_is_the_single_process_loop` compares it)."""
    assert ray_run["killed_at"] == {"coder_0": 1, "coder_1": 1} and not ray_run["done_at_kill"]
    before, after = ray_run["before_kill"], ray_run["after_kill"]
    assert before["coder_0"]["engines"] == [before["coder_0"]["learner"]]
    assert before["coder_0"]["learner"] != ray_run["start"]["coder_0"]["learner"]
    assert ray_run["restarts"] == 1
    for name, h in after.items():
        assert h["engines"] == [h["learner"]], name


def test_resume_on_ray_repeats_the_run_from_each_learners_shard(ray_run):
    """Back to a mid-run checkpoint (every learner restores its own shard: model, optimizer,
    schedule, buffer, random state), the rest of the run is repeated exactly."""
    assert ray_run["resumed_updates"] in ({"coder_0": 1, "coder_1": 1},
                                          {"coder_0": 1, "coder_1": 0},
                                          {"coder_0": 0, "coder_1": 1})
    assert 0 < ray_run["resumed_round"] < ray_run["summary"]["rounds"]
    for name in ("coder_0", "coder_1"):
        assert {"model.pt", "optimizer.pt", "learner.json", "rng-0.pt"} <= ray_run[
            "shard_files"][name]
    assert without_timing(ray_run["resumed_metrics"]) == without_timing(ray_run["metrics"])
    assert ray_run["resumed_trees"] == ray_run["trees"]
    assert ray_run["resumed_final"] == ray_run["final"]
    assert {k: v for k, v in ray_run["resumed_summary"].items() if k != "time_s"} == {
        k: v for k, v in ray_run["summary"].items() if k != "time_s"}


@pytest.fixture(scope="module")
def local_run_halves(tmp_path_factory, tiny_dir, problems):
    """The single-process loop with micro-batches of 2 (a batch of 4 splits over 2 processes)."""
    out = tmp_path_factory.mktemp("local-halves")
    cfg = config(tiny_dir, per_device_train_batch_size=2, max_steps=1)
    with Executor(max_workers=1) as ex, TrainLoop(cfg, out, problems=problems,
                                                  executor=ex) as loop:
        loop.run()
        weights = {n: {k: v.clone() for k, v in lr.model.state_dict().items()}
                   for n, lr in loop.learners.items()}
    return rows(out / "metrics.jsonl"), weights


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ddp", "zero2", "zero3"])
def test_learner_over_two_processes_makes_the_single_process_update(
        tmp_path, tiny_dir, problems, local_run_halves, backend):
    """Each learner as 2 data-parallel processes started like `accelerate launch` ranks: TRL's
    trainer under DDP, or under DeepSpeed ZeRO-2 / ZeRO-3 with the example files (TRL's and
    accelerate's own path, on CPU with gloo). Each process trains on half of every batch; the
    update is the single-process loop's (loss, weights within float-sum tolerance), the
    weights gathered to the engines equal the learner's."""
    if backend != "ddp":
        pytest.importorskip("deepspeed")
    local_rows, local_weights = local_run_halves
    cfg = config(tiny_dir, per_device_train_batch_size=2, max_steps=1)
    ds = None if backend == "ddp" else str(ROOT / "examples" / "deepspeed" / f"{backend}.json")
    with session(cfg, learner_processes=2, deepspeed=ds) as s, RayTrainLoop(
            cfg, tmp_path, s, problems=problems) as loop:
        procs = [(p["rank"], p["world"], p["distributed"])
                 for lr in loop.learners.values() for p in lr.processes]
        summary = loop.run()
        hashes = loop.weights_hashes()
        weights = {n: ray.get(lr.publish_weights()) for n, lr in loop.learners.items()}
    kind = "DistributedType.MULTI_CPU" if backend == "ddp" else "DistributedType.DEEPSPEED"
    assert procs == [(0, 2, kind), (1, 2, kind)] * 2
    assert summary["done"] and summary["updates"] == {"coder_0": 1, "coder_1": 1}
    got = [r for r in rows(tmp_path / "metrics.jsonl") if r["event"] == "update"]
    want = [r for r in local_rows if r["event"] == "update"]
    assert [(r["agent"], r["round"]) for r in got] == [(r["agent"], r["round"]) for r in want]
    assert any(abs(r["loss"]) > 1e-4 for r in want)     # a real update, not a zero loss
    for a, b in zip(want, got, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
    for name, state in local_weights.items():
        assert set(weights[name]) == set(state)
        for key, value in state.items():
            torch.testing.assert_close(weights[name][key], value, rtol=1e-4, atol=1e-5)
        assert hashes[name]["engines"] == [hashes[name]["learner"]]


@pytest.mark.slow
def test_cli_train_on_ray_stopped_and_resumed_repeats_the_run(tmp_path, tiny_dir, ray_run):
    """`mars2 train --ray` as a user runs it, Ray options in the YAML file: stopped after 2
    rounds, then `--resume`d with no Ray flag in fresh processes (the run's config.yaml
    holds its Ray options: a new local Ray, new actors, each learner loading its own shard):
    the metrics and trees of the uninterrupted Ray run."""
    import subprocess
    import sys

    import yaml

    cfg = {k: v for k, v in config(tiny_dir, problems="builtin:demo", limit=3).to_dict().items()
           if k not in ("out", "resume")}
    cfg.update(ray="local", ray_num_cpus=6, executor_cpus=1)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"

    def mars2(*args):
        return subprocess.run([sys.executable, "-m", "mars2_cli.main", "train", "--out",
                               str(out), *args], capture_output=True,
                              text=True, timeout=900, check=False, cwd=ROOT)

    first = mars2("--config", str(path), "--max-rounds", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "ray=local" in first.stderr and "placement groups" in first.stderr
    stopped = json.loads(first.stdout)   # stdout is the summary alone: actors print to stderr
    assert stopped == json.loads((out / "train_summary.json").read_text())
    assert stopped["rounds"] == 2 and not stopped["done"]
    saved = yaml.safe_load((out / "config.yaml").read_text())  # with its Ray options ...
    assert {k: saved[k] for k in ("ray", "ray_num_cpus", "executor_cpus")} == {
        "ray": "local", "ray_num_cpus": 6, "executor_cpus": 1}
    assert "dry_run" not in saved
    assert saved["max_rounds"] == 2          # the effective config: the stop is in it too
    second = mars2("--resume", "--max-rounds", "8")  # ... so no Ray flag is needed to go on
    assert second.returncode == 0, second.stderr[-3000:]
    assert "ray=local" in second.stderr and "placement groups" in second.stderr
    assert json.loads((out / "train_summary.json").read_text())["done"]
    assert without_timing(rows(out / "metrics.jsonl")) == without_timing(ray_run["metrics"])
    assert (out / "trees.jsonl").read_bytes() == ray_run["trees"]
    latest = out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()
    for name in ("coder_0", "coder_1"):
        assert {"model.pt", "optimizer.pt", "learner.json", "rng-0.pt"} <= {
            p.name for p in (latest / "learners" / name).iterdir()}

"""Where `mars2 train --ray` puts learners and engines: the placement plan (separate and
colocated), its `--dry-run` for the paper's setting without Ray, the checks of the training
options, the ZeRO-2 / ZeRO-3 files of `examples/deepspeed/` read by TRL's own config, and the
staleness rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mars2_ray.options import RayOptions
from mars2_ray.placement import parse_cluster, plan_placement
from train.config import Mars2TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
DEEPSPEED = ROOT / "examples" / "deepspeed"
PAPER = [("qwen3_8b", "vllm:/models/Qwen3-8B"), ("areal", "vllm:/models/AReaL-boba-2-8B")]
BLOCK_RAY = ("import sys; sys.modules['ray'] = None; "   # `import ray` now fails
             "from mars2_cli.main import main; sys.exit(main(sys.argv[1:]))")


def mars2(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_RAY, *args], capture_output=True,
                          text=True, timeout=180, check=False, cwd=cwd)


def test_paper_training_config_dry_run_places_learners_and_engines(tmp_path):
    """Two 8B agents on 3 x 8 GPUs: each learner's 8 ZeRO-3 processes fill a node of their
    own (one placement group, one node), the 4 + 4 engines the third; nothing is started."""
    out = tmp_path / "run"
    res = mars2("train", "--config", str(CONFIGS / "mars2_qwen3_8b_ray.yaml"), "--dry-run",
                "--cluster", "3:cpus=96,gpus=8", "--out", str(out))
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "3 node(s), 288 CPUs, 24 GPUs" in text
    rows = {line.split()[0]: line for line in text.splitlines()
            if line.startswith("node-")}
    assert "96/96      8/8" in rows["node-0"] and "qwen3_8b learner x8 (4 CPUs, 1 GPU each)" \
        in rows["node-0"]
    assert "areal_boba_2_8b learner x8 (4 CPUs, 1 GPU each)" in rows["node-1"]
    assert "qwen3_8b generation x4 (4 CPUs, 1 GPU each)" in rows["node-2"]
    assert "areal_boba_2_8b generation x4 (4 CPUs, 1 GPU each)" in rows["node-2"]
    assert "learner" not in rows["node-2"] and "generation" not in rows["node-0"]
    assert all("8/8" in row for row in rows.values())
    assert "qwen3_8b/learner         STRICT_PACK  8 x {CPU: 4, GPU: 1}  node-0" in text
    assert "areal_boba_2_8b/learner  STRICT_PACK  8 x {CPU: 4, GPU: 1}  node-1" in text
    assert "DeepSpeed " in text and "examples/deepspeed/zero3.json" in text
    assert "execution: 3 executor actor(s), 192 sandbox worker process(es)" in text
    assert "nothing was started" in text
    assert not out.exists()   # a dry run writes nothing


def test_paper_ray_config_trains_with_the_paper_settings():
    """The Ray config's training keys are mars2_qwen3_8b.yaml's (bar the paths and the
    staleness bound), so the two cannot drift apart."""
    single = yaml.safe_load((CONFIGS / "mars2_qwen3_8b.yaml").read_text())
    ray_cfg = yaml.safe_load((CONFIGS / "mars2_qwen3_8b_ray.yaml").read_text())
    fields = set(Mars2TrainConfig.__dataclass_fields__)
    train_keys = {k: v for k, v in ray_cfg.items() if k in fields}
    assert {k for k in ray_cfg if k not in fields} <= {
        "ray", "learner_gpus", "learner_cpus", "learner_placement", "deepspeed",
        "generation_actors", "generation_gpus", "generation_cpus", "executor_actors"}
    differ = {k for k in set(single) | set(train_keys) if single.get(k) != train_keys.get(k)}
    assert differ == {"agents", "problems", "max_staleness"}
    assert train_keys["max_staleness"] == 1
    json.loads((ROOT / ray_cfg["deepspeed"]).read_text())   # the file it names exists


def plan(options: RayOptions, cluster: str = "3:cpus=96,gpus=8"):
    return plan_placement(parse_cluster([cluster]), PAPER, options, learners=True)


def test_separate_placement_gives_engines_gpus_of_their_own():
    p = plan(RayOptions(learner_gpus=8, learner_cpus=4, generation_actors=4,
                        generation_gpus=1, generation_cpus=4))
    assert p.ok, p.errors
    for agent, node in (("qwen3_8b", "node-0"), ("areal", "node-1")):
        learners = p.learner(agent)
        assert [x.request.rank for x in learners] == list(range(8))
        assert {x.node.name for x in learners} == {node}
        assert {(x.group, x.request.gpus) for x in learners} == {(f"{agent}/learner", 1.0)}
        engines = p.generation(agent)
        assert len(engines) == 4 and {x.node.name for x in engines} == {"node-2"}
        assert all(x.group is None and x.request.gpus == 1 for x in engines)
    assert [(g.strategy, g.bundles) for g in p.groups] == [("STRICT_PACK", ((4.0, 1.0),) * 8)] * 2
    assert p.demand() == {"CPU": 288.0, "GPU": 24.0}


def test_colocated_engines_share_their_learner_process_bundle():
    """Engine k goes into bundle k of its learner's placement group: the bundle holds both
    processes' CPUs and one GPU, which the two split."""
    p = plan(RayOptions(learner_gpus=8, learner_cpus=4, generation_actors=8, generation_gpus=1,
                        generation_cpus=2, learner_placement="colocate"))
    assert p.ok, p.errors
    for agent in ("qwen3_8b", "areal"):
        group = p.group(f"{agent}/learner")
        assert group.bundles == ((6.0, 1.0),) * 8 and group.strategy == "STRICT_PACK"
        learners, engines = p.learner(agent), p.generation(agent)
        assert [(x.group, x.bundle, x.request.gpus) for x in learners] == [
            (group.name, k, 0.5) for k in range(8)]
        assert [(x.group, x.bundle, x.request.gpus) for x in engines] == [
            (group.name, k, 0.5) for k in range(8)]
        assert {x.node for x in learners} == {x.node for x in engines}
    assert p.demand()["GPU"] == 16.0      # the third node's GPUs stay free
    assert "engines colocated" in p.format()


def test_learner_too_big_for_one_node_is_packed_over_several():
    p = plan(RayOptions(learner_gpus=[12, 4], generation_actors=4, generation_gpus=1))
    assert p.ok, p.errors
    big = p.group("qwen3_8b/learner")
    assert big.strategy == "PACK" and len(big.bundles) == 12
    assert [n.name for n in big.nodes] == ["node-0"] * 8 + ["node-1"] * 4
    assert p.group("areal/learner").nodes[0].name == "node-1"


@pytest.mark.parametrize("options, error", [
    (dict(learner_gpus=8, generation_actors=9, generation_gpus=1,
          learner_placement="colocate"), "needs 1 to 8 generation actors"),
    (dict(learner_gpus=8, generation_actors=8, generation_gpus=2,
          learner_placement="colocate"), "--generation-gpus must be 1"),
    (dict(learner_gpus=20, generation_actors=1), "needs a bundle of 1 CPU and 1 GPU"),
])
def test_plans_that_do_not_fit_say_why(options, error):
    p = plan(RayOptions(**options))
    assert not p.ok and any(error in e for e in p.errors), p.errors
    with pytest.raises(ValueError, match="does not fit"):
        p.check()


def test_training_options_are_checked_before_anything_starts(tmp_path):
    from mars2_ray.train import check_train_options

    cfg = Mars2TrainConfig(agents=["hf:a", "hf:b"], progress=False, executor_workers=3)
    with pytest.raises(ValueError, match="--generation-actors >= 1 for every agent"):
        check_train_options(RayOptions(generation_actors=[1, 0]), cfg)
    with pytest.raises(ValueError, match="--rollout-workers must be 1"):
        check_train_options(RayOptions(rollout_workers=2), cfg)
    with pytest.raises(ValueError, match="TRL's trainer runs one process per GPU"):
        check_train_options(RayOptions(learner_gpus=4, learner_processes=2), cfg)
    with pytest.raises(FileNotFoundError, match="--deepspeed: no such file"):
        check_train_options(RayOptions(deepspeed=str(tmp_path / "nope.json")), cfg)
    bad = tmp_path / "bad.json"
    bad.write_text('{"bf16": {"enabled": "auto"}}')
    with pytest.raises(ValueError, match="no zero_optimization.stage"):
        check_train_options(RayOptions(deepspeed=str(bad)), cfg)
    opts = check_train_options(RayOptions(deepspeed="examples/deepspeed/zero2.json"), cfg)
    assert opts.executor_cpus == 3 and Path(opts.deepspeed).is_absolute()


def test_a_runs_config_yaml_carries_its_ray_options_to_resume(tmp_path):
    """The Ray options a run was started with (flags or YAML) are written to its config.yaml
    and read back by `mars2 train --out RUN --resume` with no other flag; a flag given then
    still wins. ``--dry-run`` is never carried over."""
    from mars2_cli.main import build_parser
    from mars2_cli.train_cmd import build_config
    from mars2_ray.options import ray_options

    out = tmp_path / "run"
    first = build_parser().parse_args([
        "train", "--agents", "hf:a", "hf:b", "--out", str(out), "--ray", "10.0.0.1:6379",
        "--generation-cpus", "1", "2", "--learner-gpus", "2", "--executor-cpus", "3",
        "--deepspeed", "examples/deepspeed/zero2.json", "--dry-run"])
    cfg, _, _ = build_config(first)
    opts = ray_options(first)
    out.mkdir()
    (out / "config.yaml").write_text(cfg.to_yaml() + yaml.safe_dump(opts.yaml_keys()))
    resumed = build_parser().parse_args(["train", "--out", str(out), "--resume"])
    cfg2, _, resume = build_config(resumed)
    assert resume and cfg2 == cfg
    assert ray_options(resumed) == RayOptions(
        address="10.0.0.1:6379", generation_cpus=[1.0, 2.0], learner_gpus=[2.0],
        executor_cpus=3, deepspeed="examples/deepspeed/zero2.json")
    flagged = build_parser().parse_args(["train", "--out", str(out), "--resume",
                                         "--executor-cpus", "5"])
    build_config(flagged)
    assert ray_options(flagged).executor_cpus == 5


def test_train_dry_run_refuses_a_plan_that_does_not_fit(tmp_path):
    res = mars2("train", "--ray", "--dry-run", "--cluster", "1:cpus=16,gpus=8", "--agents",
                "vllm:/a", "vllm:/b", "--learner-gpus", "8", "--generation-gpus", "1",
                "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert "does not fit: coder_1/learner-0 needs a bundle of 1 CPU and 1 GPU" in res.stdout
    res = mars2("train", "--learner-gpus", "8", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "--learner-gpus only apply with --ray" in res.stderr


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_examples_are_read_by_trls_own_config(tmp_path, stage):
    """`--deepspeed FILE` reaches `GRPOConfig(deepspeed=FILE)`: transformers reads the file and
    fills its "auto" values from the learner's settings, and accelerate builds its DeepSpeed
    plugin from it — the path TRL's trainer takes (no DeepSpeed engine starts here)."""
    pytest.importorskip("deepspeed")
    pytest.importorskip("trl")
    from train.loop import learner_args

    cfg = Mars2TrainConfig(agents=["hf:a", "hf:b"], buffer_threshold=64,
                           per_device_train_batch_size=4, optimizer_steps_per_batch=2,
                           max_grad_norm=0.5, bf16=False, progress=False)
    path = DEEPSPEED / f"zero{stage}.json"
    assert json.loads(path.read_text())["zero_optimization"]["stage"] == stage
    args = learner_args(cfg, 0, tmp_path, deepspeed=str(path))
    ds = args.hf_deepspeed_config.config
    assert ds["zero_optimization"]["stage"] == stage
    # filled from the learner: micro-batch 4, 64 / (4 x 2 optimizer steps) = 8 accumulations
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"],
            ds["gradient_clipping"], ds["bf16"]["enabled"]) == (4, 8, 0.5, False)
    assert ds["train_batch_size"] == 4 * 8 * args.world_size
    assert args.deepspeed_plugin is not None and args.deepspeed_plugin.zero_stage == stage


@pytest.mark.parametrize("bound", [None, 0, 1, 3])
def test_staleness_bound_drops_exactly_the_samples_too_many_versions_behind(bound):
    """The rule both loops apply before an update, recomputed here in plain lines: a sample of
    policy version v is kept at learner version u iff u - v <= bound (None keeps all); order
    is kept and the count of drops returned."""
    import random

    from train.buffer import NodeSample, SampleBuffer

    rng = random.Random(bound)
    versions = [rng.randrange(0, 6) for _ in range(40)]
    buf = SampleBuffer(4)
    for i, v in enumerate(versions):
        buf.add(NodeSample([1], [2], 0.5, node_id=i, policy_version=v))
    learner_version = 5
    kept = [(i, v) for i, v in enumerate(versions)
            if bound is None or learner_version - v <= bound]
    assert buf.drop_stale(learner_version, bound) == len(versions) - len(kept)
    assert [(s.node_id, s.policy_version) for s in buf] == kept
    assert buf.drop_stale(learner_version, bound) == 0      # nothing more to drop

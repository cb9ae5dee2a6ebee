"""The Ray placement plan and `--dry-run`: computed from the options and a declared cluster,
without Ray (a laptop checks a 3 x 8-GPU config), and the Ray options' checks."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from mars2_ray.options import RayOptions, add_ray_arguments, ray_options
from mars2_ray.placement import NodeSpec, parse_cluster, plan_placement

PAPER = ["vllm:/models/Qwen3-8B", "vllm:/models/AReaL-boba-2-8B"]


def agents(specs):
    return [(f"coder_{i}", s) for i, s in enumerate(specs)]


def per_node(plan):
    """node name -> (CPUs used, GPUs used, actor names)."""
    out = {n.name: [0.0, 0.0, []] for n in plan.nodes}
    for p in plan.placements:
        out[p.node.name][0] += p.request.cpus
        out[p.node.name][1] += p.request.gpus
        out[p.node.name][2].append(p.name)
    return out


def test_parse_cluster_counts_and_names_nodes():
    nodes = parse_cluster(["3:cpus=96,gpus=8", "cpus=16"])
    assert [n.name for n in nodes] == ["node-0", "node-1", "node-2", "node-3"]
    assert [(n.cpus, n.gpus) for n in nodes] == [(96, 8)] * 3 + [(16, 0)]


@pytest.mark.parametrize("bad, word", [("3:gpus=8", "cpus=C is required"),
                                       ("cpus=x", "must be a number"),
                                       ("2:cpus=4,tpus=1", "expected"),
                                       ("0:cpus=4", "count must be >= 1")])
def test_parse_cluster_names_what_is_wrong(bad, word):
    with pytest.raises(ValueError, match=word):
        parse_cluster([bad])


def test_paper_cluster_three_nodes_of_eight_gpus():
    """Two 8B agents, 12 single-GPU engines each, on 3 x (96 CPUs, 8 GPUs): every GPU used,
    one executor per node on the CPUs the engines leave."""
    opts = RayOptions(generation_actors=12, generation_gpus=1, generation_cpus=4)
    plan = plan_placement(parse_cluster(["3:cpus=96,gpus=8"]), agents(PAPER), opts)
    assert plan.ok, plan.errors
    nodes = per_node(plan)
    assert [nodes[f"node-{i}"][1] for i in range(3)] == [8, 8, 8]
    assert [nodes[f"node-{i}"][0] for i in range(3)] == [96, 96, 96]
    assert len(plan.generation("coder_0")) == len(plan.generation("coder_1")) == 12
    execs = plan.role("executor")
    assert [(p.node.name, p.request.cpus) for p in execs] == [
        ("node-0", 64), ("node-1", 64), ("node-2", 64)]
    # a node's GPUs are never over-committed, and an engine never straddles nodes
    assert all(p.request.gpus == 1 for p in plan.role("generation"))


def test_tensor_parallel_engines_fit_whole_gpus_per_node():
    opts = RayOptions(generation_actors=3, generation_gpus=4, generation_cpus=2)
    plan = plan_placement(parse_cluster(["3:cpus=32,gpus=8"]), agents(PAPER), opts)
    assert plan.ok
    nodes = per_node(plan)
    assert all(used[1] <= 8 for used in nodes.values())
    assert sum(used[1] for used in nodes.values()) == 24


def test_does_not_fit_names_the_actors_and_what_they_need():
    opts = RayOptions(generation_actors=5, generation_gpus=4)
    plan = plan_placement(parse_cluster(["2:cpus=16,gpus=8"]), agents(PAPER), opts)
    assert not plan.ok
    unplaced = [p.name for p in plan.placements if p.node is None]
    assert unplaced == ["coder_0/generation-4", "coder_1/generation-0", "coder_1/generation-1",
                        "coder_1/generation-2", "coder_1/generation-3", "coder_1/generation-4"]
    assert "coder_0/generation-4 needs 1 CPU and 4 GPUs" in plan.errors[0]
    with pytest.raises(ValueError, match="does not fit"):
        plan.check()
    assert "DOES NOT FIT" in plan.format()


def test_per_agent_values_and_their_count_is_checked():
    opts = RayOptions(generation_actors=[2, 1], generation_gpus=[1, 0])
    plan = plan_placement([NodeSpec("n", 8, 2)], agents(["vllm:/a", "hf:embedded"]), opts)
    assert [(p.name, p.request.gpus, p.request.cpus) for p in plan.role("generation")] == [
        ("coder_0/generation-0", 1, 1), ("coder_0/generation-1", 1, 1),
        ("coder_1/generation-0", 0, 1)]
    with pytest.raises(ValueError, match="3 values for 2 agents"):
        plan_placement([NodeSpec("n", 8)], agents(["random", "random"]),
                       RayOptions(generation_actors=[1, 1, 1]))


def test_scripted_agents_reserve_no_cpu_and_executors_take_the_rest():
    plan = plan_placement([NodeSpec("n", 4)], agents(["random", "simulated:skill=1"]),
                          RayOptions())
    assert [p.request.cpus for p in plan.role("generation")] == [0, 0]
    assert [p.request.cpus for p in plan.role("executor")] == [4]


def test_rollout_workers_get_their_own_actors_near_them():
    opts = RayOptions(generation_actors=2, rollout_workers=2, generation_cpus=1)
    plan = plan_placement(parse_cluster(["2:cpus=8"]), agents(["hf:a", "hf:b"]), opts)
    assert plan.ok
    for shard in (0, 1):
        home = plan.role("rollout", shard)[0].node.name
        mine = plan.role("generation", shard) + plan.role("executor", shard)
        assert len(mine) == 3 and {p.node.name for p in mine} == {home}
    too_few = plan_placement(parse_cluster(["2:cpus=8"]), agents(["hf:a"]),
                             RayOptions(generation_actors=1, rollout_workers=2))
    assert any("need at least 2 generation actors" in e for e in too_few.errors)


@pytest.mark.parametrize("kwargs, word", [
    ({"executor_actors": 0}, "--executor-actors"),
    ({"generation_gpus": 1.5}, "whole number"),
    ({"rollout_workers": 2, "generation_actors": 0}, "--rollout-workers"),
    ({"executor_cpus": 2.5}, "whole number"),
])
def test_options_are_checked(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RayOptions(**kwargs)


def test_ray_flags_without_ray_are_refused():
    p = argparse.ArgumentParser()
    add_ray_arguments(p)
    assert ray_options(p.parse_args([])) is None
    with pytest.raises(ValueError, match="--executor-actors, --dry-run only apply with --ray"):
        ray_options(p.parse_args(["--executor-actors", "2", "--dry-run"]))
    opts = ray_options(p.parse_args(["--ray", "--generation-actors", "2", "3"]))
    assert opts.address == "local" and opts.generation_actors == [2, 3]
    assert ray_options(p.parse_args(["--ray", "10.0.0.1:6379"])).address == "10.0.0.1:6379"


BLOCK_RAY = ("import sys; sys.modules['ray'] = None; "   # `import ray` now fails
             "from mars2_cli.main import main; sys.exit(main(sys.argv[1:]))")


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_RAY, *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_dry_run_plans_a_gpu_cluster_without_ray(tmp_path):
    out = tmp_path / "run"
    res = dry_run("eval", "--ray", "--dry-run", "--cluster", "3:cpus=96,gpus=8",
                  "--agents", *PAPER, "--generation-actors", "12", "--generation-gpus", "1",
                  "--generation-cpus", "4", "--out", str(out))
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "3 node(s), 288 CPUs, 24 GPUs" in text
    for node in ("node-0", "node-1", "node-2"):
        assert f"{node}  96/96      8/8" in text
    assert "coder_0/generation-0 .. generation-7 (8)" in text
    assert "execution: 3 executor actor(s), 192 sandbox worker process(es)" in text
    assert "nothing was started" in text
    assert not out.exists()   # a dry run writes nothing


def test_dry_run_that_does_not_fit_fails(tmp_path):
    res = dry_run("search", "--ray", "--dry-run", "--cluster", "1:cpus=4,gpus=1",
                  "--agents", "vllm:/m", "--generation-gpus", "2")
    assert res.returncode == 2
    assert "does not fit: coder_0/generation-0 needs 1 CPU and 2 GPUs" in res.stdout


def test_config_file_sets_ray_options(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ray: local\ndry_run: true\ncluster: ['2:cpus=8,gpus=2']\n"
                   "agents: [vllm:/a, vllm:/b]\ngeneration_gpus: 1\n")
    res = dry_run("search", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "2 node(s), 16 CPUs, 4 GPUs" in res.stdout
    assert res.stdout.count("generation  node-") == 2


def test_paper_lcb_example_config_plans_on_three_gpu_nodes():
    config = Path(__file__).resolve().parents[1] / "examples" / "configs" / "lcb_eval_ray.yaml"
    res = dry_run("eval", "--config", str(config), "--dry-run",
                  "--cluster", "3:cpus=96,gpus=8")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("96/96      8/8") == 3
    assert "generation: 24 actor(s) for 2 agent(s) (coder_0: 12, coder_1: 12)" in res.stdout


def test_ray_missing_is_one_clear_line(tmp_path):
    res = dry_run("search", "--ray", "--limit", "1", "--agents", "random", "--out",
                  str(tmp_path / "run"))
    assert res.returncode != 0
    assert "--ray needs Ray, an optional extra: pip install -e '.[ray]'" in res.stderr
    assert "Traceback" not in res.stderr

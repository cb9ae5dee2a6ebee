"""The Ray layer on a 2-node `ray.cluster_utils.Cluster`: actors land on their planned nodes,
a lost node's executor actor is rebuilt on the other one with no verdict lost, and
`mars2 search --ray ADDRESS` (a separate process joining the cluster) writes the local trees."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from mars2_cli.main import main  # noqa: E402
from mars2_env.execution import Executor  # noqa: E402
from mars2_ray.executor import RayExecutor  # noqa: E402
from mars2_ray.options import RayOptions  # noqa: E402
from mars2_ray.placement import plan_placement  # noqa: E402
from mars2_ray.runtime import live_nodes  # noqa: E402

SIM = "simulated:skill=0.5,refine=0.6"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": False, "object_store_memory": 100 * 1024 * 1024})
    worker = c.add_node(num_cpus=2, object_store_memory=100 * 1024 * 1024)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c, worker
    ray.shutdown()
    c.shutdown()


def test_actors_land_on_their_planned_nodes(cluster, demo_problems):
    nodes = live_nodes()
    assert len(nodes) == 2 and nodes[0].node_id == ray.get_runtime_context().get_node_id()
    plan = plan_placement(nodes, [("coder_0", "random")], RayOptions())
    execs = plan.role("executor")
    assert [(p.node.node_id, p.request.cpus) for p in execs] == [(n.node_id, 2) for n in nodes]
    with RayExecutor(placements=execs) as rex:
        info = rex.actor_info()
        assert [i["node_id"] for i in info] == [n.node_id for n in nodes]
        assert [i["workers"] for i in info] == [2, 2]
        p = demo_problems[0]
        res = rex.run_many([(p, p.metadata["reference_solution"])] * 6)
        assert [r.verdict.value for r in res] == ["passed"] * 6


def test_search_joining_the_cluster_writes_the_local_trees(cluster, tmp_path):
    c, _ = cluster
    args = ["search", "--problems", "builtin:demo", "--limit", "3", "--budget", "4",
            "--agents", SIM, "random", "--seed", "5"]
    assert main(args + ["--out", str(tmp_path / "local")]) == 0
    res = subprocess.run([sys.executable, "-m", "mars2_cli.main", *args, "--out",
                          str(tmp_path / "ray"), "--ray", c.address, "--executor-actors", "2"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 node(s), 4 CPUs" in res.stderr          # the placement it used
    assert sorted((tmp_path / "ray" / "trees.jsonl").read_text().splitlines()) == \
        sorted((tmp_path / "local" / "trees.jsonl").read_text().splitlines())  # finish order varies


@pytest.mark.slow
def test_rollout_workers_search_shards_on_their_nodes(cluster, tmp_path, capsys):
    """Two rollout workers, one per node, each with its own actors, searching half of the
    problems each: every tree is the local run's (seeds are per problem and per expansion)."""
    args = ["--problems", "builtin:demo", "--limit", "5", "--budget", "4", "--agents", SIM,
            "random", "--seed", "2", "--max-trees", "2", "--expansions-per-tree", "2"]
    assert main(["search", "--out", str(tmp_path / "local"), *args]) == 0
    assert main(["search", "--out", str(tmp_path / "ray"), *args, "--ray", "--rollout-workers",
                 "2", "--generation-actors", "2"]) == 0

    def trees(run):
        lines = (tmp_path / run / "trees.jsonl").read_text().splitlines()
        return {json.loads(line)["problem_id"]: json.loads(line) for line in lines}, len(lines)

    plan = capsys.readouterr().err
    assert re.search(r"rollout-0 +rollout +node-0", plan)
    assert re.search(r"rollout-1 +rollout +node-1", plan)
    assert re.search(r"executor-1 +executor +node-1", plan)
    (local, n_local), (sharded, n_sharded) = trees("local"), trees("ray")
    assert n_local == n_sharded == 5
    assert sharded == local
    metrics = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    assert metrics == json.loads((tmp_path / "local" / "metrics.json").read_text())


def test_lost_node_executor_is_rebuilt_elsewhere(cluster, demo_problems):
    """(Last: it removes a node.) The worker node dies mid-batch: its executor actor is rebuilt
    on the head node (the planned node is gone; the affinity is soft) and re-runs the batch;
    the verdicts are the local ones."""
    c, worker = cluster
    p = demo_problems[0]
    slow = "import time\ntime.sleep(1.0)\na, b = map(int, input().split())\nprint(a + b)"
    # the second actor's batch (on the worker node) is the end of the list: the slow programs
    items = [(p, p.metadata["reference_solution"], "public")] * 2 \
        + [(p, code, "private") for code in p.metadata["wrong_solutions"]] \
        + [(p, slow, "public")] * 2
    with Executor(max_workers=2) as local:
        expected = [r.to_dict() for r in local.run_many(items, stop_on_first_failure=False)]
    nodes = live_nodes()
    plan = plan_placement(nodes, [], RayOptions(executor_cpus=1))
    with RayExecutor(placements=plan.role("executor")) as rex:
        info = rex.actor_info()
        assert info[1]["node_id"] == nodes[1].node_id
        killer = threading.Timer(0.6, lambda: c.remove_node(worker))
        killer.start()
        got = [r.to_dict() for r in rex.run_many(items, stop_on_first_failure=False)]
        killer.join()
        assert got == expected
        assert [s.restarts for s in rex.slots] == [0, 1]
        assert rex.actor_info()[1]["node_id"] == nodes[0].node_id

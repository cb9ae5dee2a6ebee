"""Connecting to Ray, reading a live cluster's nodes, pinning actors to planned nodes, and
telling a dead actor from an error raised inside it."""

from __future__ import annotations

import os
import sys
from typing import Any

from mars2_ray.options import LOCAL
from mars2_ray.placement import GroupPlan, NodeSpec, Placement

__all__ = ["require_ray", "connect", "live_nodes", "actor_options", "is_actor_death",
           "create_group", "print_to_stderr"]


def require_ray() -> Any:
    """The `ray` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("--ray needs Ray, an optional extra: pip install -e '.[ray]' "
                          "(or pip install 'ray==2.60.0')") from exc
    return ray


def connect(address: str, num_cpus: int | None = None) -> bool:
    """Start or join Ray unless this process is already connected.

    Returns True when this call connected (so the caller should `ray.shutdown()` at the end),
    False when Ray was already initialised here (e.g. by a test or a notebook).
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                              "configure_logging": False}
    if address == LOCAL:
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        # "local" always starts a fresh Ray: without it ray.init() silently joins whatever
        # cluster RAY_ADDRESS or /tmp/ray/ray_current_cluster names (and then refuses num_cpus).
        ray.init(address="local", **kwargs)
    else:
        if num_cpus is not None:
            raise ValueError("--ray-num-cpus sizes a local Ray; a cluster joined with --ray "
                             f"{address} has the CPUs its nodes were started with")
        kwargs.pop("include_dashboard")
        ray.init(address=address, **kwargs)
    return True


def print_to_stderr() -> None:
    """Send this actor process's standard output to its standard error. Ray forwards an actor's
    stdout to the driver's stdout, where a command's own result goes (`mars2 train` prints its
    summary as JSON there): library logs and progress lines belong beside the driver's own, on
    stderr. At file-descriptor level, so C extensions' writes move too."""
    sys.stdout.flush()
    os.dup2(2, 1)


def live_nodes() -> list[NodeSpec]:
    """The alive nodes of the connected cluster, driver's node first, then by node id."""
    ray = require_ray()
    here = ray.get_runtime_context().get_node_id()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    alive.sort(key=lambda n: (n["NodeID"] != here, n["NodeID"]))
    nodes = []
    for i, n in enumerate(alive):
        res = n.get("Resources", {})
        nodes.append(NodeSpec(f"node-{i}", float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0)),
                              node_id=n["NodeID"], address=n.get("NodeManagerAddress", "")))
    if not nodes:
        raise RuntimeError("the Ray cluster reports no alive node")
    return nodes


def create_group(group: GroupPlan, timeout: float) -> Any:
    """Reserve a planned placement group, each bundle on its planned node (when planned on a
    live cluster), and wait until Ray has it; a TimeoutError names what it could not get."""
    from ray.util import placement_group, remove_placement_group

    selectors = None
    if all(n is not None and n.node_id is not None for n in group.nodes):
        selectors = [{"ray.io/node-id": n.node_id} for n in group.nodes]
    pg = placement_group(group.ray_bundles(), strategy=group.strategy, name=group.name,
                         bundle_label_selector=selectors)
    if not pg.wait(timeout):
        remove_placement_group(pg)
        raise TimeoutError(f"Ray could not reserve placement group {group.name} "
                           f"({len(group.bundles)} bundles: {group.ray_bundles()}) within "
                           f"{timeout:g} s; the cluster may not have those resources free "
                           "(see `ray status`)")
    return pg


def actor_options(placement: Placement, group: Any = None) -> dict[str, Any]:
    """``.options(...)`` of an actor: its resources, pinned (softly) to its planned node, or
    into its bundle of placement group `group` (a Ray placement group) when it has one."""
    from ray.util.scheduling_strategies import (
        NodeAffinitySchedulingStrategy,
        PlacementGroupSchedulingStrategy,
    )

    r = placement.request
    # max_restarts=0: the driver replaces a dead actor itself, so it knows which calls to re-run
    opts: dict[str, Any] = {"num_cpus": r.cpus, "num_gpus": r.gpus, "max_restarts": 0}
    if r.role == "executor":
        # Ray runs workers at niceness 15; programs under test have wall-clock limits, so the
        # sandbox runs at normal priority, as a local Executor does (no spurious time limits
        # when the node is busy with other work)
        opts["runtime_env"] = {"env_vars": {"RAY_worker_niceness": "0"}}
    node = placement.node
    if placement.group is not None:
        if group is None:
            raise ValueError(f"{placement.name} runs in placement group {placement.group}, "
                             "which was not created")
        opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            group, placement_group_bundle_index=int(placement.bundle or 0),
            placement_group_capture_child_tasks=True)
    elif node is not None and node.node_id is not None:
        # soft: if the node is gone (a restart after a node loss) any node will do
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node.node_id, soft=True)
    return opts


def is_actor_death(exc: BaseException) -> bool:
    """True when `exc` says the actor (or its process or node) is gone, not that the method
    raised: such calls are re-run on a replacement actor."""
    import ray.exceptions as rex

    dead = tuple(t for t in (getattr(rex, "RayActorError", None),
                             getattr(rex, "ActorDiedError", None),
                             getattr(rex, "ActorUnavailableError", None),
                             getattr(rex, "WorkerCrashedError", None),
                             getattr(rex, "NodeDiedError", None),
                             getattr(rex, "OwnerDiedError", None)) if t is not None)
    return isinstance(exc, dead)

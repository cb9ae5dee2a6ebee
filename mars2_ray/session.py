"""`RaySession`: Ray for one command — connect, plan the placement, build the executor actors
and generation pools (or rollout workers) and, for training, reserve each learner's placement
group and start its processes; tear everything down at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from mars2_ray.options import LOCAL, RayOptions
from mars2_ray.placement import NodeSpec, PlacementPlan, parse_cluster, plan_placement

__all__ = ["RaySession", "preview_plan", "agent_overrides"]

#: seconds a new session waits for resources of actors just killed (by a previous run) to free
FREE_WAIT_S = 15.0


def _local_gpus() -> float:
    """GPUs a local Ray would see (CUDA_VISIBLE_DEVICES, else /proc's NVIDIA devices)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return float(len([d for d in visible.split(",") if d.strip()]))
    try:
        return float(len([d for d in os.listdir("/proc/driver/nvidia/gpus")]))
    except OSError:
        return 0.0


def preview_plan(options: RayOptions, agents: Sequence[tuple[str, str]],
                 learners: bool = False) -> PlacementPlan:
    """The placement a run would get (with `learners`: a training run's), without starting
    anything.

    Planned against ``--cluster`` nodes if given; else this machine for a local Ray; else the
    live cluster at the address (joined and left again; no actor is started).
    """
    if options.cluster:
        nodes = parse_cluster(options.cluster)
        return plan_placement(nodes, agents, options, learners=learners,
                              source="declared with --cluster " + " ".join(options.cluster))
    if options.address == LOCAL:
        cpus = options.num_cpus or os.cpu_count() or 1
        nodes = [NodeSpec("node-0", float(cpus), _local_gpus())]
        return plan_placement(nodes, agents, options, learners=learners,
                              source="a local Ray on this machine")
    from mars2_ray.runtime import connect, live_nodes, require_ray

    owns = connect(options.address)
    try:
        nodes = live_nodes()
    finally:
        if owns:
            require_ray().shutdown()
    return plan_placement(nodes, agents, options, learners=learners,
                          source=f"the cluster at {options.address}")


def agent_overrides(spec: str, overrides: dict[str, Any], options: RayOptions, index: int,
                    agents: int) -> dict[str, Any]:
    """`make_agent` overrides for agent `index` built in a generation actor: an hf agent uses
    the actor's CPUs as torch threads when they were given; a vLLM engine is tensor-parallel
    over the actor's GPUs."""
    kind = spec.partition(":")[0]
    out = dict(overrides)
    cpus = options.per_agent("generation_cpus", index, agents)
    gpus = options.per_agent("generation_gpus", index, agents)
    if kind == "hf" and cpus is not None and cpus >= 1:
        out.setdefault("num_threads", int(cpus))
    if kind == "vllm" and gpus > 1:
        out.setdefault("tensor_parallel_size", int(gpus))
        out.setdefault("distributed_executor_backend", "mp")  # workers inside the actor's GPUs
    return out


class RaySession:
    """Ray for one run: connected on creation, planned, closed (actors and, if it started it,
    Ray itself) by `close()` or the context manager.

    Args:
        options: the `RayOptions` (``--ray`` and its flags).
        agents: ``[(name, spec), ...]`` of the run, in order.
        learners: plan (and reserve the placement groups of) one learner per agent, for
            `mars2 train` (`learner`).
        start_timeout: seconds to wait for placement groups and learners to start.
    """

    def __init__(self, options: RayOptions, agents: Sequence[tuple[str, str]],
                 learners: bool = False, start_timeout: float = 1800.0) -> None:
        from mars2_ray.runtime import connect, live_nodes

        if options.cluster:
            raise ValueError("--cluster only describes a cluster to plan for with --dry-run; to "
                             "run, join a real cluster with --ray ADDRESS")
        self.options = options
        self.agent_specs = list(agents)
        self._owns_ray = connect(options.address, options.num_cpus)
        self._closables: list[Any] = []
        self._pools: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}      # placement group name -> Ray placement group
        self.start_timeout = float(start_timeout)
        try:
            self.nodes = live_nodes()
            where = "a local Ray" if options.address == LOCAL else f"the cluster at {options.address}"
            self.plan = plan_placement(self.nodes, self.agent_specs, options, source=where,
                                       learners=learners)
            self.plan.check()
            self._check_free()
            if learners:
                from mars2_ray.runtime import create_group

                for group in self.plan.groups:
                    self.groups[group.name] = create_group(group, self.start_timeout)
        except BaseException:
            self.close()
            raise

    def _check_free(self) -> None:
        """Refuse a plan that the cluster's free resources cannot hold (other jobs may hold
        some of what `ray.cluster_resources` lists): actors would wait for ever."""
        import time

        from mars2_ray.runtime import require_ray

        ray = require_ray()
        need = self.plan.demand()
        deadline = time.monotonic() + FREE_WAIT_S   # actors just killed free theirs shortly
        while True:
            free = ray.available_resources()
            short = {k: (v, float(free.get(k, 0.0))) for k, v in need.items()
                     if v > float(free.get(k, 0.0)) + 1e-6}
            if not short or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for key, (want, have) in short.items():
            raise ValueError(f"the plan needs {want:g} {key}s but the cluster has {have:g} free "
                             "(other jobs hold the rest); lower the actors' resources or wait "
                             "for the cluster to free them")

    # ------------------------------------------------------------------ one driver
    def executor(self, **executor_kwargs: Any) -> Any:
        """A `RayExecutor` over the planned executor actors (of shard 0)."""
        from mars2_ray.executor import RayExecutor

        ex = RayExecutor(placements=self.plan.role("executor", 0), **executor_kwargs)
        self._closables.append(ex)
        return ex

    def _index(self, name: Any) -> int:
        names = [a for a, _ in self.agent_specs]
        if name not in names:
            raise KeyError(f"agent {name!r} is not in the placement plan; planned agents: {names}")
        return names.index(name)

    def agent(self, spec: str, **overrides: Any) -> Any:
        """The agent `name` (in ``overrides``) as a `GenerationPool` over its planned actors;
        built in this process when ``--generation-actors 0``. Asked again for the same name and
        spec (e.g. by `mars2 bench`, once per run), the pool's agents are rebuilt in place."""
        name = overrides.get("name")
        index = self._index(name)
        n = len(self.agent_specs)
        if self.options.per_agent("generation_actors", index, n) == 0:
            from agents import make_agent

            return make_agent(spec, **overrides)
        from mars2_ray.generation import GenerationPool

        placements = self.plan.generation(name, 0)
        overrides = agent_overrides(spec, overrides, self.options, index, n)
        pool = self._pools.get(name)
        if pool is not None and pool.spec == spec:
            pool.rebuild(overrides)
            return pool
        if pool is not None:
            pool.close()
        pool = self._pools[name] = GenerationPool(spec, overrides, placements=placements,
                                                  groups=self.groups)
        self._closables.append(pool)
        return pool

    # ------------------------------------------------------------------ learners
    def learner(self, config: Any, index: int, out: Any) -> Any:
        """Agent `index`'s learner (`mars2_ray.learner.RemoteLearner`) in its planned processes,
        started (call its `wait_ready`); `config` is the run's `Mars2TrainConfig`."""
        from mars2_ray.learner import RemoteLearner

        name = self.agent_specs[index][0]
        placements = self.plan.learner(name)
        if not placements:
            raise ValueError("this session was not planned with learners (learners=True)")
        group = self.groups.get(placements[0].group)
        learner = RemoteLearner(config, index, out, placements, group,
                                deepspeed=self.options.deepspeed,
                                start_timeout=self.start_timeout)
        self._closables.append(learner)
        return learner

    # ------------------------------------------------------------------ rollout workers
    def search_shards(self, problems: Sequence[Any], agents: dict[str, tuple[str, dict]],
                      search_kwargs: dict[str, Any], skip: Sequence[str] = (),
                      executor_kwargs: dict[str, Any] | None = None) -> Iterator[tuple[list, int]]:
        """Search `problems` in ``--rollout-workers`` shards; yields (finished trees, programs
        written) after each round of any shard. See `mars2_ray.rollout`."""
        from mars2_ray.rollout import search_shards

        n = len(self.agent_specs)
        agents = {name: (spec, agent_overrides(spec, ov, self.options, self._index(name), n))
                  for name, (spec, ov) in agents.items()}
        yield from search_shards(self.plan, problems, agents, search_kwargs, skip=skip,
                                 executor_kwargs=executor_kwargs or {})

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        """Close every pool and executor built here; shut Ray down if this session started it."""
        while self._closables:
            obj = self._closables.pop()
            try:
                obj.close()
            except Exception:
                pass
        if self.groups:
            from ray.util import remove_placement_group

            for pg in self.groups.values():
                try:
                    remove_placement_group(pg)
                except Exception:
                    pass
            self.groups = {}
        if self._owns_ray:
            from mars2_ray.runtime import require_ray

            require_ray().shutdown()
            self._owns_ray = False

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

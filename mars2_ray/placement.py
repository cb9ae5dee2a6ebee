"""Where each Ray actor goes: a deterministic placement plan computed from the options and a
list of nodes (a live cluster's, or one declared with ``--cluster`` for a dry run).

The same plan drives a real run (each actor is pinned to its planned node with Ray's node
affinity, falling back to any node if that one is gone) and ``--dry-run``, so what a user checks
on a laptop for a 3 x 8-GPU cluster is what the cluster gets. Nothing here imports Ray.

Order of placement: for `mars2 train`, learners first, one Ray placement group per agent (a
bundle of CPUs / a GPU per learner process, all on one node when they fit — STRICT_PACK — else
packed over as few nodes as possible — PACK), with the agent's generation engines inside the
bundles when it is colocated; then generation actors (they need GPUs, and a vLLM engine's
tensor-parallel GPUs must share a node), agent by agent, first fit over the nodes in order
(with several rollout workers, starting from the shard's share of the nodes);
then executor actors on the CPUs left (by default one per node, taking all its free CPUs);
then rollout workers (no reserved CPU: they wait on the other actors), each next to its first
executor actor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from mars2_ray.options import RayOptions

__all__ = ["ActorRequest", "NodeSpec", "Placement", "GroupPlan", "PlacementPlan", "parse_cluster",
           "plan_placement", "default_generation_cpus"]

#: agent spec kinds whose generation runs a model in the actor (1 CPU each by default)
MODEL_KINDS = ("hf", "vllm")


@dataclass(frozen=True)
class NodeSpec:
    """A node's schedulable resources. `node_id` is Ray's id when planned on a live cluster."""

    name: str
    cpus: float
    gpus: float = 0.0
    node_id: str | None = None
    address: str = ""


@dataclass(frozen=True)
class ActorRequest:
    """One actor to place: its role, name, resources, agent (generation) and shard."""

    role: str            # "generation" | "executor" | "rollout" | "learner"
    name: str
    cpus: float
    gpus: float = 0.0
    agent: str | None = None
    spec: str | None = None
    shard: int = 0
    rank: int = 0        # a learner process's rank in its learner


@dataclass(frozen=True)
class Placement:
    """An actor request and the node it goes to (None: it does not fit); actors of a learner
    run in bundle `bundle` of placement group `group` (`GroupPlan`)."""

    request: ActorRequest
    node: NodeSpec | None
    group: str | None = None
    bundle: int | None = None

    @property
    def name(self) -> str:
        return self.request.name


@dataclass(frozen=True)
class GroupPlan:
    """A Ray placement group: bundles of ``(CPUs, GPUs)`` that Ray reserves together before any
    actor in them starts (a learner's processes, and its engines when colocated)."""

    name: str
    strategy: str                                   # "STRICT_PACK" (one node) | "PACK"
    bundles: tuple[tuple[float, float], ...]
    nodes: tuple[NodeSpec | None, ...]

    @property
    def ok(self) -> bool:
        return all(n is not None for n in self.nodes)

    def ray_bundles(self) -> list[dict[str, float]]:
        """The bundles as Ray takes them (no zero entries)."""
        return [{k: v for k, v in (("CPU", c), ("GPU", g)) if v > 0} for c, g in self.bundles]


@dataclass
class PlacementPlan:
    """Every actor of a run and its node; `errors` says what does not fit and how to fix it."""

    nodes: list[NodeSpec]
    placements: list[Placement]
    options: RayOptions
    source: str = ""
    errors: list[str] = field(default_factory=list)
    groups: list[GroupPlan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def shards(self) -> int:
        return self.options.rollout_workers

    def role(self, role: str, shard: int | None = None) -> list[Placement]:
        return [p for p in self.placements if p.request.role == role
                and (shard is None or p.request.shard == shard)]

    def generation(self, agent: str, shard: int | None = None) -> list[Placement]:
        """The generation actors of `agent` (of one shard, or all)."""
        return [p for p in self.role("generation", shard) if p.request.agent == agent]

    def learner(self, agent: str) -> list[Placement]:
        """The learner processes of `agent`, by rank."""
        return [p for p in self.role("learner") if p.request.agent == agent]

    def group(self, name: str) -> GroupPlan:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no placement group {name!r} in the plan")

    def demand(self) -> dict[str, float]:
        """CPUs and GPUs the plan reserves: its placement groups' bundles and the actors
        outside them."""
        need = {"CPU": 0.0, "GPU": 0.0}
        for g in self.groups:
            for c, gpu in g.bundles:
                need["CPU"] += c
                need["GPU"] += gpu
        for p in self.placements:
            if p.group is None:
                need["CPU"] += p.request.cpus
                need["GPU"] += p.request.gpus
        return need

    def check(self) -> None:
        """Raise ValueError listing what does not fit."""
        if self.errors:
            raise ValueError("the Ray placement does not fit: " + "; ".join(self.errors))

    def format(self) -> str:
        """The plan as text: one line per node, then one line per actor."""
        used: dict[str, list[float]] = {n.name: [0.0, 0.0] for n in self.nodes}
        for p in self.placements:
            if p.node is not None:
                used[p.node.name][0] += p.request.cpus
                used[p.node.name][1] += p.request.gpus
        total_cpus = sum(n.cpus for n in self.nodes)
        total_gpus = sum(n.gpus for n in self.nodes)
        lines = [f"Ray placement plan ({self.source}): {len(self.nodes)} node(s), "
                 f"{_num(total_cpus)} CPUs, {_num(total_gpus)} GPUs", ""]
        node_rows = []
        for n in self.nodes:
            mine = [p for p in self.placements if p.node is not None and p.node.name == n.name]
            node_rows.append({
                "node": n.name + (f" ({n.address})" if n.address else ""),
                "CPUs used": f"{_num(used[n.name][0])}/{_num(n.cpus)}",
                "GPUs used": f"{_num(used[n.name][1])}/{_num(n.gpus)}",
                "actors": _summarise(mine) or "-",
            })
        lines += _table(node_rows, ["node", "CPUs used", "GPUs used", "actors"]) + [""]
        rows = []
        for group in _runs_of_alike(self.placements):
            p = group[0]
            name = p.name if len(group) == 1 else f"{p.name} .. {group[-1].name.rsplit('/', 1)[-1]}"
            rows.append({"actor": name + (f" ({len(group)})" if len(group) > 1 else ""),
                         "role": p.request.role,
                         "node": p.node.name if p.node else "DOES NOT FIT",
                         "CPUs": _num(p.request.cpus), "GPUs": _num(p.request.gpus),
                         "shard": str(p.request.shard), "runs": _runs(p.request)})
        cols = ["actor", "role", "node", "CPUs", "GPUs"]
        if self.shards > 1:
            cols.append("shard")
        lines += _table(rows, cols + ["runs"]) + [""]
        if self.groups:
            lines.append("placement groups (reserved before their actors start):")
            grows = [{"group": g.name, "strategy": g.strategy,
                      "bundles": _bundles(g.bundles),
                      "nodes": ", ".join(dict.fromkeys(n.name if n else "DOES NOT FIT"
                                                       for n in g.nodes))}
                     for g in self.groups]
            lines += _table(grows, ["group", "strategy", "bundles", "nodes"]) + [""]
        learners = self.role("learner")
        gen = self.role("generation")
        execs = self.role("executor")
        if learners:
            parts = []
            for a in dict.fromkeys(p.request.agent for p in learners):
                mine = self.learner(a)
                colo = any(p.group is not None for p in self.generation(a))
                gpus = sum(p.request.gpus for p in mine) * (2 if colo else 1)
                parts.append(f"{a}: {len(mine)} process(es), {_amount(gpus, 'GPU')}"
                             + (", engines colocated" if colo else ""))
            how = ("DeepSpeed " + str(self.options.deepspeed) if self.options.deepspeed
                   else "DDP" if any(len(self.learner(a)) > 1 for a in
                                     dict.fromkeys(p.request.agent for p in learners))
                   else "one process each")
            lines.append(f"learners: {'; '.join(parts)} (TRL GRPOTrainer; {how})")
        if gen:
            agents = list(dict.fromkeys(p.request.agent for p in gen))
            lines.append(f"generation: {len(gen)} actor(s) for {len(agents)} agent(s) "
                         f"({', '.join(f'{a}: {len(self.generation(a))}' for a in agents)})")
        else:
            lines.append("generation: in the search driver's process (--generation-actors 0)")
        workers = sum(int(p.request.cpus) for p in execs)
        lines.append(f"execution: {len(execs)} executor actor(s), {workers} sandbox worker "
                     "process(es) in all")
        lines.append("search: " + ("the driver (the mars2 process) searches every problem"
                                   if self.shards == 1 else
                                   f"{self.shards} rollout workers, each searching a shard of "
                                   "the problems with its own actors"))
        for e in self.errors:
            lines.append(f"does not fit: {e}")
        return "\n".join(lines)


def _runs_of_alike(placements: list[Placement]) -> list[list[Placement]]:
    """Consecutive placements that differ only by their number (one table row each run)."""
    groups: list[list[Placement]] = []
    for p in placements:
        r = p.request
        key = (r.role, r.agent, r.cpus, r.gpus, r.shard, p.node)
        if groups and groups[-1][0].request.role != "rollout":
            q = groups[-1][0].request
            if (q.role, q.agent, q.cpus, q.gpus, q.shard, groups[-1][0].node) == key:
                groups[-1].append(p)
                continue
        groups.append([p])
    return groups


def _amount(x: float, unit: str) -> str:
    return f"{_num(x)} {unit}" + ("" if x == 1 else "s")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _bundles(bundles: Sequence[tuple[float, float]]) -> str:
    """``8 x {CPU: 4, GPU: 1}``-style summary of a group's bundles."""
    runs: list[list] = []
    for b in bundles:
        if runs and runs[-1][0] == b:
            runs[-1][1] += 1
        else:
            runs.append([b, 1])
    out = []
    for (c, g), k in runs:
        res = "{CPU: " + _num(c) + (f", GPU: {_num(g)}" if g else "") + "}"
        out.append(f"{k} x {res}" if k > 1 else res)
    return " + ".join(out)


def _runs(r: ActorRequest) -> str:
    if r.role == "generation":
        return f"{r.agent} = {r.spec}"
    if r.role == "learner":
        return f"learner of {r.agent} = {r.spec}"
    if r.role == "executor":
        return f"Executor(max_workers={int(r.cpus)})"
    return f"search of shard {r.shard}"


def _summarise(placements: list[Placement]) -> str:
    groups: dict[tuple, int] = {}
    for p in placements:
        r = p.request
        key = (r.role, r.agent, r.cpus, r.gpus)
        groups[key] = groups.get(key, 0) + 1
    parts = []
    for (role, agent, cpus, gpus), count in groups.items():
        what = f"{agent} {role}" if role in ("generation", "learner") else role
        res = f"{_num(cpus)} CPU" + ("s" if cpus != 1 else "")
        if gpus:
            res += f", {_num(gpus)} GPU" + ("s" if gpus != 1 else "")
        parts.append(f"{what} x{count} ({res} each)" if count > 1 else f"{what} ({res})")
    return "; ".join(parts)


def _table(rows: list[dict[str, str]], cols: list[str]) -> list[str]:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in cols}
    out = ["  ".join(c.ljust(widths[c]) for c in cols).rstrip(),
           "  ".join("-" * widths[c] for c in cols)]
    out += ["  ".join(r[c].ljust(widths[c]) for c in cols).rstrip() for r in rows]
    return out


_NODE_SPEC = re.compile(r"^(?:(\d+)\s*[:x]\s*)?(.+)$")


def parse_cluster(specs: Sequence[str]) -> list[NodeSpec]:
    """Nodes from ``--cluster`` specs such as ``"3:cpus=96,gpus=8"`` or ``"cpus=16"``.

    Each spec is ``[COUNT:]cpus=C[,gpus=G]``; nodes are named node-0, node-1, ... in order
    (the first is where the driver runs).
    """
    if isinstance(specs, str):
        specs = [specs]
    nodes: list[NodeSpec] = []
    for spec in specs:
        m = _NODE_SPEC.match(str(spec).strip())
        if not m:
            raise ValueError(f"bad --cluster spec {spec!r}: expected [COUNT:]cpus=C[,gpus=G]")
        count = int(m.group(1) or 1)
        values: dict[str, float] = {}
        for part in m.group(2).split(","):
            key, eq, value = part.strip().partition("=")
            key = key.strip().lower()
            if not eq or key not in ("cpus", "gpus"):
                raise ValueError(f"bad --cluster spec {spec!r}: expected [COUNT:]cpus=C[,gpus=G], "
                                 f"got {part.strip()!r}")
            try:
                values[key] = float(value)
            except ValueError:
                raise ValueError(f"bad --cluster spec {spec!r}: {key} must be a number, "
                                 f"got {value!r}") from None
            if values[key] < 0 or not math.isfinite(values[key]):
                raise ValueError(f"bad --cluster spec {spec!r}: {key} must be >= 0")
        if "cpus" not in values:
            raise ValueError(f"bad --cluster spec {spec!r}: cpus=C is required")
        if count < 1:
            raise ValueError(f"bad --cluster spec {spec!r}: the node count must be >= 1")
        for _ in range(count):
            nodes.append(NodeSpec(f"node-{len(nodes)}", values["cpus"], values.get("gpus", 0.0)))
    if not nodes:
        raise ValueError("--cluster needs at least one node spec, e.g. 3:cpus=96,gpus=8")
    return nodes


def default_generation_cpus(spec: str) -> float:
    """CPUs a generation actor reserves by default: 1 for a model in the actor, else 0."""
    return 1.0 if spec.partition(":")[0] in MODEL_KINDS else 0.0


def plan_placement(nodes: Sequence[NodeSpec], agents: Sequence[tuple[str, str]],
                   options: RayOptions, source: str = "", learners: bool = False
                   ) -> PlacementPlan:
    """Place every actor of a run on `nodes`; `agents` is ``[(name, spec), ...]``; with
    `learners` (`mars2 train`) also one learner (placement group) per agent.

    Never raises for a plan that does not fit: `PlacementPlan.errors` says what is missing, so
    a dry run can show the whole picture.
    """
    nodes = list(nodes)
    if not nodes:
        raise ValueError("no nodes to place actors on")
    free = {n.name: [float(n.cpus), float(n.gpus)] for n in nodes}
    placements: list[Placement] = []
    errors: list[str] = []
    shards = options.rollout_workers

    def fits(n: NodeSpec, cpus: float, gpus: float) -> bool:
        return free[n.name][0] + 1e-9 >= cpus and free[n.name][1] + 1e-9 >= gpus

    def take(n: NodeSpec, cpus: float, gpus: float) -> None:
        free[n.name][0] -= cpus
        free[n.name][1] -= gpus

    groups: list[GroupPlan] = []
    colocated: set[str] = set()
    if learners:
        if shards > 1:
            errors.append("mars2 train runs one search driver: --rollout-workers must be 1")
        for index, (name, spec) in enumerate(agents):
            group, mine = _plan_learner(nodes, free, fits, take, name, spec, index, len(agents),
                                        options, errors)
            groups.append(group)
            placements.extend(mine)
            if options.per_agent("learner_placement", index, len(agents)) == "colocate":
                colocated.add(name)

    # 1. generation actors, agent by agent, first fit
    for index, (name, spec) in enumerate(agents):
        if name in colocated:
            continue
        count = options.per_agent("generation_actors", index, len(agents))
        cpus = options.per_agent("generation_cpus", index, len(agents))
        cpus = default_generation_cpus(spec) if cpus is None else float(cpus)
        gpus = float(options.per_agent("generation_gpus", index, len(agents)))
        if 0 < count < shards:
            errors.append(f"{shards} rollout workers need at least {shards} generation actors "
                          f"for {name} (each worker has its own); got {count}")
        for r in range(count):
            req = ActorRequest("generation", f"{name}/generation-{r}", cpus, gpus, agent=name,
                               spec=spec, shard=r % shards)
            start = (req.shard * len(nodes)) // shards  # a shard's actors near each other
            node = next((n for n in nodes[start:] + nodes[:start] if fits(n, cpus, gpus)), None)
            if node is None:
                errors.append(f"{req.name} needs {_amount(cpus, 'CPU')} and "
                              f"{_amount(gpus, 'GPU')}; no node has that much left")
            else:
                take(node, cpus, gpus)
            placements.append(Placement(req, node))

    # 2. executor actors on the CPUs left
    count = options.executor_actors
    eligible = [n for n in nodes if free[n.name][0] >= 1 - 1e-9] or nodes[:1]
    if count is None:
        count = max(len(eligible), shards)
    if count < shards:
        errors.append(f"{shards} rollout workers need at least {shards} executor actors (each "
                      f"worker has its own); got --executor-actors {count}")
    targets: list[NodeSpec | None] = []
    if options.executor_cpus is not None:
        want = float(options.executor_cpus)
        for e in range(count):
            order = eligible[e % len(eligible):] + eligible[:e % len(eligible)]
            node = next((n for n in order if fits(n, want, 0)), None)
            if node is not None:
                take(node, want, 0)
            targets.append(node)
        sizes = [want] * count
    else:
        targets = [eligible[e % len(eligible)] for e in range(count)]
        per_node = {n.name: targets.count(n) for n in eligible}
        sizes = [math.floor(free[n.name][0] / per_node[n.name] + 1e-9) for n in targets]
        for n, size in zip(targets, sizes, strict=True):
            take(n, size, 0)
    for e, (node, size) in enumerate(zip(targets, sizes, strict=True)):
        req = ActorRequest("executor", f"executor-{e}", float(size), shard=e % shards)
        if node is None or size < 1:
            errors.append(f"{req.name} needs at least 1 CPU"
                          + (f" ({_num(size)} asked)" if options.executor_cpus is not None else "")
                          + "; free CPUs by lowering --generation-cpus or --executor-actors")
            node = None if size < 1 or node is None else node
        placements.append(Placement(req, node))

    # 3. rollout workers (the driver itself when there is one shard)
    if shards > 1:
        for w in range(shards):
            home = next((p.node for p in placements if p.request.role == "executor"
                         and p.request.shard == w and p.node is not None), nodes[0])
            placements.append(Placement(ActorRequest("rollout", f"rollout-{w}", 0.0, shard=w),
                                        home))
    return PlacementPlan(nodes, placements, options, source=source, errors=errors, groups=groups)


def _plan_learner(nodes: list[NodeSpec], free: dict[str, list[float]], fits, take, name: str,
                  spec: str, index: int, agents: int, options: RayOptions,
                  errors: list[str]) -> tuple[GroupPlan, list[Placement]]:
    """Agent `index`'s learner group: one bundle per learner process (plus its engine's share
    when colocated), on one node if they all fit there, else first fit bundle by bundle."""
    try:
        procs, gpus, cpus = options.learner_shape(index, agents)
    except ValueError as exc:
        errors.append(f"{name}: {exc}")
        procs, gpus, cpus = 1, 0.0, 1.0
    colocate = options.per_agent("learner_placement", index, agents) == "colocate"
    engines = options.per_agent("generation_actors", index, agents)
    e_cpus = options.per_agent("generation_cpus", index, agents)
    e_cpus = default_generation_cpus(spec) if e_cpus is None else float(e_cpus)
    e_gpus = float(options.per_agent("generation_gpus", index, agents))
    if colocate:
        if not 1 <= engines <= procs:
            errors.append(f"{name} is colocated: engine k shares learner process k's bundle, so "
                          f"it needs 1 to {procs} generation actors (--learner-processes "
                          f"{procs}); got {engines}")
            engines = max(0, min(engines, procs))
        if abs(e_gpus - gpus) > 1e-9:
            errors.append(f"{name} is colocated: each engine shares its learner process's "
                          f"{_amount(gpus, 'GPU')}, so --generation-gpus must be {_num(gpus)}; "
                          f"got {_num(e_gpus)}")
    share = colocate and gpus > 0     # learner process and engine split the bundle's GPU
    bundles = tuple((cpus + (e_cpus if colocate and k < engines else 0.0), gpus)
                    for k in range(procs))
    need_c = sum(c for c, _ in bundles)
    need_g = sum(g for _, g in bundles)
    home = next((n for n in nodes if fits(n, need_c, need_g)), None)
    if home is not None:
        strategy, where = "STRICT_PACK", [home] * procs
        take(home, need_c, need_g)
    else:
        strategy, where = "PACK", []
        for k, (c, g) in enumerate(bundles):
            node = next((n for n in nodes if fits(n, c, g)), None)
            if node is None:
                errors.append(f"{name}/learner-{k} needs a bundle of {_amount(c, 'CPU')} and "
                              f"{_amount(g, 'GPU')}; no node has that much left")
            else:
                take(node, c, g)
            where.append(node)
    group = GroupPlan(f"{name}/learner", strategy, bundles, tuple(where))
    out = []
    for k in range(procs):
        req = ActorRequest("learner", f"{name}/learner-{k}", cpus,
                           gpus / 2 if share and k < engines else gpus, agent=name, spec=spec,
                           rank=k)
        out.append(Placement(req, where[k], group=group.name, bundle=k))
    if colocate:
        for k in range(engines):
            req = ActorRequest("generation", f"{name}/generation-{k}", e_cpus,
                               e_gpus / 2 if share else e_gpus, agent=name, spec=spec)
            out.append(Placement(req, where[k], group=group.name, bundle=k))
    return group, out

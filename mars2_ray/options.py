"""The Ray options of `mars2 search`, `eval`, `bench` and `train`: one dataclass and the flags that
fill it (`mars2 train` adds the learner options).

Nothing here imports Ray, so ``--help`` and ``--dry-run`` work where Ray is not installed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["RayOptions", "add_ray_arguments", "ray_options", "LOCAL"]

#: `address` meaning "start a local Ray in this process" (``--ray`` with no address)
LOCAL = "local"

# flag dest -> RayOptions field (the flags other than --ray itself)
_FLAGS = {
    "executor_actors": "executor_actors", "executor_cpus": "executor_cpus",
    "generation_actors": "generation_actors", "generation_cpus": "generation_cpus",
    "generation_gpus": "generation_gpus", "rollout_workers": "rollout_workers",
    "cluster": "cluster", "ray_num_cpus": "num_cpus", "dry_run": "dry_run",
    "learner_gpus": "learner_gpus", "learner_cpus": "learner_cpus",
    "learner_processes": "learner_processes", "learner_placement": "learner_placement",
    "deepspeed": "deepspeed",
}

#: where an agent's generation engines go relative to its learner (`mars2 train --ray`)
PLACEMENTS = ("separate", "colocate")

#: the options that take one value for every agent or one value per agent
PER_AGENT = ("generation_actors", "generation_cpus", "generation_gpus", "learner_gpus",
             "learner_cpus", "learner_processes", "learner_placement")


@dataclass
class RayOptions:
    """Where the heavy calls of a search run when ``--ray`` is given.

    Args:
        address: ``"local"`` starts a Ray in this process; ``"auto"`` joins the cluster this
            machine belongs to (``ray start``); ``IP:PORT`` or ``ray://HOST:PORT`` joins that one.
        executor_actors: executor actors in all (None: one per node).
        executor_cpus: CPUs of each executor actor = its sandbox worker processes (None: the
            CPUs its node has left after the generation actors, shared by the node's executors).
        generation_actors, generation_cpus, generation_gpus: one value for every agent, or a
            list with one value per agent (in the order of ``--agents``).
        generation_actors: generation actors per agent (0: agents generate in the search
            driver's process).
        generation_cpus: CPUs reserved by each generation actor (None: 1 for hf/vllm agents,
            0 for scripted and OpenAI-client agents). Given explicitly, an hf agent also uses
            that many torch threads.
        generation_gpus: GPUs of each generation actor; a vLLM engine runs tensor-parallel over
            them (an integer > 1 becomes its ``tensor_parallel_size``).
        rollout_workers: shards of problems searched by separate rollout-worker actors, each
            with its own generation and executor actors (1: the driver searches them all).
        cluster: node specs (``"3:cpus=96,gpus=8"``) to plan against instead of a live cluster.
        num_cpus: logical CPUs of a local Ray started here (None: all cores).
        dry_run: print the placement plan and exit without starting anything.

    Learners (`mars2 train --ray`; one value for every agent or one per agent):
        learner_gpus: GPUs of each agent's learner in all (0: CPU); one process per GPU.
        learner_cpus: CPUs of each learner process (None: 1).
        learner_processes: data-parallel processes of each learner (None: one per GPU, at
            least 1); several run TRL's trainer under accelerate (DDP, or DeepSpeed with
            ``deepspeed``), each on its share of every batch.
        learner_placement: ``"separate"`` (engines on GPUs of their own) or ``"colocate"``
            (engine k shares the GPU, or CPUs, of learner process k, in the learner's
            placement group).
        deepspeed: a DeepSpeed config file (ZeRO-2 / ZeRO-3, ``examples/deepspeed/``) for
            learners with several processes (None: plain DDP).
    """

    address: str = LOCAL
    executor_actors: int | None = None
    executor_cpus: float | None = None
    generation_actors: int | list[int] = 1
    generation_cpus: float | list[float] | None = None
    generation_gpus: float | list[float] = 0.0
    rollout_workers: int = 1
    cluster: list[str] | None = None
    num_cpus: int | None = None
    dry_run: bool = False
    learner_gpus: float | list[float] = 0.0
    learner_cpus: float | list[float] | None = None
    learner_processes: int | list[int] | None = None
    learner_placement: str | list[str] = "separate"
    deepspeed: str | None = None

    def __post_init__(self) -> None:
        def whole(name: str, value: object, low: int) -> None:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < low):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        def amount(name: str, value: object, low: float) -> None:
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float)) or value < low):
                raise ValueError(f"{name} must be a number >= {low:g}, got {value!r}")

        if not isinstance(self.address, str) or not self.address.strip():
            raise ValueError(f"--ray address must be a non-empty string, got {self.address!r}")
        whole("--executor-actors", self.executor_actors, 1)
        amount("--executor-cpus", self.executor_cpus, 1)
        for name in PER_AGENT:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                if not value:
                    raise ValueError(f"--{name.replace('_', '-')} needs at least one value")
                if len(value) == 1:
                    value = value[0]
                setattr(self, name, list(value) if isinstance(value, (list, tuple)) else value)
        for v in _values(self.generation_actors):
            whole("--generation-actors", v, 0)
        for v in _values(self.generation_cpus):
            amount("--generation-cpus", v, 0)
        for v in _values(self.generation_gpus):
            amount("--generation-gpus", v, 0)
            if v > 1 and not float(v).is_integer():
                raise ValueError("--generation-gpus above 1 must be a whole number (a "
                                 f"tensor-parallel engine spans whole GPUs), got {v!r}")
        for v in _values(self.learner_gpus):
            amount("--learner-gpus", v, 0)
        for v in _values(self.learner_cpus):
            amount("--learner-cpus", v, 0.01)
        for v in _values(self.learner_processes):
            whole("--learner-processes", v, 1)
        for v in _values(self.learner_placement):
            if v not in PLACEMENTS:
                raise ValueError(f"--learner-placement must be one of {', '.join(PLACEMENTS)}, "
                                 f"got {v!r}")
        if self.deepspeed is not None and not str(self.deepspeed).strip():
            raise ValueError("--deepspeed needs a DeepSpeed config file")
        whole("--rollout-workers", self.rollout_workers, 1)
        whole("--ray-num-cpus", self.num_cpus, 1)
        if self.executor_cpus is not None and not float(self.executor_cpus).is_integer():
            raise ValueError(f"--executor-cpus must be a whole number (it is the executor's worker "
                             f"processes), got {self.executor_cpus!r}")
        if self.rollout_workers > 1 and 0 in _values(self.generation_actors):
            raise ValueError("--rollout-workers > 1 needs --generation-actors >= 1 (each worker "
                             "generates through its own generation actors)")

    def yaml_keys(self) -> dict[str, Any]:
        """The options as keys of a run's ``config.yaml`` (those `mars2 train` reads back, so
        ``--resume`` without flags runs on Ray as the run did); unset ones and ``dry_run`` left
        out."""
        keys: dict[str, Any] = {"ray": self.address}
        for dest, name in _FLAGS.items():
            value = getattr(self, name)
            if name != "dry_run" and value is not None:
                keys[dest] = list(value) if isinstance(value, tuple) else value
        return keys

    def per_agent(self, name: str, index: int, agents: int) -> Any:
        """The value of the per-agent option `name` for agent `index` of `agents`."""
        value = getattr(self, name)
        if not isinstance(value, list):
            return value
        if len(value) != agents:
            raise ValueError(f"--{name.replace('_', '-')} has {len(value)} values for {agents} "
                             "agents: give one value, or one per agent")
        return value[index]

    def generation_in_actors(self) -> bool:
        """True when the agents generate in Ray actors (not in the driver's process)."""
        return any(v > 0 for v in _values(self.generation_actors))

    def learner_shape(self, index: int, agents: int) -> tuple[int, float, float]:
        """(processes, GPUs per process, CPUs per process) of agent `index`'s learner."""
        gpus = float(self.per_agent("learner_gpus", index, agents))
        procs = self.per_agent("learner_processes", index, agents)
        if procs is None:
            if gpus and not float(gpus).is_integer():
                procs = 1
            else:
                procs = max(1, int(gpus))
        per = gpus / procs
        if per > 1 + 1e-9:
            raise ValueError(f"--learner-gpus {gpus:g} over {procs} learner process(es) is "
                             f"{per:g} GPUs each; TRL's trainer runs one process per GPU, so "
                             "give --learner-processes = --learner-gpus")
        cpus = self.per_agent("learner_cpus", index, agents)
        return int(procs), per, 1.0 if cpus is None else float(cpus)

    def learner_options_given(self) -> list[str]:
        """The learner flags set away from their defaults (they only apply to mars2 train)."""
        given = []
        for name, default in (("learner_gpus", 0.0), ("learner_cpus", None),
                              ("learner_processes", None), ("learner_placement", "separate"),
                              ("deepspeed", None)):
            if getattr(self, name) != default:
                given.append("--" + name.replace("_", "-"))
        return given


def _values(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def add_ray_arguments(parser: argparse.ArgumentParser, learners: bool = False) -> None:
    """Add ``--ray [ADDRESS]`` and the options that size and place its actors (``learners``:
    also those of learner actors, for `mars2 train`)."""
    g = parser.add_argument_group(
        "Ray (scale-out)", "run generation and execution in Ray actors; needs the ray extra "
        "(pip install -e '.[ray]'). Without --ray the options below are refused.")
    g.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                   help="use Ray: no ADDRESS starts a local Ray; 'auto' joins the cluster of "
                        "`ray start`; IP:PORT or ray://HOST:PORT joins that cluster")
    g.add_argument("--executor-actors", type=int, default=None, metavar="N",
                   help="executor actors in all (default: one per node)")
    g.add_argument("--executor-cpus", type=int, default=None, metavar="C",
                   help="CPUs = sandbox worker processes per executor actor (default: the CPUs "
                        "its node has left)")
    g.add_argument("--generation-actors", type=int, nargs="+", default=None, metavar="N",
                   help="generation actors per agent, one value or one per agent (default 1; "
                        "0: that agent generates in the driver)")
    g.add_argument("--generation-cpus", type=float, nargs="+", default=None, metavar="C",
                   help="CPUs per generation actor, one value or one per agent (default: 1 for "
                        "hf/vllm agents, else 0)")
    g.add_argument("--generation-gpus", type=float, nargs="+", default=None, metavar="G",
                   help="GPUs per generation actor, one value or one per agent; a vLLM engine is "
                        "tensor-parallel over them (default 0)")
    g.add_argument("--rollout-workers", type=int, default=None, metavar="N",
                   help="shards of problems, each searched by a rollout-worker actor with its "
                        "own actors (default 1: this process searches them all)")
    g.add_argument("--cluster", nargs="+", default=None, metavar="SPEC",
                   help="plan for these nodes instead of a live cluster, e.g. 3:cpus=96,gpus=8 "
                        "(with --dry-run: check a big cluster's placement on a laptop)")
    g.add_argument("--ray-num-cpus", type=int, default=None, metavar="N",
                   help="logical CPUs of a local Ray started by --ray without an address "
                        "(default: all cores)")
    g.add_argument("--dry-run", action="store_true",
                   help="with --ray: print which actors go on which node (CPUs/GPUs each) and "
                        "exit without starting anything")
    if not learners:
        return
    g.add_argument("--learner-gpus", type=float, nargs="+", default=None, metavar="G",
                   help="GPUs of each agent's learner in all, one value or one per agent; one "
                        "learner process per GPU (default 0: CPU)")
    g.add_argument("--learner-cpus", type=float, nargs="+", default=None, metavar="C",
                   help="CPUs of each learner process, one value or one per agent (default 1)")
    g.add_argument("--learner-processes", type=int, nargs="+", default=None, metavar="N",
                   help="data-parallel processes of each learner (default: one per GPU, at "
                        "least 1); several run TRL's trainer under accelerate (DDP, or DeepSpeed "
                        "with --deepspeed)")
    g.add_argument("--learner-placement", nargs="+", default=None, choices=PLACEMENTS,
                   help="per agent: separate (generation engines on GPUs of their own) or "
                        "colocate (engine k shares learner process k's GPU or CPUs); default "
                        "separate")
    g.add_argument("--deepspeed", default=None, metavar="FILE",
                   help="DeepSpeed config for learners with several processes, e.g. "
                        "examples/deepspeed/zero3.json (default: DDP)")


def ray_options(args: argparse.Namespace) -> RayOptions | None:
    """The `RayOptions` of parsed arguments, or None without ``--ray``.

    A Ray option given without ``--ray`` is an error (it would otherwise be silently ignored).
    """
    given = {dest: getattr(args, dest, None) for dest in _FLAGS}
    if getattr(args, "ray", None) is None:
        stray = [f"--{d.replace('_', '-')}" for d, v in given.items() if v is not None and v is not False]
        if stray:
            raise ValueError(f"{', '.join(stray)} only apply with --ray [ADDRESS]")
        return None
    kwargs = {_FLAGS[d]: v for d, v in given.items() if v is not None}
    known = {f.name for f in fields(RayOptions)}
    assert set(kwargs) <= known
    return RayOptions(address=str(args.ray), **kwargs)

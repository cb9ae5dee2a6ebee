"""Learner actors: one agent's TRL-based learner (`train.learner.Learner`: model, optimizer, LR
schedule, buffer) in Ray actors with CPUs / GPUs of their own.

A learner is one process, or several data-parallel processes (ranks) started as
``accelerate launch`` would start them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set before
TRL builds its accelerator): TRL's trainer then runs under DDP, or under DeepSpeed ZeRO-2/3 when
a DeepSpeed config file is given (``GRPOConfig(deepspeed=FILE)``, TRL's and transformers' own
path). Every process holds the same buffer and trains on its contiguous share of each batch.

The driver side, `RemoteLearner`, mirrors each buffer's policy versions, so it takes the
decisions of the single-process loop (drop samples older than the staleness bound, update when a
batch is full) without a round trip. Its calls reach every process in the order they were made
(Ray keeps one caller's calls to an actor in order), and each reply is checked against the
mirror.

Weights leave a learner through the object store: `publish_weights` puts a CPU copy of the full
state dict (gathered from ZeRO-3 shards by accelerate) into the object store of the learner's
node; generation engines fetch it from there and the driver only passes the reference.

Checkpoints: each learner writes its own shard of the run's checkpoint, ``learners/<agent>/``:
process 0 the model, optimizer, LR schedule, counters and buffer (`Learner.save`; under
DeepSpeed every process writes its ZeRO shard with the engine's ``save_checkpoint``), and every
process its random-generator states. The directory must be one every node sees (the run's
``--out`` on a shared filesystem) when the learners run on other nodes than the driver.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mars2_ray.actors import ActorSlot, close_slots
from mars2_ray.placement import Placement
from mars2_ray.runtime import is_actor_death, print_to_stderr, require_ray
from mars2_ray.weights import state_hash

__all__ = ["LearnerActor", "RemoteLearner"]


class LearnerActor:
    """Runs in a Ray worker: one process of an agent's learner."""

    def __init__(self) -> None:
        print_to_stderr()
        self.learner: Any = None
        self.rank = 0
        self.world = 1
        self.deepspeed: str | None = None

    def address(self) -> tuple[str, int]:
        """This node's address and a free port: where the other processes meet process 0."""
        import socket

        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), int(port)

    def setup(self, config: dict[str, Any], index: int, out: str, rank: int, world: int,
              master: tuple[str, int] | None, threads: int | None,
              deepspeed: str | None) -> dict[str, Any]:
        """Build agent `index`'s learner from the run's config (every process at once when there
        are several: building the trainer joins the process group)."""
        import torch

        from train.config import Mars2TrainConfig
        from train.loop import build_learner, load_model

        self.rank, self.world, self.deepspeed = int(rank), int(world), deepspeed
        if world > 1:
            if master is None:
                raise ValueError("a learner with several processes needs process 0's address")
            # what `accelerate launch` / torchrun set; Ray shows each process only its own GPU
            os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": "0",
                               "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": str(master[0]),
                               "MASTER_PORT": str(master[1])})
        cfg = Mars2TrainConfig.from_dict(config)
        threads = cfg.torch_threads or threads  # a run's fixed count wins over the actor's CPUs
        if threads:
            torch.set_num_threads(int(threads))
        model, tokenizer = load_model(cfg.agents[index])
        extra: dict[str, Any] = {}
        if world > 1:
            extra["world_size"] = int(world)
            if not deepspeed:  # every parameter gets a gradient: skip DDP's unused-parameter pass
                extra["ddp_find_unused_parameters"] = False
        if deepspeed:
            extra["deepspeed"] = str(deepspeed)
        self.learner = build_learner(cfg, index, model, tokenizer, out, **extra)
        return self.info()

    def info(self) -> dict[str, Any]:
        import ray

        acc = self.learner.trainer.accelerator
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "rank": self.rank, "world": acc.num_processes, "device": str(acc.device),
                "distributed": str(acc.distributed_type), "updates": self.learner.updates}

    # ---- the learner's interface ----------------------------------------------------------
    def add(self, samples: list[Any]) -> int:
        self.learner.buffer.extend(samples)
        return len(self.learner.buffer)

    def drop_stale(self, max_staleness: int | None) -> int:
        return self.learner.drop_stale(max_staleness)

    def update(self) -> dict[str, Any]:
        """One update on the oldest full batch; its logs and what is left."""
        logs = self.learner.update()
        return {"logs": logs, "buffer": len(self.learner.buffer),
                "updates": self.learner.updates}

    def _full_state_dict(self) -> dict[str, Any] | None:
        """The whole model's weights on process 0 (gathered from the shards under ZeRO-3; every
        process must call this then), None on the others."""
        t = self.learner.trainer
        if t.is_deepspeed_enabled:
            state = t.accelerator.get_state_dict(t.model_wrapped)
        else:
            state = self.learner.model.state_dict() if self.rank == 0 else None
        if self.rank != 0 or state is None:
            return None
        return {k: v.detach().cpu() for k, v in state.items()}

    def publish_weights(self) -> Any:
        """A reference to the current weights in the object store (process 0; None elsewhere)."""
        import ray

        state = self._full_state_dict()
        return None if state is None else ray.put(state)

    def weights_hash(self) -> str | None:
        state = self._full_state_dict()
        return None if state is None else state_hash(state)

    # ---- checkpoints ----------------------------------------------------------------------
    def save(self, directory: str) -> list[str]:
        """Write this process's shard of the learner's checkpoint; the files it wrote."""
        import torch

        from train.checkpoint import rng_state

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        t = self.learner.trainer
        if t.is_deepspeed_enabled:
            t.model_wrapped.save_checkpoint(str(d / "deepspeed"))
            if self.rank == 0:
                import json

                (d / "learner.json").write_text(json.dumps(self.learner.counters()))
        elif self.rank == 0:
            self.learner.save(d)
        torch.save(rng_state(), d / f"rng-{self.rank}.pt")
        return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())

    def load(self, directory: str) -> dict[str, Any]:
        """Restore what `save` wrote (every process reads the shared files)."""
        import json

        import torch

        from train.checkpoint import set_rng_state

        d = Path(directory)
        t = self.learner.trainer
        if t.is_deepspeed_enabled:
            t.model_wrapped.load_checkpoint(str(d / "deepspeed"))
            state = json.loads((d / "learner.json").read_text())
            if state["name"] != self.learner.name:
                raise ValueError(f"checkpoint {d} belongs to learner {state['name']!r}, not "
                                 f"{self.learner.name!r}")
            self.learner.load_counters(state)
        else:
            self.learner.load(d)
        rng = d / f"rng-{self.rank}.pt"
        if rng.is_file():
            set_rng_state(torch.load(rng, weights_only=False))
        return {"updates": self.learner.updates,
                "versions": [s.policy_version for s in self.learner.buffer]}

    def save_final(self, directory: str) -> None:
        """The trained model and tokenizer in Hugging Face format (process 0 writes)."""
        state = self._full_state_dict()
        if state is not None:
            self.learner.model.save_pretrained(directory, state_dict=state)
            self.learner.tokenizer.save_pretrained(directory)

    def close(self) -> None:
        if self.learner is not None:
            self.learner.close()


class _BufferMirror:
    """The driver's view of a learner's buffer: the policy version of each sample it holds, in
    order; `add` queues the sample for the learner's processes."""

    def __init__(self, owner: RemoteLearner) -> None:
        self._owner = owner
        self.versions: deque[int] = deque()

    def add(self, sample: Any) -> None:
        self._owner._outbox.append(sample)
        self.versions.append(int(sample.policy_version))

    def __len__(self) -> int:
        return len(self.versions)


class PendingUpdate:
    """An update sent to a learner's processes; `result()` waits for it and returns the logs."""

    def __init__(self, learner: RemoteLearner, refs: list[Any], buffer: int, updates: int) -> None:
        self.learner, self.refs, self.buffer, self.updates = learner, refs, buffer, updates

    def result(self) -> dict[str, Any]:
        outs = self.learner._get(self.refs, "update")
        for out in outs:
            if out["buffer"] != self.buffer or out["updates"] != self.updates:
                raise RuntimeError(
                    f"learner {self.learner.name}: a process holds {out['buffer']} samples after "
                    f"update {out['updates']}, the driver expected {self.buffer} after "
                    f"{self.updates}")
        logs = dict(outs[0]["logs"])
        if len(outs) > 1:   # each process logged the objective of its own share
            logs["loss"] = sum(float(o["logs"]["loss"]) for o in outs) / len(outs)
        return logs


class RemoteLearner:
    """Agent `index`'s learner in Ray actors, used by the training loop like a local
    `train.learner.Learner` (``updates``, ``buffer``, ``ready``, ``drop_stale``, ``update``,
    ``save``, ``load``), plus ``start_update`` (the update runs while the driver does other
    work), ``publish_weights`` and ``weights_hash``.

    Construction starts the processes and returns; `wait_ready` waits for them to be built (so
    several learners load their models at the same time).
    """

    def __init__(self, config: Any, index: int, out: str | os.PathLike,
                 placements: Sequence[Placement], group: Any = None,
                 deepspeed: str | None = None, start_timeout: float = 1800.0) -> None:
        self._ray = require_ray()
        placements = list(placements)
        if not placements:
            raise ValueError(f"agent {config.names[index]!r} has no learner process planned")
        self.name = config.names[index]
        self.max_updates = int(config.max_steps)
        self.threshold = int(config.buffer_threshold)
        self.start_timeout = float(start_timeout)
        self.updates = 0
        self._outbox: list[Any] = []
        self._checks: list[tuple[list[Any], int, str]] = []
        self.buffer = _BufferMirror(self)
        self.slots = [ActorSlot(LearnerActor, (), p, group) for p in placements]
        world = len(self.slots)
        master = None
        if world > 1:
            master = self._get([self.slots[0].handle.address.remote()], "start")[0]
        self._starting = [
            s.handle.setup.remote(config.to_dict(), index, str(out), rank, world, master,
                                  max(1, int(s.placement.request.cpus)), deepspeed)
            for rank, s in enumerate(self.slots)]
        self.processes: list[dict[str, Any]] = []

    def wait_ready(self) -> list[dict[str, Any]]:
        """Wait until every process has built its learner; their pid, node, rank, device."""
        if self._starting:
            ray = self._ray
            _, late = ray.wait(self._starting, num_returns=len(self._starting),
                               timeout=self.start_timeout)
            if late:
                raise TimeoutError(
                    f"the learner of {self.name} did not start within {self.start_timeout:g} s "
                    f"({len(late)} of {len(self._starting)} processes); the cluster may not have "
                    "their CPUs / GPUs free (see `ray status`)")
            self.processes = self._get(self._starting, "start")
            self._starting = []
        return self.processes

    # ---- the Learner interface -------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.updates >= self.max_updates

    def ready(self) -> bool:
        return not self.done and len(self.buffer) >= self.threshold

    def drop_stale(self, max_staleness: int | None) -> int:
        """Drop samples more than `max_staleness` versions behind, as `Learner.drop_stale`
        does (decided here on the mirror, done in the processes); how many."""
        if max_staleness is None:
            return 0
        versions = self.buffer.versions
        keep = deque(v for v in versions if self.updates - v <= max_staleness)
        dropped = len(versions) - len(keep)
        if dropped:
            self._flush()     # the processes drop from what the mirror held, new samples too
            self.buffer.versions = keep
            refs = [s.handle.drop_stale.remote(max_staleness) for s in self.slots]
            self._checks.append((refs, dropped, "drop_stale"))
        return dropped

    def start_update(self) -> PendingUpdate:
        """Send one update (the oldest full batch) to the processes; `.result()` has its logs."""
        if not self.ready():
            raise RuntimeError(f"learner {self.name} has {len(self.buffer)} samples, fewer than a "
                               f"batch ({self.threshold}), or no updates left")
        self._flush()
        refs = [s.handle.update.remote() for s in self.slots]
        for _ in range(self.threshold):
            self.buffer.versions.popleft()
        self.updates += 1
        return PendingUpdate(self, refs, len(self.buffer), self.updates)

    def update(self) -> dict[str, Any]:
        return self.start_update().result()

    def publish_weights(self) -> Any:
        """A reference to the current weights in the learner's object store."""
        self._verify()
        refs = self._get([s.handle.publish_weights.remote() for s in self.slots], "weights")
        return refs[0]

    def weights_hash(self) -> str:
        return self._get([s.handle.weights_hash.remote() for s in self.slots], "weights")[0]

    def save(self, directory: str | os.PathLike) -> None:
        """Every process writes its shard of the checkpoint into `directory`."""
        self._flush()
        self._verify()
        files = self._get([s.handle.save.remote(str(directory)) for s in self.slots], "save")
        if not (Path(directory) / "learner.json").is_file():
            raise RuntimeError(
                f"the learner of {self.name} wrote its checkpoint ({', '.join(files[0][:3])} ...) "
                f"on its node, but {directory} does not show it here: put --out on a filesystem "
                "every node of the cluster sees")

    def load(self, directory: str | os.PathLike) -> None:
        outs = self._get([s.handle.load.remote(str(directory)) for s in self.slots], "load")
        self._outbox.clear()
        self._checks.clear()
        self.updates = int(outs[0]["updates"])
        self.buffer.versions = deque(int(v) for v in outs[0]["versions"])

    def save_final(self, directory: str | os.PathLike) -> None:
        self._get([s.handle.save_final.remote(str(directory)) for s in self.slots], "save")

    def close(self) -> None:
        close_slots(self.slots)

    def __repr__(self) -> str:
        return f"RemoteLearner(name={self.name!r}, processes={len(self.slots)})"

    # ---- internals -------------------------------------------------------------------------
    def _flush(self) -> None:
        """Send the samples added since the last call to every process (one object-store copy)."""
        if not self._outbox:
            return
        ray = self._ray
        batch = ray.put(list(self._outbox))
        self._outbox.clear()
        want = len(self.buffer)
        self._checks.append(([s.handle.add.remote(batch) for s in self.slots], want, "add"))

    def _verify(self) -> None:
        """Check the replies of earlier fire-and-forget calls against the mirror."""
        checks, self._checks = self._checks, []
        for refs, expected, what in checks:
            for got in self._get(refs, what):
                if got != expected:
                    raise RuntimeError(
                        f"learner {self.name}: a process answered {what} with {got} (samples "
                        f"{'dropped' if what == 'drop_stale' else 'held'}), the driver "
                        f"expected {expected}")

    def _get(self, refs: list[Any], what: str) -> list[Any]:
        try:
            return self._ray.get(refs)
        except Exception as exc:
            if is_actor_death(exc):
                raise RuntimeError(
                    f"a process of the learner of {self.name} died during {what} ({exc}); its "
                    "model and optimizer since the last checkpoint are lost: run again with "
                    "--resume to continue from the last checkpoint") from exc
            raise

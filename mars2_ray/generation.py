"""`GenerationPool`: one agent's generation in a pool of Ray actors, behind the agent interface.

Any agent spec works (``hf:``, ``vllm:``, ``openai:``, ``simulated:``, ``random``, ``replay:``):
every actor builds the agent with `agents.make_agent(spec, **overrides)`, exactly as a local
run does, with its own resources (GPUs for a vLLM engine, CPUs, nothing for a scripted agent).
The search driver calls `generate` (or `generate_async`, so that several agents generate at the
same time) with a batch of observations; the pool splits the batch by tree — every
observation of one problem goes to the same actor, first come first assigned to the actor with
the fewest trees — and returns the responses in the batch's order.

Reproducibility. `BatchedSearch` hands every expansion its own sampling seed, derived from
(run seed, problem, expansion index); the pool sends each seed with its observation, and
agents that sample with it (all built-in ones) answer exactly as the local agent would, whatever
actor, batch or restart. Without seeds an actor answers a call as the local agent would given
the same state (random generator, call counter), so one actor per agent still gives the local
trees. Either way a dead actor is replaced on the same planned node, set to the state its
predecessor had after its last answered call (`agents.BaseAgent.get_state`; an agent that does
not declare its state gets its earlier calls replayed instead), and its unanswered share of the
batch is re-sent: a restart changes nothing in the trees.

Weights (`mars2 train --ray`). `load_weights` gives every actor of the pool a learner's new
weights — a reference into the object store, fetched by each actor, never through the driver —
and records the policy version; an actor that replaces a dead one gets the latest weights
before its first batch, then its predecessor's sampling state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mars2_ray.actors import ActorSlot, close_slots, unplaced
from mars2_ray.placement import Placement
from mars2_ray.runtime import is_actor_death, print_to_stderr, require_ray
from mars2_ray.weights import state_hash

__all__ = ["GenerationPool", "GenerationActor"]


class GenerationActor:
    """Runs in a Ray worker: one agent built from its spec."""

    def __init__(self, spec: str, overrides: dict[str, Any]) -> None:
        from agents import make_agent

        print_to_stderr()
        self.agent = make_agent(spec, **overrides)

    def rebuild(self, spec: str, overrides: dict[str, Any]) -> None:
        """Replace the agent by a fresh one (e.g. another seed) without a new actor."""
        from agents import make_agent

        self.close()
        self.agent = make_agent(spec, **overrides)

    def info(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "agent": repr(self.agent)}

    def _state(self) -> Any:
        try:
            return self.agent.get_state()
        except (AttributeError, NotImplementedError):
            return None

    def load_weights(self, state: dict[str, Any]) -> None:
        """Copy a learner's weights into the agent (`HFAgent` / `VLLMAgent.load_weights`; on a
        GPU vLLM's own weight-update call)."""
        load = getattr(self.agent, "load_weights", None)
        if not callable(load):
            raise TypeError(f"{self.agent!r} cannot take new weights (no load_weights): train "
                            "hf: or vllm: agents")
        load(state)

    def weights_hash(self) -> str | None:
        """SHA-256 of the weights the agent samples with (None when they are in an engine)."""
        import torch

        model = getattr(self.agent, "model", None)
        return state_hash(model.state_dict()) if isinstance(model, torch.nn.Module) else None

    def generate(self, observations: list[dict], seeds: list[int] | None = None,
                 restore: tuple[str, Any] | None = None, want_state: bool = True,
                 weights: dict[str, Any] | None = None) -> tuple[list[Any], Any]:
        """The agent's responses (sampled with the per-request `seeds` when given and the agent
        takes them) and its state afterwards (None if it has no declared state).

        `weights` (a replacement actor's first call, during training) are loaded first; then
        `restore` brings the fresh agent to its predecessor's state:
        ``("state", get_state() value)`` or ``("replay", earlier (observations, seeds))``,
        whose answers are dropped.
        """
        from agents.base import generate_seeded

        if weights is not None:
            self.load_weights(weights)
        if restore is not None:
            kind, value = restore
            if kind == "state":
                self.agent.set_state(value)
            else:
                for earlier, earlier_seeds in value:
                    generate_seeded(self.agent, earlier, earlier_seeds)
        responses = list(generate_seeded(self.agent, observations, seeds))
        return responses, (self._state() if want_state else None)

    def close(self) -> None:
        getattr(self.agent, "close", lambda: None)()


class PendingGeneration:
    """A batch handed to the pool's actors; `result()` waits for it (re-sending shares whose
    actor died) and returns the responses in the batch's order."""

    def __init__(self, pool: GenerationPool, observations: list[dict],
                 seeds: list[int] | None, shards: dict[int, list[int]]) -> None:
        self.pool = pool
        self.observations = observations
        self.seeds = seeds
        self.shards = shards
        self.refs = {i: pool._send(i, *self._share(rows)) for i, rows in shards.items()}
        self._result: list[Any] | None = None

    @property
    def finished(self) -> bool:
        return self._result is not None

    def _share(self, rows: list[int]) -> tuple[list[dict], list[int] | None]:
        seeds = None if self.seeds is None else [self.seeds[j] for j in rows]
        return [self.observations[j] for j in rows], seeds

    def result(self) -> list[Any]:
        if self._result is not None:
            return self._result
        try:
            self._result = self._collect()
        finally:
            if self.pool._pending is self:   # the pool takes new batches even after an error
                self.pool._pending = None
        return self._result

    def _collect(self) -> list[Any]:
        ray = require_ray()
        out: list[Any] = [None] * len(self.observations)
        for i, rows in self.shards.items():
            batch, seeds = self._share(rows)
            attempts = 0
            while True:
                try:
                    gens, state = ray.get(self.refs[i])
                    if self.pool.restore == "state" and state is None:
                        raise TypeError(f"{self.pool.name}: the agent declares no state "
                                        "(get_state); use restore='replay' or 'auto'")
                    break
                except Exception as exc:
                    if not is_actor_death(exc):
                        raise
                    attempts += 1
                    if attempts > self.pool.max_retries:
                        raise RuntimeError(f"{self.pool.slots[i].name} died {attempts} times "
                                           f"on the same {len(batch)} observations; giving up "
                                           f"({exc})") from exc
                    self.pool.slots[i].replace()
                    self.pool._fresh[i] = self.pool._needs_weights[i] = True
                    self.refs[i] = self.pool._send(i, batch, seeds)
            if len(gens) != len(rows):
                raise RuntimeError(f"{self.pool.slots[i].name} returned {len(gens)} responses "
                                   f"for {len(rows)} observations")
            for j, g in zip(rows, gens, strict=True):
                out[j] = g
            self.pool._answered(i, batch, seeds, state)
        return out


class PendingLoad:
    """New weights sent to a pool's actors; `result()` waits, replacing actors that died (a
    replacement gets the weights with its first batch)."""

    def __init__(self, pool: GenerationPool, refs: dict[int, Any]) -> None:
        self.pool, self.refs = pool, refs

    def result(self) -> None:
        ray = require_ray()
        for i, ref in self.refs.items():
            try:
                ray.get(ref)
            except Exception as exc:
                if not is_actor_death(exc):
                    raise
                self.pool.slots[i].replace()
                self.pool._fresh[i] = self.pool._needs_weights[i] = True
        self.refs = {}


class GenerationPool:
    """One agent's generation actors, used like the agent itself.

    Args:
        spec: the agent spec (`agents.make_agent`).
        overrides: keyword arguments for `make_agent` (``name``, ``seed``, sampling options,
            ``problems`` for scripted agents), the same a local run uses.
        placements: planned generation actors (`mars2_ray.placement`); or
        actors, cpus, gpus: that many unplanned actors with those resources each.
        max_retries: replacements of one actor for the same batch before the run fails.
        restore: how a replacement actor catches up: ``"state"`` copies the agent's state
            after every call (`get_state`), ``"replay"`` keeps the calls and re-runs them (for
            agents whose state is costly to copy; memory grows with the run), ``"auto"``: state
            when the agent declares it, else replay.
        groups: Ray placement groups by name, for placements inside one (engines colocated
            with their learner).
    """

    def __init__(self, spec: str, overrides: dict[str, Any] | None = None, *,
                 placements: Sequence[Placement] | None = None, actors: int = 1,
                 cpus: float = 0.0, gpus: float = 0.0, max_retries: int = 3,
                 restore: str = "auto", groups: dict[str, Any] | None = None) -> None:
        require_ray()
        if restore not in ("auto", "state", "replay"):
            raise ValueError(f"restore must be 'auto', 'state' or 'replay', got {restore!r}")
        self.spec = spec
        self.overrides = dict(overrides or {})
        self.name = str(self.overrides.get("name") or spec)
        if placements is None:
            if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
                raise ValueError(f"actors must be an int >= 1, got {actors!r}")
            placements = [unplaced("generation", f"{self.name}/generation-{i}", cpus, gpus,
                                   agent=self.name, spec=spec) for i in range(actors)]
        placements = list(placements)
        if not placements:
            raise ValueError(f"agent {self.name!r} needs at least one generation actor")
        self.max_retries = int(max_retries)
        self.restore = restore
        groups = groups or {}
        self.slots = [ActorSlot(GenerationActor, (spec, self.overrides), p,
                                groups.get(p.group) if p.group else None) for p in placements]
        self.policy_version: int | None = None   # of the weights last loaded (None: the spec's)
        self._weights: Any = None                # their object-store reference
        self._state: list[Any] = [None] * len(self.slots)        # after the last answered call
        self._log: list[list[tuple]] = [[] for _ in self.slots]   # for agents without state
        self._fresh = [False] * len(self.slots)  # replaced since its last answered call
        self._needs_weights = [False] * len(self.slots)  # replaced since the last weights
        self._route: dict[str, int] = {}
        self._trees = [0] * len(self.slots)
        self._pending: PendingGeneration | None = None
        self._closed = False

    # ------------------------------------------------------------------ the agent interface
    def generate(self, observations: list[dict], seeds: Sequence[int] | None = None
                 ) -> list[Any]:
        """Responses (`agents.Generation`) to `observations`, in order; `seeds` (one per
        observation) go with them to the agent, as `BatchedSearch` hands them out."""
        return self.generate_async(observations, seeds=seeds).result()

    def generate_async(self, observations: list[dict], seeds: Sequence[int] | None = None
                       ) -> PendingGeneration:
        """Send a batch to the actors now; `.result()` collects it. One batch at a time: a new
        batch first waits for the previous one (an actor's state follows its calls in order)."""
        from agents.base import check_seeds

        if self._closed:
            raise RuntimeError(f"the generation pool of {self.name!r} is closed")
        if isinstance(observations, dict):
            raise TypeError("generate takes a list of observations; use act(obs) for one")
        if self._pending is not None:
            self._pending.result()
        observations = list(observations)
        seeds = check_seeds(seeds, len(observations))
        call = PendingGeneration(self, observations, seeds, self._shard(observations))
        self._pending = call
        if not observations:
            call.result()
        return call

    def act(self, observation: dict) -> str:
        response = self.generate([observation])[0]
        return response if isinstance(response, str) else response.text

    # ------------------------------------------------------------------ weights
    def load_weights(self, weights: Any, version: int | None = None) -> None:
        """Give every actor new weights: a state dict, or an object-store reference to one
        (`mars2_ray.learner.RemoteLearner.publish_weights`), which each actor fetches itself.
        Later replacement actors get them too; `version` is recorded as `policy_version`."""
        self.load_weights_async(weights, version).result()

    def load_weights_async(self, weights: Any, version: int | None = None) -> PendingLoad:
        """`load_weights` started on every actor; `.result()` waits (several pools at once)."""
        ray = require_ray()
        if self._closed:
            raise RuntimeError(f"the generation pool of {self.name!r} is closed")
        if self._pending is not None:
            self._pending.result()
        if not isinstance(weights, ray.ObjectRef):
            weights = ray.put(dict(weights))
        self._weights = weights
        self.policy_version = version
        self._needs_weights = [False] * len(self.slots)
        return PendingLoad(self, {i: s.handle.load_weights.remote(weights)
                                  for i, s in enumerate(self.slots)})

    def weights_hash(self) -> list[str | None]:
        """Per actor, the SHA-256 of the weights it samples with (None inside an engine)."""
        ray = require_ray()
        return ray.get([s.handle.weights_hash.remote() for s in self.slots])

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to answer as this pool would: each actor's agent state after
        its last call (or its calls, for agents without declared state) and which actor has
        which tree. Pickled into a string, so it fits the run's JSON checkpoint."""
        import base64
        import pickle

        if self._pending is not None:
            self._pending.result()
        blob = pickle.dumps({"state": self._state, "log": self._log, "route": self._route,
                             "trees": self._trees, "actors": len(self.slots)})
        return {"pickle": base64.b64encode(blob).decode("ascii")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict`: every actor gets its saved state before its next batch."""
        import base64
        import pickle

        data = pickle.loads(base64.b64decode(state["pickle"]))
        if data["actors"] != len(self.slots):
            raise ValueError(f"{self.name}: the checkpoint was taken with {data['actors']} "
                             f"generation actor(s), this run has {len(self.slots)}; resume "
                             "with the same --generation-actors")
        self._state, self._log = data["state"], data["log"]
        self._route, self._trees = data["route"], data["trees"]
        self._fresh = [True] * len(self.slots)

    # ------------------------------------------------------------------ management
    def rebuild(self, overrides: dict[str, Any]) -> None:
        """Rebuild the agent in every actor with new `overrides` (same spec and name): a fresh
        agent, as a new pool would hold, without starting actors again."""
        ray = require_ray()
        if self._pending is not None:
            self._pending.result()
        overrides = dict(overrides)
        if str(overrides.get("name") or self.spec) != self.name:
            raise ValueError(f"rebuild keeps the agent's name {self.name!r}")
        self.overrides = overrides
        for slot in self.slots:
            slot.args = (self.spec, overrides)
        for slot in self.slots:
            try:
                ray.get(slot.handle.rebuild.remote(self.spec, overrides))
            except Exception as exc:
                if not is_actor_death(exc):
                    raise
                slot.replace()   # built from the new arguments already
        self._state = [None] * len(self.slots)
        self._log = [[] for _ in self.slots]
        self._fresh = [False] * len(self.slots)
        self._route = {}
        self._trees = [0] * len(self.slots)
        self._weights = self.policy_version = None   # a rebuilt agent has the spec's weights
        self._needs_weights = [False] * len(self.slots)

    @property
    def restarts(self) -> int:
        """Actors replaced so far."""
        return sum(s.restarts for s in self.slots)

    def actor_info(self) -> list[dict[str, Any]]:
        """Per actor: pid, node id and the agent it holds (waits for every actor to start)."""
        ray = require_ray()
        return ray.get([s.handle.info.remote() for s in self.slots])

    def close(self) -> None:
        """Close the agents and stop the actors (idempotent)."""
        if self._closed:
            return
        self._closed = True
        close_slots(self.slots)

    def __enter__(self) -> GenerationPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GenerationPool(name={self.name!r}, spec={self.spec!r}, actors={len(self.slots)})"

    # ------------------------------------------------------------------ internals
    def _shard(self, observations: list[dict]) -> dict[int, list[int]]:
        """Row indices per actor: a tree stays with the actor it was first given to."""
        shards: dict[int, list[int]] = {}
        n = len(self.slots)
        for j, obs in enumerate(observations):
            pid = obs.get("problem_id") if isinstance(obs, dict) else None
            if n == 1:
                i = 0
            elif not isinstance(pid, str):
                i = j % n
            else:
                i = self._route.get(pid, -1)
                if i < 0:
                    i = min(range(n), key=lambda a: (self._trees[a], a))
                    self._route[pid] = i
                    self._trees[i] += 1
            shards.setdefault(i, []).append(j)
        return dict(sorted(shards.items()))

    def _send(self, i: int, batch: list[dict], seeds: list[int] | None) -> Any:
        """Send a batch to actor i; a replacement actor first gets the latest weights, then its
        predecessor's state after the last answered call (or those calls replayed)."""
        weights = self._weights if self._needs_weights[i] else None
        restore = None
        if self._fresh[i]:
            if self._state[i] is not None:
                restore = ("state", self._state[i])
            elif self._log[i]:
                restore = ("replay", self._log[i])
        return self.slots[i].handle.generate.remote(batch, seeds, restore,
                                                    self.restore != "replay", weights)

    def _answered(self, i: int, batch: list[dict], seeds: list[int] | None, state: Any) -> None:
        if self.restore == "replay":
            state = None
        if state is None:
            self._log[i].append((batch, seeds))
        self._state[i] = state
        self._fresh[i] = self._needs_weights[i] = False

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
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mars2_ray.actors import ActorSlot, unplaced
from mars2_ray.placement import Placement
from mars2_ray.runtime import is_actor_death, require_ray

__all__ = ["GenerationPool", "GenerationActor"]


class GenerationActor:
    """Runs in a Ray worker: one agent built from its spec."""

    def __init__(self, spec: str, overrides: dict[str, Any]) -> None:
        from agents import make_agent

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

    def generate(self, observations: list[dict], seeds: list[int] | None = None,
                 restore: tuple[str, Any] | None = None, want_state: bool = True
                 ) -> tuple[list[Any], Any]:
        """The agent's responses (sampled with the per-request `seeds` when given and the agent
        takes them) and its state afterwards (None if it has no declared state).

        `restore` first brings a replacement actor's fresh agent to its predecessor's state:
        ``("state", get_state() value)`` or ``("replay", earlier (observations, seeds))``,
        whose answers are dropped.
        """
        from agents.base import generate_seeded

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
                    self.pool._fresh[i] = True
                    self.refs[i] = self.pool._send(i, batch, seeds)
            if len(gens) != len(rows):
                raise RuntimeError(f"{self.pool.slots[i].name} returned {len(gens)} responses "
                                   f"for {len(rows)} observations")
            for j, g in zip(rows, gens, strict=True):
                out[j] = g
            self.pool._answered(i, batch, seeds, state)
        return out


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
    """

    def __init__(self, spec: str, overrides: dict[str, Any] | None = None, *,
                 placements: Sequence[Placement] | None = None, actors: int = 1,
                 cpus: float = 0.0, gpus: float = 0.0, max_retries: int = 3,
                 restore: str = "auto") -> None:
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
        self.slots = [ActorSlot(GenerationActor, (spec, self.overrides), p) for p in placements]
        self._state: list[Any] = [None] * len(self.slots)        # after the last answered call
        self._log: list[list[tuple]] = [[] for _ in self.slots]   # for agents without state
        self._fresh = [False] * len(self.slots)  # replaced since its last answered call
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
        ray = require_ray()
        refs = []
        for slot in self.slots:
            try:
                refs.append(slot.handle.close.remote())
            except Exception:
                pass
        try:
            ray.wait(refs, num_returns=len(refs), timeout=30)
        except Exception:
            pass
        for slot in self.slots:
            slot.kill()

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
        """Send a batch to actor i; a replacement actor first gets its predecessor's state
        after the last answered call (or those calls replayed)."""
        restore = None
        if self._fresh[i]:
            if self._state[i] is not None:
                restore = ("state", self._state[i])
            elif self._log[i]:
                restore = ("replay", self._log[i])
        return self.slots[i].handle.generate.remote(batch, seeds, restore,
                                                    self.restore != "replay")

    def _answered(self, i: int, batch: list[dict], seeds: list[int] | None, state: Any) -> None:
        if self.restore == "replay":
            state = None
        if state is None:
            self._log[i].append((batch, seeds))
        self._state[i] = state
        self._fresh[i] = False

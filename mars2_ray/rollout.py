"""Rollout workers: shards of problems, each searched by its own `BatchedSearch` in a Ray actor
with its own executor actors and generation pools (one driver per shard of problems).

Problem i goes to shard ``i mod workers``. Each tree's seeds derive from (run seed, problem
id) alone (`BatchedSearch`), so a shard builds the very trees a single driver builds. A worker
returns its finished trees after every round; the driver writes them as they come. A worker that dies is started again with the trees it had already returned
skipped (its own actors die with it and are rebuilt), so no tree is lost or written twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mars2_ray.actors import ActorSlot
from mars2_ray.placement import PlacementPlan
from mars2_ray.runtime import is_actor_death, print_to_stderr, require_ray

__all__ = ["RolloutWorker", "search_shards"]


class RolloutWorker:
    """Runs in a Ray worker: the search of one shard, with its own actors."""

    def __init__(self, problems: list, skip: list[str], agents: dict[str, tuple[str, dict]],
                 search_kwargs: dict[str, Any], executor_placements: list,
                 generation_placements: dict[str, list], executor_kwargs: dict[str, Any]) -> None:
        from mars2_env.vector import BatchedSearch
        from mars2_ray.executor import RayExecutor
        from mars2_ray.generation import GenerationPool

        print_to_stderr()
        self.executor = RayExecutor(placements=executor_placements, **executor_kwargs)
        self.pools = {name: GenerationPool(spec, overrides, placements=generation_placements[name])
                      for name, (spec, overrides) in agents.items()}
        self.search = BatchedSearch(problems, list(agents), executor=self.executor,
                                    skip=set(skip), **search_kwargs)

    def step(self) -> dict[str, Any]:
        """One round of this shard's search: its finished trees and the programs written."""
        from mars2_env.vector import respond

        if self.search.done:
            return {"finished": [], "programs": 0, "done": True}
        batch = self.search.pending()
        programs = sum(len(items) for items in batch.values())
        finished = self.search.submit(respond(self.pools, batch))
        return {"finished": [(f.problem_id, f.tree, f.nodes, f.solved) for f in finished],
                "programs": programs, "discarded": self.search.discarded,
                "done": self.search.done}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.executor.close()


def search_shards(plan: PlacementPlan, problems: Sequence[Any], agents: dict[str, tuple[str, dict]],
                  search_kwargs: dict[str, Any], skip: Sequence[str] = (),
                  executor_kwargs: dict[str, Any] | None = None,
                  max_retries: int = 3) -> Iterator[tuple[list, int]]:
    """Yield (finished trees, programs written) from the shards' rounds as they complete.

    `agents` maps each agent name to ``(spec, make_agent overrides)``; `skip` lists problem ids
    already searched (e.g. on resume).
    """
    from mars2_env.vector import FinishedTree

    ray = require_ray()
    problems = list(problems)
    index = {p.id: i for i, p in enumerate(problems)}
    workers = plan.role("rollout")
    n = len(workers)
    skipped = set(skip)
    shards = [[p for i, p in enumerate(problems) if i % n == w and p.id not in skipped]
              for w in range(n)]
    done_ids: list[set[str]] = [set() for _ in range(n)]

    def args(w: int) -> tuple:
        gen = {name: list(plan.generation(name, w)) for name in agents}
        return (shards[w], sorted(done_ids[w]), agents, search_kwargs, plan.role("executor", w),
                gen, dict(executor_kwargs or {}))

    live = [w for w in range(n) if shards[w]]

    slots = {w: ActorSlot(RolloutWorker, args(w), workers[w]) for w in live}
    attempts = [0] * n
    running = {slot.handle.step.remote(): w for w, slot in slots.items()}
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            w = running.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except Exception as exc:
                if not is_actor_death(exc):
                    raise
                attempts[w] += 1
                if attempts[w] > max_retries:
                    raise RuntimeError(f"{slots[w].name} died {attempts[w]} times; giving up "
                                       f"({exc})") from exc
                slots[w].args = args(w)   # skip what it already returned
                slots[w].replace()
                running[slots[w].handle.step.remote()] = w
                continue
            attempts[w] = 0
            trees = []
            for pid, tree, nodes, solved in out["finished"]:
                if pid in done_ids[w]:
                    raise RuntimeError(f"{pid} was returned twice")
                done_ids[w].add(pid)
                trees.append(FinishedTree(index[pid], problems[index[pid]], tree, nodes, solved))
            if not out["done"]:
                running[slots[w].handle.step.remote()] = w
            yield trees, int(out["programs"])
    finally:
        closing = []
        for slot in slots.values():
            try:
                closing.append(slot.handle.close.remote())
            except Exception:
                pass
        try:
            ray.wait(closing, num_returns=len(closing), timeout=30)
        except Exception:
            pass
        for slot in slots.values():
            slot.kill()

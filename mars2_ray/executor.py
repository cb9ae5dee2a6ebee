"""`RayExecutor`: the `Executor` API over executor actors spread across a Ray cluster.

Each actor holds a local warm `mars2_env.execution.Executor` (its own sandboxed worker
processes). `submit_many` splits the items into one contiguous batch per actor, sized by test
count and the actor's workers, so a round costs one round trip per actor (~1.3 ms) rather than
one per program, and returns at once: each item's future resolves when its batch returns (a
thread of this object hears each one), so `mars2_env.vector.BatchedSearch` lands the trees
whose programs are in and generates for them while other batches run. `run_many` is
`submit_many` and a wait. A problem crosses to an actor once; later items name it by key, and
test lists equal to its public / private / all tests travel as that word.

An actor that dies (``ray.kill``, its process or node lost) is replaced by a new actor on the
same planned node (or any node, if that one is gone) and its whole batch is re-run there: every
item gets exactly one result, from exactly one actor, and the verdicts are those of a local
`Executor` (grading is deterministic).
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Sequence
from typing import Any

from mars2_env.execution.executor import ProgramJudge, unpack_item
from mars2_env.problems import Problem, TestCase
from mars2_ray.actors import ActorSlot, close_slots, unplaced
from mars2_ray.placement import Placement
from mars2_ray.runtime import is_actor_death, print_to_stderr, require_ray

__all__ = ["RayExecutor", "ExecutorActor"]

_TEST_SETS = ("public", "private", "all")


class ExecutorActor:
    """Runs in a Ray worker: one warm `Executor` and the problems sent to it so far."""

    def __init__(self, max_workers: int, executor_kwargs: dict[str, Any]) -> None:
        from mars2_env.execution import Executor

        print_to_stderr()
        self.executor = Executor(max_workers=max_workers, **executor_kwargs)
        self.problems: dict[str, Problem] = {}

    def ready(self) -> dict[str, Any]:
        """Start the worker servers; where this actor runs and its sandbox mode."""
        import ray

        self.executor.run_many([])
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "mode": self.executor.mode, "workers": self.executor.max_workers,
                "niceness": os.nice(0),
                "server_pids": [w.proc.pid for w in self.executor._pool.workers]}

    def run_many(self, new_problems: dict[str, Problem], items: list[tuple[str, str, Any]],
                 stop_on_first_failure: bool) -> list[Any]:
        self.problems.update(new_problems)
        return self.executor.run_many([(self.problems[k], code, tests) for k, code, tests in items],
                                      stop_on_first_failure=stop_on_first_failure)

    def close(self) -> None:
        self.executor.close()


class _Batch:
    """One actor's share of one `RayExecutor.submit_many` call: its items, the futures they
    resolve, and how often an actor died running it."""

    def __init__(self, slot: int, items: list, problems: dict[str, Problem],
                 futures: list[concurrent.futures.Future], stop: bool) -> None:
        self.slot, self.items, self.problems = slot, items, problems
        self.futures, self.stop = futures, stop
        self.attempts = 0
        self.handle: Any = None

    def deliver(self, results: list[Any]) -> None:
        for f, r in zip(self.futures, results, strict=True):
            if f.set_running_or_notify_cancel():
                f.set_result(r)

    def fail(self, exc: BaseException) -> None:
        for f in self.futures:
            if f.set_running_or_notify_cancel():
                f.set_exception(exc)


class RayExecutor(ProgramJudge):
    """Drop-in `Executor` whose programs run in Ray executor actors.

    Args:
        actors: number of executor actors (ignored when `placements` is given).
        workers_per_actor: sandbox worker processes (and reserved CPUs) of each actor.
        placements: planned actors (`mars2_ray.placement`); each actor's CPUs are its workers.
        max_retries: how many times one batch may be re-run on replacement actors before the
            run fails (a batch that kills every actor it reaches is not retried forever).
        start_timeout: seconds to wait for the actors to start before saying which did not
            (an actor waits for its CPUs while other jobs hold them).
        **executor_kwargs: passed to each actor's `Executor` (``sandbox=``, limits).

    Needs a connected Ray (``ray.init`` or `mars2_ray.runtime.connect`).
    """

    def __init__(self, actors: int = 1, workers_per_actor: int = 1, *,
                 placements: Sequence[Placement] | None = None, max_retries: int = 3,
                 start_timeout: float = 600.0, **executor_kwargs: Any) -> None:
        require_ray()
        if placements is None:
            if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
                raise ValueError(f"actors must be an int >= 1, got {actors!r}")
            if isinstance(workers_per_actor, bool) or not isinstance(workers_per_actor, int) \
                    or workers_per_actor < 1:
                raise ValueError(f"workers_per_actor must be an int >= 1, got {workers_per_actor!r}")
            placements = [unplaced("executor", f"executor-{i}", workers_per_actor)
                          for i in range(actors)]
        placements = list(placements)
        if not placements:
            raise ValueError("RayExecutor needs at least one executor actor")
        for p in placements:
            if p.request.cpus < 1:
                raise ValueError(f"{p.name} has {p.request.cpus} CPUs; an executor actor needs >= 1")
        self.max_retries = int(max_retries)
        self.start_timeout = float(start_timeout)
        self._executor_kwargs = dict(executor_kwargs)
        self.slots = [ActorSlot(ExecutorActor, (int(p.request.cpus), self._executor_kwargs), p)
                      for p in placements]
        self._known: list[set[str]] = [set() for _ in self.slots]
        self._keys: dict[str, list[Problem]] = {}   # problem id -> distinct Problem objects seen
        self._info: list[dict[str, Any] | None] = [None] * len(self.slots)
        self.mode: str | None = None
        self._closed = False
        self._lock = threading.RLock()
        self._running: dict[Any, _Batch] = {}          # batches out, by their object ref
        self._arrived: queue.SimpleQueue = queue.SimpleQueue()   # (ref, Ray future) returned
        self._driver: threading.Thread | None = None

    # ------------------------------------------------------------------ info
    @property
    def max_workers(self) -> int:
        return sum(int(s.placement.request.cpus) for s in self.slots)

    @property
    def restarts(self) -> int:
        """Actors replaced so far (all slots)."""
        return sum(s.restarts for s in self.slots)

    def actor_info(self) -> list[dict[str, Any]]:
        """Per actor: pid, node id, sandbox mode, workers and their server pids (starts them)."""
        ray = require_ray()
        started = {i: s.handle.ready.remote() for i, s in enumerate(self.slots)
                   if self._info[i] is None}
        _, waiting = ray.wait(list(started.values()), num_returns=len(started),
                              timeout=self.start_timeout)
        if waiting:
            late = [self.slots[i] for i, ref in started.items() if ref in waiting]
            raise TimeoutError(
                f"{len(late)} executor actor(s) did not start within {self.start_timeout:g} s: "
                + ", ".join(f"{s.name} ({s.placement.request.cpus:g} CPUs)" for s in late)
                + "; the cluster may not have those CPUs free (see `ray status`)")
        for i, ref in started.items():  # all actors start at once
            try:
                self._info[i] = ray.get(ref)
            except Exception as exc:
                if not is_actor_death(exc):
                    raise
                self._replace(i)
                self._info[i] = self._call(i, lambda h: h.ready.remote())
        self.mode = self.mode or (self._info[0] or {}).get("mode")
        return [dict(x) for x in self._info if x is not None]

    # ------------------------------------------------------------------ the API
    def submit_many(self, items: Sequence[tuple], tests: str | list[TestCase] = "all",
                    stop_on_first_failure: bool = True) -> list[concurrent.futures.Future]:
        """Send many items (as in `run_many`) without waiting: one future per item, in order,
        resolved when its actor's batch returns (a search lands the trees whose programs are
        in while the others run). Bad items raise here, before anything is sent."""
        if self._closed:
            raise RuntimeError("this RayExecutor is closed")
        encoded, costs, problems = self._encode(items, tests)
        if self.mode is None:
            self.actor_info()
        futures = [concurrent.futures.Future() for _ in encoded]
        stop = bool(stop_on_first_failure)
        with self._lock:
            for i, (lo, hi) in enumerate(self._split(costs) if encoded else []):
                if hi > lo:
                    self._send(_Batch(i, encoded[lo:hi], problems, futures[lo:hi], stop))
        return futures

    def abandon(self, futures: Any) -> None:
        """Stop waiting for these futures (their actors finish the batch; results are dropped)."""
        for f in futures:
            f.cancel()

    def close(self) -> None:
        """Stop the actors and their worker processes (idempotent)."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            out = list(self._running.values())
            self._running.clear()
        for batch in out:
            batch.fail(RuntimeError("this RayExecutor was closed before these programs ran"))
        self._arrived.put(None)     # the driver thread's stop sign
        started = [s for i, s in enumerate(self.slots) if self._info[i] is not None]
        close_slots(started)            # never started (or replaced): nothing to close
        for slot in self.slots:
            slot.kill()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _call(self, i: int, method: Any) -> Any:
        """``ray.get(method(handle))`` on slot i, replacing a dead actor and retrying."""
        ray = require_ray()
        for attempt in range(self.max_retries + 1):
            try:
                return ray.get(method(self.slots[i].handle))
            except Exception as exc:
                if not is_actor_death(exc) or attempt == self.max_retries:
                    raise
                self._replace(i)
        raise AssertionError("unreachable")

    def _send(self, batch: _Batch) -> None:
        """Send `batch` to its actor (with the problems that actor has not seen); the driver
        thread hears when it returns. Called with the lock held."""
        i = batch.slot
        new = {}
        for key, _, _ in batch.items:
            if key not in self._known[i]:
                new[key] = batch.problems[key]
                self._known[i].add(key)
        batch.handle = self.slots[i].handle
        ref = batch.handle.run_many.remote(new, batch.items, batch.stop)
        self._running[ref] = batch
        ref.future().add_done_callback(lambda done, ref=ref: self._arrived.put((ref, done)))
        if self._driver is None or not self._driver.is_alive():
            self._driver = threading.Thread(target=self._drive, name="mars2-ray-executor",
                                            daemon=True)
            self._driver.start()

    def _drive(self) -> None:
        """Deliver each returned batch to its futures; re-send a batch whose actor died to a
        replacement actor (at most `max_retries` times)."""
        while True:
            arrived = self._arrived.get()
            if arrived is None:
                return
            ref, done = arrived
            with self._lock:
                batch = self._running.pop(ref, None)
            if batch is None:     # closed meanwhile
                continue
            exc = done.exception()
            if exc is None:
                out = done.result()
                if len(out) != len(batch.items):
                    batch.fail(RuntimeError(f"{self.slots[batch.slot].name} returned {len(out)} "
                                            f"results for {len(batch.items)} programs"))
                else:
                    batch.deliver(out)
                continue
            if not is_actor_death(exc):
                batch.fail(exc)
                continue
            batch.attempts += 1
            if batch.attempts > self.max_retries:
                batch.fail(RuntimeError(
                    f"{self.slots[batch.slot].name} died {batch.attempts} times running the "
                    f"same {len(batch.items)} programs; giving up ({exc})"))
                continue
            with self._lock:
                if self._closed:
                    batch.fail(RuntimeError("this RayExecutor was closed"))
                    continue
                if self.slots[batch.slot].handle is batch.handle:  # not replaced yet
                    self._replace(batch.slot)
                self._send(batch)

    def _replace(self, i: int) -> None:
        self.slots[i].replace()
        self._known[i] = set()
        self._info[i] = None

    def _key(self, problem: Problem) -> str:
        """A key naming `problem` on the actors: its id, suffixed if another, different
        problem with the same id was seen (so a cached problem is never mistaken for it)."""
        seen = self._keys.setdefault(problem.id, [])
        for n, p in enumerate(seen):
            if p is problem or p == problem:
                return problem.id if n == 0 else f"{problem.id}#{n}"
        seen.append(problem)
        n = len(seen) - 1
        return problem.id if n == 0 else f"{problem.id}#{n}"

    def _encode(self, items: Sequence[tuple], default_tests: Any
                ) -> tuple[list, list[int], dict[str, Problem]]:
        """(items as (key, code, tests), test counts, problems by key)."""
        encoded, costs = [], []
        problems: dict[str, Problem] = {}
        for index, item in enumerate(items):
            problem, code, which = unpack_item(item, default_tests, index)
            with self._lock:
                key = self._key(problem)
            problems[key] = problem
            selected = problem.select_tests(which)
            if isinstance(which, list):
                which = next((name for name in _TEST_SETS
                              if len(problem.select_tests(name)) == len(which)
                              and problem.select_tests(name) == which), list(which))
            encoded.append((key, code, which))
            costs.append(max(1, len(selected)))
        return encoded, costs, problems

    def _split(self, costs: list[int]) -> list[tuple[int, int]]:
        """One contiguous range of items per actor, in proportion to its workers (by tests)."""
        weights = [max(1.0, s.placement.request.cpus) for s in self.slots]
        total_w = sum(weights)
        total = sum(costs)
        bounds, lo, acc, target = [], 0, 0.0, 0.0
        n = len(costs)
        for i, w in enumerate(weights):
            target += total * w / total_w
            hi = lo
            if i == len(weights) - 1:
                hi = n
            else:
                while hi < n and acc + costs[hi] / 2 <= target:
                    acc += costs[hi]
                    hi += 1
            bounds.append((lo, hi))
            lo = hi
        return bounds

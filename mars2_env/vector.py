"""Batched search: many problems' trees in flight at once, expanded in large generation batches.

Training and evaluation run hundreds of trees; generation is only efficient in big batches. A
round is:

    batch = search.pending()          # {agent: [PendingExpansion, ...]}, observations included
    responses = {agent: policy(agent, [p.observation for p in items]) for agent, items in batch.items()}
    finished = search.submit(responses)   # runs every program through the executor, waits

Asynchronously (what `run` and `mars2 search` do), a tree whose programs' results are in goes
on without waiting for the others, and generation for ready trees overlaps the execution of
the rest:

    while not search.done:
        finished += search.collect(wait=False)    # land every tree whose results are in
        batch = search.pending()                  # expansions of the trees ready now
        if batch:
            search.submit(respond(agents, batch), wait=False)   # programs go to the executor
        else:
            finished += search.collect()          # nothing to generate: wait for results

With an executor that has `submit_many` (`mars2_env.execution.Executor`) programs run while
the caller generates; with one that only has `run_many` (e.g. `mars2_ray.RayExecutor`)
``submit(..., wait=False)`` runs them before it returns, and the loop above is the round loop.

`submit` takes, for every agent in `pending()`, a list of responses aligned with that agent's
pending list (same length, same order). A response is the text (`str`) or a generation-like
object with a `str` `.text` and optional `.completion_token_ids` / `.logprobs` (e.g.
`agents.Generation`), which are then stored in the node for training. Every pending expansion
must be answered in the same `submit`.

Trees are started in the order of `problems` (up to `max_trees` at once); a finished tree is
returned from `submit` as a `FinishedTree` (tree + `rewards.node_records` rows) and its slot goes
to the next problem.

Seeds: the run's base seed is the first draw of a generator seeded with `seed` (as
`mars2_env.aec.raw_env` does at `reset(seed=s)`), and each tree's scheduler seed and agent seed
are derived from (base seed, problem id) alone (`envcore.tree_seeds`). Every pending expansion
carries `seed`, derived from the tree's agent seed and the expansion's index in its tree; agents
that sample with it (`generate(observations, seeds=...)`) write the same response whatever else
is in the batch. So a tree depends only on (seed, problem, responses): a resumed run, a run
with another `max_trees`, a subset of the problems or a shard on another machine build exactly
the trees of one uninterrupted run; with `expansions_per_tree=1` they are also the trees of
separate AEC episodes (`env.reset(seed=s)` then `env.reset()` for each next problem) given the
same responses.

`respond(agents, batch)` is that middle line for agent objects (anything with
`generate(observations)`, e.g. `agents.make_agent(...)` or a Ray generation pool): agents that
also have `generate_async` (returning an object with `.result()`) are all started before any is
awaited, so agents served by different machines generate at the same time. The executor is
anything with `run_many` (an `Executor`, or `mars2_ray.RayExecutor`), so the same loop runs on
one machine or a cluster.

`expansions_per_tree=k > 1` lets one tree have up to k expansions in flight per round. Each is
marked with the scheduler's `mark_pending` (virtual loss: it counts as an observed failure in the
posteriors until it lands, so the next selection in the same round looks elsewhere) and cleared
with `clear_pending` just before its node is added. With `k=1` nothing else is selected from a
tree while its expansion is in flight, so no virtual loss is applied.

Rounds are per tree: a tree's k expansions are selected together, and land together, in the
order they were selected, once all k results are in; then its next k are selected. Other trees
never wait for it. A tree's selections therefore see exactly what they saw when the whole batch
moved in lock-step, and with per-expansion seeds the trees are the same whatever the schedule
(synchronous rounds, asynchronous, another `max_trees`): only the order in which trees finish,
and so the order of `FinishedTree` lists (and lines of `mars2 search`'s trees.jsonl), depends on
timing. What the asynchronous loop does not recover is a tree's own slowest program: a tree
waits for all k of its expansions. ``landing="as_ready"`` lands each expansion as soon as its
own results are in and selects its replacement at once (k stay in flight, virtual loss on the
others): with few trees in flight and k > 1 this keeps the executor busy through one slow
program, but a selection then depends on which results happened to be in, so with k > 1 the
trees depend on timing and a resumed run no longer repeats an uninterrupted one (with k = 1
both landings are the same).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gymnasium.utils import seeding

from mars2_env.envcore import (
    SearchConfig,
    SearchEpisode,
    TreeSeedStream,
    check_agents,
    derive_seed,
    make_scheduler_factory,
    resolve_problems,
    warn_judge_policy,
)
from mars2_env.problems import Problem
from mars2_env.rewards import refuse_alpha

__all__ = ["BatchedSearch", "FinishedTree", "PendingExpansion", "respond"]


@dataclass
class PendingExpansion:
    """One expansion waiting for a response.

    `ticket` numbers expansions in the order they were selected; `tree_index` is the position of
    the tree's problem in the run; `observation` is the same dict the AEC env emits; `seed` is
    the sampling seed of this expansion (a function of the run seed, the problem and the
    expansion's index in its tree; None when the search has no seed).
    """

    ticket: int
    tree_index: int
    problem_id: str
    agent: str
    parent_id: int
    observation: dict[str, Any] = field(repr=False)
    seed: int | None = None


@dataclass
class FinishedTree:
    """A finished search: the tree and its per-node training records.

    Every finished tree ended in a terminal state (budget spent, or solved with
    `stop_on_solve`): `terminated` is True and `truncated` False, as the AEC and Gymnasium
    environments report (see `mars2_env.aec`, "Termination").
    """

    index: int
    problem: Problem = field(repr=False)
    tree: Any = field(repr=False)
    nodes: list[dict[str, Any]] = field(repr=False)
    solved: bool = False
    terminated: bool = True
    truncated: bool = False

    @property
    def problem_id(self) -> str:
        return self.problem.id


def _takes(fn: Callable[..., Any], *, positional: int = 0, keyword: str = "") -> bool:
    """Whether `fn` accepts that many positional arguments, or a keyword argument `keyword`."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    if keyword:
        return keyword in params
    return len(params) >= positional


def respond(agents: Mapping[str, Any], batch: Mapping[str, Sequence[PendingExpansion]]
            ) -> dict[str, list[Any]]:
    """Each agent's responses to its pending expansions: ``agents[name].generate(observations,
    seeds=...)`` with the expansions' seeds (plain ``generate(observations)`` for agents that
    take no seeds, or when the search has none).

    Agents with `generate_async` are all started first, then the others run, then the started
    ones are collected, so independent agents (e.g. on different GPUs) overlap. Agents that
    share a model and its sampling settings (equal ``sampling_key()``, and a ``generate_group``
    function, e.g. `agents.hf.HFAgent`) are sampled in one batch, each row still with its own
    seed.
    """
    missing = [name for name in batch if name not in agents]
    if missing:
        raise KeyError(f"no agent object for {missing}; agents given: {list(agents)}")

    def seeds_of(items: Sequence[PendingExpansion]) -> list[int] | None:
        seeds = [p.seed for p in items]
        return None if any(s is None for s in seeds) else seeds

    def call(method: Callable[..., Any], items: Sequence[PendingExpansion]) -> Any:
        observations = [p.observation for p in items]
        seeds = seeds_of(items)
        if seeds is None or not _takes(method, keyword="seeds"):
            return method(observations)
        return method(observations, seeds=seeds)

    out: dict[str, list[Any]] = {}
    groups: dict[Any, list[str]] = {}
    for name in batch:
        agent = agents[name]
        if hasattr(agent, "generate_group") and hasattr(agent, "sampling_key") \
                and not hasattr(agent, "generate_async"):
            groups.setdefault(agent.sampling_key(), []).append(name)
    grouped = {name for names in groups.values() if len(names) > 1 for name in names}
    started = {name: call(agents[name].generate_async, items)
               for name, items in batch.items() if hasattr(agents[name], "generate_async")}
    for names in groups.values():
        if len(names) > 1:
            seed_lists = [seeds_of(batch[n]) for n in names]
            answers = agents[names[0]].generate_group(
                [agents[n] for n in names], [[p.observation for p in batch[n]] for n in names],
                seeds=None if any(s is None for s in seed_lists) else seed_lists)
            out.update({n: list(a) for n, a in zip(names, answers, strict=True)})
    out.update({name: list(call(agents[name].generate, items)) for name, items in batch.items()
                if name not in started and name not in grouped})
    out.update({name: list(pending.result()) for name, pending in started.items()})
    return {name: out[name] for name in batch}


@dataclass
class _Work:
    """An answered expansion whose programs are with the executor."""

    item: PendingExpansion
    expansion: Any
    text: str
    code: str
    token_ids: list[int] | None
    logprobs: list[float] | None
    results: list[concurrent.futures.Future]


@dataclass
class _Slot:
    index: int
    episode: SearchEpisode
    running: list[_Work] = field(default_factory=list)


def _done_future(value: Any) -> concurrent.futures.Future:
    f: concurrent.futures.Future = concurrent.futures.Future()
    f.set_result(value)
    return f


class BatchedSearch:
    """Many search trees advanced by batched generation and execution, in rounds (`pending` /
    `submit`) or asynchronously (`run`, or `submit(..., wait=False)` / `collect`).

    Args:
        problems: list of `Problem` or a `load_problems` source; searched once each, in order.
        agents: agent names shared by all trees.
        budget: nodes per tree.
        scheduler_factory: zero-argument callable returning a fresh Scheduler (one per tree);
            default `ThompsonScheduler(agents)`.
        executor: anything with the `Executor.run_many` API (an `Executor`, a
            `mars2_ray.RayExecutor`); None creates an `Executor` (all cores) on first use,
            closed by `close()`.
        max_trees: trees in flight at once (None: all).
        expansions_per_tree: expansions one tree may have in flight per round (virtual loss).
        seed: the run seed; each tree's scheduler and agent seeds derive from it and the
            problem id (module docstring). None: a fresh random run (no per-expansion seeds).
        skip: ids of problems already searched (e.g. on resume); they are not searched. Seeds
            are per problem, so the other trees are those of an uninterrupted run.
        landing: "in_order" (a tree's round lands once all its results are in: trees do not
            depend on timing) or "as_ready" (each expansion lands when its results are in; with
            expansions_per_tree > 1 trees then depend on timing; module docstring).
        tests, judge_tests, lam, beta, stop_on_solve, stop_on_first_failure, templates,
        max_text_length: as in `mars2_env.aec.raw_env`.
    """

    @refuse_alpha
    def __init__(self, problems: Sequence[Problem] | str, agents: Sequence[str] = ("coder_0", "coder_1"),
                 budget: int = 16, scheduler_factory: Callable[[], Any] | None = None,
                 executor: Any = None, *, max_trees: int | None = None, expansions_per_tree: int = 1,
                 tests: str | list = "public", judge_tests: str | list | None = "private",
                 lam: float = 0.5, beta: float = 0.5, stop_on_solve: bool = False,
                 stop_on_first_failure: bool = False, templates: Any = None,
                 max_text_length: int | None = None, seed: int | None = None,
                 skip: Collection[str] = (), landing: str = "in_order") -> None:
        self.agents = check_agents(agents)
        self._skip = frozenset(skip)
        kw = {} if max_text_length is None else {"max_text_length": max_text_length}
        self.config = SearchConfig(budget=budget, tests=tests, judge_tests=judge_tests, lam=lam,
                                   beta=beta, stop_on_solve=bool(stop_on_solve),
                                   stop_on_first_failure=bool(stop_on_first_failure),
                                   templates=templates, **kw)
        for name, value in (("max_trees", max_trees), ("expansions_per_tree", expansions_per_tree)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if expansions_per_tree is None:
            raise ValueError("expansions_per_tree must be an int >= 1, got None")
        if landing not in ("in_order", "as_ready"):
            raise ValueError(f"landing must be 'in_order' or 'as_ready', got {landing!r}")
        self.landing = landing
        self.max_trees = max_trees
        self.expansions_per_tree = expansions_per_tree
        self._factory = make_scheduler_factory(scheduler_factory, self.agents)
        self._executor = executor
        self._owns_executor = executor is None
        rng, _ = seeding.np_random(seed)
        self.base_seed = derive_seed(rng)
        self._seeded = seed is not None
        self._tree_seeds = TreeSeedStream(self.base_seed)
        self._queue: list[Problem] = []
        self._started = 0
        self._slots: list[_Slot] = []
        self._pending: list[tuple[PendingExpansion, Any, _Slot]] = []  # awaiting responses
        self._ticket = 0
        self.discarded = 0  # responses dropped because their tree was solved earlier in the round
        self.landed = 0  # nodes added so far
        self.add_problems(problems)

    # --- problems and state ---------------------------------------------------------------
    def add_problems(self, problems: Sequence[Problem] | str) -> None:
        """Queue more problems (searched after those already queued; a problem queued again is
        searched again, with its next visit's seeds); warns once about problems with too few
        tests for the reward / judge split (`envcore.judge_plan`)."""
        added = resolve_problems(problems, unique=False)
        warn_judge_policy(added, self.config)
        self._queue.extend(added)

    @property
    def executor(self) -> Any:
        if self._executor is None:
            from mars2_env.execution import Executor
            self._executor = Executor()
        return self._executor

    @property
    def done(self) -> bool:
        """True when every queued problem's tree has finished."""
        return not self._slots and all(p.id in self._skip for p in self._queue)

    @property
    def in_flight(self) -> int:
        """Trees currently being searched."""
        return len(self._slots)

    def _start_trees(self) -> None:
        while self._queue and (self.max_trees is None or len(self._slots) < self.max_trees):
            problem = self._queue.pop(0)
            if problem.id in self._skip:
                self._started += 1
                continue
            seeds = self._tree_seeds.next(problem.id)
            scheduler = self._factory()
            scheduler.reset(list(self.agents), seed=seeds.scheduler)
            episode = SearchEpisode(problem, scheduler, self.config, seed=seeds.scheduler,
                                    agent_seed=seeds.agent)
            slot = _Slot(self._started, episode)
            self._started += 1
            self._slots.append(slot)

    def _select(self) -> None:
        """Select the next round of each tree that has nothing in flight."""
        k = self.expansions_per_tree
        for slot in self._slots:
            ep = slot.episode
            if ep.in_flight and self.landing == "in_order":
                continue
            while ep.in_flight < k and ep.budget_left > 0 and not ep.done:
                exp = ep.scheduler.select(ep.tree)
                if exp.agent not in self.agents:
                    raise RuntimeError(f"scheduler chose unknown agent {exp.agent!r}; agents are {self.agents}")
                obs = ep.observation(exp)
                seed = ep.next_seed() if self._seeded else None
                if k > 1:
                    ep.scheduler.mark_pending(exp)
                ep.in_flight += 1
                item = PendingExpansion(self._ticket, slot.index, ep.problem.id, exp.agent,
                                        exp.parent_id, obs, seed=seed)
                self._ticket += 1
                self._pending.append((item, exp, slot))

    # --- the round --------------------------------------------------------------------------
    @property
    def running(self) -> int:
        """Answered expansions whose programs are with the executor (not yet landed)."""
        return sum(len(slot.running) for slot in self._slots)

    def pending(self) -> dict[str, list[PendingExpansion]]:
        """Every expansion awaiting a response, grouped by agent (in agent order; agents with
        none omitted), after selecting the next round of each tree with nothing in flight (new
        trees start as slots free up).

        Calling it again before `submit` returns the same expansions (plus, in the
        asynchronous loop, those of trees that landed in a `collect` in between).
        """
        self._start_trees()
        self._select()
        grouped: dict[str, list[PendingExpansion]] = {}
        for agent in self.agents:
            items = [item for item, _, _ in self._pending if item.agent == agent]
            if items:
                grouped[agent] = items
        return grouped

    def submit(self, responses: dict[str, Sequence[Any]], *, wait: bool = True) -> list[FinishedTree]:
        """Run the responses to every pending expansion, add the nodes, return finished trees.

        `responses[agent]` must be aligned with `pending()[agent]`. Nothing changes if a response
        is missing or malformed (the error names the agent and position). ``wait=False`` hands
        the programs to the executor and returns ``[]`` at once: their trees land in a later
        `collect` (or a waiting `submit`).
        """
        if not self._pending:
            raise RuntimeError("nothing is pending: call pending() first"
                               + (" (the search is done)" if self.done else ""))
        if not isinstance(responses, dict):
            raise TypeError("responses must be a dict {agent: [response, ...]} aligned with pending(); "
                            f"got {type(responses).__name__}")
        groups = self.pending()
        for agent, value in responses.items():
            if agent not in groups and len(value) > 0:
                raise ValueError(f"responses for {agent!r}, which has no pending expansion; pending "
                                 f"agents: {list(groups)}")
        position: dict[int, tuple[str, int]] = {}
        for agent, items in groups.items():
            if agent not in responses:
                raise ValueError(f"responses has no entry for agent {agent!r} ({len(items)} pending)")
            given = responses[agent]
            if isinstance(given, (str, bytes)) or not hasattr(given, "__len__"):
                raise TypeError(f"responses[{agent!r}] must be a list of responses, got {type(given).__name__}")
            if len(given) != len(items):
                raise ValueError(f"responses[{agent!r}] has {len(given)} responses but {agent!r} has "
                                 f"{len(items)} pending expansions")
            for i, item in enumerate(items):
                position[item.ticket] = (agent, i)

        # Validate and extract everything before any state changes.
        work: list[tuple[_Slot, _Work, int, int]] = []
        all_items: list[tuple] = []
        for item, exp, slot in self._pending:
            agent, i = position[item.ticket]
            text, token_ids, logprobs = slot.episode.check_response(
                responses[agent][i], f"responses[{agent!r}][{i}]")
            code, items = slot.episode.work(text)
            work.append((slot, _Work(item, exp, text, code, token_ids, logprobs, []),
                         len(all_items), len(items)))
            all_items.extend(items)
        futures = self._execute(all_items)
        self._pending = []
        for slot, w, start, n in work:
            w.results = futures[start:start + n]
            slot.running.append(w)
        if not wait:
            return []
        concurrent.futures.wait([f for slot in self._slots for w in slot.running for f in w.results])
        return self.collect(wait=False)

    def _execute(self, items: list[tuple]) -> list[concurrent.futures.Future]:
        """Hand `items` to the executor: futures of their results (already resolved when the
        executor has only the blocking `run_many`)."""
        if not items:
            return []
        stop = self.config.stop_on_first_failure
        executor = self.executor
        if hasattr(executor, "submit_many"):
            return list(executor.submit_many(items, stop_on_first_failure=stop))
        return [_done_future(r) for r in executor.run_many(items, stop_on_first_failure=stop)]

    def collect(self, wait: bool = True, timeout: float | None = None) -> list[FinishedTree]:
        """Land every tree whose programs' results are all in (its expansions in the order they
        were selected) and return the trees that finished.

        ``wait=True``: when no tree is ready yet, wait (at most `timeout` seconds, None: no
        limit) until one is; returns at once when nothing is running.
        """
        landed, finished = self._land_ready()
        if landed or not wait:
            return finished
        futures = {f for slot in self._slots for w in slot.running for f in w.results}
        while futures:
            done, futures = concurrent.futures.wait(
                futures, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
            landed, finished = self._land_ready()
            if landed or timeout is not None:
                return finished
        return []

    def _land_ready(self) -> tuple[int, list[FinishedTree]]:
        """Land the trees whose results are all in: (trees landed, trees finished)."""
        landed = 0
        for slot in self._slots:
            if self.landing == "as_ready":
                works = [w for w in slot.running if all(f.done() for f in w.results)]
            elif slot.running and all(f.done() for w in slot.running for f in w.results):
                works = slot.running
            else:
                works = []
            if not works:
                continue
            landed += 1
            ep = slot.episode
            slot.running = [w for w in slot.running if w not in works]
            for w in works:
                results = [f.result() for f in w.results]  # an executor failure raises here
                if self.expansions_per_tree > 1:
                    ep.scheduler.clear_pending(w.expansion)
                ep.in_flight -= 1
                if ep.done:  # solved earlier in this round with stop_on_solve
                    self.discarded += 1
                    continue
                ep.land(w.expansion, w.text, w.code, results, token_ids=w.token_ids,
                        logprobs=w.logprobs)
                self.landed += 1
        finished = []
        for slot in list(self._slots):
            if slot.episode.done and not slot.running and slot.episode.in_flight == 0:
                self._slots.remove(slot)
                ep = slot.episode
                finished.append(FinishedTree(slot.index, ep.problem, ep.tree, ep.records(), ep.solved))
        return landed, finished

    def run(self, policy: Callable[..., Sequence[Any]] | Mapping[str, Any]) -> list[FinishedTree]:
        """Search every queued problem, asynchronously (module docstring), with
        `policy(agent, observations) -> responses`, or `policy(agent, observations, seeds)`
        when it takes a third argument (the pending expansions' seeds), or with agent objects
        ``{name: agent}`` (see `respond`). Trees come back in the order they finish."""
        finished: list[FinishedTree] = []
        if not self.order_free(policy):  # responses depend on the calls' order: keep rounds
            while not self.done:
                finished.extend(self.step(policy))
            return finished
        while not self.done:
            finished.extend(self.collect(wait=False))
            batch = self.pending()
            if batch:
                self.submit(self.responses(policy, batch), wait=False)
            elif not self.done:
                finished.extend(self.collect())
        return finished

    def order_free(self, policy: Callable[..., Sequence[Any]] | Mapping[str, Any]) -> bool:
        """Whether `policy`'s responses depend only on each expansion's own seed (the search has
        a seed and the policy, or every agent's ``generate``, takes seeds). Only then does `run`
        go asynchronous: an unseeded agent's answers depend on the order and make-up of its
        calls, which the asynchronous loop leaves to timing, so `run` keeps lock-step rounds."""
        if not self._seeded:
            return False
        if isinstance(policy, Mapping):
            return all(_takes(getattr(a, "generate_async", None) or a.generate, keyword="seeds")
                       for a in policy.values())
        return _takes(policy, positional=3)

    def step(self, policy: Callable[..., Sequence[Any]] | Mapping[str, Any]) -> list[FinishedTree]:
        """One round: the pending expansions' responses from `policy` (as in `run`), submitted
        and waited for."""
        return self.submit(self.responses(policy, self.pending()))

    @staticmethod
    def responses(policy: Callable[..., Sequence[Any]] | Mapping[str, Any],
                  batch: dict[str, list[PendingExpansion]]) -> dict[str, list[Any]]:
        """`policy`'s responses to `batch` (a `pending()` result), as `run` asks for them."""
        if isinstance(policy, Mapping):
            return respond(policy, batch)
        takes_seeds = _takes(policy, positional=3)
        out = {}
        for a, items in batch.items():
            obs = [p.observation for p in items]
            args = (a, obs, [p.seed for p in items]) if takes_seeds else (a, obs)
            out[a] = list(policy(*args))
        return out

    def close(self) -> None:
        """Close the executor if this object created it."""
        if self._owns_executor and self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> BatchedSearch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

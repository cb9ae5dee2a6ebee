"""Search strategies by name, shared by `mars2 search`, `eval` and `bench`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mars2_env import scheduler as sched

STRATEGIES: dict[str, str] = {
    "mars2": "Thompson sampling, agent first, then GEN/CONT descent (the paper, §2.1)",
    "abmcts": "AB-MCTS-A: GEN/CONT descent first, agent by Thompson sampling at GEN",
    "parallel": "independent samples from the root (best-of-N; the GRPO group)",
    "sequential": "a chain, each node refining the last",
    "best_first": "refine the best node so far",
}


def scheduler_factory(name: str, agents: Sequence[str], *, prior: str = "beta",
                      refine_scope: str = "any", max_depth: int | None = None
                      ) -> Callable[[], sched.ThompsonScheduler]:
    """A zero-argument factory making a fresh scheduler of strategy `name` for `agents`.

    One scheduler is built at once so that bad options fail here, before any search starts.
    """
    factory = _factory(name, list(agents), prior, refine_scope, max_depth)
    factory()
    return factory


def _factory(name: str, agents: list[str], prior: str, refine_scope: str, max_depth: int | None
             ) -> Callable[[], sched.ThompsonScheduler]:
    if name == "mars2":
        return lambda: sched.ThompsonScheduler(agents, prior=prior, order="agent_first",
                                               refine_scope=refine_scope, max_depth=max_depth)
    if name == "abmcts":
        return lambda: sched.ThompsonScheduler(agents, prior=prior, order="node_first",
                                               refine_scope=refine_scope, max_depth=max_depth)
    if name == "parallel":
        return lambda: sched.ParallelSampling(agents)
    if name == "sequential":
        return lambda: sched.SequentialRefinement(agents)
    if name == "best_first":
        return lambda: sched.BestFirst(agents)
    raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")

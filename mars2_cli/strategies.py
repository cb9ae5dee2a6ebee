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


#: which nodes an agent may refine, per tree strategy, when the user does not say: the paper's
#: MARS² lets an agent refine only nodes it wrote itself (§2.1); AB-MCTS-A picks the node before
#: the agent, so anyone refines anything
DEFAULT_REFINE_SCOPE: dict[str, str] = {"mars2": "own", "abmcts": "any"}

REFINE_SCOPE_HELP = ("which nodes an agent may refine: own = only nodes it wrote itself (the "
                     "paper's MARS², the default for --strategy mars2), any = any node of the "
                     "shared tree (the only choice for abmcts, its default)")


def resolve_refine_scope(name: str, refine_scope: str | None) -> str:
    """The refine scope strategy `name` runs with: the one given, else its default."""
    if refine_scope is None:
        return DEFAULT_REFINE_SCOPE.get(name, "any")
    return refine_scope


def scheduler_factory(name: str, agents: Sequence[str], *, prior: str = "beta",
                      refine_scope: str | None = None, max_depth: int | None = None
                      ) -> Callable[[], sched.ThompsonScheduler]:
    """A zero-argument factory making a fresh scheduler of strategy `name` for `agents`.

    ``refine_scope`` None takes the strategy's default (`DEFAULT_REFINE_SCOPE`). One scheduler
    is built at once so that bad options fail here, before any search starts.
    """
    factory = _factory(name, list(agents), prior, resolve_refine_scope(name, refine_scope),
                       max_depth)
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

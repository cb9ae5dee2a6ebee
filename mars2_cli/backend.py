"""Where a command's generation and execution run: in this process (a local `Executor`, agents
built here) or on Ray (``--ray``: executor actors, generation actor pools, rollout workers).

`search`, `eval` and `bench` add the Ray flags with `add_backend_arguments`, open a `Backend`
with `open_backend`, build their agents with `backend.make_agent` and run searches with
`search_trees`, so the same search loop serves both.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mars2_ray.options import add_ray_arguments, ray_options

__all__ = ["Backend", "add_backend_arguments", "backend_options", "print_plan", "open_backend",
           "search_trees"]


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and the flags that size and place its actors."""
    add_ray_arguments(parser)


def backend_options(args: argparse.Namespace, command: str, *, shards: bool = True) -> Any:
    """The `RayOptions` of `args` (None without ``--ray``); refuses flags that do not apply."""
    opts = ray_options(args)
    if opts is None:
        return None
    if getattr(args, "executor_workers", None) is not None:
        raise ValueError("--executor-workers sizes the local executor; with --ray the executor "
                         "actors are sized by --executor-actors and --executor-cpus")
    if not shards and opts.rollout_workers > 1:
        raise ValueError(f"--rollout-workers applies to mars2 search and eval, not mars2 {command}")
    return opts


def _ray_error(exc: Exception, address: str) -> SystemExit:
    """One line for Ray missing or a cluster that cannot be reached."""
    if isinstance(exc, ImportError):
        return SystemExit(f"mars2: {exc} (the ray extra is optional; plan a cluster without it: "
                          "--dry-run --cluster 3:cpus=96,gpus=8)")
    return SystemExit(f"mars2: cannot join the Ray cluster at {address!r}: {exc} (start one with "
                      "`ray start --head`, or use --ray without an address for a local Ray)")


def print_plan(opts: Any, specs: list[str]) -> int:
    """`--dry-run`: print where each actor would go; 0 if everything fits, else 2."""
    from mars2_ray.session import preview_plan

    try:
        plan = preview_plan(opts, [(f"coder_{i}", s) for i, s in enumerate(specs)])
    except (ImportError, ConnectionError) as exc:
        raise _ray_error(exc, opts.address) from None
    return show_plan(plan)


def show_plan(plan: Any) -> int:
    """Print a dry run's placement plan; 0 if it fits, else 2 (with a line saying so)."""
    print(plan.format())
    if not plan.ok:
        print("\nthe plan does not fit: change the options above or the cluster", file=sys.stderr)
        return 2
    print("\n(dry run: nothing was started)")
    return 0


@dataclass
class Backend:
    """The executor and agent factory of a run. `executor` is None for rollout workers (each
    has its own); `make_agent(spec, **overrides)` returns an agent object, or with rollout
    workers the ``(spec, overrides)`` each worker builds its pool from."""

    executor: Any
    make_agent: Callable[..., Any]
    session: Any = None
    executor_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def sharded(self) -> bool:
        return self.session is not None and self.session.options.rollout_workers > 1


@contextlib.contextmanager
def open_backend(args: argparse.Namespace, opts: Any, specs: list[str]) -> Iterator[Backend]:
    """A local `Executor` and `agents.make_agent`, or Ray actors when `opts` is given; the
    executors get the limits of ``--time-limit-policy``."""
    from mars2_cli.common import executor_limits

    limits = executor_limits(args)
    if opts is None:
        from agents import make_agent
        from mars2_env.execution import Executor

        with Executor(max_workers=getattr(args, "executor_workers", None), **limits) as executor:
            yield Backend(executor, make_agent)
        return
    from mars2_ray.session import RaySession

    try:
        session = RaySession(opts, [(f"coder_{i}", s) for i, s in enumerate(specs)])
    except (ImportError, ConnectionError) as exc:
        raise _ray_error(exc, opts.address) from None
    with session:
        print(session.plan.format(), file=sys.stderr, flush=True)
        if opts.rollout_workers > 1:
            yield Backend(None, lambda spec, **overrides: (spec, overrides), session, limits)
        else:
            yield Backend(session.executor(**limits), session.agent, session, limits)


def search_trees(backend: Backend, problems: list, agents: dict[str, Any], trees_path: Path, *,
                 strategy: str, already: int = 0, total: int | None = None,
                 skip: Any = (), into: list | None = None, **search_kwargs: Any) -> list:
    """Search `problems` (less `skip`) with `agents`, appending each finished tree to
    `trees_path` (and to `into`, which a caller interrupted by Ctrl-C can read); the trees, in
    the order they finished. `search_kwargs` go to `BatchedSearch`."""
    total = len(problems) if total is None else total
    if backend.sharded:
        return _sharded_loop(backend.session, problems, agents, trees_path, skip=skip,
                             already=already, total=total, strategy=strategy,
                             search_kwargs=search_kwargs, executor_kwargs=backend.executor_kwargs,
                             into=into)
    from mars2_cli.search import _search_loop
    from mars2_env.vector import BatchedSearch

    with BatchedSearch(problems, list(agents), executor=backend.executor, skip=skip,
                       **search_kwargs) as search:
        return _search_loop(search, agents, trees_path, already=already, total=total,
                            strategy=strategy, into=into)


def _sharded_loop(session: Any, problems: list, agents: dict[str, Any], trees_path: Path, *,
                  skip: Any, already: int, total: int, strategy: str,
                  search_kwargs: dict[str, Any], executor_kwargs: dict[str, Any],
                  into: list | None = None) -> list:
    from tqdm import tqdm

    from mars2_cli.summary import append_tree

    finished_trees = [] if into is None else into
    solved = programs = 0
    started = time.monotonic()
    with tqdm(total=total, initial=already, unit="tree", desc="search", dynamic_ncols=True) as bar:
        for trees, written in session.search_shards(problems, agents, search_kwargs, skip=skip,
                                                     executor_kwargs=executor_kwargs):
            programs += written
            for fin in trees:
                fin.tree.metadata.update({"strategy": strategy, "problem_title": fin.problem.title,
                                          "problem_statement": fin.problem.statement})
                append_tree(trees_path, fin.tree)
                finished_trees.append(fin.tree)
                solved += int(fin.solved)
                bar.update(1)
            rate = programs / max(1e-9, time.monotonic() - started)
            bar.set_postfix(programs=programs, solved=solved, programs_per_s=f"{rate:.1f}")
    return finished_trees

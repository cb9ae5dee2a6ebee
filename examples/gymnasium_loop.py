"""The standard Gymnasium loop: one agent searches its own tree per problem (RS²).

    python examples/gymnasium_loop.py --problems 2 --budget 4
    python examples/gymnasium_loop.py --parallel      # GRPO-style group of independent samples

Each step writes one node (a new candidate or a refinement chosen by the scheduler) and pays its
raw reward; at the end `info["nodes"]` has the shaped rewards and tree advantages.
The scripted policy stands in for an LLM: it reads the demo problems' bundled solutions.
"""

from __future__ import annotations

import argparse

import gymnasium

import mars2_env  # noqa: F401  (registers "mars2/CodeSearch-v0")
from mars2_env.problems import load_problems
from mars2_env.scheduler import ParallelSampling


def scripted_policy(problems):
    """Wrong program for a new candidate, the reference solution when refining."""
    by_statement = {p.statement: p for p in problems}

    def act(obs: dict) -> str:
        meta = by_statement[obs["statement"]].metadata
        code = meta["reference_solution"] if obs["kind"] == 1 else meta["wrong_solutions"][0]
        return f"```python\n{code.rstrip()}\n```"
    return act


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", action="store_true", help="ParallelSampling instead of Thompson")
    args = parser.parse_args(argv)

    problems = [p for p in load_problems("builtin:demo") if p.metadata["wrong_verdicts"][0] != "time_limit"]
    problems = problems[: args.problems]
    scheduler = ParallelSampling(["coder_0"]) if args.parallel else None
    env = gymnasium.make("mars2/CodeSearch-v0", problems=problems, budget=args.budget, scheduler=scheduler)
    act = scripted_policy(problems)
    obs, info = env.reset(seed=args.seed)
    for _ in problems:
        episode_return, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            episode_return += reward
            done = terminated or truncated
        tree = env.unwrapped.tree
        print(f"{tree.problem_id}: return {episode_return:.2f}, solved={info['solved']}, parents "
              f"{[n.parent for n in tree.nodes()]}, advantages "
              + ", ".join(f"{r['advantage']:+.2f}" for r in info["nodes"]))
        obs, info = env.reset()
    env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

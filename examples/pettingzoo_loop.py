"""The standard PettingZoo loop over the MARS² tree-search environment, with two scripted agents.

Each episode is one problem's search tree. The scheduler (Thompson sampling) picks which agent
writes the next node and where: a new candidate (kind 0) or a refinement of a node (kind 1, the
observation then carries the parent's code and its execution feedback). When the budget is spent
every agent is terminated (budget_left is observed, so the end is terminal) and `info["nodes"]` holds, per node it wrote, the raw reward, the
tree-consistent shaped reward and the tree advantage that MARS² trains on.

    python examples/pettingzoo_loop.py --problems 2 --budget 6

The scripted agents stand in for LLMs (see `agents.make_agent` for real ones): they read the
demo problems' bundled solutions, so this runs in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import zlib

from mars2_env.aec import env as make_env
from mars2_env.problems import Problem, load_problems


class ScriptedCoder:
    """Answers like a weak or a strong coder, using a demo problem's bundled programs.

    The weak coder always writes a wrong program. The strong one fixes any program it refines
    (the reference solution) and gets a fresh candidate right one time in three. Real agents read
    `obs["prompt"]` (JSON chat messages) instead.
    """

    def __init__(self, problems: list[Problem], strong: bool):
        self.by_statement = {p.statement: p for p in problems}
        self.strong = strong

    def act(self, obs: dict) -> str:
        meta = self.by_statement[obs["statement"]].metadata
        wrong = [c for c, v in zip(meta["wrong_solutions"], meta["wrong_verdicts"], strict=True) if v != "time_limit"]
        lucky = zlib.crc32(f"{obs['prompt']}|{obs['budget_left']}".encode()) % 3 == 0
        right = self.strong and (obs["kind"] == 1 or lucky)
        code = meta["reference_solution"] if right else wrong[obs["budget_left"] % len(wrong)]
        return f"Let me write it.\n```python\n{code.rstrip()}\n```"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=2, help="how many demo problems to search")
    parser.add_argument("--budget", type=int, default=6, help="nodes per tree")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    problems = load_problems("builtin:demo")[: args.problems]
    coders = {"coder_0": ScriptedCoder(problems, strong=False), "coder_1": ScriptedCoder(problems, strong=True)}
    env = make_env(problems=problems, agents=list(coders), budget=args.budget, render_mode="ansi")
    env.reset(seed=args.seed)
    for episode in range(len(problems)):
        if episode:
            env.reset()  # next problem; the seed sequence continues
        returns = dict.fromkeys(coders, 0.0)
        for agent in env.agent_iter():
            obs, reward, terminated, truncated, info = env.last()
            returns[agent] += reward  # reward accumulated since this agent last acted
            if terminated or truncated:
                rows = info["nodes"]
                print(f"{agent}: wrote {len(rows)} nodes, return {returns[agent]:.2f}, advantages "
                      + ", ".join(f"{r['advantage']:+.2f}" for r in rows))
                action = None
            else:
                action = coders[agent].act(obs)
            env.step(action)
        print(env.render())
    env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

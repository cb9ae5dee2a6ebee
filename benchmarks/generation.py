"""Two agents of one model: one batch (`agents.hf.generate_together`) vs one call per agent.

`mars2 search --agents hf:embedded hf:embedded` (the demo) asks both agents for about half of
each round's programs. On a CPU a decode step costs about the same for 8 rows as for 4, so
sampling both agents' prompts in one batch should take close to half the time. Both sides run
the same prompts, in the same process, alternating, with `max_new_tokens` tokens and EOS
disabled so every row decodes the same number of steps.

    .venv/bin/python benchmarks/generation.py            # ~1-3 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts-per-agent", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: agents.hf)")
    args = p.parse_args(argv)

    from agents.hf import HFAgent, generate_together
    from mars2_env.problems import load_problems
    from mars2_env.prompts import COMPACT_TEMPLATES, render_messages

    first = HFAgent.embedded(name="coder_0", seed=1, max_new_tokens=args.max_new_tokens,
                             num_threads=args.threads)
    second = HFAgent(first.model, first.tokenizer, name="coder_1", seed=2,
                     max_new_tokens=args.max_new_tokens, num_threads=args.threads)
    for agent in (first, second):
        agent.eos_token_ids = {-1}  # every row decodes max_new_tokens steps: equal work
    problems = load_problems("builtin:trivial")
    import json

    def obs(i: int) -> dict:
        return {"prompt": json.dumps(render_messages(problems[i], templates=COMPACT_TEMPLATES))}

    n = args.prompts_per_agent
    obs_a, obs_b = [obs(i) for i in range(n)], [obs(n + i) for i in range(n)]
    generate_together([first, second], [obs_a[:1], obs_b[:1]])  # warm up

    separate, together = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        first.generate(obs_a)
        second.generate(obs_b)
        separate.append(time.perf_counter() - t)
        t = time.perf_counter()
        generate_together([first, second], [obs_a, obs_b])
        together.append(time.perf_counter() - t)
    s, b = statistics.median(separate), statistics.median(together)
    print(f"2 agents x {n} prompts, {args.max_new_tokens} new tokens each, torch threads "
          f"{first.num_threads}, load average {os.getloadavg()[0]:.1f}")
    print(f"one call per agent: {s:.1f} s   one batch: {b:.1f} s   speed-up {s / b:.2f}x "
          f"(medians of {args.repeats})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generation speed of `agents.hf.HFAgent` vs a plain transformers ``generate``, batch 1 and 8.

Both sides run the embedded SmolLM2-135M on the same prompts, in the same process, alternating,
with the same torch threads (every core by default), EOS disabled so every row decodes
``--max-new-tokens`` steps. The agent samples as the search asks it to: per-request seeds
(each row from its own generator, `agents.hf._SeededRows`) and the raw-logprob recording; the
plain side is ``model.generate(do_sample=True)``. It prints tokens/s of each and their ratio.

``--check-invariance N`` also samples N seeded requests (8 prompts x N/8 seeds) in batches of
8 and one at a time, and ``torch.manual_seed(seed)`` + ``generate(do_sample=True)`` one at a
time (how the agent sampled seeded requests before rows had their own generators), and counts
the responses that differ: a left-padded batched forward pass may differ from a lone one in the
last float bits.

    .venv/bin/python benchmarks/generation.py                       # ~2-4 min on 2 busy cores
    .venv/bin/python benchmarks/generation.py --check-invariance 64 # + ~5 min
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--check-invariance", type=int, default=0, metavar="N",
                   help="also count seeded responses that differ batched vs alone (N requests)")
    args = p.parse_args(argv)

    import torch
    import transformers

    from agents.base import derive_seed
    from agents.hf import HFAgent
    from mars2_env.cpu import usable_cores
    from mars2_env.problems import load_problems
    from mars2_env.prompts import COMPACT_TEMPLATES, render_messages

    threads = args.threads or usable_cores()
    agent = HFAgent.embedded(name="coder_0", seed=1, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature, num_threads=threads)
    problems = load_problems("builtin:trivial")
    observations = [{"prompt": json.dumps(render_messages(p, templates=COMPACT_TEMPLATES))}
                    for p in problems]
    model, tok = agent.model, agent.tokenizer
    load_start = os.getloadavg()[0]

    def plain(obs: list[dict], n_tokens: int) -> None:
        prompts = [agent.encode_prompt(json.loads(o["prompt"])) for o in obs]
        width = max(len(x) for x in prompts)
        ids = torch.full((len(prompts), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, x in enumerate(prompts):
            ids[i, width - len(x):] = torch.tensor(x)
            mask[i, width - len(x):] = 1
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True,
                                 temperature=args.temperature, top_p=1.0, top_k=0,
                                 max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                                 pad_token_id=tok.pad_token_id)
        assert out.shape[1] - width == n_tokens

    def with_agent(obs: list[dict], seeds: list[int]) -> None:
        gens = agent.generate(obs, seeds=seeds)
        assert all(len(g.completion_token_ids) == args.max_new_tokens for g in gens)

    agent.eos_token_ids = {-1}  # no row stops early: both sides decode the same steps
    transformers.logging.set_verbosity_error()  # (it warns that EOS -1 never stops a row)
    torch.set_num_threads(threads)
    with_agent(observations[:1], [0])  # warm up
    plain(observations[:1], 4)
    rows = []
    for batch in args.batches:
        obs = observations[:batch]
        t_agent, t_plain = [], []
        for r in range(args.repeats):
            start = time.perf_counter()
            with_agent(obs, [100 * r + i for i in range(batch)])
            t_agent.append(time.perf_counter() - start)
            start = time.perf_counter()
            plain(obs, args.max_new_tokens)
            t_plain.append(time.perf_counter() - start)
        tokens = batch * args.max_new_tokens
        a, b = tokens / statistics.median(t_agent), tokens / statistics.median(t_plain)
        rows.append((batch, a, b))
    print(f"embedded SmolLM2-135M, {args.max_new_tokens} new tokens a row, temperature "
          f"{args.temperature}, torch threads {threads} of {usable_cores()} cores, load average "
          f"{load_start:.1f}-{os.getloadavg()[0]:.1f}")
    print(f"{'batch':>5}  {'HFAgent':>10}  {'generate':>10}  ratio")
    for batch, a, b in rows:
        print(f"{batch:>5}  {a:>7.1f}/s  {b:>7.1f}/s  {a / b:.2f}   (tokens/s, medians of "
              f"{args.repeats})")

    if args.check_invariance:
        agent.eos_token_ids = {tok.eos_token_id}
        check_invariance(agent, observations[:8], args.check_invariance, derive_seed)
    return 0


def check_invariance(agent, observations, n: int, derive_seed) -> None:
    """Count seeded responses that differ between a batch of 8, one at a time, and the
    former one-at-a-time sampler (global seed + generate(do_sample=True))."""
    import torch
    from transformers import GenerationConfig

    requests = [(observations[i % 8], 1000 + i) for i in range(n)]
    batched = []
    for start in range(0, n, 8):
        chunk = requests[start:start + 8]
        batched += [g.completion_token_ids for g in agent.generate(
            [o for o, _ in chunk], seeds=[s for _, s in chunk])]
    alone = [agent.generate([o], seeds=[s])[0].completion_token_ids for o, s in requests]
    config = GenerationConfig(do_sample=True, temperature=agent.temperature, top_p=agent.top_p,
                              top_k=agent.top_k, max_new_tokens=agent.max_new_tokens,
                              pad_token_id=agent.tokenizer.pad_token_id,
                              eos_token_id=sorted(agent.eos_token_ids))
    former = []
    for o, s in requests:
        ids = torch.tensor([agent.encode_prompt(json.loads(o["prompt"]))])
        with torch.random.fork_rng(), torch.inference_mode():
            torch.manual_seed(derive_seed(agent.seed, s))
            out = agent.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                       generation_config=config)
        new = out[0, ids.shape[1]:].tolist()
        for j, t in enumerate(new):
            if t in agent.eos_token_ids:
                new = new[:j + 1]
                break
        former.append(new)
    differ = sum(a != b for a, b in zip(batched, alone, strict=True))
    differ_former = sum(a != b for a, b in zip(alone, former, strict=True))
    tokens = sum(len(x) for x in batched)
    print(f"invariance: {n} seeded responses ({tokens} tokens): batch of 8 vs one at a time "
          f"differ in {differ}; one at a time vs the former sampler (manual_seed + "
          f"generate(do_sample=True)) differ in {differ_former}")


if __name__ == "__main__":
    sys.exit(main())

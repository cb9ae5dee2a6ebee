"""Seeded sampling in batches (issue 18, item 2): every row draws from its own generator, so a
batch gives each request what it gets alone - and what the former one-at-a-time sampler
(``torch.manual_seed`` + ``generate(do_sample=True)``) gave; agents of one model share a batch in
the search; torch threads follow the executor's busy workers."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from agents.base import derive_seed  # noqa: E402
from agents.hf import HFAgent, generate_together  # noqa: E402
from mars2_env.prompts import render_messages  # noqa: E402
from train.tiny import tiny_llama, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def parts():
    tok = tiny_tokenizer()
    return tiny_llama(tok), tok


def observations(problems, n):
    return [{"problem_id": p.id, "statement": p.statement, "kind": 0,
             "prompt": json.dumps(render_messages(p))} for p in problems[:n]]


def former_sampler(agent: HFAgent, obs: dict, seed: int) -> list[int]:
    """What `HFAgent` sampled for one seeded request before rows had their own generators."""
    from transformers import GenerationConfig

    ids = torch.tensor([agent.encode_prompt(json.loads(obs["prompt"]))])
    config = GenerationConfig(do_sample=True, temperature=agent.temperature, top_p=agent.top_p,
                              top_k=agent.top_k, max_new_tokens=agent.max_new_tokens,
                              pad_token_id=agent.tokenizer.pad_token_id,
                              eos_token_id=sorted(agent.eos_token_ids))
    with torch.random.fork_rng(), torch.inference_mode():
        torch.manual_seed(derive_seed(agent.seed, seed))
        out = agent.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                   generation_config=config)
    new = out[0, ids.shape[1]:].tolist()
    for j, t in enumerate(new):
        if t in agent.eos_token_ids:
            return new[:j + 1]
    return new


@pytest.mark.parametrize("settings", [dict(temperature=1.0, top_p=1.0, top_k=0),
                                      dict(temperature=0.7, top_p=0.9, top_k=20)])
def test_a_batch_samples_each_row_as_the_former_lone_sampler(parts, demo_problems, settings):
    model, tok = parts
    agent = HFAgent(model, tok, max_new_tokens=10, seed=3, batch_size=8, num_threads=1,
                    **settings)
    obs = observations(demo_problems, 6)
    seeds = [11, 22, 33, 44, 55, 66]
    batch = agent.generate(obs, seeds=seeds)
    assert len({len(agent.encode_prompt(json.loads(o["prompt"]))) for o in obs}) > 1  # padded
    for gen, o, s in zip(batch, obs, seeds, strict=True):
        assert gen.completion_token_ids == former_sampler(agent, o, s)
    assert len({tuple(g.completion_token_ids) for g in batch}) == len(batch)


def test_one_generate_call_per_batch(parts, demo_problems, monkeypatch):
    model, tok = parts
    agent = HFAgent(model, tok, max_new_tokens=6, seed=3, batch_size=4, num_threads=1)
    calls = []
    real = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw["input_ids"].shape[0])
                        or real(**kw))
    agent.generate(observations(demo_problems, 6), seeds=list(range(6)))
    assert calls == [4, 2]  # batch_size rows a call, not one call per seeded request


def test_agents_of_one_model_share_one_batch_in_the_search(parts, demo_problems, monkeypatch):
    """`respond` (the search loop) samples agents with equal `sampling_key` in one batch; each
    row is still what its agent samples for that request alone."""
    from mars2_env.vector import PendingExpansion, respond

    model, tok = parts
    a = HFAgent(model, tok, name="coder_0", max_new_tokens=8, seed=1, num_threads=1)
    b = HFAgent(model, tok, name="coder_1", max_new_tokens=8, seed=2, num_threads=1)
    obs = observations(demo_problems, 4)
    batch = {"coder_0": [PendingExpansion(i, i, "p", "coder_0", 0, obs[i], seed=100 + i)
                         for i in range(3)],
             "coder_1": [PendingExpansion(3, 3, "p", "coder_1", 0, obs[3], seed=7)]}
    alone = {"coder_0": [a.generate([obs[i]], seeds=[100 + i])[0].text for i in range(3)],
             "coder_1": [b.generate([obs[3]], seeds=[7])[0].text]}
    calls = []
    real = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw["input_ids"].shape[0])
                        or real(**kw))
    out = respond({"coder_0": a, "coder_1": b}, batch)
    assert calls == [4]
    assert {k: [g.text for g in v] for k, v in out.items()} == alone
    # generate_together with seeds gives the same rows
    together = generate_together([a, b], [obs[:3], obs[3:]], seeds=[[100, 101, 102], [7]])
    assert [[g.text for g in v] for v in together] == [alone["coder_0"], alone["coder_1"]]


def test_threads_follow_the_executor_busy_workers(parts, demo_problems, monkeypatch):
    import mars2_env.execution.executor as executor_module

    model, tok = parts
    before = torch.get_num_threads()
    agent = HFAgent(model, tok, max_new_tokens=3, seed=1)
    from mars2_env import cpu

    monkeypatch.setattr(cpu, "usable_cores", lambda: 4)  # four cores, nothing else running
    monkeypatch.setattr(cpu, "others_running", lambda: 0)
    seen = []
    hook = model.register_forward_pre_hook(lambda *a: seen.append(torch.get_num_threads()))
    try:
        torch.set_num_threads(1)
        for busy, expected in ((0, 4), (1, 3), (3, 1), (7, 1)):
            monkeypatch.setattr(executor_module, "busy_workers", lambda b=busy: b)
            assert agent.threads_now() == expected
            seen.clear()
            agent.generate(observations(demo_problems, 1))
            assert set(seen) == {expected}
            assert torch.get_num_threads() == 1  # restored after generation
        fixed = HFAgent(model, tok, max_new_tokens=3, seed=1, num_threads=2)
        assert fixed.threads_now() == 2  # an explicit num_threads is kept as given
    finally:
        hook.remove()
        torch.set_num_threads(before)


def test_busy_workers_counts_this_process_executors(demo_problems):
    from mars2_env.execution import Executor
    from mars2_env.execution.executor import busy_workers

    p = demo_problems[0]
    with Executor(max_workers=2, time_limit_s=10.0) as ex:
        futures = ex.submit_many([(p, "import time\ntime.sleep(3)\n", "public")] * 2,
                                 stop_on_first_failure=False)
        import time

        deadline = time.monotonic() + 5
        while ex.busy_workers < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ex.busy_workers == 2 and busy_workers() >= 2
        ex.abandon(futures)

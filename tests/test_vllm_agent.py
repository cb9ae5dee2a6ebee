"""VLLMAgent with the real vLLM engine on the embedded SmolLM2 (run in .venv-vllm:
``bash scripts/setup_vllm_venv.sh`` / ``make test-vllm``). Skipped where vLLM is not installed."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")

from agents.embedded import embedded_model_path  # noqa: E402
from agents.vllm_agent import VLLMAgent  # noqa: E402
from mars2_env.problems import Problem  # noqa: E402
from mars2_env.prompts import render_messages  # noqa: E402

PROBLEMS = [
    Problem(id="sum", statement="Read two integers and print their sum.", kind="stdin"),
    Problem(id="sq", statement="Return x squared, where x is an integer from -1000 to 1000.",
            kind="functional", entry_point="square"),
]
OBS = [{"prompt": json.dumps(render_messages(p))} for p in PROBLEMS]


@pytest.fixture(scope="module")
def agent():
    a = VLLMAgent("embedded", max_new_tokens=16, seed=3, max_model_len=2048)
    yield a
    a.close()


def test_generation_returns_ids_and_raw_logprobs(agent):
    import torch
    from transformers import AutoModelForCausalLM

    gens = agent.generate(OBS)
    assert len(gens) == 2
    hf = AutoModelForCausalLM.from_pretrained(str(embedded_model_path())).eval()
    for gen, problem in zip(gens, PROBLEMS, strict=True):
        assert gen.prompt_token_ids == agent.encode_prompt(render_messages(problem))
        assert 1 <= len(gen.completion_token_ids) <= 16
        assert len(gen.logprobs) == len(gen.completion_token_ids)
        assert gen.finish_reason in ("stop", "length") and isinstance(gen.text, str)
        # logprobs are the model's own (temperature-1) distribution: a transformers forward
        # pass over the same tokens gives the same numbers up to kernel differences
        ids = torch.tensor([gen.prompt_token_ids + gen.completion_token_ids])
        with torch.inference_mode():
            logits = hf(input_ids=ids).logits[0, len(gen.prompt_token_ids) - 1:-1]
        ref = torch.log_softmax(logits.float(), -1).gather(
            -1, torch.tensor(gen.completion_token_ids)[:, None])[:, 0].tolist()
        assert max(abs(a - b) for a, b in zip(ref, gen.logprobs, strict=True)) < 1e-3


def test_same_seed_repeats_and_calls_differ(agent):
    twin = VLLMAgent(llm=agent.llm, max_new_tokens=16, seed=3)
    fresh = VLLMAgent(llm=agent.llm, max_new_tokens=16, seed=3)
    first, second = fresh.generate(OBS), fresh.generate(OBS)
    assert [g.completion_token_ids for g in twin.generate(OBS)] == [
        g.completion_token_ids for g in first]
    assert [g.completion_token_ids for g in first] != [g.completion_token_ids for g in second]


def test_weight_sync_changes_outputs_and_restores(agent):
    from safetensors.torch import load_file

    assert agent.model_path == str(embedded_model_path())
    greedy = VLLMAgent(llm=agent.llm, temperature=0, max_new_tokens=12, seed=0)
    before = [g.completion_token_ids for g in greedy.generate(OBS)]
    state = load_file(str(embedded_model_path() / "model.safetensors"))
    perturbed = {k: (v * 0.5 if ".mlp." in k else v) for k, v in state.items()}
    greedy.load_weights(perturbed)
    changed = [g.completion_token_ids for g in greedy.generate(OBS)]
    assert changed != before
    greedy.load_weights(state)
    assert [g.completion_token_ids for g in greedy.generate(OBS)] == before

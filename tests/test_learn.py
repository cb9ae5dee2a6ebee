"""`make learn` (scripts/learn.py): the warmup split, the held-out Pass@1 interval, and a shrunk
run of the learn config that trains, logs its reward trend and evaluates its saved models."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mars2_env.problems import load_problems

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "mars2_env" / "data"
CONFIG = ROOT / "examples" / "configs" / "learn_cpu.yaml"


def _load_learn():
    spec = importlib.util.spec_from_file_location("learn_script", ROOT / "scripts" / "learn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- the warmup split --------------------------------------------------------------------------


def test_warmup_split_is_disjoint_covers_every_kind_and_sits_in_the_rate_band():
    rates = json.loads((DATA / "trivial_rates.json").read_text())
    measured = rates["settings"][rates["demo_setting"]]
    train = load_problems("builtin:warmup_train")
    heldout = load_problems("builtin:warmup_heldout")
    assert not {p.id for p in train} & {p.id for p in heldout}
    assert len(train) >= 6 and len(heldout) >= 5
    trivial = {p.id: p for p in load_problems("builtin:trivial")}
    for p in train + heldout:
        rate = measured["solved"][p.id] / measured["samples"]       # from the measurement itself
        assert 0.05 <= rate <= 0.40, (p.id, rate)
        assert p.metadata["warmup"]["base_rate"] == pytest.approx(rate, abs=1e-4)
        assert p.metadata["warmup"]["setting"] == rates["demo_setting"]
        # the rows are trivial's rows (same tests), only the metadata gains the provenance
        assert p.public_tests == trivial[p.id].public_tests
        assert p.private_tests == trivial[p.id].private_tests
    for part in (train, heldout):
        assert {p.kind for p in part} == {"stdin", "functional", "assert"}
    # nothing in the band was left out
    band = {pid for pid, c in measured["solved"].items()
            if 0.05 <= c / measured["samples"] <= 0.40}
    assert band == {p.id for p in train} | {p.id for p in heldout}


def test_warmup_builder_reproduces_the_files():
    res = subprocess.run([sys.executable, str(DATA / "build_warmup.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# ---- the interval ------------------------------------------------------------------------------


def test_heldout_pass_at_1_and_interval_match_a_direct_computation():
    from train.heldout import HeldoutEval, difference

    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(2, 20)
        solved = {f"p{i}": rng.randint(0, n) for i in range(rng.randint(1, 9))}
        ev = HeldoutEval(samples=n, solved=solved)
        # unbiased pass@1 per problem is c/n; the variance of c/n is p(1-p)/n, with p taken
        # as (c+1)/(n+2); the mean of P independent estimates divides the sum by P^2
        ps = [c / n for c in solved.values()]
        mean = sum(ps) / len(ps)
        se = math.sqrt(sum((c + 1) / (n + 2) * (n + 1 - c) / (n + 2) / n
                           for c in solved.values())) / len(ps)
        assert ev.pass_at_1 == pytest.approx(mean)
        assert ev.stderr == pytest.approx(se)
        assert ev.ci95[0] == pytest.approx(max(0.0, mean - 1.96 * se), abs=1e-4)
        assert ev.ci95[1] == pytest.approx(min(1.0, mean + 1.96 * se), abs=1e-4)
    # by hand: n = 4, p~ = 5/6 and 3/6 -> (5/36 + 9/36) / 4 / 4 = 14/576
    a = HeldoutEval(samples=4, solved={"x": 4, "y": 2})        # 0.75
    b = HeldoutEval(samples=4, solved={"x": 1, "y": 1})        # 0.25: p~ = 2/6 twice -> 16/576
    assert a.stderr == pytest.approx(math.sqrt(14 / 576))
    d = difference(a, b)
    assert d["delta"] == pytest.approx(0.5)
    assert d["stderr"] == pytest.approx(math.sqrt(14 / 576 + 16 / 576))
    assert d["ci_includes_zero"] is False
    # never solved is still uncertain: the interval has width, and stays inside [0, 1]
    never = HeldoutEval(samples=4, solved={"x": 0, "y": 0})
    assert never.pass_at_1 == 0.0 and never.ci95[0] == 0.0 and never.ci95[1] > 0.1
    with pytest.raises(ValueError, match="different problems"):
        difference(a, HeldoutEval(samples=4, solved={"x": 1}))
    with pytest.raises(ValueError, match="5 solved of 4"):
        HeldoutEval(samples=4, solved={"x": 5})


def test_reward_trend_is_the_least_squares_slope():
    learn = _load_learn()
    t = learn.reward_trend([1, 2, 3, 4], [0.0, 0.5, None, 1.5])
    # slope through (1, 0), (2, 0.5), (4, 1.5): x mean 7/3, y mean 2/3
    sxy = (1 - 7 / 3) * (0 - 2 / 3) + (2 - 7 / 3) * (0.5 - 2 / 3) + (4 - 7 / 3) * (1.5 - 2 / 3)
    sxx = (1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2
    assert t["slope_per_update"] == pytest.approx(sxy / sxx)
    assert t["first_half_mean"] == 0.0 and t["second_half_mean"] == pytest.approx(1.0)
    assert learn.reward_trend([], [])["slope_per_update"] is None


def test_learn_config_is_a_valid_train_config_on_the_warmup_train_part():
    from train.config import Mars2TrainConfig

    cfg = Mars2TrainConfig.from_yaml(CONFIG)
    assert cfg.problems == "builtin:warmup_train" and cfg.mode == "mars2"
    assert cfg.agents == ["hf:embedded", "hf:embedded"]
    assert cfg.max_time_s == 1800 and cfg.prompt_style == "compact" and cfg.stop_at_code_block
    assert "tensorboard" in cfg.report_to


# ---- the training options the learn config needs (tiny random model: fast) --------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    pytest.importorskip("trl")
    from train.tiny import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def _tiny_config(tiny_dir, **overrides):
    from train.config import Mars2TrainConfig

    kw = dict(agents=[f"hf:{tiny_dir}"] * 2, problems="builtin:warmup_train", limit=4, budget=2,
              buffer_threshold=2, per_device_train_batch_size=2, max_new_tokens=8,
              overlong_max_length=8, overlong_buffer_length=4, max_steps=1, progress=False,
              seed=0, max_rounds=1, executor_workers=1, torch_threads=1)
    kw.update(overrides)
    return Mars2TrainConfig(**kw)


def test_prompt_style_and_stop_at_code_block_reach_the_agents_and_the_search(tmp_path, tiny_dir):
    from train.loop import TrainLoop, build_agent

    cfg = _tiny_config(tiny_dir, prompt_style="compact", stop_at_code_block=True)
    assert build_agent(cfg.agents[0], "coder_0", cfg, 0).stop_at_code_block is True
    assert build_agent(cfg.agents[0], "coder_0", cfg.replace(stop_at_code_block=False),
                       0).stop_at_code_block is False
    seen = []
    with TrainLoop(cfg, tmp_path / "run") as loop:
        for agent in loop.agents.values():
            generate = agent.generate

            def recording(observations, generate=generate):
                seen.extend(o["prompt"] for o in observations)
                return generate(observations)

            agent.generate = recording
        loop.run_round()
    assert seen
    from mars2_env.prompts import COMPACT_TEMPLATES

    endings = tuple(t.rsplit("\n\n", 1)[-1] for t in (COMPACT_TEMPLATES.generate,
                                                      COMPACT_TEMPLATES.refine))
    for prompt in seen:   # the compact templates, not the default ones with their system message
        messages = json.loads(prompt)
        assert [m["role"] for m in messages] == ["user"], messages
        assert messages[0]["content"].endswith(endings), messages[0]["content"][-120:]
    with pytest.raises(ValueError, match="prompt_style"):
        cfg.replace(prompt_style="verbose")


def test_max_time_s_ends_the_run_and_still_saves_the_models(tmp_path, tiny_dir):
    from train.loop import train

    summary = train(_tiny_config(tiny_dir, max_time_s=1e-9, max_steps=5, max_rounds=None),
                    tmp_path / "out")
    assert summary["out_of_time"] is True and summary["rounds"] == 0 and not summary["done"]
    for name in ("coder_0", "coder_1"):
        assert (tmp_path / "out" / "final" / name / "config.json").is_file()
    summary = train(_tiny_config(tiny_dir, max_time_s=3600.0), tmp_path / "out2")
    assert summary["out_of_time"] is False and summary["rounds"] == 1
    with pytest.raises(ValueError, match="max_time_s"):
        _tiny_config(tiny_dir, max_time_s=0)


def test_learn_compare_trains_every_mode_and_draws_one_figure(tmp_path, tiny_dir):
    """`make learn-compare`'s code path with the tiny random model (the real comparison is a
    benchmark): one base evaluation, one run per mode with the same settings, one figure."""
    learn = _load_learn()
    out = tmp_path / "compare"
    spec = f"hf:{tiny_dir}"
    rc = learn.main([
        "--config", str(CONFIG), "--out", str(out), "--modes", "grpo", "rs2", "mars2",
        "--eval-samples", "2", "--heldout-limit", "1",
        "--set", f"agents=[{spec}, {spec}]", "max_time_s=600", "max_rounds=1", "max_steps=1",
        "budget=2", "expansions_per_tree=2", "buffer_threshold=2", "per_device_train_batch_size=2",
        "max_new_tokens=12", "agent_max_new_tokens=[4, 12]", "overlong_max_length=12",
        "overlong_buffer_length=8", "generation_batch_size=8", "report_to=[]", "stop_at_code_block=false"])
    assert rc == 0
    result = json.loads((out / "learning.json").read_text())
    assert list(result["modes"]) == ["grpo", "rs2", "mars2"]
    for mode, m in result["modes"].items():
        assert m["config"]["mode"] == mode and m["rounds"] == 1
        strip = {k: v for k, v in m["config"].items() if k != "mode"}
        assert strip == {k: v for k, v in result["modes"]["mars2"]["config"].items()
                         if k != "mode"}                      # the same budget and settings
        rows = [json.loads(x) for x in (Path(m["run_dir"]) / "metrics.jsonl").read_text()
                .splitlines()]
        assert [r["mode"] for r in rows if r["event"] == "round"] == [mode]
        for name in ("coder_0", "coder_1"):
            assert m["after"][name]["samples"] == 2
            assert m["updates"][name] == len(m["series"][name]["update"])
    # mars2 mixes the two agents' lengths in one tree: the overlong penalty is a signal there
    assert sum(result["modes"]["mars2"]["updates"].values()) >= 1
    assert (out / "learning.png").stat().st_size > 10_000


def test_add_puts_more_modes_beside_an_earlier_run_with_the_same_settings(tmp_path, tiny_dir):
    """`make learn`, then `--modes grpo --add`: the base evaluation is reused (not measured
    again), the earlier mode is kept, and a run with other settings or another held-out setting
    is refused rather than compared."""
    learn = _load_learn()
    out = tmp_path / "learn"
    spec = f"hf:{tiny_dir}"

    def common(out=out, samples=2):
        return ["--config", str(CONFIG), "--out", str(out), "--eval-samples", str(samples),
                "--heldout-limit", "1", "--no-plot"]

    settings = [f"agents=[{spec}, {spec}]", "max_time_s=600", "max_rounds=1", "max_steps=1",
                "budget=2", "expansions_per_tree=2", "buffer_threshold=2",
                "per_device_train_batch_size=2", "max_new_tokens=12", "overlong_max_length=12",
                "overlong_buffer_length=8", "generation_batch_size=8", "report_to=[]",
                "stop_at_code_block=false"]
    assert learn.main([*common(), "--modes", "mars2", "--set", *settings]) == 0
    first = json.loads((out / "learning.json").read_text())
    base_file = (out / "base_eval.json").read_bytes()
    with pytest.raises(SystemExit, match=r"other settings \(budget\)"):
        learn.main([*common(), "--modes", "grpo", "--add", "--set", *settings, "budget=3"])
    with pytest.raises(SystemExit, match="another held-out setting"):
        learn.main([*common(samples=3), "--modes", "grpo", "--add", "--set", *settings])
    assert not (out / "grpo").exists()
    assert learn.main([*common(), "--modes", "grpo", "--add", "--set", *settings]) == 0
    result = json.loads((out / "learning.json").read_text())
    assert list(result["modes"]) == ["mars2", "grpo"]
    assert result["modes"]["mars2"] == first["modes"]["mars2"]      # kept as it was
    assert result["base"] == first["base"] and (out / "base_eval.json").read_bytes() == base_file
    assert result["added_to"] == first["command"]
    assert result["modes"]["grpo"]["rounds"] == 1
    assert result["modes"]["grpo"]["after"]["coder_0"]["samples"] == 2
    with pytest.raises(SystemExit, match="no finished mode"):
        learn.main([*common(out=tmp_path / "empty"), "--modes", "grpo", "--add", "--set",
                    *settings])


def test_evaluate_only_measures_the_saved_models_again_without_training(tmp_path, tiny_dir):
    """`--evaluate-only` finishes an interrupted run: the saved models are evaluated (the same
    numbers as at the end of training: seeded samples, one torch thread), nothing is trained
    again, the base evaluation on disk is reused; a missing model is named."""
    learn = _load_learn()
    out = tmp_path / "learn"
    spec = f"hf:{tiny_dir}"
    argv = ["--config", str(CONFIG), "--out", str(out), "--eval-samples", "2",
            "--heldout-limit", "1", "--no-plot", "--modes", "mars2", "--set",
            f"agents=[{spec}, {spec}]", "max_time_s=600", "max_rounds=1", "max_steps=1",
            "budget=2", "expansions_per_tree=2", "buffer_threshold=2",
            "per_device_train_batch_size=2", "max_new_tokens=12", "overlong_max_length=12",
            "overlong_buffer_length=8", "generation_batch_size=8", "report_to=[]",
            "stop_at_code_block=false", "torch_threads=1"]
    assert learn.main(argv) == 0
    first = json.loads((out / "learning.json").read_text())
    run = out / "mars2"
    kept = {p: p.read_bytes() for p in (run / "metrics.jsonl", run / "learn_train.json",
                                        out / "base_eval.json")}
    assert learn.main([*argv, "--evaluate-only"]) == 0
    again = json.loads((out / "learning.json").read_text())
    assert {p: p.read_bytes() for p in kept} == kept          # not trained, base not measured
    assert again["base"] == first["base"]
    m0, m1 = first["modes"]["mars2"], again["modes"]["mars2"]
    assert m1["updates"] == m0["updates"] and m1["after"] == m0["after"]
    assert m1["after"]["coder_0"]["samples"] == 2
    shutil.rmtree(run / "final" / "coder_1")
    with pytest.raises(SystemExit, match=r"no saved model of \['coder_1'\]"):
        learn.main([*argv, "--evaluate-only"])


# ---- a shrunk run of the learn config ----------------------------------------------------------


@pytest.mark.slow
def test_learn_run_logs_the_reward_trend_and_its_saved_models_evaluate(tmp_path):
    pytest.importorskip("trl")
    import numpy as np

    learn = _load_learn()
    out = tmp_path / "learn"
    rc = learn.main([
        "--config", str(CONFIG), "--out", str(out), "--eval-samples", "2",
        "--heldout-limit", "2",
        "--set", "max_time_s=900", "max_steps=2", "max_rounds=6", "buffer_threshold=2",
        "per_device_train_batch_size=2", "budget=4", "expansions_per_tree=2",
        "max_new_tokens=48", "overlong_max_length=48", "overlong_buffer_length=16",
        "learning_rate=1e-4", "executor_workers=1"])
    assert rc == 0
    result = json.loads((out / "learning.json").read_text())
    m = result["modes"]["mars2"]
    run_dir = Path(m["run_dir"])

    # the reward trend: recomputed from metrics.jsonl, where every update logged its reward
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for name in ("coder_0", "coder_1"):
        ups = [r for r in rows if r.get("event") == "update" and r["agent"] == name]
        assert len(ups) == m["updates"][name] == 2
        rewards = [r["reward"] for r in ups]
        assert all(isinstance(r, float) and -1.0 <= r <= 1.0 for r in rewards)
        assert m["series"][name]["reward"] == rewards
        slope = np.polyfit([r["update"] for r in ups], rewards, 1)[0]
        assert m["reward_trend"][name]["slope_per_update"] == pytest.approx(slope, abs=1e-9)
        assert all(v is not None and v >= 0 for v in m["series"][name]["kl"])
        assert all(v is not None and v > 0 for v in m["series"][name]["response_length"])

    # ... and reached TensorBoard through TRL's report_to
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for name in ("coder_0", "coder_1"):
        runs = [d for d in (run_dir / "learners" / name / "runs").iterdir() if d.name != "heldout"]
        tags = set()
        for d in runs:
            acc = EventAccumulator(str(d))
            acc.Reload()
            tags |= set(acc.Tags()["scalars"])
        assert "train/reward" in tags, tags

    # the saved models are the trained ones, and they evaluate
    from safetensors.torch import load_file

    from agents.embedded import embedded_model_path

    base_w = load_file(str(next(embedded_model_path().glob("*.safetensors"))))
    for name in ("coder_0", "coder_1"):
        final = run_dir / "final" / name
        trained = load_file(str(next(final.glob("*.safetensors"))))
        key = next(k for k in trained if k.endswith("layers.0.self_attn.q_proj.weight"))
        assert not np.allclose(trained[key].numpy(), base_w[key].numpy())
        after = m["after"][name]
        assert after["samples"] == 2 and len(after["solved"]) == 2
        assert all(0 <= c <= 2 for c in after["solved"].values())
        assert sum(after["verdicts"].values()) == 4
        assert after["pass_at_1"] == pytest.approx(sum(after["solved"].values()) / 4)
        assert m["improvement"][name]["delta"] == pytest.approx(
            after["pass_at_1"] - result["base"]["pass_at_1"])
    assert (out / "learning.png").stat().st_size > 10_000

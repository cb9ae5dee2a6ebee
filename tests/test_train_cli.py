"""`mars2 train` / `mars2 filter` command lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mars2_cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"


def _train_args(argv):
    return build_parser().parse_args(["train", *argv])


def test_every_config_field_is_a_flag_and_yaml_key(tmp_path):
    from mars2_cli.train_cmd import build_config
    from train.config import Mars2TrainConfig

    p = tmp_path / "c.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "mode": "rs2",
                "agents": ["hf:x"],
                "max_steps": 5,
                "tis_cap": None,
                "report_to": ["tensorboard"],
                "out": str(tmp_path / "fromyaml"),
            }
        )
    )
    args = _train_args(
        [
            "--config",
            str(p),
            "--max-steps",
            "7",
            "--mode",
            "grpo",
            "--kl-beta",
            "0",
            "--no-progress",
            "--agents",
            "hf:a",
            "hf:b",
        ]
    )
    cfg, out, resume = build_config(args)
    assert (cfg.mode, cfg.max_steps, cfg.kl_beta, cfg.progress, cfg.agents) == (
        "grpo",
        7,
        0.0,
        False,
        ["hf:a", "hf:b"],
    )
    assert cfg.tis_cap is None and cfg.report_to == ["tensorboard"] and not resume
    assert out == tmp_path / "fromyaml"
    flags = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    import dataclasses

    assert {f.name for f in dataclasses.fields(Mars2TrainConfig)} <= flags


def test_train_cli_reports_bad_options(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("max_stepz: 3\n")
    with pytest.raises(SystemExit, match="unknown key 'max_stepz'"):
        main(["train", "--config", str(p), "--out", str(tmp_path / "o")])
    p.write_text("mode: ppo\n")
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "mode must be one of" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--buffer-threshold",
                "6",
                "--per-device-train-batch-size",
                "4",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "multiple of per_device_train_batch_size" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "no checkpoints" in capsys.readouterr().err


def test_example_configs_load():
    from train.config import Mars2TrainConfig

    modes = {}
    for name in ("tiny_cpu", "mars2_qwen3_8b", "rs2_qwen3_8b", "grpo_qwen3_8b"):
        cfg = Mars2TrainConfig.from_yaml(CONFIGS / f"{name}.yaml")
        modes[name] = cfg
    assert modes["tiny_cpu"].mode == "mars2" and modes["tiny_cpu"].agents == [
        "hf:embedded",
        "hf:embedded",
    ]
    paper = [modes[n] for n in ("mars2_qwen3_8b", "rs2_qwen3_8b", "grpo_qwen3_8b")]
    assert [c.mode for c in paper] == ["mars2", "rs2", "grpo"]
    # fair comparison: everything but the mode and the agent list is the same
    strip = [
        {k: v for k, v in c.to_dict().items() if k not in ("mode", "agents", "agent_names")}
        for c in paper
    ]
    assert strip[0] == strip[1] == strip[2]
    assert (
        paper[0].temperature == 1.0
        and paper[0].learning_rate == 1e-6
        and paper[0].budget in (8, 16)
    )
    # the paper's choices, each commented with its source in the files
    mars2 = paper[0]
    assert mars2.refine_scope == "own" and mars2.shaping_lambda == 0.5
    assert mars2.kl_bias_correction is False and mars2.kl_beta == 1e-3 and mars2.tis_cap == 2.0
    assert (mars2.epsilon, mars2.epsilon_high) == (3e-4, 4e-4)
    assert mars2.importance_sampling_level == "sequence"
    # rollout batch 512, train batch 256: two optimizer steps per batch of samples
    assert mars2.buffer_threshold == 512 and mars2.optimizer_steps_per_batch == 2
    text = (CONFIGS / "mars2_qwen3_8b.yaml").read_text()
    for key in ("refine_scope", "shaping_lambda", "optimizer_steps_per_batch",
                "kl_bias_correction", "tis_cap", "epsilon_high"):
        line = next(ln for ln in text.splitlines() if ln.startswith(key + ":"))
        assert "#" in line, f"{key} has no comment citing its source"


def test_old_shaping_alpha_is_refused_saying_what_changed(tmp_path, capsys):
    from train.config import Mars2TrainConfig

    with pytest.raises(ValueError, match="shaping_lambda = 1 - shaping_alpha"):
        Mars2TrainConfig.from_dict({"shaping_alpha": 0.3})
    p = tmp_path / "old.yaml"
    p.write_text("shaping_alpha: 0.3\n")
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "weights the siblings instead of the parent" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--shaping-alpha", "0.3", "--out", str(tmp_path / "o")])
    assert "replaced by shaping_lambda" in capsys.readouterr().err
    args = _train_args(["--shaping-lambda", "0.25", "--refine-scope", "any",
                        "--optimizer-steps-per-batch", "2", "--kl-bias-correction"])
    from mars2_cli.train_cmd import build_config

    cfg, _, _ = build_config(args)
    assert (cfg.shaping_lambda, cfg.refine_scope, cfg.optimizer_steps_per_batch,
            cfg.kl_bias_correction) == (0.25, "any", 2, True)
    with pytest.raises(ValueError, match="optimizer_steps_per_batch"):
        Mars2TrainConfig(buffer_threshold=8, per_device_train_batch_size=4,
                         optimizer_steps_per_batch=3)


def test_filter_keeps_only_problems_some_samples_solve(tmp_path, demo_problems):
    a, b, c = demo_problems[:3]
    ref = lambda p: p.metadata["reference_solution"]  # noqa: E731
    bad = lambda p: p.metadata["wrong_solutions"][0]  # noqa: E731
    replay = tmp_path / "replay.jsonl"
    rows = [(a, ref(a)), (a, ref(a)), (b, bad(b)), (b, bad(b)), (c, ref(c)), (c, bad(c))]
    replay.write_text(
        "".join(
            json.dumps({"problem_id": p.id, "response": f"```python\n{code}\n```"}) + "\n"
            for p, code in rows
        )
    )
    out = tmp_path / "filtered"
    assert (
        main(
            [
                "filter",
                "--problems",
                "builtin:demo",
                "--limit",
                "3",
                "--agents",
                f"replay:{replay}",
                "--samples",
                "2",
                "--out",
                str(out),
                "--executor-workers",
                "1",
            ]
        )
        == 0
    )
    report = json.loads((out / "filter.json").read_text())
    assert {r["problem_id"]: r["solved"] for r in report["per_problem"]} == {
        a.id: 2,
        b.id: 0,
        c.id: 1,
    }
    kept = [json.loads(line)["id"] for line in (out / "problems.jsonl").read_text().splitlines()]
    assert kept == [c.id]
    from mars2_env.problems import load_problems

    assert [p.id for p in load_problems(str(out / "problems.jsonl"))] == [c.id]


@pytest.mark.slow
def test_tiny_cpu_config_trains_checkpoints_and_resumes(tmp_path):
    """`mars2 train --config examples/configs/tiny_cpu.yaml` with the embedded SmolLM2, then --resume."""
    pytest.importorskip("trl")
    out = tmp_path / "run"
    argv = ["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--out", str(out), "--no-progress"]
    assert main([*argv, "--max-steps", "1"]) == 0
    first = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / "train_summary.json").read_text())
    assert (out / "checkpoints" / "latest").is_file()
    import gc

    gc.collect()  # drop the first run's models before loading them again
    assert main(["train", "--out", str(out), "--resume", "--max-steps", "2", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[: len(first)] == first  # resumed after the first run's log, nothing rewritten
    updates = [r for r in rows if r["event"] == "update"]
    resumed = json.loads((out / "train_summary.json").read_text())
    assert resumed["rounds"] >= summary["rounds"]
    if summary["done"]:  # every learner found signal within max_rounds
        assert {r["agent"] for r in updates} == {"coder_0", "coder_1"}
        assert max(r["update"] for r in updates) == 2
        for key in (
            "loss",
            "kl",
            "entropy",
            "clip_ratio/region_mean",
            "reward",
            "train_tokens_per_s",
        ):
            assert all(key in r for r in updates)
    assert any(r["event"] == "round" and "pass_rate" in r and "gen_tokens_per_s" in r for r in rows)
    import shutil

    shutil.rmtree(out / "checkpoints")  # ~3 GB of SmolLM2 weights and optimizer states

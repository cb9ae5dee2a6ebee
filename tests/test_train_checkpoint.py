"""Checkpoint directories: atomic writes, ``keep_last`` pruning, interrupted writes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from train.checkpoint import (  # noqa: E402
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)


class FakeLearner:
    """Writes a small file per checkpoint; ``fail`` makes the write die half-way."""

    def __init__(self, value: int, fail: bool = False) -> None:
        self.value, self.fail, self.loaded = value, fail, None

    def save(self, d) -> None:
        d.mkdir(parents=True, exist_ok=True)
        (d / "state.json").write_text(json.dumps(self.value))
        if self.fail:
            raise OSError("disk full")

    def load(self, d) -> None:
        self.loaded = json.loads((d / "state.json").read_text())


def _names(root):
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_keep_last_keeps_the_newest_and_deletes_older_ones(tmp_path):
    for r in (1, 2, 3, 10, 11):
        save_checkpoint(tmp_path, f"round-{r:06d}", {"round": r}, {"a": FakeLearner(r)}, keep=2)
    assert _names(tmp_path) == ["round-000010", "round-000011"]  # by round number, not text
    assert latest_checkpoint(tmp_path).name == "round-000011"
    save_checkpoint(tmp_path, "round-1000000", {"round": 10**6}, {"a": FakeLearner(0)}, keep=1)
    assert _names(tmp_path) == ["round-1000000"]


def test_the_checkpoint_resumed_from_survives_an_interrupted_write(tmp_path):
    save_checkpoint(tmp_path, "round-000002", {"round": 2}, {"a": FakeLearner(2)}, keep=1)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, "round-000004", {"round": 4}, {"a": FakeLearner(4, fail=True)},
                        keep=1)
    # the half-written one is not a checkpoint; the old one is intact and still the latest
    assert latest_checkpoint(tmp_path).name == "round-000002"
    learner = FakeLearner(0)
    assert load_checkpoint(latest_checkpoint(tmp_path), {"a": learner}) == {"round": 2}
    assert learner.loaded == 2
    # the next complete write replaces both the old checkpoint and the leftover
    save_checkpoint(tmp_path, "round-000004", {"round": 4}, {"a": FakeLearner(4)}, keep=1)
    assert _names(tmp_path) == ["round-000004"]


def test_rewriting_a_round_replaces_it_and_leaves_other_directories_alone(tmp_path):
    (tmp_path / "notes").mkdir()
    save_checkpoint(tmp_path, "round-000003", {"round": 3}, {"a": FakeLearner(3)}, keep=1)
    save_checkpoint(tmp_path, "round-000003", {"round": 3}, {"a": FakeLearner(33)}, keep=1)
    learner = FakeLearner(0)
    load_checkpoint(tmp_path / "round-000003", {"a": learner})
    assert learner.loaded == 33
    assert _names(tmp_path) == ["notes", "round-000003"]
    assert prune_checkpoints(tmp_path, keep=1) == []
    with pytest.raises(ValueError, match="keep must be >= 1"):
        prune_checkpoints(tmp_path, keep=0)


def test_keep_last_and_checkpoint_every_are_yaml_keys_and_flags(tmp_path, capsys):
    from mars2_cli.main import build_parser, main
    from mars2_cli.train_cmd import build_config
    from train.config import Mars2TrainConfig

    defaults = Mars2TrainConfig()
    assert (defaults.checkpoint_every, defaults.keep_last) == (10, 2)
    p = tmp_path / "c.yaml"
    p.write_text("checkpoint_every: 3\nkeep_last: 4\n")
    assert (Mars2TrainConfig.from_yaml(p).checkpoint_every,
            Mars2TrainConfig.from_yaml(p).keep_last) == (3, 4)
    args = build_parser().parse_args(["train", "--config", str(p), "--keep-last", "1",
                                      "--checkpoint-every", "5"])
    cfg, _, _ = build_config(args)
    assert (cfg.checkpoint_every, cfg.keep_last) == (5, 1)
    for bad in ({"keep_last": 0}, {"checkpoint_every": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Mars2TrainConfig(**bad)
    with pytest.raises(ValueError, match="renamed keep_last"):
        Mars2TrainConfig.from_dict({"keep_checkpoints": 2})
    with pytest.raises(SystemExit):
        main(["train", "--keep-checkpoints", "2", "--out", str(tmp_path / "o")])
    assert "renamed keep_last" in capsys.readouterr().err

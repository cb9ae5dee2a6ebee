"""`mars2 exec`: verdict table, exit status, JSON output, config file."""

from __future__ import annotations

import json

import pytest

from mars2_cli.main import main
from mars2_env.problems import load_problems

PROBLEM = next(p for p in load_problems("builtin:demo") if p.kind == "stdin")


@pytest.fixture
def files(tmp_path):
    ref = tmp_path / "ref.py"
    ref.write_text(PROBLEM.metadata["reference_solution"])
    bad = tmp_path / "bad.py"
    bad.write_text("print('nope')\n")
    return ref, bad


def test_exec_prints_table_and_exit_status(files, capsys):
    ref, bad = files
    assert main(["exec", "builtin:demo", "--id", PROBLEM.id, "--code", str(ref)]) == 0
    out = capsys.readouterr().out
    n = len(PROBLEM.tests)
    assert f"verdict: passed   passed {n}/{n}   reward 1.000" in out
    assert out.count(" passed ") >= n and "sandbox:" in out
    assert main(["exec", "builtin:demo", "--id", PROBLEM.id, "--code", str(bad), "--tests", "public"]) == 1
    out = capsys.readouterr().out
    assert "wrong_answer" in out and f"passed 0/{len(PROBLEM.public_tests)}" in out


def test_exec_json_and_out_dir(files, tmp_path, capsys):
    ref, _ = files
    out_dir = tmp_path / "run"
    assert main(["exec", "builtin:demo", "--id", PROBLEM.id, "--code", str(ref), "--json",
                 "--out", str(out_dir)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"] == "passed" and len(printed["tests"]) == len(PROBLEM.tests)
    assert json.loads((out_dir / "result.json").read_text()) == printed


def test_exec_reads_a_config_file(files, tmp_path, capsys):
    _, bad = files
    cfg = tmp_path / "exec.yaml"
    cfg.write_text(f"problems: builtin:demo\nid: {PROBLEM.id}\ncode: {bad}\ntests: private\n"
                   "stop-on-failure: true\n")
    assert main(["exec", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert f"{len(PROBLEM.private_tests)} tests (private)" in out and "more tests not run" in out


def test_exec_bad_input_exits_2(files, tmp_path, capsys):
    ref, _ = files
    assert main(["exec", "builtin:demo", "--id", "no-such-id", "--code", str(ref)]) == 2
    assert "no problem with id 'no-such-id'" in capsys.readouterr().err
    assert main(["exec", "builtin:demo", "--id", PROBLEM.id, "--code", str(tmp_path / "missing.py")]) == 2
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("problemz: x\n")
    with pytest.raises(SystemExit, match="unknown key 'problemz'"):
        main(["exec", "--config", str(cfg)])

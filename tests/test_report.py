"""report.html explains a run: problem title and statement, node ids, the Pass@1(MCTS) answer
marked, shaped reward and advantage per node, one set of metric labels, and a deep link that
opens and highlights a node — checked in the HTML and in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mars2_cli.main import main
from mars2_cli.report import LABELS
from mars2_cli.summary import read_trees, run_metrics
from mars2_env.rewards import node_records


def _fenced(code: str) -> str:
    return f"```python\n{code}```\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """Two trivial problems, 4 nodes each: a wrong answer first, then the right one."""
    from mars2_env.problems import load_problems

    problems = load_problems("builtin:trivial")[:2]
    base = tmp_path_factory.mktemp("report")
    answers = base / "answers.jsonl"
    rows = []
    for p in problems:
        rows.append({"problem_id": p.id, "response": _fenced(p.metadata["wrong_solutions"][0])})
        rows.append({"problem_id": p.id, "response": _fenced(p.metadata["reference_solution"])})
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = base / "run"
    assert main(["search", "--problems", "builtin:trivial", "--limit", "2", "--budget", "4",
                 "--agents", f"replay:{answers}", f"replay:{answers}", "--executor-workers", "1",
                 "--out", str(out)]) == 0
    return out


def _report_order(run_dir: Path) -> list:
    """The run's trees in the report's order, the problems' (trees.jsonl holds them in the
    order they finished, which depends on timing)."""
    from mars2_env.problems import load_problems

    ids = [p.id for p in load_problems("builtin:trivial")[:2]]
    return sorted(read_trees(run_dir / "trees.jsonl"), key=lambda t: ids.index(t.problem_id))


def _data(html: str) -> list[dict]:
    m = re.search(r'<script type="application/json" id="tree-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_report_explains_each_tree_and_node(run_dir):
    html = (run_dir / "report.html").read_text()
    trees = _report_order(run_dir)
    metrics = run_metrics(trees)
    data = _data(html)
    for i, (tree, m) in enumerate(zip(trees, metrics["per_tree"], strict=True)):
        title = tree.metadata["problem_title"]
        assert title and f"{title} ({tree.problem_id})" in html
        statement = tree.metadata["problem_statement"]
        assert statement.splitlines()[0] in html            # the statement, in a <details>
        for node in tree.nodes():                           # every node labelled with its id
            assert f'id="node-{i}-{node.id}"' in html
            assert re.search(rf'class="node-id"[^>]*>{node.id}</text>', html)
        # the answer node: ringed in the picture and flagged in the panel data
        answer = m["answer_node"]
        ring = re.search(rf'<g><circle class="answer-ring"[^>]*/>[^<]*<[^>]*id="node-{i}-{answer}"',
                         html)
        assert ring, f"tree {i}: answer node {answer} has no ring"
        assert html.count('class="answer-ring"') == len(trees)
        nodes = data[i]["nodes"]
        assert [k for k, v in nodes.items() if v["answer"]] == [str(answer)]
        records = {r["node_id"]: r for r in node_records(tree)}
        for node in tree.nodes():
            shown = nodes[str(node.id)]
            assert shown["shaped_reward"] == pytest.approx(records[node.id]["shaped_reward"])
            assert shown["advantage"] == pytest.approx(records[node.id]["advantage"])
    # one label per metric in both tables
    overall = html[html.index('<table id="overall">'):html.index('<table id="summary">')]
    summary = html[html.index('<table id="summary">'):html.index("</table>",
                                                                  html.index('id="summary"'))]
    for key in ("pass_at_1_mcts", "pass_at_n"):
        assert f"<th>{LABELS[key]}</th>" in overall and f"<th>{LABELS[key]}</th>" in summary
    assert "pass_at_1_mcts" not in overall and "pass_at_n<" not in overall


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                           *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(_chromium() is None, reason="needs a headless Chromium (Debian: apt-get "
                    "install -y chromium; `make test` installs it when it can)")
def test_deep_link_opens_the_node_panel_in_a_real_browser(run_dir, tmp_path):
    browser = _chromium()
    report = (run_dir / "report.html").resolve()
    trees = _report_order(run_dir)
    node = trees[1].node(2)                    # tree 1, node 2: the reference program
    url = f"{report.as_uri()}#node=1:2"
    dom = _headless(browser, "--virtual-time-budget=3000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    panel = re.search(r'<div id="panel"[^>]*>(.*?)</div>\s*<script', dom.stdout, re.S)
    assert panel, "the node panel is missing from the rendered page"
    text = panel.group(1)
    assert 'style="display: block;"' in dom.stdout            # the panel is open
    code = re.search(r'<pre class="code">(.*?)</pre>', text, re.S).group(1)
    assert code.replace("&quot;", '"').replace("&#39;", "'") == node.code.replace("&", "&amp;") \
        .replace("<", "&lt;").replace(">", "&gt;")
    assert "shaped reward" in text and "advantage" in text
    assert re.search(r'id="node-1-2"[^>]*class="node selected"|class="node selected"[^>]*'
                     r'id="node-1-2"', dom.stdout), "the deep-linked node is not highlighted"
    # a screenshot of the deep-linked page: a real image with the panel drawn over the trees
    shots = {}
    for name, target in (("linked", url), ("plain", report.as_uri())):
        png = tmp_path / f"{name}.png"
        res = _headless(browser, "--virtual-time-budget=3000", "--window-size=1280,900",
                        f"--screenshot={png}", target)
        assert res.returncode == 0 and png.is_file(), res.stderr[-2000:]
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
        shots[name] = data
    assert shots["linked"] != shots["plain"]                  # the panel changed the picture

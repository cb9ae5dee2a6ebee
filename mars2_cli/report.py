"""`report.html`: one self-contained file (no network) with a summary table and a picture per tree.

Each tree is headed by its problem's title (and statement, when the run saved it). Nodes are
coloured by reward (red 0 → green 1), shaped by agent, labelled with their id and joined parent →
child; the Pass@1(MCTS) answer node wears a gold ring. Clicking a node highlights it and shows its
agent, verdicts, reward, shaped reward, tree advantage, code, feedback and the model response;
`report.html#node=T:N` opens node N of tree T directly.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mars2_env.tree import SearchTree

SHAPES = ("circle", "square", "diamond", "triangle", "hexagon")
OVERALL_KEYS = ("trees", "nodes", "judge", "pass_at_1_mcts", "pass_at_n")  # the top table
RESPONSE_CHARS = 6000  # the model's full text is in trees.jsonl; the report shows its start
X_GAP, Y_GAP, RADIUS, MARGIN = 34, 56, 11, 24


def reward_colour(reward: float) -> str:
    """Red (0) through yellow to green (1)."""
    r = min(1.0, max(0.0, float(reward)))
    red = int(220 * min(1.0, 2 * (1 - r)))
    green = int(180 * min(1.0, 2 * r))
    return f"#{red:02x}{green:02x}40"


def layout(tree: SearchTree) -> dict[int, tuple[float, float]]:
    """Tidy-ish layout: leaves left to right in expansion order, parents centred over children."""
    pos: dict[int, tuple[float, float]] = {}
    next_x = [0.0]

    # iterative post-order so deep trees do not hit the recursion limit
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        node_id, done = stack.pop()
        kids = [c.id for c in tree.children(node_id)]
        if not done and kids:
            stack.append((node_id, True))
            stack.extend((k, False) for k in reversed(kids))
            continue
        depth = tree.node(node_id).depth
        if kids:
            x = sum(pos[k][0] for k in kids) / len(kids)
        else:
            x = next_x[0]
            next_x[0] += 1
        pos[node_id] = (x, float(depth))
    return pos


def _shape(kind: str, cx: float, cy: float, fill: str, attrs: str) -> str:
    r = RADIUS
    if kind == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" fill="{fill}" {attrs}/>'
    if kind == "square":
        return (f'<rect x="{cx - r:.1f}" y="{cy - r:.1f}" width="{2 * r}" height="{2 * r}" '
                f'fill="{fill}" {attrs}/>')
    if kind == "diamond":
        pts = [(cx, cy - r - 2), (cx + r + 2, cy), (cx, cy + r + 2), (cx - r - 2, cy)]
    elif kind == "triangle":
        pts = [(cx, cy - r - 2), (cx + r + 2, cy + r), (cx - r - 2, cy + r)]
    else:
        pts = [(cx - r, cy), (cx - r / 2, cy - r), (cx + r / 2, cy - r), (cx + r, cy),
               (cx + r / 2, cy + r), (cx - r / 2, cy + r)]
    p = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    return f'<polygon points="{p}" fill="{fill}" {attrs}/>'


def tree_svg(tree: SearchTree, index: int, agent_shapes: dict[str, str],
             answer: int | None = None) -> str:
    """The tree as SVG: a shape per node (agent), coloured by reward, labelled with its id;
    the Pass@1(MCTS) answer node gets a gold ring."""
    pos = layout(tree)
    width = MARGIN * 2 + X_GAP * max(1.0, max(x for x, _ in pos.values()) + 1)
    height = MARGIN * 2 + Y_GAP * (max(y for _, y in pos.values()) + 1)

    def xy(node_id: int) -> tuple[float, float]:
        x, y = pos[node_id]
        return MARGIN + X_GAP * x + RADIUS, MARGIN + Y_GAP * y + RADIUS

    parts = [f'<svg class="tree" width="{width:.0f}" height="{height:.0f}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for node in tree.nodes():
        (x1, y1), (x2, y2) = xy(node.parent), xy(node.id)
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                     f'stroke="#999" stroke-width="1.5"/>')
    rx, ry = xy(0)
    parts.append(f'<circle cx="{rx:.1f}" cy="{ry:.1f}" r="6" fill="#444"><title>root</title></circle>')
    for node in tree.nodes():
        cx, cy = xy(node.id)
        verdict = (node.public or {}).get("verdict", "")
        is_answer = node.id == answer
        attrs = (f'class="node" id="node-{index}-{node.id}" data-tree="{index}" '
                 f'data-node="{node.id}" stroke="#222" stroke-width="1"')
        title = (f"node {node.id} · {node.agent} · reward {node.reward:.2f} · {verdict}"
                 + (" · Pass@1(MCTS) answer" if is_answer else ""))
        ring = (f'<circle class="answer-ring" cx="{cx:.1f}" cy="{cy:.1f}" r="{RADIUS + 5}" '
                f'fill="none" stroke="#d4a000" stroke-width="3"/>' if is_answer else "")
        label = (f'<text class="node-id" x="{cx:.1f}" y="{cy + 3.5:.1f}" '
                 f'text-anchor="middle">{node.id}</text>')
        shape = _shape(agent_shapes.get(node.agent or "", "circle"), cx, cy,
                       reward_colour(node.reward), attrs)
        parts.append(f"<g>{ring}{shape}{label}<title>{html.escape(title)}</title></g>")
    parts.append("</svg>")
    return "".join(parts)


def _node_details(tree: SearchTree, answer: int | None) -> dict[str, Any]:
    from mars2_env.rewards import node_records

    lam, beta = _shaping(tree)
    records = {r["node_id"]: r for r in node_records(tree, lam=lam, beta=beta)}
    return {str(n.id): {"agent": n.agent, "parent": n.parent, "depth": n.depth,
                        "reward": n.reward, "shaped_reward": records[n.id]["shaped_reward"],
                        "advantage": records[n.id]["advantage"], "answer": n.id == answer,
                        "public": n.public, "private": n.private,
                        "code": n.code, "feedback": n.feedback,
                        "response": _clip(n.response, RESPONSE_CHARS)}
            for n in tree.nodes()}


def _shaping(tree: SearchTree) -> tuple[float, float]:
    """(λ, β) the run shaped rewards with, when the tree records them; else the environment
    defaults (0.5, 0.5)."""
    meta = tree.metadata or {}
    return float(meta.get("shaping_lambda", 0.5)), float(meta.get("shaping_beta", 0.5))


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _summary_rows(trees: list[SearchTree], per_tree: list[dict[str, Any]]) -> str:
    rows = []
    for i, (tree, m) in enumerate(zip(trees, per_tree, strict=True)):
        title = (tree.metadata or {}).get("problem_title") or ""
        cells = (tree.problem_id, title, len(tree), _fmt(m.get("best_public_reward", "")),
                 _yes(m.get("pass_at_1_mcts")), _yes(m.get("pass_at_n")),
                 ", ".join(f"{a}: {c}" for a, c in sorted(m.get("expansions", {}).items())))
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in cells)
                    + f'<td><a href="#tree-{i}">view</a></td></tr>')
    return "\n".join(rows)


#: One label per metric, used by both tables and the node panel.
LABELS = {
    "trees": "trees", "nodes": "nodes", "judge": "judged on",
    "pass_at_1_mcts": "Pass@1(MCTS)", "pass_at_n": "Pass@N",
    "best_public_reward": "best public reward", "node_pass_at_1": "node Pass@1",
}

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin-bottom:24px}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
th{background:#f3f3f3;text-align:left}.node{cursor:pointer}.node:hover{stroke-width:3}
.node.selected{stroke:#0050ff;stroke-width:4}.node-id{font-size:9px;fill:#000;pointer-events:none}
section{margin-bottom:28px}section.selected h3{background:#e8efff}
#panel{position:fixed;right:16px;top:16px;width:42%;max-height:90vh;overflow:auto;
background:#fff;border:1px solid #aaa;padding:12px;box-shadow:0 2px 10px #0003;display:none}
pre{background:#f7f7f7;padding:8px;white-space:pre-wrap;font-size:12px}.legend span{margin-right:14px}
details{margin:4px 0 8px}.answer{color:#8a6a00;font-weight:bold}
"""

SCRIPT = """
const DATA = JSON.parse(document.getElementById('tree-data').textContent);
const LABELS = JSON.parse(document.getElementById('labels').textContent);
const panel = document.getElementById('panel');
function esc(s){const d=document.createElement('div');d.textContent=s==null?'':String(s);return d.innerHTML;}
function fmt(r){return r?esc(r.verdict)+' ('+r.passed+'/'+r.total+')':'not run';}
function num(x){return x==null?'':Number(x).toFixed(3);}
function show(t, id){
  const n = DATA[t] && DATA[t].nodes[id];
  if(!n) return;
  history.replaceState(null, '', '#node=' + t + ':' + id);
  document.querySelectorAll('.selected').forEach(e => e.classList.remove('selected'));
  const el = document.getElementById('node-' + t + '-' + id);
  if (el) { el.classList.add('selected'); el.scrollIntoView({block: 'center'}); }
  const sec = document.getElementById('tree-' + t);
  if (sec) sec.classList.add('selected');
  panel.style.display = 'block';
  panel.innerHTML = '<b>'+esc(DATA[t].title || DATA[t].problem)+' ('+esc(DATA[t].problem)+') · node '+esc(id)+'</b> '+
    '<button onclick="panel.style.display=\\'none\\'">close</button>'+
    (n.answer ? '<p class="answer">the '+LABELS.pass_at_1_mcts+' answer of this tree (latest-wins node)</p>' : '')+
    '<table><tr><th>agent</th><td>'+esc(n.agent)+'</td><th>parent</th><td>'+esc(n.parent)+
    '</td><th>depth</th><td>'+esc(n.depth)+'</td></tr>'+
    '<tr><th>reward</th><td>'+num(n.reward)+'</td><th>shaped reward</th><td>'+num(n.shaped_reward)+
    '</td><th>advantage</th><td>'+num(n.advantage)+'</td></tr>'+
    '<tr><th>public tests</th><td colspan="2">'+fmt(n.public)+'</td><th>private tests</th><td colspan="2">'+
    fmt(n.private)+'</td></tr></table>'+
    '<h4>code</h4><pre class="code">'+esc(n.code)+'</pre><h4>feedback</h4><pre>'+esc(n.feedback)+
    '</pre><h4>model response</h4><pre>'+esc(n.response)+'</pre>';
}
document.querySelectorAll('.node').forEach(el => el.addEventListener('click',
  () => show(el.dataset.tree, el.dataset.node)));
function fromHash(){
  const m = location.hash.match(/^#node=(\\d+):(\\d+)$/);  // deep link: report.html#node=TREE:NODE
  if (m) show(m[1], m[2]);
}
window.addEventListener('hashchange', fromHash);
fromHash();
"""


def render_report(trees: Iterable[SearchTree], metrics: dict[str, Any],
                  title: str = "mars2 search report") -> str:
    """The whole report as one HTML string; `metrics` is `summary.run_metrics` of the trees."""
    trees = list(trees)
    per_tree = metrics["per_tree"]
    agents = sorted({n.agent for t in trees for n in t.nodes() if n.agent})
    shapes = {a: SHAPES[i % len(SHAPES)] for i, a in enumerate(agents)}
    answers = [m.get("answer_node") for m in per_tree]
    data = [{"problem": t.problem_id, "title": (t.metadata or {}).get("problem_title") or "",
             "nodes": _node_details(t, a)} for t, a in zip(trees, answers, strict=True)]
    data_json = json.dumps(data).replace("</", "<\\/")
    legend = "".join(f"<span>{html.escape(a)}: {s}</span>" for a, s in shapes.items())
    overall = "".join(f"<tr><th>{html.escape(LABELS.get(k, k))}</th>"
                      f"<td>{html.escape(_fmt(metrics[k]))}</td></tr>"
                      for k in OVERALL_KEYS if k in metrics)
    sections = "\n".join(_section(i, t, m, shapes) for i, (t, m) in
                         enumerate(zip(trees, per_tree, strict=True)))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (
        "problem", "title", LABELS["nodes"], LABELS["best_public_reward"],
        LABELS["pass_at_1_mcts"], LABELS["pass_at_n"], "expansions", ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<table id="overall">{overall}</table>
<table id="summary"><tr>{head}</tr>
{_summary_rows(trees, per_tree)}</table>
<p class="legend">Shapes by agent: {legend}. Colour: reward, red 0 → green 1. The number on a node
is its id (expansion order). <span class="answer">Gold ring</span>: the {LABELS["pass_at_1_mcts"]}
answer (latest-wins node). Click a node for its code, feedback, shaped reward and advantage;
link to one with <code>report.html#node=TREE:NODE</code>.</p>
{sections}
<div id="panel"></div>
<script type="application/json" id="tree-data">{data_json}</script>
<script type="application/json" id="labels">{json.dumps(LABELS)}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def _section(i: int, tree: SearchTree, m: dict[str, Any], shapes: dict[str, str]) -> str:
    meta = tree.metadata or {}
    title = meta.get("problem_title") or ""
    statement = meta.get("problem_statement")
    heading = (f"{html.escape(title)} ({html.escape(tree.problem_id)})" if title
               else html.escape(tree.problem_id))
    outcome = (f"{len(tree)} nodes · {LABELS['pass_at_1_mcts']} {_yes(m.get('pass_at_1_mcts'))}"
               f" · {LABELS['pass_at_n']} {_yes(m.get('pass_at_n'))}")
    details = (f'<details><summary>problem statement</summary><pre class="statement">'
               f"{html.escape(statement)}</pre></details>" if statement else "")
    return (f'<section id="tree-{i}"><h3>{heading} — {outcome}</h3>{details}'
            f"{tree_svg(tree, i, shapes, m.get('answer_node'))}</section>")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def write_report(path: Path, trees: Iterable[SearchTree], metrics: dict[str, Any],
                 title: str = "mars2 search report") -> None:
    path.write_text(render_report(trees, metrics, title), encoding="utf-8")

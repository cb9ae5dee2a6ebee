"""The README's python snippets run as written and print what the text around them promises.

A block can opt out with an HTML comment on the line before it,
``<!-- snippet: not run (why) -->`` — for code that needs a file the repository does not ship.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*snippet:\s*not run\s*\((?P<why>[^)]+)\)\s*-->")


def python_blocks() -> list[tuple[int, str, str | None]]:
    """(line number, code, reason it is not run or None) of every ```python block."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            j = start
            while lines[j].strip() != "```":
                j += 1
            previous = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            skip = SKIP.search(previous)
            blocks.append((start, "\n".join(lines[start:j]) + "\n",
                           skip.group("why") if skip else None))
            i = j
        i += 1
    return blocks


def _params():
    out = []
    for line, code, why in python_blocks():
        marks = [pytest.mark.skip(reason=f"README marks it not run: {why}")] if why else []
        if "hf:embedded" in code:
            marks.append(pytest.mark.slow)  # a real model: seconds per node on a CPU
        out.append(pytest.param(code, id=f"README.md:{line}", marks=marks))
    return out


def test_every_python_block_is_run_or_says_why_not():
    blocks = python_blocks()
    assert len(blocks) >= 3
    assert sum(why is None for _, _, why in blocks) >= 2


# What each runnable snippet promises in the text around it, keyed by a line of its code.
PROMISES = {
    "for agent in env.agent_iter():": [
        # every agent's end-of-episode rows: raw reward, shaped reward, tree advantage
        r"^coder_0 \[.*'shaped_reward'.*'advantage'", r"^coder_1 \[",
    ],
    "print(format_feedback(res))": [r"^Verdict: passed \(\d+/\d+ tests passed\)"],
}


@pytest.mark.parametrize("code", _params())
def test_readme_snippet_runs_and_prints_what_it_promises(code, tmp_path):
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    promised = [p for key, ps in PROMISES.items() if key in code for p in ps]
    assert promised, "a runnable README snippet needs an entry in PROMISES"
    for pattern in promised:
        assert re.search(pattern, res.stdout, re.M), (pattern, res.stdout[-3000:])

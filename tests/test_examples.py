"""The example scripts run end to end (real executor, bundled problems) and print what they claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_pettingzoo_loop():
    out = run_example("pettingzoo_loop.py", "--problems", "2", "--budget", "5")
    assert out.count("problem demo-") == 2 and "coder_0: wrote" in out and "coder_1: wrote" in out
    assert out.count("  node ") == 10


def test_gymnasium_loop():
    out = run_example("gymnasium_loop.py", "--problems", "2", "--budget", "3")
    assert out.count("return ") == 2 and "advantages" in out


def test_gymnasium_loop_parallel_sampling_is_flat():
    out = run_example("gymnasium_loop.py", "--problems", "1", "--budget", "3", "--parallel")
    assert "parents [0, 0, 0]" in out and "solved=False" in out


@pytest.mark.parametrize("k", ["1", "2"])
def test_batched_search(k):
    out = run_example("batched_search.py", "--problems", "4", "--budget", "3", "--max-trees", "2",
                      "--expansions-per-tree", k)
    assert out.count("finished tree") == 4 and "Pass@N on private tests:" in out

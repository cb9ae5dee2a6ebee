"""`mars2_env` and all its submodules import without torch/transformers/ray (in a fresh process);
the Ray layer imports Ray only when used."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import importlib, json, pkgutil, sys
import mars2_env, mars2_env.problems
names = sorted(m.name for m in pkgutil.walk_packages(mars2_env.__path__, "mars2_env."))
for name in names:
    importlib.import_module(name)
heavy = sorted(m for m in ("torch", "transformers", "trl", "agents", "train", "ray", "mars2_ray") if m in sys.modules)
print(json.dumps({"names": names, "heavy": heavy}))
"""


def test_mars2_env_imports_without_heavy_dependencies():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "mars2_env.problems" in report["names"] and "mars2_env.datasets" in report["names"]
    assert report["heavy"] == [], f"mars2_env pulled in {report['heavy']}"


RAY_PROBE = r"""
import json, sys
import mars2_ray, mars2_ray.options, mars2_ray.placement, mars2_cli.backend, mars2_cli.search
print(json.dumps(sorted(m for m in ("ray", "torch") if m in sys.modules)))
"""


def test_ray_layer_imports_ray_only_when_used():
    """The package, its options and planner (and the CLI that adds --ray) load without Ray."""
    out = subprocess.run([sys.executable, "-c", RAY_PROBE], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_nothing_below_mars2_ray_imports_it():
    """Arrows point one way: mars2_ray -> train -> agents -> mars2_env."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"^\s*(from|import)\s+(mars2_ray|ray)\b", re.MULTILINE)
    offenders = [str(f.relative_to(root)) for pkg in ("mars2_env", "agents", "train")
                 for f in (root / pkg).rglob("*.py") if pattern.search(f.read_text())]
    assert offenders == []

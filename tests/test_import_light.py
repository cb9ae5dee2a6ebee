"""`mars2_env` and all its submodules import without torch/transformers (in a fresh process)."""

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
heavy = sorted(m for m in ("torch", "transformers", "trl", "agents", "train") if m in sys.modules)
print(json.dumps({"names": names, "heavy": heavy}))
"""


def test_mars2_env_imports_without_heavy_dependencies():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "mars2_env.problems" in report["names"] and "mars2_env.datasets" in report["names"]
    assert report["heavy"] == [], f"mars2_env pulled in {report['heavy']}"

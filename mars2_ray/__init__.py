"""The distributed layer on Ray: executor actors, generation actor pools, rollout workers,
learner actors with weight sync, and the placement plan behind `mars2 search|eval|bench|train
--ray`.

Ray is an optional extra (``pip install -e '.[ray]'``) imported lazily: importing this package,
its options and its placement planner needs no Ray, so ``--help`` and ``--dry-run`` work
anywhere. Arrows point one way: ``mars2_ray -> train -> agents -> mars2_env``; only
``mars2_cli`` imports this package.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RayExecutor", "GenerationPool", "RaySession", "RayOptions", "plan_placement",
           "require_ray", "RemoteLearner", "RayTrainLoop", "train_on_ray"]

_LAZY = {
    "RayExecutor": "mars2_ray.executor",
    "GenerationPool": "mars2_ray.generation",
    "RaySession": "mars2_ray.session",
    "RayOptions": "mars2_ray.options",
    "plan_placement": "mars2_ray.placement",
    "require_ray": "mars2_ray.runtime",
    "RemoteLearner": "mars2_ray.learner",
    "RayTrainLoop": "mars2_ray.train",
    "train_on_ray": "mars2_ray.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mars2_ray' has no attribute {name!r}")

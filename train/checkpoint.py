"""Run checkpoints: one directory per checkpoint, written atomically, newest named in ``latest``.

Layout under ``OUT/checkpoints``::

    latest                      # name of the newest complete checkpoint directory
    round-000012/
      loop.json                 # loop counters, log-file sizes, agent sampling counters
      rng.pt                    # python / numpy / torch RNG states
      learners/<agent>/         # model.pt, optimizer.pt, scheduler.pt, learner.json (buffer, counters)

A checkpoint is written to ``<name>.tmp`` and renamed when complete, so an interrupted
write never shadows the previous checkpoint; older checkpoints (beyond the ``keep`` newest) and
leftovers of interrupted writes are deleted only after that, so the checkpoint a run resumed
from survives until a newer one is complete.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

LATEST = "latest"
CHECKPOINT_RE = re.compile(r"round-\d{6,}")


def rng_state() -> dict[str, Any]:
    """Python, numpy (global) and torch (CPU, and CUDA when present) RNG states."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_name(round_index: int) -> str:
    return f"round-{round_index:06d}"


def save_checkpoint(
    root: str | os.PathLike,
    name: str,
    loop_state: dict[str, Any],
    learners: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write a checkpoint (``learners``: name -> object with ``save(dir)``), update ``latest``, prune old ones."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = root / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for agent, learner in learners.items():
        learner.save(tmp / "learners" / agent)
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / "loop.json").write_text(json.dumps(loop_state, indent=1, sort_keys=True))
    if final.exists():  # the same round written again (a resume from an older checkpoint)
        replaced = root / f"{name}.replaced.tmp"
        shutil.rmtree(replaced, ignore_errors=True)
        final.rename(replaced)
    tmp.rename(final)
    pointer = root / f"{LATEST}.tmp"
    pointer.write_text(name + "\n")
    pointer.replace(root / LATEST)
    prune_checkpoints(root, keep, protect=name)
    return final


def is_checkpoint_name(name: str) -> bool:
    return bool(CHECKPOINT_RE.fullmatch(name))


def prune_checkpoints(root: str | os.PathLike, keep: int, protect: str | None = None) -> list[str]:
    """Delete all but the ``keep`` newest complete checkpoints and any interrupted writes.

    ``protect`` (the checkpoint just written) is never deleted. Only directories named like
    checkpoints (``round-NNNNNN``, ``round-NNNNNN*.tmp``) are touched. Returns the deleted names.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    root = Path(root)
    dirs = [p for p in root.iterdir() if p.is_dir()]
    complete = sorted(
        (p for p in dirs if is_checkpoint_name(p.name)), key=lambda p: int(p.name.split("-")[1])
    )
    doomed = [p for p in complete[:-keep] if p.name != protect]
    doomed += [p for p in dirs if p.name.endswith(".tmp") and is_checkpoint_name(p.name.split(".")[0])]
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return sorted(p.name for p in doomed)


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint directory, or None."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    path = Path(root) / pointer.read_text().strip()
    if not (path / "loop.json").is_file():
        raise FileNotFoundError(f"{pointer} names {path.name}, which is missing or incomplete")
    return path


def load_checkpoint(path: str | os.PathLike, learners: dict[str, Any]) -> dict[str, Any]:
    """Load learner states and RNG states; return the loop state dict."""
    path = Path(path)
    for agent, learner in learners.items():
        d = path / "learners" / agent
        if not d.is_dir():
            raise FileNotFoundError(
                f"checkpoint {path} has no learner {agent!r} (has: "
                f"{sorted(p.name for p in (path / 'learners').iterdir())})"
            )
        learner.load(d)
    state = json.loads((path / "loop.json").read_text())
    set_rng_state(torch.load(path / "rng.pt", weights_only=False))
    return state


def truncate(path: str | os.PathLike, size: int) -> None:
    """Cut an append-only log back to ``size`` bytes (what it held at the checkpoint)."""
    p = Path(path)
    if not p.exists():
        if size:
            raise FileNotFoundError(f"{p} is missing but the checkpoint expects {size} bytes")
        return
    if p.stat().st_size < size:
        raise ValueError(
            f"{p} has {p.stat().st_size} bytes, fewer than the {size} the checkpoint recorded"
        )
    with open(p, "r+b") as f:
        f.truncate(size)

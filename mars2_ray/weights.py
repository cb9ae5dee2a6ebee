"""Fingerprints of model weights, to check that an engine serves what its learner trained."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

__all__ = ["state_hash"]


def state_hash(state: Mapping[str, Any]) -> str:
    """SHA-256 over the parameter names and raw bytes of a state dict, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(tensor.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return h.hexdigest()


def _byte_dtype() -> Any:
    import torch

    return torch.uint8

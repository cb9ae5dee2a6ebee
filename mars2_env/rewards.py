"""Node rewards for learning: DAPO's overlong penalty, MARS² tree-consistent shaping (Eqs. 3–5)
and tree-level group advantages (Eq. 8).

Shaping, for a non-root node v with raw reward r, parent p and siblings S (the other children
of p in the finished tree, whichever agent wrote them), in the paper's symbols (Eq. 3; λ is
the weight of the *siblings*, as in Appendix D.6's sensitivity study and the authors' code)::

    b = (1 - lam) * r_p + lam * mean(r_s for s in S)       # p real, S non-empty
    b = r_p                                                # p real, S empty (an only child)
    b = mean(r_s for s in S)                               # p the root, S non-empty
    g = 0                                                  # p the root, S empty
    g = r - b;  shaped = r + beta * g

``lam`` replaced an earlier ``alpha`` that weighted the *parent* (b = alpha * r_p + (1 - alpha)
* mean(S), so lam = 1 - alpha); passing ``alpha=`` is an error that says so, and ``lam`` and
``beta`` are keyword-only so an old positional call cannot silently mean the mirror image.

Always from raw rewards (or the `rewards=` override), never from shaped ones. The advantage
of v is ``(shaped_v - mean) / (std + eps)`` over every non-root node of the tree, every agent
together, with the sample standard deviation (ddof = 1). A tree with fewer than two nodes, or
whose shaped rewards are all equal (spread <= `DEGENERATE_ATOL`), has no signal: all
advantages are 0 and `TreeAdvantages.degenerate` is True so trainers can skip it.

Every function takes an optional ``rewards: dict[node_id, float]`` that replaces the raw reward
of the nodes it names (e.g. the overlong-penalised reward in training); other nodes keep
``node.reward``. Override values may lie outside [0, 1] but must be finite.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .tree import SearchTree

#: shaped rewards whose max - min is at most this count as all equal
DEGENERATE_ATOL = 1e-12

#: what a caller still passing the old mixing coefficient is told
ALPHA_REMOVED = (
    "the shaping coefficient `alpha` was replaced by the paper's `lam` (λ, Eq. 3), which weights "
    "the siblings instead of the parent: b = (1 - lam) * r_parent + lam * mean(r_siblings). "
    "alpha weighted the parent, so the same baseline is lam = 1 - alpha (alpha=0.3 -> lam=0.7); "
    "pass lam= (and beta=) by name"
)

_F = TypeVar("_F", bound=Callable[..., Any])


def refuse_alpha(fn: _F | None = None, *, max_positional: int | None = None) -> Any:
    """Reject the removed ``alpha=`` keyword with `ALPHA_REMOVED` instead of a bare TypeError;
    with ``max_positional`` also reject coefficients passed by position (they used to mean
    alpha). Used bare (``@refuse_alpha``) or with options (``@refuse_alpha(max_positional=1)``)."""
    if fn is None:
        return functools.partial(refuse_alpha, max_positional=max_positional)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "alpha" in kwargs:
            raise TypeError(f"{fn.__qualname__}: {ALPHA_REMOVED}")
        if max_positional is not None and len(args) > max_positional:
            raise TypeError(f"{fn.__qualname__} takes the tree by position and the rest by name; "
                            f"{ALPHA_REMOVED}")
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def overlong_penalty(length: int, max_length: int, buffer_length: int) -> float:
    """DAPO's soft overlong penalty: 0 up to ``max_length - buffer_length`` tokens, then
    linear down to -1 at ``max_length``, -1 beyond."""
    for name, value in (("length", length), ("max_length", max_length),
                        ("buffer_length", buffer_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if max_length <= 0:
        raise ValueError(f"max_length must be > 0, got {max_length}")
    if not 0 <= buffer_length <= max_length:
        raise ValueError(f"buffer_length must be in [0, max_length={max_length}], "
                         f"got {buffer_length}")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    free = max_length - buffer_length
    if length <= free:
        return 0.0
    if length > max_length:
        return -1.0
    return (free - length) / buffer_length


def _check_lam_beta(lam: float, beta: float) -> None:
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating)) \
            or not math.isfinite(lam) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")


def raw_rewards(tree: SearchTree, rewards: dict[int, float] | None = None) -> dict[int, float]:
    """The reward of every non-root node: `rewards[id]` where given, else `node.reward`."""
    out = {n.id: n.reward for n in tree.nodes()}
    if rewards:
        for nid, value in rewards.items():
            if nid not in out:
                raise KeyError(f"rewards override names node {nid!r}, which is not a non-root "
                               f"node of the tree (ids 1..{len(tree)})")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
                    or not math.isfinite(value):
                raise ValueError(f"rewards override for node {nid} must be a finite number, "
                                 f"got {value!r}")
            out[nid] = float(value)
    return out


@refuse_alpha(max_positional=1)
def shape_rewards(tree: SearchTree, *, lam: float = 0.5, beta: float = 0.5,
                  rewards: dict[int, float] | None = None) -> dict[int, float]:
    """Tree-consistent shaped reward of every non-root node (module docstring, Eqs. 3–5)."""
    _check_lam_beta(lam, beta)
    raw = raw_rewards(tree, rewards)
    # children reward sum and count per parent: sibling mean = (sum - own) / (count - 1)
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    for node in tree.nodes():
        total[node.parent] = total.get(node.parent, 0.0) + raw[node.id]
        count[node.parent] = count.get(node.parent, 0) + 1
    shaped: dict[int, float] = {}
    for node in tree.nodes():
        r = raw[node.id]
        p = node.parent
        k = count[p]
        sib_mean = (total[p] - r) / (k - 1) if k > 1 else None
        if p == 0:
            gain = 0.0 if sib_mean is None else r - sib_mean
        else:
            rp = raw[p]
            base = rp if sib_mean is None else (1.0 - lam) * rp + lam * sib_mean
            gain = r - base
        shaped[node.id] = r + beta * gain
    return shaped


class TreeAdvantages(dict):
    """Per-node advantages (``dict[node_id, float]``) with ``degenerate`` (no learning signal),
    and the ``mean`` / ``std`` of the shaped rewards they were normalised with."""

    def __init__(self, values: dict[int, float], degenerate: bool, mean: float = 0.0,
                 std: float = 0.0):
        super().__init__(values)
        self.degenerate = degenerate
        self.mean = mean
        self.std = std

    def __repr__(self) -> str:
        return f"TreeAdvantages({dict.__repr__(self)}, degenerate={self.degenerate})"

    def __reduce__(self) -> Any:
        return (TreeAdvantages, (dict(self), self.degenerate, self.mean, self.std))


def normalise(values: dict[int, float], eps: float = 1e-6) -> TreeAdvantages:
    """``(x - mean) / (std + eps)`` with ddof = 1; degenerate (all 0) for < 2 values or no spread."""
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    ids = list(values)
    x = np.array([values[i] for i in ids], dtype=float)
    if len(x) < 2 or float(x.max() - x.min()) <= DEGENERATE_ATOL:
        mean = float(x.mean()) if len(x) else 0.0
        return TreeAdvantages({i: 0.0 for i in ids}, degenerate=True, mean=mean, std=0.0)
    mean = float(x.mean())
    std = float(x.std(ddof=1))
    adv = (x - mean) / (std + eps)
    return TreeAdvantages(dict(zip(ids, adv.tolist(), strict=True)), degenerate=False, mean=mean, std=std)


@refuse_alpha(max_positional=1)
def tree_advantages(tree: SearchTree, *, lam: float = 0.5, beta: float = 0.5, eps: float = 1e-6,
                    rewards: dict[int, float] | None = None) -> TreeAdvantages:
    """Tree-level group advantage of every non-root node (Eq. 8)."""
    return normalise(shape_rewards(tree, lam=lam, beta=beta, rewards=rewards), eps)


@refuse_alpha(max_positional=1)
def node_records(tree: SearchTree, *, lam: float = 0.5, beta: float = 0.5, eps: float = 1e-6,
                 rewards: dict[int, float] | None = None) -> list[dict[str, Any]]:
    """One row per non-root node in expansion order: node_id, agent, parent, reward (the one
    shaping used: the override where given), shaped_reward, advantage."""
    raw = raw_rewards(tree, rewards)
    shaped = shape_rewards(tree, lam=lam, beta=beta, rewards=rewards)
    adv = normalise(shaped, eps)
    return [{"node_id": n.id, "agent": n.agent, "parent": n.parent, "reward": raw[n.id],
             "shaped_reward": shaped[n.id], "advantage": adv[n.id]} for n in tree.nodes()]

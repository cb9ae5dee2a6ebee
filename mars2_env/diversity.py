"""Diversity of correct solutions: the maths behind Table 2 of the MARS² paper.

Pure numpy; the model-backed parts (embedders, LLM equivalence judges, proxy-model
gradients) live in ``agents.diversity`` and feed their outputs into these functions.

Metrics (all computed per problem on functionally correct solutions only):

* DA@K (Lee et al., 2025): expected number of distinct algorithm clusters among K
  solutions drawn without replacement from the n correct ones.
* EA: effective number of algorithms, ``exp`` of the Shannon entropy of the cluster
  size distribution.
* NAUADC: normalised area under the DA@K curve (see :func:`nauadc`).
* Vendi score (Friedman & Dieng, 2023) of feature vectors; G-Vendi (Jung et al.,
  2025) is the Vendi score of normalised, projected loss gradients.

The selection helpers implement the paper's protocol (Appendix C): correct solutions
per problem (:func:`correct_solutions`), restricted to problems where every compared
method has at least one (:func:`comparable_problems`), and methods compared by
per-metric ranks and their average (:func:`rank_table`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .metrics import node_passes

__all__ = [
    "RankTable",
    "cluster_sizes",
    "comparable_problems",
    "correct_solutions",
    "da_curve",
    "distinct_algorithms_at_k",
    "effective_algorithms",
    "nauadc",
    "rank_table",
    "vendi_score_from_features",
    "vendi_score_from_kernel",
]


# ----------------------------------------------------------------------------- clusters


def _check_sizes(sizes: Iterable[int]) -> np.ndarray:
    """Validate a list of cluster sizes (positive integers) and return them as int64."""
    arr = np.asarray(list(sizes))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("cluster sizes must be a non-empty 1-D list of positive integers")
    if not np.all(np.equal(np.mod(arr, 1), 0)) or np.any(arr < 1):
        raise ValueError(f"cluster sizes must be positive integers, got {arr.tolist()}")
    return arr.astype(np.int64)


def cluster_sizes(labels: Sequence[Any]) -> list[int]:
    """Sizes of the clusters named by ``labels`` (one label a solution), largest first.

    Negative integer labels are DBSCAN's noise points: each one counts as a cluster of
    its own (an unclustered solution is a distinct algorithm, not no algorithm).
    """
    counts: dict[Any, int] = {}
    noise = 0
    for lab in labels:
        if isinstance(lab, (int, np.integer)) and lab < 0:
            noise += 1
        else:
            key = lab.item() if isinstance(lab, np.generic) else lab
            counts[key] = counts.get(key, 0) + 1
    return sorted(list(counts.values()) + [1] * noise, reverse=True)


def _log_comb(n: int | np.ndarray, k: int) -> np.ndarray:
    """log C(n, k) for integer arrays n >= k >= 0 (via log-gamma, no overflow)."""
    n = np.asarray(n, dtype=np.float64)
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    return lg(n + 1.0) - lg(float(k) + 1.0) - lg(n - k + 1.0)


def distinct_algorithms_at_k(sizes: Iterable[int], k: int) -> float:
    """DA@K: expected number of distinct clusters among K draws without replacement.

    With n = sum(sizes), ``DA@K = sum_c 1 - C(n - s_c, K) / C(n, K)``: cluster c is
    missed only if all K draws come from the other n - s_c items. The ratio of binomials
    is taken in log space, so large n does not overflow. For K >= n every solution is
    drawn and DA@K is the number of clusters (as in Lee et al.'s released code, which
    evaluates a fixed K range whatever n is).
    """
    arr = _check_sizes(sizes)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    n = int(arr.sum())
    k = int(k)
    if k >= n:
        return float(arr.size)
    rest = n - arr
    miss = np.zeros(arr.size, dtype=np.float64)
    ok = rest >= k  # otherwise C(n - s, K) = 0: the cluster cannot be missed
    if np.any(ok):
        miss[ok] = np.exp(_log_comb(rest[ok], k) - _log_comb(n, k))
    return float(np.sum(1.0 - miss))


def da_curve(sizes: Iterable[int], k_max: int | None = None) -> np.ndarray:
    """DA@K for K = 1..k_max (default n = sum(sizes)), as a float array of length k_max."""
    arr = _check_sizes(sizes)
    k_max = int(arr.sum()) if k_max is None else int(k_max)
    if k_max < 1:
        raise ValueError(f"k_max must be >= 1, got {k_max}")
    return np.array([distinct_algorithms_at_k(arr, k) for k in range(1, k_max + 1)])


def effective_algorithms(sizes: Iterable[int]) -> float:
    """EA: ``exp(H)`` with H the Shannon entropy (nats) of the cluster-size distribution.

    Equals the number of clusters when they are equally sized and 1 for a single one.
    """
    arr = _check_sizes(sizes).astype(np.float64)
    p = arr / arr.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def nauadc(sizes: Iterable[int], k_max: int | None = None) -> float:
    """NAUADC: normalised area under the DA@K curve over K = 1..k_max (default n).

    Normalisation as in Lee et al. (2025)'s metric code: the trapezoidal area under
    DA@K on K = 1..k_max divided by the width of that range, k_max - 1. The result is
    the curve's mean height, in units of algorithms: 1 when all solutions share one
    algorithm, at most the number of clusters, and (k_max + 1) / 2 when all n = k_max
    solutions are distinct. Lee et al. fix K = 1..25 for every problem; pass
    ``k_max=25`` to match them (DA@K stays flat at the number of clusters for K > n).
    With a single solution (k_max = 1) the range has no width and the value is DA@1 = 1.
    """
    curve = da_curve(sizes, k_max)
    if curve.size == 1:
        return float(curve[0])
    ks = np.arange(1, curve.size + 1, dtype=np.float64)
    area = float(np.sum((curve[1:] + curve[:-1]) * np.diff(ks)) / 2.0)
    return area / (curve.size - 1)


# ----------------------------------------------------------------------------- Vendi


def _entropy_exp(eigenvalues: np.ndarray) -> float:
    """exp of the Shannon entropy of non-negative eigenvalues normalised to sum to 1."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    total = lam.sum()
    if total <= 0:
        raise ValueError("similarity matrix has no positive eigenvalue")
    p = lam / total
    p = p[p > 1e-12]  # numerical zeros of a rank-deficient matrix
    p = p / p.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def vendi_score_from_kernel(kernel: np.ndarray) -> float:
    """Vendi score of a symmetric positive semi-definite similarity matrix with unit diagonal.

    ``exp(H(lambda / n))`` with lambda the eigenvalues of K: 1 when all items are the
    same, n when they are mutually orthogonal.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"kernel must be a non-empty square matrix, got shape {k.shape}")
    if not np.allclose(k, k.T, atol=1e-8):
        raise ValueError("kernel must be symmetric")
    return _entropy_exp(np.linalg.eigvalsh(k))


def vendi_score_from_features(features: np.ndarray, normalize: bool = True) -> float:
    """Vendi score of n feature vectors (rows): ``exp`` entropy of the covariance spectrum.

    With ``normalize`` each row is scaled to unit norm first (as G-Vendi does with its
    gradients), so the eigenvalues of ``X^T X / n`` sum to 1. The smaller of the two
    Gram forms (n x n or d x d) is decomposed; both have the same non-zero spectrum.
    Identical rows give 1, mutually orthogonal rows give n.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"features must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinite values")
    if normalize:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("features contain an all-zero row, which has no direction")
        x = x / norms
    n, d = x.shape
    gram = (x @ x.T) / n if n <= d else (x.T @ x) / n
    return _entropy_exp(np.linalg.eigvalsh(gram))


# ----------------------------------------------------------------------------- protocol


def _tree_nodes(tree: Any) -> tuple[str, list[Any]]:
    """(problem id, non-root nodes) of a SearchTree, or of its ``to_dict()`` form."""
    if isinstance(tree, Mapping):
        from mars2_env.tree import SearchTree  # lazy: only needed for serialised trees

        tree = SearchTree.from_dict(dict(tree))
    if not hasattr(tree, "nodes"):
        raise TypeError(f"expected a SearchTree or its to_dict() form, got {type(tree).__name__}")
    return str(getattr(tree, "problem_id", "")), list(tree.nodes())


def correct_solutions(trees: Iterable[Any], judge: str = "private",
                      dedupe: bool = False) -> dict[str, list[str]]:
    """Functionally correct programs per problem id, in expansion order.

    A node is correct when ``node.<judge>["verdict"] == "passed"`` (``judge`` is
    "private" or "public"; "all" needs both): ``metrics.node_passes``.
    A tree marked ``metadata["judge"] == "public"`` (its problem had no private tests) is
    judged on its public results (`metrics.judge_side`). Judging on "private" a node that has
    no private-test result is otherwise an error (the run was searched without judge tests:
    judge on "public" instead). Trees of the same
    problem (e.g. several seeds) are pooled. Empty programs never count. With
    ``dedupe`` textually identical programs (after stripping) are kept once; by default
    they stay, because DA@K and EA treat every correct sample as a draw.
    Problems with no correct node appear with an empty list.
    """
    if judge not in ("private", "public", "all"):
        raise ValueError(f"judge must be 'private', 'public' or 'all', got {judge!r}")
    out: dict[str, list[str]] = {}
    for tree in trees:
        pid, nodes = _tree_nodes(tree)
        meta = tree.get("metadata", {}) if isinstance(tree, Mapping) else getattr(tree, "metadata", {})
        side = "public" if (meta or {}).get("judge") == "public" else judge  # metrics.judge_side
        codes = out.setdefault(pid, [])
        for node in nodes:
            if side != "public" and getattr(node, "private", None) is None:
                raise ValueError(f"problem {pid!r}, node {getattr(node, 'id', '?')} has no "
                                 "private-test result; judge on 'public' instead")
            code = getattr(node, "code", "") or ""
            if not node_passes(node, side) or not code.strip():
                continue
            if dedupe and any(code.strip() == c.strip() for c in codes):
                continue
            codes.append(code)
    return out


def comparable_problems(runs: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    """Problem ids where every compared method has at least one correct solution.

    ``runs`` maps method name -> {problem id -> correct programs}. The result is sorted
    so tables built from it are reproducible.
    """
    if not runs:
        return []
    common: set[str] | None = None
    for sols in runs.values():
        solved = {pid for pid, codes in sols.items() if len(codes) > 0}
        common = solved if common is None else common & solved
    return sorted(common or ())


@dataclass
class RankTable:
    """Per-metric ranks (1 = best, ties share their average rank) and the mean rank per method."""

    methods: list[str]
    metrics: list[str]
    values: dict[str, dict[str, float]]
    ranks: dict[str, dict[str, float]] = field(default_factory=dict)
    average_rank: dict[str, float] = field(default_factory=dict)


def _average_ranks(values: list[float], higher_is_better: bool, tol: float) -> list[float]:
    """Fractional ranks of finite values (ties within ``tol`` share the mean); NaN stays NaN."""
    idx = [i for i, v in enumerate(values) if np.isfinite(v)]
    order = sorted(idx, key=lambda i: -values[i] if higher_is_better else values[i])
    ranks = [float("nan")] * len(values)
    pos = 0
    while pos < len(order):
        end = pos
        while end + 1 < len(order) and abs(values[order[end + 1]] - values[order[pos]]) <= tol:
            end += 1
        shared = (pos + 1 + end + 1) / 2.0
        for j in range(pos, end + 1):
            ranks[order[j]] = shared
        pos = end + 1
    return ranks


def rank_table(scores: Mapping[str, Mapping[str, float]],
               higher_is_better: bool | Mapping[str, bool] = True,
               metrics: Sequence[str] | None = None, tol: float = 1e-9) -> RankTable:
    """Rank methods on each metric and average the ranks (the paper's Table 2 layout).

    ``scores`` maps method -> {metric -> value}. ``higher_is_better`` is one flag for
    every metric or a per-metric mapping (missing metrics default to True). Values
    within ``tol`` tie and share the mean of the ranks they span (1 and 2 -> 1.5).
    A missing or NaN value gets no rank and is left out of that method's average.
    """
    methods = list(scores)
    if metrics is None:
        metrics = []
        for m in methods:
            for k in scores[m]:
                if k not in metrics:
                    metrics.append(k)
    metrics = list(metrics)
    values = {m: {k: float(scores[m].get(k, float("nan"))) for k in metrics} for m in methods}
    ranks: dict[str, dict[str, float]] = {m: {} for m in methods}
    for k in metrics:
        hib = (higher_is_better.get(k, True) if isinstance(higher_is_better, Mapping)
               else bool(higher_is_better))
        col = _average_ranks([values[m][k] for m in methods], hib, tol)
        for m, r in zip(methods, col, strict=True):
            ranks[m][k] = r
    average = {}
    for m in methods:
        finite = [r for r in ranks[m].values() if np.isfinite(r)]
        average[m] = float(np.mean(finite)) if finite else float("nan")
    return RankTable(methods=methods, metrics=metrics, values=values, ranks=ranks,
                     average_rank=average)

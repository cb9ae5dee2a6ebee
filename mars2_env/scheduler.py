"""Where to expand next: Thompson-sampling agent and node selection, and baseline strategies.

Every scheduler answers `select(tree) -> Expansion(agent, parent_id)`: which agent writes the
next node and under which node (``parent_id == 0``: a fresh candidate, "generate"; otherwise a
refinement of that node). The caller adds the node to the tree and reports it with
`update(tree, node)`. One scheduler instance follows one tree at a time; `reset()` starts the next.

ThompsonScheduler — the arms and what feeds them
------------------------------------------------
Every arm is a posterior over rewards in [0, 1] kept as running sums (count, sum, sum of
squares); nothing is rebuilt from past rewards. A landed node updates each arm it feeds in
O(1) (O(depth) arms in all); `select` draws O(depth x branching) samples and never walks the
whole tree. Nodes are indexed by id in arrays. For a landed node x written by agent a under
parent p with reward r:

* agent arm ``A[a]``: every node agent ``a`` wrote in this tree (+= r).
* GEN arm ``G[v]`` at node v (the root included): rewards of v's direct children — the
  results of generating a new node at v (``G[p]`` += r).
* child arm ``C[c]`` for every non-root node c, used to CONT into c from its parent: the reward
  of c itself and of every node in c's subtree (``C[x]`` = r, and ``C[u]`` += r for each
  ancestor u of x below the root).
* CONT arm ``K[v]``: rewards of the nodes two or more levels below v — the results of going
  on into one of v's children rather than generating at v (``K[parent(u)]`` += r for each
  non-root ancestor u of x). The root's ``K`` therefore holds every node of depth >= 2.

These are the per-node posteriors of AB-MCTS-A (Inoue et al., 2025) as TreeQuest's ``ABMCTSA``
keeps them with several actions. Under ``refine_scope="own"`` the GEN and CONT arms at v are
split by agent: ``G[v, a]`` counts only children of v written by a, ``K[v, a]`` only nodes
reached through children of v written by a, and only a's children are eligible to CONT into.

Descent from the root, at node v: if v has no eligible child, or ``depth(v) + 1 >=
max_depth`` (``max_depth`` caps the depth of new nodes, so a child of v could not be refined),
GEN at v. Otherwise draw one sample from each of ``G[v]``, ``K[v]`` and every eligible child's
``C[c]``; if the GEN sample is at least the CONT sample, GEN at v; else move to the child with
the highest sample and repeat. The first expansion of a tree is always a root GEN.

* ``order="agent_first"`` (MARS², §2.1): draw an agent from the agent arms, then descend (with
  its own arms under ``refine_scope="own"``).
* ``order="node_first"`` (AB-MCTS-A with several models): descend on the pooled arms, then draw
  the agent from the agent arms. With pooled arms (``refine_scope="any"``) the descent does not
  depend on the agent, so the two orders differ only in the order of random draws.

With one agent no agent draw is made. Priors: ``beta`` — Beta(alpha, beta), default (1, 1); a
reward r adds r to alpha and 1 - r to beta. ``gaussian`` — normal–inverse-gamma with
``m, kappa, nu, tau_square`` (defaults 0, 1, 1, 0.1 as in AB-MCTS): draw sigma² from the
inverse gamma posterior, then the mean from N(m_n, sigma²/kappa_n); that mean is the sample.

Batched search: `mark_pending(exp)` counts an expansion in flight as an observed failure
(reward 0) in ``A[agent]``, ``G[parent]`` and, for every node u on the parent's path below the
root, ``C[u]`` and ``K[parent(u)]`` (the arms a real node there would feed), so concurrent
`select` calls spread out (virtual loss). `clear_pending(exp)` takes it back; call it when the
expansion lands (before or after `update`) or is abandoned.

Baselines with the same interface pick agents round-robin, one per `select` call (so with a
batch in flight each agent gets its turn), in an order drawn per tree from the seeded generator
(so no agent is always first, and results do not depend on the order agents are listed in):
`ParallelSampling` (every node a fresh root child —
the GRPO-style group), `SequentialRefinement` (refine the most recently landed node: a chain),
`BestFirst` (refine the landed node with the highest reward, ties to the latest; the root while
none has landed). The rotation order is their only random draw.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .tree import Node, SearchTree, check_reward

PRIORS = ("beta", "gaussian")
ORDERS = ("agent_first", "node_first")
REFINE_SCOPES = ("any", "own")
DEFAULT_PRIOR_PARAMS: dict[str, dict[str, float]] = {
    "beta": {"alpha": 1.0, "beta": 1.0},
    "gaussian": {"m": 0.0, "kappa": 1.0, "nu": 1.0, "tau_square": 0.1},
}
_ALIASES = {"a": "alpha", "b": "beta"}
STATE_VERSION = 1


@dataclass(frozen=True)
class Expansion:
    """The next expansion: `agent` writes a new child of node `parent_id` (0 = the root)."""

    agent: str
    parent_id: int


@runtime_checkable
class Scheduler(Protocol):
    agents: list[str]

    def reset(self, agents: Sequence[str] | None = None,
              seed: int | np.random.Generator | None = None) -> None: ...
    def select(self, tree: SearchTree) -> Expansion: ...
    def update(self, tree: SearchTree, node: Node) -> None: ...
    def mark_pending(self, exp: Expansion) -> None: ...
    def clear_pending(self, exp: Expansion) -> None: ...
    def add_agent(self, name: str) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, d: dict[str, Any]) -> None: ...


def _check_agents(agents: Sequence[str]) -> list[str]:
    if isinstance(agents, str):
        raise TypeError(f"agents must be a sequence of names, got the string {agents!r}")
    out = list(agents)
    for a in out:
        if not isinstance(a, str) or not a:
            raise ValueError(f"agent names must be non-empty strings, got {a!r}")
    dupes = sorted(a for a, k in Counter(out).items() if k > 1)
    if dupes:
        raise ValueError(f"duplicate agent name(s) {dupes}")
    return out


def _make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    name = state.get("bit_generator")
    bitgen_cls = getattr(np.random, str(name), None)
    if bitgen_cls is None or not isinstance(bitgen_cls, type) \
            or not issubclass(bitgen_cls, np.random.BitGenerator):
        raise ValueError(f"unknown bit generator {name!r} in scheduler state")
    bitgen = bitgen_cls()
    bitgen.state = state
    return np.random.Generator(bitgen)


class _BaseScheduler:
    """Bookkeeping shared by all schedulers: agents, landed nodes, pending expansions,
    and the input checks that run before any state changes."""

    kind = "base"

    def __init__(self, agents: Sequence[str], seed: int | np.random.Generator | None = None):
        self.agents: list[str] = _check_agents(agents)
        self._agent_index = {a: i for i, a in enumerate(self.agents)}
        self._rng = _make_rng(seed)
        self._clear()

    # --- state of one tree
    def _clear(self) -> None:
        self._known: bytearray = bytearray(b"\x01")      # _known[i]: node i recorded (root: yes)
        self._records: list[tuple[int, int, str, float]] = []   # (id, parent, agent, reward)
        self._pending: Counter[tuple[str, int]] = Counter()

    def reset(self, agents: Sequence[str] | None = None,
              seed: int | np.random.Generator | None = None) -> None:
        """Start a new tree; `agents` replaces the agent list, `seed` the random generator
        (None keeps the current generator running, so a whole run repeats from one seed)."""
        if agents is not None:
            new_agents = _check_agents(agents)
            self.agents = new_agents
            self._agent_index = {a: i for i, a in enumerate(new_agents)}
        if seed is not None:
            self._rng = _make_rng(seed)
        self._clear()

    def add_agent(self, name: str) -> None:
        """Let a new agent take part from the next `select` on (its posterior starts at the prior)."""
        _check_agents([name])
        if name in self._agent_index:
            raise ValueError(f"agent {name!r} is already taking part")
        self._agent_index[name] = len(self.agents)
        self.agents.append(name)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @property
    def num_recorded(self) -> int:
        return len(self._records)

    def _is_known(self, node_id: int) -> bool:
        return 0 <= node_id < len(self._known) and self._known[node_id] == 1

    def _check_tree(self, tree: SearchTree) -> None:
        if len(self._known) - 1 > len(tree):
            raise ValueError(
                f"the scheduler has recorded node ids up to {len(self._known) - 1} but the tree "
                f"has only {len(tree)} nodes; call reset() when starting a new tree")

    def _check_select(self, tree: SearchTree) -> None:
        if not self.agents:
            raise ValueError("no agents to schedule; pass agents or call add_agent() first")
        self._check_tree(tree)

    def _check_node(self, tree: SearchTree, node: Node) -> tuple[int, int, int, float]:
        """(id, parent, agent index, reward) of a landed node, or an error; changes nothing."""
        nid, parent = node.id, node.parent
        if isinstance(nid, bool) or not isinstance(nid, int) or nid < 1:
            raise ValueError(f"node id must be an int >= 1 (0 is the root), got {nid!r}")
        if self._is_known(nid):
            raise ValueError(f"node {nid} was already recorded")
        if isinstance(parent, bool) or not isinstance(parent, int):
            raise ValueError(f"node {nid}: parent must be a node id, got {parent!r}")
        if not self._is_known(parent):
            raise ValueError(f"node {nid}: unknown parent {parent}; update() the parent first")
        if node.agent not in self._agent_index:
            raise ValueError(f"node {nid}: unknown agent {node.agent!r}; agents are "
                             f"{self.agents} (add_agent() lets a new one join)")
        r = check_reward(node.reward, f"node {nid} reward")
        if nid not in tree or tree[nid].parent != parent:
            raise ValueError(f"node {nid} (parent {parent}) is not in the given tree")
        return nid, parent, self._agent_index[node.agent], r

    def _check_expansion(self, exp: Expansion) -> int:
        if not isinstance(exp, Expansion):
            raise TypeError(f"expected an Expansion, got {exp!r}")
        if exp.agent not in self._agent_index:
            raise ValueError(f"unknown agent {exp.agent!r}; agents are {self.agents}")
        if not self._is_known(exp.parent_id):
            raise ValueError(f"unknown parent node {exp.parent_id} in {exp}")
        return self._agent_index[exp.agent]

    # --- public interface
    def update(self, tree: SearchTree, node: Node) -> None:
        """Record a node that landed in `tree` (its parent must have been recorded already)."""
        nid, parent, a, r = self._check_node(tree, node)
        if nid >= len(self._known):
            self._known.extend(b"\x00" * (nid + 1 - len(self._known)))
        self._known[nid] = 1
        self._records.append((nid, parent, self.agents[a], r))
        self._record(nid, parent, a, r)

    def mark_pending(self, exp: Expansion) -> None:
        """Count `exp` as in flight (see the module docstring)."""
        a = self._check_expansion(exp)
        self._pending[(exp.agent, exp.parent_id)] += 1
        self._virtual(a, exp.parent_id, +1)

    def clear_pending(self, exp: Expansion) -> None:
        """Take back one `mark_pending(exp)`."""
        a = self._check_expansion(exp)
        key = (exp.agent, exp.parent_id)
        if self._pending[key] <= 0:
            raise ValueError(f"{exp} is not pending")
        self._pending[key] -= 1
        if self._pending[key] == 0:
            del self._pending[key]
        self._virtual(a, exp.parent_id, -1)

    @property
    def pending(self) -> dict[tuple[str, int], int]:
        return dict(self._pending)

    # --- hooks
    def _record(self, nid: int, parent: int, a: int, r: float) -> None:
        pass

    def _virtual(self, a: int, parent: int, sign: int) -> None:
        pass

    # --- checkpoints
    def _config(self) -> dict[str, Any]:
        return {}

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, d: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: config, agents, RNG state, landed nodes in update
        order and pending expansions. JSON-serialisable."""
        return {
            "kind": self.kind,
            "version": STATE_VERSION,
            "config": self._config(),
            "agents": list(self.agents),
            "rng": self._rng.bit_generator.state,
            "records": [list(r) for r in self._records],
            "pending": [[a, p, k] for (a, p), k in self._pending.items()],
            **self._extra_state(),
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore a `state_dict()`; the posteriors are rebuilt by replaying the landed nodes in
        their original order, which reproduces the running sums exactly. A bad state raises
        and leaves this scheduler as it was."""
        if not isinstance(d, dict) or d.get("kind") != self.kind:
            raise ValueError(f"state is for {d.get('kind') if isinstance(d, dict) else d!r}, "
                             f"not {self.kind}")
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported scheduler state version {d.get('version')!r}")
        work = object.__new__(type(self))
        work.__dict__.update(self.__dict__)      # every loaded field below is a fresh object
        try:
            work._load(d)
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed scheduler state: {e!r}") from None
        self.__dict__.update(work.__dict__)

    def _load(self, d: dict[str, Any]) -> None:
        self._apply_config(d["config"])
        self.reset(agents=d["agents"])
        rng = _rng_from_state(d["rng"])
        for rec in d["records"]:
            nid, parent, agent, r = rec
            if isinstance(nid, bool) or not isinstance(nid, int) or nid < 1 \
                    or not isinstance(parent, int) or not self._is_known(parent) \
                    or agent not in self._agent_index:
                raise ValueError(f"bad record {rec!r} in scheduler state")
            self._replay(Node(id=nid, parent=parent, agent=agent, depth=0, step=0, reward=r))
        for agent, parent, k in d["pending"]:
            for _ in range(int(k)):
                self.mark_pending(Expansion(agent, parent))
        self._load_extra_state(d)
        self._rng = rng

    def _apply_config(self, config: dict[str, Any]) -> None:
        pass

    def _replay(self, node: Node) -> None:
        check_reward(node.reward, f"node {node.id} reward")
        if self._is_known(node.id):
            raise ValueError(f"node {node.id} appears twice in scheduler state")
        nid, parent, a, r = node.id, node.parent, self._agent_index[node.agent], node.reward
        if nid >= len(self._known):
            self._known.extend(b"\x00" * (nid + 1 - len(self._known)))
        self._known[nid] = 1
        self._records.append((nid, parent, node.agent, r))
        self._record(nid, parent, a, r)


# =============================================================================== Thompson


class _Kids:
    """Child ids of one node: a list, plus a numpy copy grown in place once a draw needs it."""

    __slots__ = ("ids", "_buf")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self._buf: np.ndarray | None = None

    def append(self, node_id: int) -> None:
        self.ids.append(node_id)
        buf = self._buf
        if buf is not None:
            k = len(self.ids)
            if k > len(buf):
                grown = np.empty(2 * k, dtype=np.intp)
                grown[: k - 1] = buf[: k - 1]
                self._buf = buf = grown
            buf[k - 1] = node_id

    def array(self) -> np.ndarray:
        if self._buf is None:
            self._buf = np.empty(2 * len(self.ids) + 8, dtype=np.intp)
            self._buf[: len(self.ids)] = self.ids
        return self._buf[: len(self.ids)]


class ThompsonScheduler(_BaseScheduler):
    """MARS² / AB-MCTS-A Thompson-sampling scheduler (see the module docstring for the arms).

    Args:
        agents: agent names (more may join with `add_agent`).
        prior: "beta" or "gaussian".
        prior_params: overrides of the prior's parameters — beta: ``alpha``, ``beta`` (or
            TreeQuest's ``a``, ``b``); gaussian: ``m``, ``kappa``, ``nu``, ``tau_square``.
        order: "agent_first" (MARS²) or "node_first" (AB-MCTS-A with several models).
        refine_scope: "any" (anyone refines any node) or "own" (only one's own nodes;
            needs order="agent_first").
        max_depth: deepest a new node may be (None: unbounded; 1: parallel sampling).
        seed: int or `numpy.random.Generator`; the only source of randomness.
    """

    kind = "thompson"

    def __init__(self, agents: Sequence[str], prior: str = "beta",
                 prior_params: dict[str, float] | None = None, order: str = "agent_first",
                 refine_scope: str = "any", max_depth: int | None = None,
                 seed: int | np.random.Generator | None = None):
        self._set_config(prior, prior_params, order, refine_scope, max_depth)
        super().__init__(agents, seed)

    # --- configuration
    def _set_config(self, prior: str, prior_params: dict[str, float] | None, order: str,
                    refine_scope: str, max_depth: int | None) -> None:
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if refine_scope not in REFINE_SCOPES:
            raise ValueError(f"refine_scope must be one of {REFINE_SCOPES}, got {refine_scope!r}")
        if order == "node_first" and refine_scope == "own":
            raise ValueError("refine_scope='own' needs order='agent_first': with node_first the "
                             "agent is only known after the descent")
        if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int)
                                      or max_depth < 1):
            raise ValueError(f"max_depth must be None or an int >= 1, got {max_depth!r}")
        params = dict(DEFAULT_PRIOR_PARAMS[prior])
        for key, value in (prior_params or {}).items():
            key = _ALIASES.get(key, key) if prior == "beta" else key
            if key not in params:
                raise ValueError(f"unknown {prior} prior parameter {key!r}; "
                                 f"expected {sorted(params)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f"prior parameter {key!r} must be a finite number, got {value!r}")
            if key != "m" and value <= 0:
                raise ValueError(f"prior parameter {key!r} must be > 0, got {value!r}")
            params[key] = float(value)
        self.prior, self.prior_params = prior, params
        self.order, self.refine_scope, self.max_depth = order, refine_scope, max_depth
        self._own = refine_scope == "own"
        # Arms up to this many are drawn one by one (numpy's fixed per-call cost dominates
        # small arrays); more go through one vectorised call. Both paths consume the generator
        # identically, so this only changes speed, never the draws.
        self.vector_threshold = 32 if prior == "beta" else 16
        if prior == "beta":
            self._p = (params["alpha"], params["beta"])
        else:
            self._p = (params["m"], params["kappa"], params["nu"], params["tau_square"])

    def _config(self) -> dict[str, Any]:
        return {"prior": self.prior, "prior_params": dict(self.prior_params), "order": self.order,
                "refine_scope": self.refine_scope, "max_depth": self.max_depth}

    def _apply_config(self, config: dict[str, Any]) -> None:
        self._set_config(config["prior"], config["prior_params"], config["order"],
                         config["refine_scope"], config["max_depth"])

    def _clear(self) -> None:
        super()._clear()
        # Per node id: parent, depth, writer, children; arms as [count, sum, sum of squares].
        self._parent: list[int] = [-1]
        self._depth: list[int] = [0]
        self._agent_of: list[int] = [-1]
        self._children: list[_Kids] = [_Kids()]
        self._own_children: list[dict[int, _Kids]] = [{}]
        self._sub = np.zeros((64, 3))        # C[c], row c; a numpy array so wide nodes gather fast
        self._gen: list[list[float]] = [[0.0, 0.0, 0.0]]    # G[v]
        self._cont: list[list[float]] = [[0.0, 0.0, 0.0]]   # K[v]
        self._gen_own: dict[tuple[int, int], list[float]] = {}    # G[v, a]
        self._cont_own: dict[tuple[int, int], list[float]] = {}   # K[v, a]
        self._agent_stats: list[list[float]] = [[0.0, 0.0, 0.0] for _ in self.agents]

    def add_agent(self, name: str) -> None:
        super().add_agent(name)
        self._agent_stats.append([0.0, 0.0, 0.0])

    # --- sampling

    def _draw(self, rows: Sequence[Sequence[float]]) -> list[float] | np.ndarray:
        """One posterior sample per arm row (count, sum, sum of squares)."""
        if len(rows) > self.vector_threshold:
            n, s, q = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
            return self._draw_arrays(n, s, q)
        rng = self._rng
        if self.prior == "beta":
            a0, b0 = self._p
            return [rng.beta(a0 + s, b0 + n - s) for n, s, _ in rows]
        m0, k0, nu0, tau0 = self._p
        params = []
        for n, s, q in rows:
            mean = s / n if n > 0 else 0.0
            dev = max(q - s * mean, 0.0)
            kappa = k0 + n
            diff = m0 - mean
            params.append(((k0 * m0 + s) / kappa, kappa, (nu0 + n) / 2.0,
                           (nu0 * tau0 + dev + n * k0 * diff * diff / kappa) / 2.0))
        gammas = [rng.standard_gamma(p[2]) for p in params]
        return [m + math.sqrt(half_nu_tau / g / kappa) * rng.standard_normal()
                for (m, kappa, _, half_nu_tau), g in zip(params, gammas, strict=True)]

    def _draw_arrays(self, n: np.ndarray, s: np.ndarray, q: np.ndarray) -> np.ndarray:
        """`_draw` for arms given as arrays of counts, sums and sums of squares."""
        rng = self._rng
        if self.prior == "beta":
            a0, b0 = self._p
            return rng.beta(a0 + s, b0 + n - s)
        m0, k0, nu0, tau0 = self._p
        mean = s / np.maximum(n, 1.0)                  # counts are whole numbers; s = 0 if n = 0
        dev = q - s * mean
        np.maximum(dev, 0.0, out=dev)
        kappa = k0 + n
        diff = m0 - mean
        half_nu_tau = (nu0 * tau0 + dev + n * k0 * diff * diff / kappa) / 2.0
        m = (k0 * m0 + s) / kappa
        gammas = rng.standard_gamma((nu0 + n) / 2.0)
        return m + np.sqrt(half_nu_tau / gammas / kappa) * rng.standard_normal(len(n))

    def posterior_params(self, row: Sequence[float]) -> dict[str, float]:
        """Posterior parameters of an arm given its (count, sum, sum of squares): ``alpha, beta``
        for the beta prior, ``m, kappa, nu, tau_square`` for the gaussian one."""
        n, s, q = (float(x) for x in row)
        if self.prior == "beta":
            a0, b0 = self._p
            return {"alpha": a0 + s, "beta": b0 + n - s}
        m0, k0, nu0, tau0 = self._p
        mean = s / n if n > 0 else 0.0
        dev = max(q - s * mean, 0.0)
        kappa, nu = k0 + n, nu0 + n
        diff = m0 - mean
        return {"m": (k0 * m0 + s) / kappa, "kappa": kappa, "nu": nu,
                "tau_square": (nu0 * tau0 + dev + n * k0 * diff * diff / kappa) / nu}

    @staticmethod
    def _argmax(values: list[float] | np.ndarray, start: int = 0) -> int:
        """Index of the largest value at or after `start` (first on ties), relative to `start`."""
        best, best_i = values[start], 0
        for i in range(start + 1, len(values)):
            if values[i] > best:
                best, best_i = values[i], i - start
        return best_i

    def _pick_agent(self) -> int:
        if len(self.agents) == 1:
            return 0
        return self._argmax(self._draw(self._agent_stats))

    def _descend(self, agent: int | None) -> int:
        """Walk from the root; `agent` restricts arms and children to that agent's (scope own)."""
        v = 0
        max_depth = self.max_depth
        sub = self._sub
        zero = (0.0, 0.0, 0.0)
        threshold = self.vector_threshold
        while True:
            if max_depth is not None and self._depth[v] + 1 >= max_depth:
                return v
            if agent is None:
                group = self._children[v]
                g, k = self._gen[v], self._cont[v]
            else:
                group = self._own_children[v].get(agent)
                if group is None:
                    return v
                g = self._gen_own.get((v, agent), zero)
                k = self._cont_own.get((v, agent), zero)
            kids = group.ids
            if not kids:
                return v
            if len(kids) + 2 <= threshold:
                draws = self._draw([g, k] + sub[kids].tolist())
            else:
                stats = np.empty((len(kids) + 2, 3))
                stats[0] = g
                stats[1] = k
                np.take(sub, group.array(), axis=0, out=stats[2:])
                draws = self._draw_arrays(stats[:, 0], stats[:, 1], stats[:, 2])
            if draws[0] >= draws[1]:
                return v
            if len(kids) == 1:
                v = kids[0]
            elif isinstance(draws, np.ndarray):
                v = kids[int(np.argmax(draws[2:]))]
            else:
                v = kids[self._argmax(draws, 2)]

    def select(self, tree: SearchTree) -> Expansion:
        """Thompson-sample the next (agent, parent); changes no posterior (only the RNG moves)."""
        self._check_select(tree)
        if self.order == "agent_first":
            a = self._pick_agent()
            v = self._descend(a if self._own else None)
        else:
            v = self._descend(None)
            a = self._pick_agent()
        return Expansion(self.agents[a], v)

    # --- bookkeeping
    @staticmethod
    def _add(row: list[float], n: float, r: float, q: float) -> None:
        row[0] += n
        row[1] += r
        row[2] += q

    def _observe(self, a: int, parent: int, n: float, r: float, q: float) -> None:
        """Feed one observation (count n, sum r, square q) to every arm it belongs to."""
        add = self._add
        add(self._agent_stats[a], n, r, q)
        add(self._gen[parent], n, r, q)
        own = self._own
        if own:
            row = self._gen_own.get((parent, a))
            if row is None:
                self._gen_own[(parent, a)] = [n, r, q]
            else:
                add(row, n, r, q)
        parent_of, cont, agent_of = self._parent, self._cont, self._agent_of
        ups = []
        u = parent
        while u > 0:                       # every non-root ancestor u of the new node
            w = parent_of[u]
            ups.append(u)
            row = cont[w]
            row[0] += n
            row[1] += r
            row[2] += q
            if own:
                key = (w, agent_of[u])
                row = self._cont_own.get(key)
                if row is None:
                    self._cont_own[key] = [n, r, q]
                else:
                    add(row, n, r, q)
            u = w
        if ups:
            self._sub[ups] += (n, r, q)

    def _record(self, nid: int, parent: int, a: int, r: float) -> None:
        size = len(self._parent)
        if nid >= size:
            grow = nid + 1 - size
            self._parent.extend([-1] * grow)
            self._depth.extend([0] * grow)
            self._agent_of.extend([-1] * grow)
            for lst in (self._children, self._gen, self._cont):
                lst.extend(None for _ in range(grow))
            self._own_children.extend({} for _ in range(grow))
            if nid >= len(self._sub):
                grown = np.zeros((max(nid + 1, 2 * len(self._sub)), 3))
                grown[: len(self._sub)] = self._sub
                self._sub = grown
        self._parent[nid] = parent
        self._depth[nid] = self._depth[parent] + 1
        self._agent_of[nid] = a
        self._children[nid] = _Kids()
        self._gen[nid] = [0.0, 0.0, 0.0]
        self._cont[nid] = [0.0, 0.0, 0.0]
        self._sub[nid] = (1.0, r, r * r)
        self._children[parent].append(nid)
        if self._own:
            group = self._own_children[parent].get(a)
            if group is None:
                group = self._own_children[parent][a] = _Kids()
            group.append(nid)
        self._observe(a, parent, 1.0, r, r * r)

    def _virtual(self, a: int, parent: int, sign: int) -> None:
        self._observe(a, parent, float(sign), 0.0, 0.0)

    # --- introspection (tests, debugging)
    def arm_stats(self) -> dict[str, Any]:
        """Current [count, sum, sum of squares] of every arm, as plain lists."""
        known = [v for v in range(len(self._parent)) if self._is_known(v)]
        return {
            "agent": {ag: list(self._agent_stats[i]) for i, ag in enumerate(self.agents)},
            "gen": {v: list(self._gen[v]) for v in known},
            "cont": {v: list(self._cont[v]) for v in known},
            "child": {v: self._sub[v].tolist() for v in known if v > 0},
            "gen_own": {(v, self.agents[a]): list(r) for (v, a), r in self._gen_own.items()},
            "cont_own": {(v, self.agents[a]): list(r) for (v, a), r in self._cont_own.items()},
        }


# =============================================================================== baselines


class _RoundRobin(_BaseScheduler):
    """Agents in turn, one per `select`, in an order drawn afresh for every tree from the
    seeded generator; subclasses choose the parent.

    A fixed order would hand every tree's first node (all of them at budget 1) to the first
    agent listed, so results would change when the agents are listed the other way round.
    """

    def _clear(self) -> None:
        super()._clear()
        self._turn = 0
        self._order: list[int] | None = None  # drawn at the tree's first select

    def add_agent(self, name: str) -> None:
        super().add_agent(name)
        if self._order is not None:
            self._order.append(len(self.agents) - 1)

    def _next_agent(self) -> str:
        if self._order is None:
            n = len(self.agents)
            self._order = [int(i) for i in self._rng.permutation(n)] if n > 1 else [0]
        agent = self.agents[self._order[self._turn % len(self._order)]]
        self._turn += 1
        return agent

    def _parent_choice(self) -> int:
        raise NotImplementedError

    def select(self, tree: SearchTree) -> Expansion:
        self._check_select(tree)
        parent = self._parent_choice()
        return Expansion(self._next_agent(), parent)

    def _extra_state(self) -> dict[str, Any]:
        return {"turn": self._turn,
                "order": None if self._order is None else list(self._order)}

    def _load_extra_state(self, d: dict[str, Any]) -> None:
        self._turn = int(d.get("turn", 0))
        order = d.get("order")
        if order is not None:
            order = [int(i) for i in order]
            if sorted(order) != list(range(len(self.agents))):
                raise ValueError(f"scheduler state: agent order {order} is not a permutation of "
                                 f"{len(self.agents)} agents")
            self._order = order


class ParallelSampling(_RoundRobin):
    """Every node a fresh root child (best-of-N; the GRPO group)."""

    kind = "parallel"

    def _parent_choice(self) -> int:
        return 0


class SequentialRefinement(_RoundRobin):
    """A chain: each node refines the most recently landed node (the root before any)."""

    kind = "sequential"

    def _parent_choice(self) -> int:
        return self._records[-1][0] if self._records else 0


class BestFirst(_RoundRobin):
    """Refine the landed node with the highest reward so far (ties: the latest landed)."""

    kind = "best_first"

    def _clear(self) -> None:
        super()._clear()
        self._best: tuple[float, int] | None = None

    def _record(self, nid: int, parent: int, a: int, r: float) -> None:
        if self._best is None or r >= self._best[0]:
            self._best = (r, nid)

    def _parent_choice(self) -> int:
        return 0 if self._best is None else self._best[1]


SCHEDULERS: dict[str, type[_BaseScheduler]] = {
    cls.kind: cls for cls in (ThompsonScheduler, ParallelSampling, SequentialRefinement, BestFirst)
}

"""Per-agent buffer of node samples waiting for their learner's next update.

Each learner trains only on the nodes its agent wrote (MARS² §2.4); a node becomes one
sample carrying the tokens the agent generated, the logprobs the rollout engine reported,
and the tree advantage the environment computed over the whole tree (Eq. 8).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class NodeSample:
    """One training sample: a node of a search tree, seen by the learner of its agent."""

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float
    logprobs: list[float] | None = None  # rollout engine's logprob of each completion token
    agent: str = ""
    problem_id: str = ""
    node_id: int = -1
    reward: float = 0.0  # raw node reward (after the overlong penalty)
    shaped_reward: float = 0.0
    truncated: bool = False  # generation stopped at max_new_tokens
    policy_version: int = 0  # learner updates done when the sample was generated
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.prompt_ids:
            raise ValueError(
                f"sample {self.agent}/{self.problem_id}#{self.node_id}: empty prompt_ids"
            )
        if not math.isfinite(float(self.advantage)):
            raise ValueError(
                f"sample {self.agent}/{self.problem_id}#{self.node_id}: advantage must be finite, got {self.advantage!r}"
            )
        if self.logprobs is not None and len(self.logprobs) != len(self.completion_ids):
            raise ValueError(
                f"sample {self.agent}/{self.problem_id}#{self.node_id}: {len(self.logprobs)} logprobs for "
                f"{len(self.completion_ids)} completion tokens"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeSample:
        return cls(**d)


def as_sample(x: NodeSample | dict[str, Any]) -> NodeSample:
    """Accept a NodeSample or a dict with the same keys (e.g. a dataset row)."""
    if isinstance(x, NodeSample):
        return x
    if isinstance(x, dict):
        return NodeSample.from_dict(x)
    raise TypeError(f"expected a NodeSample or dict, got {type(x).__name__}")


class SampleBuffer:
    """FIFO of samples for one learner; an update takes the oldest ``threshold`` samples."""

    def __init__(self, threshold: int) -> None:
        if threshold < 2:
            raise ValueError(
                f"buffer threshold must be >= 2 samples (a TRL generation batch), got {threshold}"
            )
        self.threshold = int(threshold)
        self._items: deque[NodeSample] = deque()
        self.total_added = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[NodeSample]:
        return iter(self._items)

    def add(self, sample: NodeSample) -> None:
        self._items.append(sample)
        self.total_added += 1

    def extend(self, samples: Iterable[NodeSample]) -> None:
        for s in samples:
            self.add(s)

    def ready(self) -> bool:
        """True when an update can take a full batch."""
        return len(self._items) >= self.threshold

    def pop_batch(self) -> list[NodeSample]:
        """Remove and return the oldest ``threshold`` samples."""
        if not self.ready():
            raise RuntimeError(
                f"buffer holds {len(self._items)} samples, fewer than the threshold {self.threshold}"
            )
        return [self._items.popleft() for _ in range(self.threshold)]

    def drop_stale(self, version: int, max_staleness: int | None) -> int:
        """Remove the samples whose policy is more than ``max_staleness`` versions older than
        ``version`` (the learner's update count); returns how many (None: keep everything)."""
        if max_staleness is None:
            return 0
        keep = deque(s for s in self._items if version - s.policy_version <= max_staleness)
        dropped = len(self._items) - len(keep)
        self._items = keep
        return dropped

    def state_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "total_added": self.total_added,
            "items": [s.to_dict() for s in self._items],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.threshold = int(state["threshold"])
        self.total_added = int(state["total_added"])
        self._items = deque(NodeSample.from_dict(d) for d in state["items"])

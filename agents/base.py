"""The agent interface: `Generation` records, the `Agent` protocol and a small base class.

An agent turns environment observations (dicts whose ``prompt`` is the JSON of chat messages)
into response texts. `act` serves plain ``env.step()`` loops; `generate` serves batched search
and also returns token ids and per-token logprobs when the backend has them (learners need them).

``generate(observations, seeds=[...])`` samples each response from its own seed (mixed with the
agent's seed), so a response does not depend on what else is in the batch or on how many calls
came before: `mars2_env.vector.BatchedSearch` hands out one seed per expansion, derived from
(run seed, problem, expansion index), which is what makes a resumed search repeat exactly.
Without ``seeds`` an agent draws from its own stream (seed + call counter).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from mars2_env.prompts import messages_from_observation

Messages = list[dict[str, str]]


@dataclass
class Generation:
    """One response. Token ids and logprobs are None when the backend does not give them.

    ``logprobs[i]`` is the log-probability of ``completion_token_ids[i]`` under the model's
    *unscaled* distribution (log-softmax of the raw logits, i.e. temperature 1, no top-p),
    which is what importance ratios in GSPO/GRPO learners compare against.
    """

    text: str
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Agent(Protocol):
    """What the search loop and the environments' users call."""

    name: str

    def act(self, observation: dict) -> str: ...

    def generate(self, observations: list[dict]) -> list[Generation]: ...


def check_seeds(seeds: Sequence[int] | None, n: int) -> list[int] | None:
    """``seeds`` as a list of ints aligned with ``n`` requests (None stays None)."""
    if seeds is None:
        return None
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__"):
        raise TypeError(f"seeds must be a list of ints, got {type(seeds).__name__}")
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} requests")
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"seeds must be ints, got {s!r}")
        out.append(int(s))
    return out


def generate_seeded(agent: Any, observations: list[dict],
                    seeds: Sequence[int | None] | None) -> list[Any]:
    """``agent.generate(observations, seeds=seeds)`` when every seed is set and the agent takes
    ``seeds``; else ``agent.generate(observations)`` (agents written for the bare protocol)."""
    import inspect

    if seeds is None or any(s is None for s in seeds):
        return agent.generate(observations)
    try:
        takes = "seeds" in inspect.signature(agent.generate).parameters
    except (TypeError, ValueError):
        takes = False
    return agent.generate(observations, seeds=list(seeds)) if takes else agent.generate(observations)


def derive_seed(seed: int, *counters: int) -> int:
    """A 63-bit seed mixed from a base seed and counters (call number, chunk...), so each call
    samples differently and a rerun with the same base seed repeats exactly."""
    digest = hashlib.sha256(":".join(str(int(x)) for x in (seed, *counters)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def resolve_seed(seed: int | None) -> int:
    """The given seed, or a fresh random one when None (runs then do not repeat)."""
    if seed is None:
        return int.from_bytes(os.urandom(8), "little") >> 1
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    return seed


class BaseAgent:
    """Base class: subclasses implement `generate_messages`; `generate` decodes observations and
    `act` is ``generate([obs])[0].text``."""

    name: str = "agent"

    #: Attributes that never change between calls and are costly or impossible to copy (models,
    #: engines, problem tables). Everything else is the agent's sampling state (`get_state`).
    #: None: the class does not declare it, and `get_state` is unavailable.
    _static_attrs: tuple[str, ...] | None = None

    def get_state(self) -> dict[str, Any]:
        """A copy of everything that changes from call to call (random generators, counters).

        An agent built from the same spec and given this state with `set_state` answers the next
        calls exactly as this one would: a restarted Ray generation actor continues the run.
        """
        if self._static_attrs is None:
            raise NotImplementedError(f"{type(self).__name__} does not declare its sampling "
                                      "state (set _static_attrs)")
        return copy.deepcopy({k: v for k, v in vars(self).items() if k not in self._static_attrs})

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a `get_state` copy taken from an agent built from the same spec."""
        if self._static_attrs is None:
            raise NotImplementedError(f"{type(self).__name__} does not declare its sampling "
                                      "state (set _static_attrs)")
        if not isinstance(state, dict) or set(state) & set(self._static_attrs):
            raise ValueError(f"not a {type(self).__name__}.get_state() value")
        vars(self).update(copy.deepcopy(state))

    def generate_messages(self, batch: Sequence[Messages],
                          seeds: Sequence[int] | None = None) -> list[Generation]:
        """One `Generation` per list of chat messages, in order (``seeds``: one per request)."""
        raise NotImplementedError

    def generate(self, observations: list[dict],
                 seeds: Sequence[int] | None = None) -> list[Generation]:
        if isinstance(observations, dict):
            raise TypeError("generate takes a list of observations; use act(obs) for one")
        seeds = check_seeds(seeds, len(observations))
        messages = [messages_from_observation(o) for o in observations]
        if seeds is None:
            return self.generate_messages(messages)
        return self.generate_messages(messages, seeds=seeds)

    def act(self, observation: dict) -> str:
        return self.generate([observation])[0].text

    def close(self) -> None:
        """Release resources (threads, engines). Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

"""`CodeText`: a Gymnasium space for free text (problem statements, programs, prompts, responses).

Gymnasium's `Text` only holds characters from a fixed charset (alphanumerics by default), so a
statement with spaces, newlines or unicode is "out of space", and `Text.sample()` draws a uniform
length up to `max_length` (tens of thousands of random characters for a prompt-sized space).
`CodeText` keeps `Text`'s type, so Gymnasium's vector utilities (batching into tuples,
`AsyncVectorEnv(shared_memory=False)`) handle it, but

- `contains` accepts any `str` up to `max_length` (any unicode unless a `charset` is given);
- `sample` draws short printable strings (length up to `sample_max_length`), which is what
  PettingZoo's and Gymnasium's test utilities need to sample actions quickly.

Shared memory cannot hold an unrestricted `CodeText`: Gymnasium stores `Text` in shared memory
as a fixed `int32` array of indexes into its charset (`max_length` entries per field per env), and
free text has no finite charset. `gymnasium.spaces.utils.flatten` (which shared memory and
`FlattenObservation` use) therefore raises a `TypeError` naming the fix for such a space; use
`AsyncVectorEnv(..., shared_memory=False)`.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Text
from gymnasium.spaces.utils import flatten

#: Characters `CodeText.sample()` draws from when no charset is given: printable ASCII without
#: vertical tab and form feed.
SAMPLE_CHARSET: str = string.digits + string.ascii_letters + string.punctuation + " \t\n"


class CodeText(Text):
    """Any string of at most `max_length` characters (optionally restricted to `charset`).

    Args:
        max_length: longest string the space contains.
        charset: if given, the only characters allowed (and sampled); ``None`` allows any unicode.
        sample_max_length: longest string `sample()` draws (capped at `max_length`).
        min_length: shortest string the space contains (default 0: empty text is valid).
        seed: seed for `sample()`.
    """

    def __init__(self, max_length: int, charset: str | frozenset[str] | None = None, *,
                 sample_max_length: int = 64, min_length: int = 0,
                 seed: int | np.random.Generator | None = None) -> None:
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
            raise TypeError(f"CodeText max_length must be an int, got {type(max_length).__name__}")
        if max_length < 1:
            raise ValueError(f"CodeText max_length must be >= 1, got {max_length}")
        if isinstance(sample_max_length, bool) or not isinstance(sample_max_length, (int, np.integer)) \
                or sample_max_length < 0:
            raise ValueError(f"CodeText sample_max_length must be an int >= 0, got {sample_max_length!r}")
        if charset is not None and len(charset) == 0:
            raise ValueError("CodeText charset must not be empty (use None to allow any character)")
        self.restricted: bool = charset is not None
        super().__init__(int(max_length), min_length=int(min_length),
                         charset=SAMPLE_CHARSET if charset is None else charset, seed=seed)
        self.sample_max_length: int = max(self.min_length, min(int(sample_max_length), self.max_length))

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random string of printable characters, at most `sample_max_length` long.

        `mask` / `probability` follow `gymnasium.spaces.Text.sample` (a ``(length, char_mask)``
        pair); a missing length is drawn uniformly from ``[min_length, sample_max_length]``.
        """
        given = mask if mask is not None else probability
        length = given[0] if isinstance(given, tuple) and len(given) == 2 else None
        if length is None:
            length = int(self.np_random.integers(self.min_length, self.sample_max_length + 1))
        if mask is not None:
            mask = (length, mask[1]) if isinstance(mask, tuple) and len(mask) == 2 else mask
            return super().sample(mask=mask)
        if probability is not None:
            probability = (length, probability[1]) if isinstance(probability, tuple) \
                and len(probability) == 2 else probability
            return super().sample(probability=probability)
        return super().sample(mask=(length, None))

    def contains(self, x: Any) -> bool:
        """True for a `str` within the length bounds (and, if restricted, made of `charset`)."""
        if not isinstance(x, str) or not (self.min_length <= len(x) <= self.max_length):
            return False
        return not self.restricted or all(c in self.character_set for c in x)

    @property
    def is_np_flattenable(self) -> bool:
        """Only a restricted charset can be flattened into character indexes."""
        return self.restricted

    def __repr__(self) -> str:
        chars = f"charset={self.characters!r}" if self.restricted else "any unicode"
        return f"CodeText({self.min_length}, {self.max_length}, {chars})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CodeText) and self.restricted == other.restricted
                and super().__eq__(other))

    def __hash__(self) -> int:  # spaces are compared by value in PettingZoo's api_test
        return hash((CodeText, self.min_length, self.max_length, self.restricted))


@flatten.register(CodeText)
def _flatten_codetext(space: CodeText, x: str) -> np.ndarray:
    if not space.restricted:
        raise TypeError(
            "a CodeText space without a charset holds any unicode text and cannot be flattened into "
            "character indexes (e.g. for AsyncVectorEnv shared memory); use "
            "AsyncVectorEnv(..., shared_memory=False) or give CodeText a charset")
    arr = np.full(shape=(space.max_length,), fill_value=len(space.character_set), dtype=np.int32)
    for i, ch in enumerate(x):
        arr[i] = space.character_index(ch)
    return arr

"""Progress of a search on the terminal: planned work, a live bar, an early time estimate.

The bar counts programs (one per node), so it moves with every batch of programs and every
finished tree, not once per generation round; it shows trees done and solved, and is redrawn
every second while a model is generating, so the elapsed time never freezes. The rate is
tqdm's own (``2.4 program/s``, or ``3.1 s/program`` when slower than one a second). It works
when the terminal reports a width of 0 (some CI consoles and `stty cols 0`) or is not a terminal.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import Any, TextIO

FALLBACK_WIDTH = 100


def terminal_width(stream: TextIO | None = None) -> int:
    """Usable bar width: the terminal's, or `FALLBACK_WIDTH` when it reports 0 or none."""
    try:
        import os

        columns = os.get_terminal_size((stream or sys.stderr).fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns
    return columns if columns >= 20 else FALLBACK_WIDTH


def format_duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        m, s = divmod(int(round(seconds)), 60)
        return f"{m} min {s:02d} s"
    h, m = divmod(int(round(seconds / 60)), 60)
    return f"{h} h {m:02d} min"


def say(message: str, stream: TextIO | None = None) -> None:
    """Print a status line to stderr (keeps stdout for results), without breaking a live bar."""
    from tqdm import tqdm

    tqdm.write(message, file=stream or sys.stderr)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class SearchProgress:
    """A live bar over the programs of a search.

    `programs(n)` after n programs are generated and run, `tree_done(solved)` per finished tree.
    After the first batch it prints one line estimating the whole run's duration.
    """

    def __init__(self, *, trees: int, budget: int, trees_done: int = 0, desc: str = "search",
                 stream: TextIO | None = None, tick_s: float = 1.0) -> None:
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.trees_total = trees
        self.trees_done = trees_done
        self.solved = 0
        self.total_programs = max(0, (trees - trees_done) * budget)
        self._started = time.monotonic()
        self._estimated = False
        self.bar = tqdm(total=self.total_programs, unit="program", desc=desc, file=self.stream,
                        ncols=terminal_width(self.stream), dynamic_ncols=False, mininterval=0.2,
                        smoothing=0.1, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} programs "
                        "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")
        self._postfix()
        self._stop = threading.Event()
        # redraw every tick_s on a terminal (the clock keeps moving while a model generates);
        # into a file or pipe only when something changed, so logs stay short
        self._ticker = threading.Thread(target=self._tick, args=(tick_s,), daemon=True)
        if _isatty(self.stream):
            self._ticker.start()

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            self.bar.refresh()

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"trees {self.trees_done}/{self.trees_total} done, "
                                 f"{self.solved} solved", refresh=True)

    def programs(self, n: int) -> None:
        """n more programs written and executed."""
        if n <= 0:
            return
        self.bar.update(n)
        if not self._estimated and self.total_programs:
            self._estimated = True
            elapsed = time.monotonic() - self._started
            estimate = elapsed / self.bar.n * self.total_programs
            self.bar.clear()
            say(f"first batch: {self.bar.n} programs in {format_duration(elapsed)}; "
                f"at this rate the {self.total_programs} programs take about "
                f"{format_duration(estimate)}", self.stream)
            self.bar.refresh()

    def tree_done(self, solved: bool, unused: int = 0) -> None:
        """A tree finished; `unused` nodes of its budget will never be written (stop on solve)."""
        if unused > 0:
            self.total_programs -= unused
            self.bar.total = self.total_programs
        self.trees_done += 1
        self.solved += int(bool(solved))
        self._postfix()

    def close(self) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=2)
        self.bar.close()

    def __enter__(self) -> SearchProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

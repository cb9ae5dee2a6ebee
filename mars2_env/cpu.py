"""How many torch threads a CPU model in this process should use for its next phase.

A generation or an update takes every core nothing else is running on *at that moment*: not
the machine's one-minute load average, which counts this process's own earlier work (a model
that has just loaded or generated would see itself as "another process" and halve its threads)
and lags a minute behind other jobs starting or stopping. OpenMP threads on an oversubscribed
machine wait on each other: at load 10 on 2 cores, 2 threads took 4.7x the CPU time and 4x the
wall time of 1 thread for the same generation, so busy cores are left alone.

Other processes' runnable tasks come from ``/proc/loadavg`` (its running count) less this
process's own running threads; the sandbox workers of this process's executors that are
running tests count too (`mars2_env.execution.executor.busy_workers`), since a worker between
two tests is idle for an instant but not for the phase.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["model_threads", "others_running", "parse_running", "torch_threads", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def parse_running(loadavg_line: str) -> int:
    """Runnable tasks on the machine from a ``/proc/loadavg`` line ("0.5 0.4 0.3 3/812 999")."""
    return int(loadavg_line.split()[3].split("/")[0])


def _own_running_threads() -> int:
    running = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended while we looked
            continue
        running += stat[stat.rindex(")") + 2] == "R"
    return running


def others_running(samples: int = 3, gap_s: float = 0.002) -> int:
    """Runnable tasks of other processes right now: the fewest of ``samples`` reads a few
    milliseconds apart (a process that runs for an instant, such as ``ps``, is not a load).
    Without ``/proc`` (not Linux): the one-minute load average, the best there is."""
    if not os.path.exists("/proc/loadavg"):
        try:
            return int(os.getloadavg()[0] + 0.5)
        except (AttributeError, OSError):
            return 0
    seen = []
    for i in range(samples):
        if i:
            time.sleep(gap_s)
        with open("/proc/loadavg") as f:
            total = parse_running(f.read())
        seen.append(max(0, total - _own_running_threads()))
    return min(seen)


def model_threads() -> int:
    """Threads for the next generation or update: the usable cores less the busier of other
    processes' runnable tasks and this process's busy sandbox workers, at least one."""
    from mars2_env.execution.executor import busy_workers

    return max(1, usable_cores() - max(others_running(), busy_workers()))


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: as they are); the count is restored."""
    import torch

    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None and n != before:
            torch.set_num_threads(before)

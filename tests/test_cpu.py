"""Torch threads per phase (mars2_env.cpu): the cores nothing else runs on right now, counted
from real processes, not from the one-minute load average."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

import mars2_env.execution.executor as executor_module
from mars2_env import cpu


def test_parse_running_reads_the_runnable_count():
    assert cpu.parse_running("0.52 0.58 0.59 3/812 4096\n") == 3
    assert cpu.parse_running("12.00 9.10 4.00 17/1024 1") == 17


@pytest.mark.parametrize("cores, others, busy, expected", [
    (4, 0, 0, 4),   # idle machine: every core (one of two was the old default, issue 14)
    (4, 2, 0, 2),   # two other processes running
    (4, 0, 3, 1),   # three of our sandbox workers running tests
    (4, 2, 1, 2),   # workers are processes too: the larger count, not the sum
    (2, 9, 0, 1),   # oversubscribed: one
])
def test_model_threads_leaves_busy_cores_alone(monkeypatch, cores, others, busy, expected):
    monkeypatch.setattr(cpu, "usable_cores", lambda: cores)
    monkeypatch.setattr(cpu, "others_running", lambda: others)
    monkeypatch.setattr(executor_module, "busy_workers", lambda: busy)
    assert cpu.model_threads() == expected


def test_this_process_running_threads_are_not_counted_as_others():
    """A model that has just loaded or generated must not see itself as another process: the
    load average would (it lags), the running count less our own running threads does not."""
    assert cpu._own_running_threads() >= 1  # the thread asking is running
    stop = threading.Event()

    def spin():
        import torch

        a = torch.randn(256, 256)
        while not stop.is_set():
            a @ a  # releases the GIL: really running alongside the asking thread

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        assert max(cpu._own_running_threads() for _ in range(50)) >= 2
    finally:
        stop.set()
        t.join()


def test_other_busy_processes_are_counted():
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        deadline = time.monotonic() + 10
        seen = 0
        while time.monotonic() < deadline and seen < 2:
            time.sleep(0.1)
            seen = max(seen, cpu.others_running())
        assert seen >= 2
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_torch_threads_sets_and_restores_the_count():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with cpu.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu.torch_threads(None):
        assert torch.get_num_threads() == before

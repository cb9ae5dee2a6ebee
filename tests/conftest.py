"""Shared fixtures. Tests are fast by default; slow ones carry @pytest.mark.slow."""

from __future__ import annotations

import os

import pytest

# Keep model code single-threaded and offline in tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def demo_problems():
    from mars2_env.problems import load_problems

    return load_problems("builtin:demo")

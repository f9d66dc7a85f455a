"""Shared test fixtures, and utils/ plus the venv's python first on PATH (as path.sh does); the helpers themselves
are in audio_helpers.py. Under pytest-xdist (the README's test command, ``-n auto --dist loadfile``), each worker
uses one thread and the recipe tests are handed out first (below)."""
from __future__ import annotations

import os
import sys

# One thread per worker, so that N workers do not put 2N threads on N cores (egs/mini/README.md measured two threads
# on shared cores 7x slower for its tiny model). Set before torch is imported, so its thread pool follows.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

import pytest

from audio_helpers import UTILS, make_wav

os.environ["PATH"] = os.pathsep.join([str(UTILS), os.path.dirname(sys.executable), os.environ.get("PATH", "")])


@pytest.fixture
def wav_factory(tmp_path):
    """``wav_factory(name, **make_wav_kwargs) -> (path, wave)`` writing under the test's tmp_path."""

    def factory(name: str, **kwargs):
        path = tmp_path / name
        return str(path), make_wav(path, **kwargs)

    return factory


def pytest_collection_modifyitems(session, config, items):
    """The recipe tests (test/egs: each runs a recipe end to end, minutes) first, the rest in their usual order:
    with ``--dist loadfile --no-loadscope-reorder`` the workers start on the longest files and finish together on
    the many short ones, instead of one worker starting a five-minute recipe when the other is nearly done."""
    items.sort(key=lambda item: 0 if "/egs/" in f"/{item.nodeid}" else 1)

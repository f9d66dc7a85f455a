"""Shared test fixtures, and utils/ plus the venv's python first on PATH (as path.sh does); the helpers themselves
are in audio_helpers.py."""
from __future__ import annotations

import os
import sys

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

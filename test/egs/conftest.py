"""Fixtures shared by the recipe tests: the mini recipe's quick run on this machine (run.pl), made once per
session. test_mini.py checks it; test_real_slurm.py compares the same run through a real Slurm with it, so the
comparison costs no second run.pl run."""
from __future__ import annotations

import pytest

from fixtures import mini_work_copy, run_script


@pytest.fixture(scope="session")
def mini_quick_run(tmp_path_factory):
    """(recipe folder, CompletedProcess) of ``egs/mini/run.sh --quick true`` with the recipe's cmd.sh (run.pl)."""
    work = mini_work_copy(tmp_path_factory.mktemp("mini"))
    proc = run_script(["run.sh", "--quick", "true"], work, timeout=900)
    return work, proc

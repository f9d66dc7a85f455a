"""Stopping the daemons a test harness started (test/real_slurm.py, test/real_gridengine.py), by their PIDs."""
from __future__ import annotations

import signal
import subprocess
from typing import Iterable


def stop_by_pid(procs: dict[str, subprocess.Popen], order: Iterable[str], timeout: float) -> None:
    """SIGTERM each still-running process of ``procs`` named in ``order`` (in that order: clients before the
    servers they talk to), wait up to ``timeout`` s for it, SIGKILL it if it is still there; then forget them all."""
    for name in order:
        proc = procs.get(name)
        if proc is None or proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    procs.clear()

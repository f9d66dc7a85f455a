"""``run_cli(*args)``: maskspec.bin.pretrain in a child process, as the recipes start it; imported by name by the
pre-training tests of both objectives (test_pretrain.py, test_bootstrap_task.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys


def run_cli(*args, timeout=300, launcher=None) -> subprocess.CompletedProcess:
    """Runs ``maskspec.bin.pretrain *args`` (after ``launcher``, default ``python -m``); output captured."""
    cmd = (launcher or [sys.executable, "-m"]) + ["maskspec.bin.pretrain", *map(str, args)]
    # one thread: a tiny model gains nothing from more, and spinning OpenMP threads crawl on a busy CI machine
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # own process group: on a timeout torchrun's workers are killed too, not left waiting on each other
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

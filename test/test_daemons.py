"""test/daemons.py: the real-scheduler harnesses' daemons end by PID, politely first."""
import subprocess
import sys
import time

from daemons import stop_by_pid


def test_terminates_in_order_kills_what_ignores_sigterm_and_forgets_all():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
                                 "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"  # its SIGTERM handler is in place
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    procs = {"polite": polite, "stubborn": stubborn, "done": done, "unlisted": None}
    t0 = time.time()
    stop_by_pid(procs, ["missing", "done", "polite", "stubborn"], timeout=1)
    assert polite.returncode == -15 and stubborn.returncode == -9  # SIGTERM, then SIGKILL after the timeout
    assert time.time() - t0 < 30 and procs == {}

"""Stand-ins for Slurm's ``srun`` and ``scontrol`` that run a multi-node job step on this machine.

``srun --nodes N ... --kill-on-bad-exit=1 <command>`` records its argv (one JSON line in $SUBMIT_RECORD when set)
and starts <command> N times at once, as Slurm would once per node, with STANDIN_NODE and SLURM_NODEID = <node
index>; it fails when any of them fails. Like the real one, it passes only the variables of its --export (else
of $SLURM_EXPORT_ENV, else all) plus SLURM_*. ``scontrol show hostnames`` names 127.0.0.1 first, so the nodes
meet on this machine; ``scontrol show node <name>`` says nothing (a cluster whose nodes have no NodeAddr).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

SRUN = r'''
import json, os, subprocess, sys
args = sys.argv[1:]
if os.environ.get("SUBMIT_RECORD"):
    with open(os.environ["SUBMIT_RECORD"], "a") as f:
        f.write(json.dumps(["srun"] + args) + "\n")
nodes = int(args[args.index("--nodes") + 1])
cmd = args[args.index("--kill-on-bad-exit=1") + 1:]
export = [a.split("=", 1)[1] for a in args[:len(args) - len(cmd)] if a.startswith("--export=")]
names = (export or [os.environ.get("SLURM_EXPORT_ENV", "ALL")])[-1].split(",")
env = dict(os.environ) if "ALL" in names else {k: v for k, v in os.environ.items() if k.startswith("SLURM_")}
env.update({n: os.environ[n] for n in names if n in os.environ})
procs = [subprocess.Popen(cmd, env=dict(env, STANDIN_NODE=str(n), SLURM_NODEID=str(n), SLURM_PROCID=str(n)))
         for n in range(nodes)]
sys.exit(max(p.wait() for p in procs))
'''
SCONTROL = ("import sys\nassert sys.argv[1:3] in (['show', 'hostnames'], ['show', 'node'])\n"
            "if sys.argv[2] == 'node':\n    sys.exit(1)\nprint('127.0.0.1')\nprint('127.0.0.2')\n")


def install_srun(bin_dir: Path) -> None:
    """Writes the stand-in ``srun`` and ``scontrol`` into ``bin_dir`` (put it first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in {"srun": SRUN, "scontrol": SCONTROL}.items():
        (bin_dir / name).write_text(f"#!{sys.executable}\n{body}")
        (bin_dir / name).chmod(0o755)


def free_port() -> int:
    """A TCP port nobody listens on now (for the rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torch_bin() -> str:
    """The folder of the Python running the tests (its torchrun)."""
    return os.path.dirname(sys.executable)

"""A real Slurm on this machine for the tests: Debian's slurm-wlm and munge, one or two nodes, started and stopped
by PID.

Kept under test/ (not utils/) because it is test equipment, not a recipe tool: it installs packages with apt-get
and starts root daemons, which no user of the recipes should do on a cluster, and it serves only the tests and
the one-off checks (``python test/real_slurm.py --help``).

``SlurmCluster(root, nodes=1)`` writes everything below ``root`` (slurm.conf, a munge key and socket, spool and
state folders, daemon logs, the job records of jobcomp/filetxt), then ``start()`` runs munged, slurmctld and one
slurmd per node in the foreground of child processes, and waits until every node is idle; ``stop()`` cancels
what is left and ends the daemons by their PIDs (TERM, then KILL). The nodes are this machine: CPUs and memory
come from ``slurmd -C``, processes are tracked without cgroups (proctrack/linuxproc, task/none), and the ports
are free ones, so a second cluster (CI's, another test's) does not clash. Two nodes run as two slurmd of
Slurm's multiple-slurmd mode (``slurmd -N``), each with its own port and spool, both at 127.0.0.1, which the
multi-node check needs to share one machine; ``Nodes`` are called ``n1``, ``n2``.

Clients need ``SLURM_CONF``: ``cluster.env()`` gives it. ``job_records()`` parses the jobcomp file, one dict per
finished job (array tasks each have one: JobId, ArrayJobId, ArrayTaskId, Name, JobState, ExitCode, NodeList...).

``install_problem()`` returns None when slurm-wlm and munge are usable here (installing them with apt-get when
missing, as root on Debian), else the reason, which the tests print when they skip.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from daemons import stop_by_pid

PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
PACKAGES = ("slurm-wlm", "munge")


def _missing() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None and not os.path.exists(f"/usr/sbin/{p}")]


def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def install_problem(install: bool = True, timeout: float = 600) -> Optional[str]:
    """None when slurm-wlm and munge are usable, else why not. Installs them (apt-get) when missing and allowed."""
    if not _missing():
        return None
    if not install:
        return f"not installed: {', '.join(_missing())}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{', '.join(_missing())} missing, and installing {' '.join(PACKAGES)} needs root and apt-get"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:  # a stale package list: update once and retry
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=timeout)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"'{' '.join(cmd)}' took more than {timeout:.0f} s"
    if proc.returncode != 0:
        return f"'{' '.join(cmd)}' failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}"
    return f"still missing after installing {' '.join(PACKAGES)}: {', '.join(_missing())}" if _missing() else None


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports nobody listens on now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def machine_resources() -> tuple[int, int]:
    """(CPUs, memory in MB) of this machine as slurmd reports them."""
    out = subprocess.run([_program("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    cpus = int(re.search(r"\bCPUs=(\d+)", out).group(1))
    memory = int(re.search(r"\bRealMemory=(\d+)", out).group(1))
    return cpus, memory


class SlurmError(RuntimeError):
    pass


class SlurmCluster:
    """A Slurm cluster of ``nodes`` nodes on this machine, all files under ``root``; see the module docstring."""

    def __init__(self, root: str | os.PathLike, nodes: int = 1, name: str = "maskspec"):
        self.root = Path(root).resolve()
        self.nodes = [f"n{i}" for i in range(1, nodes + 1)] if nodes > 1 else [socket.gethostname().split(".")[0]]
        self.name = name
        self.conf = self.root / "slurm.conf"
        self.jobcomp = self.root / "jobcomp.txt"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------------------------------- files
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, srun, scontrol) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        cpus, memory = machine_resources()
        memory = max(memory - 1024, 1024) // len(self.nodes)  # headroom for the daemons
        ctld_port, *node_ports = free_ports(1 + len(self.nodes))
        for sub in ("state", "munge", "log") + tuple(f"spool/{n}" for n in self.nodes):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            subprocess.run([_program("mungekey"), "--create", f"--keyfile={key}", "--force"], check=True,
                           capture_output=True)
        key.chmod(0o600)
        multi = len(self.nodes) > 1
        lines = [
            f"ClusterName={self.name}",
            f"SlurmctldHost={socket.gethostname().split('.')[0]}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            # %n: the node name, one spool, pid file and log per slurmd
            f"SlurmdSpoolDir={self.root / 'spool'}/%n",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.%n.pid'}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log'}/slurmd.%n.log",
            "SlurmctldDebug=info", "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            f"JobCompType=jobcomp/filetxt", f"JobCompLoc={self.jobcomp}",
            "SchedulerType=sched/builtin", "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
            "ReturnToService=2", "SlurmdTimeout=60", "MessageTimeout=20", "InactiveLimit=0", "KillWait=5",
            "MinJobAge=600", "MaxJobCount=10000",
        ]
        for node, port in zip(self.nodes, node_ports):
            addr = "NodeAddr=127.0.0.1 " if multi else ""
            lines.append(f"NodeName={node} {addr}Port={port} CPUs={cpus} RealMemory={memory} State=UNKNOWN")
        lines.append(f"PartitionName=main Nodes={','.join(self.nodes)} Default=YES MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------------------------------------- daemons
    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **self.env()}, start_new_session=True)
        log.close()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SlurmError(f"{name} exited ({proc.returncode}); see {self.root / 'log'}:\n{self.logs_tail()}")

    def start(self, timeout: float = 90) -> "SlurmCluster":
        """Starts the daemons and waits for the nodes to be idle; on any failure stops what it started."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> "SlurmCluster":
        self.write_config()
        env = os.environ | self.env()
        self._spawn("munged", [_program("munged"), "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={self.root / 'munge' / 'munge.key'}",
                               f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                               f"--seed-file={self.root / 'munge' / 'munged.seed'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}"])
        self._wait(lambda: self.munge_socket.exists(), timeout, "munged to open its socket")
        self._spawn("slurmctld", [_program("slurmctld"), "-D", "-f", str(self.conf)])
        for node in self.nodes:
            extra = ["-N", node] if len(self.nodes) > 1 else []
            self._spawn(f"slurmd.{node}", [_program("slurmd"), "-D", "-f", str(self.conf), *extra])

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, env=env)
            states = dict(line.split() for line in out.stdout.splitlines() if line.strip())
            return out.returncode == 0 and all(states.get(n) == "idle" for n in self.nodes)

        self._wait(idle, timeout, f"node(s) {','.join(self.nodes)} to be idle")
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while not ready():
            self._check_alive()
            if time.time() > deadline:
                raise SlurmError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs_tail()}")
            time.sleep(0.5)

    def stop(self, timeout: float = 30) -> None:
        """Cancel the jobs left, then end slurmd(s), slurmctld and munged by their PIDs (TERM, then KILL)."""
        if not self.procs:
            return
        env = os.environ | self.env()
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", f"--partition=main"], capture_output=True, env=env, timeout=30)
            deadline = time.time() + timeout
            while time.time() < deadline:
                out = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=env, timeout=30)
                if out.returncode != 0 or not out.stdout.strip():
                    break
                time.sleep(0.5)
        stop_by_pid(self.procs, [n for n in self.procs if n.startswith("slurmd.")] + ["slurmctld", "munged"], timeout)

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------- records
    def job_records(self) -> list[dict[str, str]]:
        """One dict per finished job (or array task) from the jobcomp/filetxt file: its KEY=value fields."""
        if not self.jobcomp.exists():
            return []
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in self.jobcomp.read_text().splitlines()
                if line.strip()]

    def logs_tail(self, lines: int = 15) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                parts.append(f"---- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="e.g.: python test/real_slurm.py /tmp/slurm -- sbatch --wait --wrap hostname")
    p.add_argument("root", nargs="?", default=None, help="folder for the cluster's files (created)")
    p.add_argument("--nodes", type=int, default=1, help="slurmd daemons (nodes), default 1")
    p.add_argument("--install_only", action="store_true",
                   help="only install slurm-wlm and munge when missing (or say why they cannot be)")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = p.parse_args(argv[:len(argv) - len(command) - 1] if "--" in argv else argv)
    problem = install_problem()
    if problem:
        print(f"real_slurm: cannot run Slurm here: {problem}", file=sys.stderr)
        return 2
    if args.install_only:
        print("real_slurm: slurm-wlm and munge are installed", file=sys.stderr)
        return 0
    if args.root is None:
        p.error("a folder for the cluster's files is needed")
    cluster = SlurmCluster(args.root, nodes=args.nodes)
    with cluster:
        print(f"real_slurm: {len(cluster.nodes)} node(s) idle; SLURM_CONF={cluster.conf}", file=sys.stderr)
        rc = subprocess.call(command, env=os.environ | cluster.env()) if command else 0
    print("real_slurm: stopped", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())

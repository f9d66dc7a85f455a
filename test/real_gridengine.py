"""A real Grid Engine on this machine for a one-off check: Debian's gridengine-master/-exec/-client (8.1.9), one
execution host, started and stopped by PID. The Grid Engine counterpart of test/real_slurm.py (why under test/:
see there).

Debian installs one system-wide cell (SGE_ROOT=/var/lib/gridengine, SGE_CELL=default, spool under
/var/spool/gridengine) and its postinst cannot start the daemons where there is no init system; this script:

* installs the three packages with apt-get when missing (the master host and cell preseeded through debconf);
* names this host's other names (localhost, ...) in the cell's host_aliases: Grid Engine refuses a client whose
  address resolves to another name than the one it gives, which is what a host listed on 127.0.0.1 does;
* starts sge_qmaster and sge_execd in the foreground (SGE_ND=1) as child processes, so their PIDs are known;
* lets root submit (min_uid/min_gid 0), schedules every second instead of every 15 s, adds the parallel
  environment "smp" (allocation $pe_slots) that conf/queue.conf's --num-threads asks for, and a queue all.q on
  this host with its CPUs as slots, no load threshold (a busy machine would otherwise put it in alarm) and bash;
* ``stop()`` deletes the jobs left and ends sge_execd and sge_qmaster by their PIDs (TERM, then KILL).

``python test/real_gridengine.py -- <command>`` runs a command while it is up (the SGE_ROOT/SGE_CELL it needs are
set), then stops it. ``python test/real_gridengine.py --mini <new folder>`` runs egs/mini's ``./run.sh --quick
true`` with cmd.sh on queue.pl (conf/queue.conf as shipped) and prints, per job, what it saw (OMP_NUM_THREADS,
MASKSPEC_RDZV_PORT set in the submitting shell, slots) and Grid Engine's accounting (qacct: failed, exit_status),
and exp/RESULTS.md: the check of issue 21, run once.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from daemons import stop_by_pid

SGE_ROOT, SGE_CELL = "/var/lib/gridengine", "default"
PACKAGES = ("gridengine-master", "gridengine-exec", "gridengine-client")
ENV = {"SGE_ROOT": SGE_ROOT, "SGE_CELL": SGE_CELL}


def install_problem(timeout: float = 900) -> Optional[str]:
    """None when Grid Engine is installed (installing it when missing), else why it cannot be."""
    if all(os.path.exists(p) for p in ("/usr/sbin/sge_qmaster", "/usr/sbin/sge_execd", "/usr/bin/qsub")):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "gridengine is missing, and installing it needs root and apt-get"
    host = socket.gethostname()
    preseed = "".join(f"{pkg} shared/{key} {kind} {value}\n"
                      for pkg in ("gridengine-common", *PACKAGES)
                      for key, kind, value in (("gridenginemaster", "string", host),
                                               ("gridenginecell", "string", SGE_CELL),
                                               ("gridengineconfig", "boolean", "true")))
    subprocess.run(["debconf-set-selections"], input=preseed, text=True, check=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return f"apt-get install {' '.join(PACKAGES)} failed: {(proc.stderr or proc.stdout)[-500:]}"
    return None


def qconf(*args: str, text: Optional[str] = None, check: bool = True) -> str:
    proc = subprocess.run(["qconf", *args], capture_output=True, text=True, env=os.environ | ENV, input=text)
    if check and proc.returncode != 0:
        raise RuntimeError(f"qconf {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def set_fields(text: str, **fields: str) -> str:
    """A qconf listing with some ``name value`` lines replaced."""
    out = []
    for line in text.splitlines():
        name = line.split(maxsplit=1)[0] if line.strip() else ""
        out.append(f"{name:<30}{fields[name]}" if name in fields else line)
    return "\n".join(out) + "\n"


class GridEngine:
    def __init__(self, workdir: str | os.PathLike):
        self.workdir = Path(workdir).resolve()
        self.host = socket.gethostname()
        self.procs: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, program: str) -> None:
        log = open(self.workdir / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen([program], stdout=log, stderr=subprocess.STDOUT,
                                            env=os.environ | ENV | {"SGE_ND": "1"}, start_new_session=True)
        log.close()

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                if ready():
                    return
            except RuntimeError:
                pass
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.workdir}/{name}.out")
            if time.time() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.5)

    def start(self) -> "GridEngine":
        self.workdir.mkdir(parents=True, exist_ok=True)
        aliases = [a for a in ("localhost", *socket.gethostbyname_ex(self.host)[1]) if a != self.host]
        (Path(SGE_ROOT) / SGE_CELL / "common" / "host_aliases").write_text(" ".join([self.host, *aliases]) + "\n")
        spool = Path("/var/spool/gridengine/execd")
        spool.mkdir(parents=True, exist_ok=True)
        shutil.chown(spool, "sgeadmin")
        self._spawn("sge_qmaster", "/usr/sbin/sge_qmaster")
        self._wait(lambda: self.host in qconf("-sh"), "sge_qmaster")
        conf = qconf("-sconf", "global")
        (self.workdir / "global").write_text(set_fields(conf, min_uid="0", min_gid="0",
                                                        load_report_time="00:00:05"))
        qconf("-Mconf", str(self.workdir / "global"))
        sched = set_fields(qconf("-ssconf"), schedule_interval="0:0:1", flush_submit_sec="1",
                           flush_finish_sec="1")
        (self.workdir / "sched").write_text(sched)
        qconf("-Msconf", str(self.workdir / "sched"))
        if self.host not in qconf("-ss", check=False):
            qconf("-as", self.host)
        self._spawn("sge_execd", "/usr/sbin/sge_execd")
        self._wait(lambda: self.host in qconf("-sel"), "sge_execd to register")
        if "smp" not in qconf("-spl", check=False).split():
            (self.workdir / "smp").write_text(
                "pe_name smp\nslots 999\nuser_lists NONE\nxuser_lists NONE\nstart_proc_args NONE\n"
                "stop_proc_args NONE\nallocation_rule $pe_slots\ncontrol_slaves FALSE\njob_is_first_task TRUE\n"
                "urgency_slots min\naccounting_summary FALSE\nqsort_args NONE\n")
            qconf("-Ap", str(self.workdir / "smp"))
        if "all.q" not in qconf("-sql", check=False).split():
            queue = set_fields(qconf("-sq"), qname="all.q", hostlist=self.host, slots=str(os.cpu_count() or 1),
                               load_thresholds="NONE", pe_list="smp", shell="/bin/bash")
            (self.workdir / "all.q").write_text(queue)
            qconf("-Aq", str(self.workdir / "all.q"))
        subprocess.run(["qmod", "-c", "all.q"], capture_output=True, env=os.environ | ENV)  # clear an old error

        def queue_up() -> bool:
            out = subprocess.run(["qstat", "-f", "-q", "all.q"], capture_output=True, text=True,
                                 env=os.environ | ENV).stdout
            lines = [line for line in out.splitlines() if line.startswith("all.q@")]
            return bool(lines) and all(len(line.split()) == 5 for line in lines)  # no state column: usable

        self._wait(queue_up, "queue all.q to be usable")
        return self

    def stop(self, timeout: float = 30) -> None:
        if not self.procs:
            return
        subprocess.run(["qdel", "-u", "*"], capture_output=True, env=os.environ | ENV)
        stop_by_pid(self.procs, ("sge_execd", "sge_qmaster"), timeout)

    def __enter__(self) -> "GridEngine":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


CMD_SH = ('export train_cmd="queue.pl --mem 2G"\nexport cuda_cmd="queue.pl --mem 8G"\n'
          'export decode_cmd="queue.pl --mem 4G"\n')
PATH_SH = '''\
. "$(dirname "${BASH_SOURCE[0]}")/../TEMPLATE/path.sh"
if [ -n "${JOB_ID:-}" ]; then
  echo "job=$JOB_ID task=${SGE_TASK_ID-} name=$JOB_NAME omp=${OMP_NUM_THREADS-unset}" \\
    "port=${MASKSPEC_RDZV_PORT-unset} slots=${NSLOTS-} host=$(hostname)" >> job_env.txt
fi
'''


def run_mini(dest: Path) -> int:
    """egs/mini --quick true through queue.pl on this Grid Engine; prints what the jobs saw and the results."""
    import json
    import re

    sys.path.insert(0, str(Path(__file__).resolve().parent / "egs"))
    from fixtures import mini_work_copy

    work = dest / "egs" / "mini"
    work.mkdir(parents=True)
    (work / "cmd.sh").write_text(CMD_SH)
    (work / "path.sh").write_text(PATH_SH)
    work = mini_work_copy(dest)
    env = os.environ | ENV | {"OMP_NUM_THREADS": "2", "MASKSPEC_RDZV_PORT": "29123"}
    start = time.time()
    proc = subprocess.run(["bash", "run.sh", "--quick", "true"], cwd=work, env=env, capture_output=True, text=True)
    seconds = time.time() - start
    seen = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in (work / "job_env.txt").read_text().splitlines()]
    accounting = {}
    for job in sorted({s["job"] for s in seen}, key=int):
        out = subprocess.run(["qacct", "-j", job], capture_output=True, text=True, env=env).stdout
        accounting[job] = sorted(set(re.findall(r"^(?:failed|exit_status)\s+(\S+)", out, re.M)))
    names: dict[str, int] = {}
    for s in seen:
        name = re.sub(r"\..*", "", s["name"])
        names[name] = names.get(name, 0) + 1
    report = dict(exit=proc.returncode, seconds=round(seconds), jobs=len(seen), tasks_by_name=names,
                  omp=sorted({s["omp"] for s in seen}), port=sorted({s["port"] for s in seen}),
                  slots=sorted({s["slots"] for s in seen}), accounting_failed_exit=sorted(
                      {v for values in accounting.values() for v in values}),
                  results=(work / "exp" / "RESULTS.md").read_text() if (work / "exp/RESULTS.md").exists() else None)
    print(json.dumps(report, indent=1))
    if proc.returncode:
        print(proc.stderr[-4000:], file=sys.stderr)
    return proc.returncode


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if argv[:1] == ["--mini"]:
        if len(argv) != 2:
            print("usage: real_gridengine.py --mini <new folder>", file=sys.stderr)
            return 2
        command = [sys.executable, __file__, "--run-mini", argv[1]]
    elif argv[:1] == ["--run-mini"]:  # inside: the queue is up
        return run_mini(Path(argv[1]))
    else:
        command = argv[argv.index("--") + 1:] if "--" in argv else []
    problem = install_problem()
    if problem:
        print(f"real_gridengine: cannot run Grid Engine here: {problem}", file=sys.stderr)
        return 2
    with GridEngine(Path(os.environ.get("TMPDIR", "/tmp")) / "maskspec_gridengine") as sge:
        print(f"real_gridengine: queue all.q on {sge.host} is up", file=sys.stderr)
        rc = subprocess.call(command, env=os.environ | ENV) if command else 0
    print("real_gridengine: stopped", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())

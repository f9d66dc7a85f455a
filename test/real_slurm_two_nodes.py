"""Two-node CPU pre-training through a real Slurm: two slurmd (nodes n1, n2) on this machine (test/real_slurm.py),
the mini recipe's stage 3 with ``--num_nodes 2 --ngpu 0``, so slurm.pl asks for 2 nodes and the job's
utils/torchrun_nodes.sh starts one torchrun per node with srun; the two processes form one gloo group.

``python test/real_slurm_two_nodes.py <mini recipe folder with stages 1-2 done> <new folder>`` runs it and prints
what it checked; test/egs/test_real_slurm.py runs the same after its one-node run. The recipe folder's data/ and
dump/ are linked, read only: the pre-training is a few steps (``--max_steps``), its experiment in the new folder.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "egs"))

from real_slurm import SlurmCluster, free_ports  # noqa: E402

from fixtures import mini_work_copy  # noqa: E402

CMD_SH = ('export train_cmd="slurm.pl --mem 2G"\nexport cuda_cmd="slurm.pl --mem 4G"\n'
          'export decode_cmd="slurm.pl --mem 2G"\n')
STEPS = 6
# What a clean end must not leave in the log: torch's warnings and C++ stacks of a rendezvous store closed
# under a node still talking to it (issue 21), or any Python error.
NOISE = ("Traceback", "TCPStore", "heartbeat", "recvVector", "Exception raised from", "frame #", "ChildFailedError",
         "RendezvousTimeoutError", "SIGTERM")


def run_two_node_pretraining(features_work: Path, dest: Path, timeout: float = 900) -> dict:
    """Runs stage 3 on two Slurm nodes; returns what the checks need (raises AssertionError naming a failure)."""
    work = dest / "egs" / "mini"
    work.mkdir(parents=True)
    (work / "cmd.sh").write_text(CMD_SH)
    for name in ("data", "dump"):
        (work / name).symlink_to(Path(features_work).resolve() / name, target_is_directory=True)
    work = mini_work_copy(dest)
    with SlurmCluster(dest / "slurm", nodes=2) as cluster:
        port = str(free_ports(1)[0])  # set in the submitting shell: the job's torchrun_nodes.sh must use it
        env = {**os.environ, **cluster.env(), "OMP_NUM_THREADS": "2", "MASKSPEC_RDZV_PORT": port}
        proc = subprocess.run(
            ["bash", "run.sh", "--quick", "true", "--stage", "3", "--stop_stage", "3", "--num_nodes", "2",
             "--ngpu", "0", "--pretrain_tag", "two_nodes", "--pretrain_args",
             f"--seed 0 --epochs 1 --batch_size 16 --lr 1e-3 --max_steps {STEPS} --num_images 0"],
            cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        records = cluster.job_records()
    exp = work / "exp" / "pretrain_two_nodes"
    log = (exp / "log" / "pretrain.log").read_text() if (exp / "log" / "pretrain.log").exists() else ""
    assert proc.returncode == 0, f"run.sh exited {proc.returncode}:\n{proc.stderr[-4000:]}\n{log[-4000:]}"
    (record,) = [r for r in records if r.get("Name") == "pretrain.sh"]
    import torch

    ckpt = torch.load(sorted((exp / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)
    train_log = (exp / "train.log").read_text()
    result = dict(job=record, world_size=ckpt["world_size"], step=ckpt["step"],
                  rendezvous=re.findall(r"rendezvous at \S+", log), noise=[n for n in NOISE if n in log],
                  processes=re.findall(r"\d+ processes, device \w+", train_log), log_tail=log.splitlines()[-6:])
    assert (record["JobState"], record["ExitCode"], record["NodeCnt"]) == ("COMPLETED", "0:0", "2"), record
    assert record["NodeList"] == "n[1-2]", record
    assert ckpt["world_size"] == 2 and ckpt["step"] == STEPS, (ckpt["world_size"], ckpt["step"])
    assert "2 processes, device cpu" in train_log
    assert result["rendezvous"] == [f"rendezvous at 127.0.0.1:{port}"], result["rendezvous"]  # n1's NodeAddr
    assert "# Ended (code 0)" in log and not result["noise"], log
    assert (exp / "model.pt").is_file()
    return result


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2)
    print(json.dumps(run_two_node_pretraining(Path(sys.argv[1]), Path(sys.argv[2])), indent=1))

"""utils/torchrun_nodes.sh: one node through torchrun --standalone; several nodes through srun inside a Slurm
allocation, checked for real with two local "nodes" (a stand-in srun starting each node's torchrun here) that
meet at the c10d rendezvous and form one gloo process group."""
from __future__ import annotations

import json
import os

from slurm_stand_ins import free_port, install_srun, torch_bin

# A program for torchrun: joins the process group and writes what it sees.
PROGRAM = r'''
import json, os, sys
import torch
import torch.distributed as dist
import time
dist.init_process_group("gloo")
total = torch.tensor([float(dist.get_rank())])
dist.all_reduce(total)
with open(os.path.join(sys.argv[1], f"rank{dist.get_rank()}.json"), "w") as f:
    json.dump(dict(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ["LOCAL_RANK"]),
                   node=os.environ["STANDIN_NODE"], rank_sum=total.item(),
                   env={k: os.environ.get(k) for k in ("LC_ALL", "OMP_NUM_THREADS", "MASKSPEC_TEST_VAR")}), f)
dist.destroy_process_group()
# the last node to finish outlives the first by more than torchrun's keep-alive interval (5 s)
time.sleep(float(os.environ.get("SLOW_NODE_SECONDS", "0")) if os.environ["STANDIN_NODE"] == "1" else 0)
'''


def stand_ins(tmp_path, tools):
    install_srun(tmp_path / "fake_bin")
    # torchrun of the Python running the tests (the venv's), whatever PATH holds
    tools.env["PATH"] = os.pathsep.join([str(tmp_path / "fake_bin"), torch_bin(), tools.env["PATH"]])
    tools.env.update(SUBMIT_RECORD=str(tmp_path / "calls.jsonl"), OMP_NUM_THREADS="1")
    (tmp_path / "program.py").write_text(PROGRAM)


def results(out_dir):
    return sorted((json.loads(p.read_text()) for p in out_dir.glob("rank*.json")), key=lambda r: r["rank"])


def test_two_nodes_meet_and_form_one_process_group(tools, tmp_path):
    """Inside a batch job submitted with --export=PATH (SLURM_EXPORT_ENV=PATH), every node's ranks still get the
    job's environment, and a run whose second node finishes 6 s after the first ends cleanly: exit 0 and no
    rendezvous warning or C++ stack in the log (the c10d rendezvous's store closed under the later node)."""
    stand_ins(tmp_path, tools)
    out = tmp_path / "out"
    out.mkdir()
    slurm = dict(SLURM_JOB_ID="777", SLURM_JOB_NUM_NODES="2", SLURM_JOB_NODELIST="node[1-2]",
                 SLURM_EXPORT_ENV="PATH", LC_ALL="C", MASKSPEC_TEST_VAR="from the job", SLOW_NODE_SECONDS="6")
    proc = tools.run("torchrun_nodes.sh", "--nnodes", "2", "--nproc_per_node", "2", "--rdzv_port", free_port(),
                     "program.py", out, env=slurm, timeout=180)
    assert "2 nodes x 2 processes, rendezvous at 127.0.0.1:" in proc.stderr
    ranks = results(out)
    assert [r["rank"] for r in ranks] == [0, 1, 2, 3] and {r["world"] for r in ranks} == {4}
    assert {r["rank_sum"] for r in ranks} == {6.0}  # the all-reduce spanned both nodes
    assert sorted((r["node"], r["local_rank"]) for r in ranks) == [("0", 0), ("0", 1), ("1", 0), ("1", 1)]
    assert all(r["env"] == dict(LC_ALL="C", OMP_NUM_THREADS="1", MASKSPEC_TEST_VAR="from the job") for r in ranks)
    (call,) = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert call[:9] == ["srun", "--nodes", "2", "--ntasks", "2", "--ntasks-per-node", "1", "--export=ALL",
                        "--kill-on-bad-exit=1"]
    assert call[call.index("--master_addr") + 1] == "127.0.0.1"
    for noise in ("heartbeat", "TCPStore", "Traceback", "Exception", "rendezvous '"):
        assert noise not in proc.stderr + proc.stdout, proc.stderr


def test_one_node_is_standalone_without_slurm(tools, tmp_path):
    stand_ins(tmp_path, tools)
    out = tmp_path / "out"
    out.mkdir()
    tools.env["STANDIN_NODE"] = "solo"
    tools.run("torchrun_nodes.sh", "--nproc_per_node", "2", "program.py", out, timeout=180)
    assert [(r["rank"], r["world"], r["node"]) for r in results(out)] == [(0, 2, "solo"), (1, 2, "solo")]
    assert not (tmp_path / "calls.jsonl").exists()  # no srun


def test_multi_node_needs_a_big_enough_slurm_allocation(tools, tmp_path):
    env = {k: v for k, v in tools.env.items() if not k.startswith("SLURM_")}
    tools.env = env
    proc = tools.run("torchrun_nodes.sh", "--nnodes", "2", "program.py", check=False)
    assert "--nnodes 2 needs a Slurm allocation of 2 nodes" in proc.stderr
    proc = tools.run("torchrun_nodes.sh", "--nnodes", "3", "program.py", check=False,
                     env=dict(SLURM_JOB_ID="5", SLURM_JOB_NUM_NODES="2", SLURM_JOB_NODELIST="n[1-2]"))
    assert "--nnodes 3 but Slurm job 5 has 2 node(s)" in proc.stderr
    for bad in (["--nnodes", "0"], ["--nproc_per_node", "x"]):
        proc = tools.run("torchrun_nodes.sh", *bad, "program.py", check=False)
        assert "must be a positive integer" in proc.stderr
    assert "no program to run" in tools.run("torchrun_nodes.sh", check=False).stderr
    assert "Usage:" in tools.run("torchrun_nodes.sh", "--help").stdout

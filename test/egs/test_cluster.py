"""A recipe's stages 2 (features) and 3 (pre-training) submitted through utils/queue.pl (Grid Engine) and
utils/slurm.pl (Slurm), with stand-in ``qsub``/``sbatch`` on PATH that record their arguments and run the
submitted array job here, task after task, as the scheduler would on its nodes.

The AudioSet recipe is used with the tiny settings; cmd.sh is replaced by one selecting the scheduler, and the
recipe's own conf/queue.conf and conf/slurm.conf translate --mem / --num-threads / --gpu into scheduler options.
Stage 3 asks for two GPUs (--ngpu 2) so that the GPU request and the CPUs of each of its two processes are
visible, and runs on the CPU anyway (--pretrain_args "--device cpu" comes after the launcher's --device cuda).
"""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import torch

from slurm_stand_ins import free_port, install_srun

from fixtures import link_recipe, make_audioset, read_kv, recipe_args, run_script, write_tiny_configs

STAND_IN = textwrap.dedent('''\
    #!/usr/bin/env python3
    """Stand-in for {name}: records argv as one JSON line, runs every array task of the script here."""
    import json, os, re, subprocess, sys

    args = sys.argv[1:]
    script = args[-1]
    if "{name}" == "qsub":
        first, last = map(int, args[args.index("-t") + 1].split(":"))
        task_var, out_token, reply = "SGE_TASK_ID", "$TASK_ID", "Your job-array 4242.{{}}-{{}}:1 has been submitted"
    else:
        m = re.match(r"--array=(\\d+)-(\\d+)", next(a for a in args if a.startswith("--array=")))
        first, last = int(m.group(1)), int(m.group(2))
        task_var, out_token, reply = "SLURM_ARRAY_TASK_ID", "%a", "4242"
    out = args[args.index("-o") + 1]
    codes = []
    # Slurm tells a job its allocation (utils/torchrun_nodes.sh reads it): the --nodes asked for, or one
    nodes = next((a.split("=", 1)[1] for a in args if a.startswith("--nodes=")), "1")
    for task in range(first, last + 1):
        env = dict(os.environ, **{{task_var: str(task)}})
        if "{name}" == "sbatch":
            env.update(SLURM_JOB_ID="4242", SLURM_JOB_NUM_NODES=nodes, SLURM_JOB_NODELIST=f"node[1-{{nodes}}]")
        with open(out.replace(out_token, str(task)), "w") as f:
            codes.append(subprocess.call(["bash", script], env=env, stdout=f, stderr=subprocess.STDOUT))
    with open(os.environ["STANDIN_RECORD"], "a") as f:
        f.write(json.dumps({{"program": "{name}", "argv": args, "tasks": last - first + 1,
                            "script": open(script).read(), "codes": codes}}) + "\\n")
    print(reply.format(first, last) if "{{}}" in reply else reply)
''')

CMD_SH = {
    "queue": 'export train_cmd="queue.pl --mem 2G"\nexport cuda_cmd="queue.pl --mem 6G --num-threads 2"\n'
             'export decode_cmd="queue.pl --mem 2G"\n',
    "slurm": 'export train_cmd="slurm.pl --mem 2G"\nexport cuda_cmd="slurm.pl --mem 6G --num-threads 2"\n'
             'export decode_cmd="slurm.pl --mem 2G"\n',
}


def install_stand_ins(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("qsub", "sbatch"):
        path = bin_dir / name
        path.write_text(STAND_IN.format(name=name))
        path.chmod(0o755)


def submissions(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def by_command(subs: list[dict], text: str) -> list[dict]:
    return [s for s in subs if text in s["script"]]


@pytest.mark.parametrize("backend", ["queue", "slurm"])
def test_stages_2_and_3_through_the_scheduler(tmp_path, backend):
    fx = make_audioset(tmp_path / "audioset")
    configs = write_tiny_configs(tmp_path / "conf")
    work_root = tmp_path / "run"
    (work_root / "egs" / "audioset").mkdir(parents=True)
    (work_root / "egs" / "audioset" / "cmd.sh").write_text(CMD_SH[backend])  # instead of the recipe's link
    work = link_recipe("audioset", work_root)
    install_stand_ins(tmp_path / "bin")
    record = tmp_path / "submissions.jsonl"
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "STANDIN_RECORD": str(record),
           "MASKSPEC_QUEUE_GRACE": "5"}
    # One set for everything (train_2m also validates) keeps the run to one feature array job.
    args = recipe_args(fx.root, configs, "--pretrain_config", str(configs["pretrain"]), "--stop_stage", "3",
                       "--pretrain_args", "--device cpu", "--pretrain_valid_set", "train_2m",
                       "--valid_set", "train_2m", "--test_sets", "train_2m")
    args[args.index("--nj") + 1] = "2"  # two feature jobs: an array of two tasks
    args[args.index("--ngpu") + 1] = "2"  # stage 3 requests two GPUs: torchrun with two processes
    run_script(["run.sh", *args], work, env=env)

    subs = submissions(record)
    program = {"queue": "qsub", "slurm": "sbatch"}[backend]
    assert {s["program"] for s in subs} == {program}
    assert all(code == 0 for s in subs for code in s["codes"])
    fbank = by_command(subs, "maskspec.bin.compute_fbank")
    stats = by_command(subs, "maskspec.bin.compute_stats")
    pretrain = by_command(subs, "maskspec.bin.pretrain")
    assert len(fbank) == 1 and len(stats) == 1 and len(pretrain) == 1
    assert all(s["tasks"] == 2 for s in fbank) and pretrain[0]["tasks"] == 1
    cpu_argv, gpu_argv = " ".join(fbank[0]["argv"]), " ".join(pretrain[0]["argv"])
    if backend == "queue":
        assert "-t 1:2" in cpu_argv and "-l mem_free=2G" in cpu_argv and "gpu" not in cpu_argv
        assert "-l mem_free=6G" in gpu_argv and "-pe smp 4" in gpu_argv  # 2 threads x 2 processes
        assert "-l gpu=2 -q g.q" in gpu_argv and "-t 1:1" in gpu_argv
    else:
        assert "--array=1-2" in cpu_argv and "--mem=2G" in cpu_argv and "gres" not in cpu_argv
        assert "--mem=6G" in gpu_argv and "--cpus-per-task=4" in gpu_argv  # 2 threads x 2 processes
        assert "--gres=gpu:2" in gpu_argv and "--array=1-1" in gpu_argv
        assert "--partition" not in cpu_argv + gpu_argv  # the shipped conf works where there is no gpu partition

    # the jobs' work is done: features of both sets, statistics, the pre-trained model
    assert set(read_kv(work / "dump/fbank/train_2m/feats.scp")) == set(read_kv(work / "data/train_2m/wav.scp"))
    assert (work / "dump/fbank/train_2m/stats.json").is_file()
    assert (work / "exp/pretrain_tiny/model.pt").is_file()
    log = (work / "exp/pretrain_tiny/log/pretrain.log").read_text()
    assert "# Ended (code 0)" in log and "threads=4" in log
    assert "2 processes" in (work / "exp/pretrain_tiny/train.log").read_text()


def test_multi_node_pretraining_through_slurm(tmp_path):
    """--num_nodes 2 --ngpu 0 (a CPU cluster): slurm.pl asks for two nodes and no GPU, utils/torchrun_nodes.sh
    starts one torchrun on each through (stand-in) srun, and the two CPU processes pre-train together (gloo)."""
    fx = make_audioset(tmp_path / "audioset")
    configs = write_tiny_configs(tmp_path / "conf")
    work_root = tmp_path / "run"
    (work_root / "egs" / "audioset").mkdir(parents=True)
    (work_root / "egs" / "audioset" / "cmd.sh").write_text(CMD_SH["slurm"])
    work = link_recipe("audioset", work_root)
    install_stand_ins(tmp_path / "bin")
    install_srun(tmp_path / "bin")
    record = tmp_path / "submissions.jsonl"
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "STANDIN_RECORD": str(record),
           "MASKSPEC_QUEUE_GRACE": "5", "MASKSPEC_RDZV_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    args = recipe_args(fx.root, configs, "--pretrain_config", str(configs["pretrain"]), "--stop_stage", "3",
                       "--pretrain_args", "--batch_size 2 --max_steps 2 --num_images 0",
                       "--pretrain_valid_set", "train_2m", "--valid_set", "train_2m", "--test_sets", "train_2m",
                       "--num_nodes", "2")
    args[args.index("--ngpu") + 1] = "0"
    run_script(["run.sh", *args], work, env=env)

    (pretrain,) = by_command(submissions(record), "maskspec.bin.pretrain")
    argv = " ".join(pretrain["argv"])
    assert "--nodes=2 --ntasks-per-node=1" in argv and "--gres" not in argv and "--ntasks=1" not in argv
    assert ("utils/torchrun_nodes.sh --nnodes 2 --nproc_per_node 1 -m maskspec.bin.pretrain --device cpu"
            in pretrain["script"])
    exp = work / "exp/pretrain_tiny"
    assert "2 processes" in (exp / "train.log").read_text()
    ckpt = torch.load(sorted((exp / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["step"] == 2
    assert (exp / "model.pt").is_file()

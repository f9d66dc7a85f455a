"""The mini recipe (``./run.sh --quick true``, shortened) through a real Slurm: Debian's slurm-wlm 22.05 and munge,
one node on this machine (test/real_slurm.py), with cmd.sh's slurm.pl lines, as a user of a CPU-only cluster would
run it.

What it shows (issue 21): stages 2-5 all run as Slurm jobs (Slurm's own job records, jobcomp/filetxt: every job
COMPLETED with exit code 0:0); every job gets the recipe's OMP_NUM_THREADS (run.sh's 1, not the submitting
shell's 2) and MASKSPEC_RDZV_PORT set in the submitting shell, though slurm.pl submits with --export=PATH;
run.sh exits 0; and the scheduler changes no digit: the same stages 2-5 run with run.pl in a second copy of the
recipe (the same data directories, its own features and experiments) give byte-identical features and the same
exp/RESULTS.md (the pipeline is seeded, single-threaded and deterministic). Stage 1 (data preparation) runs on the
submitting host, as in Kaldi. Pre-training and fine-tuning are cut to a few epochs (``SHORT``): the scheduler's
part is the same for 2 epochs as for 30, and test_mini.py checks the quick run's full schedules.

Then, from the features of that run, a two-node CPU pre-training: two slurmd on this machine, stage 3 with
--num_nodes 2 --ngpu 0 through slurm.pl and utils/torchrun_nodes.sh (test/real_slurm_two_nodes.py): one job on
nodes n[1-2], world size 2, exit 0, and no warning or C++ stack in its log.

A recipe copy's path.sh, which the job script of slurm.pl sources in every job, appends what the job sees (after
the recipe's own path.sh) to job_env.txt, a file in the recipe folder: written whatever reaches the job.

Where slurm-wlm and munge are missing and cannot be installed (no apt-get, no network), or the tests do not run as
root (the daemons here do), the tests are skipped and say why.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from collections import Counter

import kaldiio
import numpy as np
import pytest

from real_slurm import SlurmCluster, install_problem
from real_slurm_two_nodes import run_two_node_pretraining

from fixtures import mini_work_copy, read_kv, run_script

CMD_SH = ('export train_cmd="slurm.pl --mem 2G"\nexport cuda_cmd="slurm.pl --mem 8G"\n'
          'export decode_cmd="slurm.pl --mem 4G"\n')
PATH_SH = '''\
. "$(dirname "${BASH_SOURCE[0]}")/../TEMPLATE/path.sh"
if [ -n "${SLURM_JOB_ID:-}" ]; then
  echo "job=$SLURM_JOB_ID name=$SLURM_JOB_NAME omp=${OMP_NUM_THREADS-unset} port=${MASKSPEC_RDZV_PORT-unset}" \\
    "host=$(hostname)" >> job_env.txt
fi
'''
PORT = "29123"
# run.sh --quick true with 2 epochs of pre-training and 2 short epochs of each fine-tuning (the quick run: 30 and 12)
SHORT = ["--quick", "true", "--pretrain_args", "--seed 0 --epochs 2 --warmup_epochs 1 --batch_size 16 --lr 1e-3",
         "--finetune_args", "--seed 0 --epochs 2 --samples_per_epoch 64"]
SETS = ("pretrain_quick", "train_quick", "valid_quick", "test_quick")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    problem = install_problem() or (None if os.geteuid() == 0 else "slurmd and munged here run as root; not root")
    if problem:
        print(f"test_real_slurm: no real Slurm here, skipped: {problem}", file=sys.stderr)
        pytest.skip(f"no real Slurm here: {problem}")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def results_table(work) -> dict[str, list[str]]:
    """``{model: its numbers as written}`` of the rows of exp/RESULTS.md (accuracy, mAP, mAUC)."""
    rows = {}
    for line in (work / "exp" / "RESULTS.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        numbers = [c for c in cells[1:] if re.fullmatch(r"\d+\.\d+", c)]
        if numbers:
            rows[cells[0].split()[0]] = numbers
    return rows


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """(recipe folder, CompletedProcess) of the shortened quick run with cmd.sh on slurm.pl."""
    dest = tmp_path_factory.mktemp("mini_slurm")
    work = dest / "egs" / "mini"
    work.mkdir(parents=True)
    (work / "cmd.sh").write_text(CMD_SH)
    (work / "path.sh").write_text(PATH_SH)
    work = mini_work_copy(dest)
    env = {**slurm.env(), "OMP_NUM_THREADS": "2", "MASKSPEC_RDZV_PORT": PORT}
    return work, run_script(["run.sh", *SHORT], work, env=env, timeout=1500)  # fails unless exit 0


@pytest.fixture(scope="module")
def local_run(slurm_run, tmp_path_factory):
    """The recipe folder of the same stages 2-5 with run.pl (the recipe's cmd.sh), on a copy of the Slurm run's
    data directories (their audio stays where stage 1 wrote it)."""
    work = mini_work_copy(tmp_path_factory.mktemp("mini_local"))
    shutil.rmtree(work / "data")
    shutil.copytree(slurm_run[0] / "data", work / "data")
    run_script(["run.sh", *SHORT, "--stage", "2"], work, timeout=900)
    return work


def features(work, name: str) -> dict[str, np.ndarray]:
    return dict(kaldiio.load_scp_sequential(str(work / "dump" / "fbank" / name / "feats.scp")))


def test_mini_quick_run_through_real_slurm(slurm, slurm_run, local_run):
    work, proc = slurm_run

    seen = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in (work / "job_env.txt").read_text().splitlines()]
    records = {r["JobId"]: r for r in slurm.job_records()}
    # every job that ran a command of the recipe is one Slurm finished, completed, with exit code 0
    assert sorted(int(s["job"]) for s in seen) == sorted(int(j) for j in records)
    for s in seen:
        record = records[s["job"]]
        assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0"), record
        assert record["Name"] == s["name"] and record["Partition"] == "main"
        assert (s["omp"], s["port"]) == ("1", PORT), s  # the recipe's threads, the submitting shell's port
    names = Counter(re.sub(r"\..*", "", s["name"]) for s in seen)
    # stage 2: two fbank tasks per set and the statistics of the two training sets; 3: pre-training;
    # 4: fine-tuning of the pre-trained model, from scratch, and the linear probe; 5: scoring each of them
    assert names == {"make_fbank_pretrain_quick": 2, "make_fbank_train_quick": 2, "make_fbank_valid_quick": 2,
                     "make_fbank_test_quick": 2, "compute_stats": 2, "pretrain": 1, "finetune": 3,
                     "score": 3}, names
    assert "Stage 1: data preparation" in proc.stderr  # on this host: no job above is stage 1's

    # what run.pl makes of the same data directories, digit for digit
    for name in SETS:
        slurm_feats, local_feats = features(work, name), features(local_run, name)
        assert list(slurm_feats) == list(local_feats) == sorted(read_kv(work / "data" / name / "wav.scp"))
        assert all(np.array_equal(slurm_feats[k], local_feats[k]) for k in slurm_feats), name
    slurm_results, local_results = results_table(work), results_table(local_run)
    assert set(slurm_results) == {"pretrained", "scratch", "linear_probe"}
    assert all(len(numbers) == 3 for numbers in slurm_results.values())
    assert slurm_results == local_results


def test_two_node_cpu_pretraining_through_real_slurm(slurm_run, tmp_path):
    result = run_two_node_pretraining(slurm_run[0], tmp_path)  # asserts what the module docstring says
    assert result["world_size"] == 2 and result["processes"] == ["2 processes, device cpu"]

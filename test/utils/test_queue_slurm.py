"""utils/queue.pl (Grid Engine) and utils/slurm.pl with stand-in qsub/sbatch that run the tasks locally."""
from __future__ import annotations

import re

import pytest


def option_value(argv, flag):
    """The argument following ``flag`` in ``argv``."""
    return argv[argv.index(flag) + 1]


def check_log(path, command, code):
    lines = path.read_text().splitlines()
    assert lines[0] == f"# {command}"
    assert lines[1].startswith("# Started at ")
    assert re.match(rf"# Ended \(code {code}\) at .+, elapsed time \d+ seconds$", lines[-1])
    return lines


# ---------------------------------------------------------------- Grid Engine

def test_queue_submits_one_array_job_with_mapped_options(tools, scheduler, tmp_path):
    tools.run("queue.pl", "--mem", "4G", "--gpu", "1", "--num-threads", "2", "--max-jobs-run", "3",
              "--time", "02:00:00", "JOB=1:4", "exp/log/work.JOB.log", "echo task JOB | tr a-z A-Z")
    (argv,) = scheduler()
    assert argv[0] == "qsub"
    assert argv[1:10] == ["-v", "PATH", "-cwd", "-S", "/bin/bash", "-j", "y", "-l", "arch=*64*"]
    assert option_value(argv, "-t") == "1:4"
    assert option_value(argv, "-tc") == "3"
    assert argv[argv.index("-pe"):argv.index("-pe") + 3] == ["-pe", "smp", "2"]
    assert "mem_free=4G" in argv  # a load value every Grid Engine has (ram_free is a site's own consumable)
    assert "gpu=1" in argv and option_value(argv, "-q") == "g.q"
    assert "h_rt=02:00:00" in argv
    assert argv[-1] == "exp/log/q/work.sh"
    script = (tmp_path / "exp/log/q/work.sh").read_text()
    assert "SGE_TASK_ID" in script
    for job in range(1, 5):
        lines = check_log(tmp_path / f"exp/log/work.{job}.log", f"echo task {job} | tr a-z A-Z", 0)
        assert f"TASK {job}" in lines
        assert re.match(r"# Accounting: time=\d+ threads=2$", lines[-2])
    # The exit-status files are read and cleaned up.
    assert not list((tmp_path / "exp/log/q").glob("done.*"))


def test_queue_defaults_add_nothing_for_zero_gpu_and_one_thread(tools, scheduler):
    tools.run("queue.pl", "--num-threads", "1", "log/a.log", "true")
    (argv,) = scheduler()
    assert "-pe" not in argv and "gpu=0" not in argv and "-tc" not in argv
    assert option_value(argv, "-t") == "1:1"


def test_queue_reports_failures_with_first_failed_log(tools, scheduler, tmp_path):
    proc = tools.run("queue.pl", "JOB=1:3", "log/f.JOB.log", "[ JOB -ne 2 ] || exit 7", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("1 / 3 failed, log is in log/f.2.log")
    check_log(tmp_path / "log/f.2.log", "[ 2 -ne 2 ] || exit 7", 7)
    check_log(tmp_path / "log/f.3.log", "[ 3 -ne 2 ] || exit 7", 0)


def test_queue_options_from_conf_file(tools, scheduler, tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/queue.conf").write_text(
        "# site settings\n"
        "command qsub -V -cwd -q all.q\n"
        "option mem=* -l h_vmem=$0\n"
        "option num_threads=* -pe mpi $0\n"
        "option max_jobs_run=* -tc $0\n"
        "option gpu=0\n"
        "option gpu=* -l gpu=$0 -q gpu.q\n"
        "default mem=2G\n"
        "default gpu=0\n"
    )
    tools.run("queue.pl", "--num-threads", "8", "JOB=1:2", "log/c.JOB.log", "echo JOB")
    tools.run("queue.pl", "--config", "conf/queue.conf", "--mem", "6G", "--gpu", "2", "log/d.log", "echo x")
    first, second = scheduler()
    assert first[1:5] == ["-V", "-cwd", "-q", "all.q"]
    assert first[first.index("-pe"):first.index("-pe") + 3] == ["-pe", "mpi", "8"]
    assert "h_vmem=2G" in first  # the config's default
    assert "arch=*64*" not in first  # the built-in config is not used
    assert "h_vmem=6G" in second and "gpu=2" in second and "gpu.q" in second
    assert "threads=8" in (tmp_path / "log/c.1.log").read_text()


def test_queue_option_missing_from_config_is_an_error(tools, scheduler, tmp_path):
    (tmp_path / "q.conf").write_text("command qsub\noption mem=* -l mem=$0\n")
    proc = tools.run("queue.pl", "--config", "q.conf", "--gpu", "1", "log/x.log", "true", check=False)
    assert "--gpu" in proc.stderr and "q.conf" in proc.stderr
    assert scheduler() == []
    (tmp_path / "bad.conf").write_text("command qsub\nfrobnicate all\n")
    proc = tools.run("queue.pl", "--config", "bad.conf", "log/x.log", "true", check=False)
    assert "bad.conf:2" in proc.stderr


def test_queue_offset_range_and_single_job(tools, scheduler, tmp_path):
    tools.run("queue.pl", "JOB=3:4", "log/o.JOB.log", "echo JOB")
    tools.run("queue.pl", "log/single.log", "echo JOB")
    ranged, single = scheduler()
    assert option_value(ranged, "-t") == "1:2"
    assert "\n3\n" in (tmp_path / "log/o.3.log").read_text()
    assert "\n4\n" in (tmp_path / "log/o.4.log").read_text()
    assert not (tmp_path / "log/o.1.log").exists()
    assert option_value(single, "-t") == "1:1"
    assert "\nJOB\n" in (tmp_path / "log/single.log").read_text()


def test_queue_job_lost_by_scheduler_counts_as_failed(tools, scheduler):
    proc = tools.run("queue.pl", "JOB=1:2", "log/l.JOB.log", "true", check=False,
                     env={"SCHEDULER_LOSES_JOBS": "1", "MASKSPEC_QUEUE_GRACE": "0"}, timeout=30)
    assert proc.returncode == 1
    assert "no longer lists" in proc.stderr
    assert "2 / 2 failed, log is in log/l.1.log" in proc.stderr


# ---------------------------------------------------------------- Slurm

def test_slurm_submits_one_array_job_with_mapped_options(tools, scheduler, tmp_path):
    tools.run("slurm.pl", "--mem", "4G", "--gpu", "1", "--num-threads", "2", "--max-jobs-run", "3",
              "--time", "01:30:00", "JOB=1:5", "exp/log/s.JOB.log", "echo JOB | cat")
    (argv,) = scheduler()
    assert argv[0] == "sbatch"
    assert "--array=1-5%3" in argv and "--parsable" in argv
    for expected in ("--mem=4G", "--gres=gpu:1", "--cpus-per-task=2", "--time=01:30:00"):
        assert expected in argv
    assert argv[-1] == "exp/log/q/s.sh"
    assert "SLURM_ARRAY_TASK_ID" in (tmp_path / "exp/log/q/s.sh").read_text()
    for job in range(1, 6):
        lines = check_log(tmp_path / f"exp/log/s.{job}.log", f"echo {job} | cat", 0)
        assert str(job) in lines


def test_slurm_one_task_by_default_and_nodes_for_multi_node_jobs(tools, scheduler):
    tools.run("slurm.pl", "log/one.log", "true")
    tools.run("slurm.pl", "--gpu", "8", "--num-nodes", "4", "log/many.log", "true")
    one, many = scheduler()
    assert "--ntasks=1" in one and not any(a.startswith("--nodes") for a in one)
    assert "--nodes=4" in many and "--ntasks-per-node=1" in many and "--gres=gpu:8" in many
    assert "--ntasks=1" not in many  # one task per node: utils/torchrun_nodes.sh starts torchrun with srun


def test_queue_rejects_num_nodes_its_config_does_not_describe(tools, scheduler):
    proc = tools.run("queue.pl", "--num-nodes", "2", "log/a.log", "true", check=False)
    assert "option --num-nodes is not described in config" in proc.stderr
    assert scheduler() == []


def test_slurm_without_limit_and_failure_report(tools, scheduler, tmp_path):
    proc = tools.run("slurm.pl", "JOB=1:4", "log/f.JOB.log", "exit $((JOB % 2))", check=False)
    (argv,) = scheduler()
    assert "--array=1-4" in argv
    assert not any(a.startswith("--gres") or a.startswith("--mem") for a in argv)
    assert proc.returncode == 1
    assert proc.stderr.startswith(tools.path("slurm.pl") + ": ")
    assert proc.stderr.strip().endswith("2 / 4 failed, log is in log/f.1.log")


def test_slurm_partition_from_conf_file(tools, scheduler, tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/slurm.conf").write_text(
        "command sbatch --export=PATH -p cpu\n"
        "option gpu=0\n"
        "option gpu=* -p gpu --gres=gpu:$0\n"
        "option mem=* --mem-per-cpu=$0\n"
        "default gpu=0\n"
    )
    tools.run("slurm.pl", "--gpu", "2", "--mem", "3G", "JOB=1:2", "log/p.JOB.log", "true")
    (argv,) = scheduler()
    assert argv[1:4] == ["--export=PATH", "-p", "cpu"]
    assert argv[argv.index("--gres=gpu:2") - 2:argv.index("--gres=gpu:2")] == ["-p", "gpu"]
    assert "--mem-per-cpu=3G" in argv


def test_slurm_lost_job(tools, scheduler):
    proc = tools.run("slurm.pl", "log/l.log", "true", check=False,
                     env={"SCHEDULER_LOSES_JOBS": "1", "MASKSPEC_QUEUE_GRACE": "0"}, timeout=30)
    assert "1 / 1 failed, log is in log/l.log" in proc.stderr


@pytest.mark.parametrize("tool", ["queue.pl", "slurm.pl"])
def test_usage(tools, scheduler, tool):
    assert "Usage:" in tools.run(tool, "--help").stdout
    proc = tools.run(tool, "JOB=1:2", "log/same.log", "true", check=False)
    assert "does not contain JOB" in proc.stderr
    proc = tools.run(tool, "--num-threads", "x", "log/a.log", "true", check=False)
    assert "--num-threads" in proc.stderr
    assert scheduler() == []


# ---------------------------------------------------------------- the job's environment and CPUs (issue 21)

SUBMIT_ENV = {"OMP_NUM_THREADS": "1", "MASKSPEC_RDZV_PORT": "29777", "NCCL_SOCKET_IFNAME": "eth0",
              "ODD_VALUE": "it's \"quoted\"\nand $(not run) `either`", "CUDA_VISIBLE_DEVICES": "7",
              "TMPDIR": "/submit/host/tmp", "SLURM_CONF": "/site/slurm.conf", "SLURM_JOB_ID": "99"}
SHOW = ("for v in OMP_NUM_THREADS MASKSPEC_RDZV_PORT NCCL_SOCKET_IFNAME CUDA_VISIBLE_DEVICES TMPDIR "
        "SLURM_EXPORT_ENV SLURM_CONF SLURM_JOB_ID; do echo \"$v=${!v-unset}\"; done; "
        "printf '%s' \"$ODD_VALUE\" > odd.txt")


@pytest.mark.parametrize("tool", ["queue.pl", "slurm.pl"])
def test_job_gets_the_submitting_shells_environment(tools, scheduler, tmp_path, tool):
    """qsub -v PATH and sbatch --export=PATH (the built-in configs, as Kaldi's) pass only PATH; the job script
    sets the recipe's variables again, but not the host's or the job's own (GPUs, scratch folder)."""
    tools.run(tool, "log/env.log", SHOW, env=SUBMIT_ENV)
    (argv,) = scheduler()
    assert "--export=PATH" in argv if tool == "slurm.pl" else argv[1:3] == ["-v", "PATH"]
    seen = dict(line.split("=", 1) for line in (tmp_path / "log/env.log").read_text().splitlines()
                if not line.startswith("#"))
    assert seen["OMP_NUM_THREADS"] == "1" and seen["MASKSPEC_RDZV_PORT"] == "29777"
    assert seen["NCCL_SOCKET_IFNAME"] == "eth0"
    assert (tmp_path / "odd.txt").read_text() == SUBMIT_ENV["ODD_VALUE"]
    assert seen["CUDA_VISIBLE_DEVICES"] == "unset" and seen["TMPDIR"] == "unset"  # the scheduler's to set
    # job steps started inside (srun in utils/torchrun_nodes.sh) get the job's environment, not only PATH
    assert seen["SLURM_EXPORT_ENV"] == ("ALL" if tool == "slurm.pl" else "unset")
    # the user's cluster, not the job id of a job slurm.pl was run in (run.sh itself submitted as a job)
    assert seen["SLURM_CONF"] == "/site/slurm.conf"
    assert seen["SLURM_JOB_ID"] == ("4343" if tool == "slurm.pl" else "unset")
    script = next((tmp_path / "log/q").glob("*.sh"))
    assert script.stat().st_mode & 0o077 == 0  # it holds the environment: the user's only


@pytest.mark.parametrize("tool, flag", [("slurm.pl", "--cpus-per-task="), ("queue.pl", "smp")])
def test_cpus_per_process_times_processes_per_node(tools, scheduler, tool, flag):
    """--procs-per-node 2 (torchrun with two ranks, maskspec.sh --ngpu 2): twice the CPUs of --num-threads."""
    tools.run(tool, "--gpu", "2", "--procs-per-node", "2", "log/a.log", "true")
    tools.run(tool, "--gpu", "2", "--num-threads", "3", "--procs-per-node", "2", "log/b.log", "true")
    tools.run(tool, "--num-threads", "3", "log/c.log", "true")
    two, six, three = (" ".join(argv) for argv in scheduler())
    expect = (lambda n: f"--cpus-per-task={n}") if tool == "slurm.pl" else (lambda n: f"-pe smp {n}")
    assert expect(2) in two and expect(6) in six and expect(3) in three
    assert "threads=6" in (tools.cwd / "log/b.log").read_text()
    if tool == "slurm.pl":
        assert "--ntasks=1" in two  # one torchrun per node, which starts the ranks
    proc = tools.run(tool, "--procs-per-node", "0", "log/d.log", "true", check=False)
    assert "--procs-per-node must be a positive integer" in proc.stderr
    (tools.cwd / "bare.conf").write_text("command sbatch\noption gpu=* --gres=gpu:$0\n")
    proc = tools.run(tool, "--config", "bare.conf", "--procs-per-node", "2", "log/e.log", "true", check=False)
    assert "does not describe num_threads" in proc.stderr


def test_run_pl_accepts_procs_per_node(tools):
    tools.run("run.pl", "--gpu", "2", "--procs-per-node", "2", "log/r.log", "true")

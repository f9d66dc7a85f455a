"""utils/run.pl: local parallel jobs with one log per job."""
from __future__ import annotations

import re

import pytest


def read(path):
    return path.read_text()


def test_job_range_writes_one_log_per_job(tools, tmp_path):
    tools.run("run.pl", "JOB=1:4", "exp/log/echo.JOB.log", "echo", "hello", "JOB")
    for job in range(1, 5):
        lines = read(tmp_path / f"exp/log/echo.{job}.log").splitlines()
        assert lines[0] == f"# echo hello {job}"
        assert lines[1].startswith("# Started at ")
        assert f"hello {job}" in lines
        assert re.match(r"# Accounting: time=\d+ threads=1$", lines[-2])
        assert re.match(r"# Ended \(code 0\) at .+, elapsed time \d+ seconds$", lines[-1])
    assert not (tmp_path / "exp/log/echo.5.log").exists()


def test_failures_are_counted_and_first_failed_log_named(tools, tmp_path):
    proc = tools.run("run.pl", "JOB=1:4", "log/f.JOB.log", "[ JOB -lt 3 ] || exit JOB", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("2 / 4 failed, log is in log/f.3.log")
    assert proc.stderr.startswith(tools.path("run.pl") + ": ")
    assert "# Ended (code 3)" in read(tmp_path / "log/f.3.log")
    assert "# Ended (code 4)" in read(tmp_path / "log/f.4.log")
    assert "# Ended (code 0)" in read(tmp_path / "log/f.1.log")


def test_quoted_command_with_pipes_and_redirection(tools, tmp_path):
    tools.run("run.pl", "JOB=1:2", "log/p.JOB.log", "echo abc JOB | tr a-z A-Z > out.JOB.txt")
    assert read(tmp_path / "out.1.txt") == "ABC 1\n"
    assert read(tmp_path / "out.2.txt") == "ABC 2\n"


def test_pipefail_reports_a_failure_inside_a_pipe(tools):
    proc = tools.run("run.pl", "log/pf.log", "false | cat", check=False)
    assert "1 / 1 failed" in proc.stderr


def test_several_arguments_are_joined_kaldi_style(tools, tmp_path):
    # A word with spaces stays one argument (its double space survives); a lone "|" or ">" is shell syntax.
    tools.run("run.pl", "log/k.log", "echo", "two  words", "|", "tr", "a-z", "A-Z", ">", "out.txt")
    assert read(tmp_path / "out.txt") == "TWO  WORDS\n"
    assert read(tmp_path / "log/k.log").splitlines()[0] == "# echo 'two  words' | tr a-z A-Z > out.txt"


def test_no_range_is_a_single_job_with_literal_log_name(tools, tmp_path):
    tools.run("run.pl", "exp/single/run.log", "echo JOB")
    text = read(tmp_path / "exp/single/run.log")
    assert text.splitlines()[0] == "# echo JOB"
    assert "\nJOB\n" in text


def test_range_of_one_job_and_other_variable_names(tools, tmp_path):
    tools.run("run.pl", "JOB=3:3", "log/one.JOB.log", "echo JOB")
    assert [p.name for p in (tmp_path / "log").iterdir()] == ["one.3.log"]
    tools.run("run.pl", "SPLIT=2:3", "log/s.SPLIT.log", "echo SPLIT")
    assert "\n3\n" in read(tmp_path / "log/s.3.log")


def test_max_jobs_run_limits_concurrency(tools, tmp_path):
    # Each job counts the running jobs (marker folders) while it holds its own marker.  Jobs 1 and 2 meet
    # first (1 waits for 2's marker, 2 waits until 1 has counted), so a working limit of 2 is seen as 2
    # even on a loaded machine; the other jobs check that no third job runs beside them.
    cmd = ("mkdir running.JOB; case JOB in 1) w=running.2;; 2) w=counted.1;; *) w=;; esac; "
           'for i in $(seq 200); do { [ -z "$w" ] || [ -e "$w" ]; } && break; sleep 0.05; done; '
           "ls -d running.* | wc -l >> counts; touch counted.JOB; sleep 0.3; rmdir running.JOB")
    tools.run("run.pl", "--max-jobs-run", "2", "JOB=1:6", "log/c.JOB.log", cmd)
    counts = [int(x) for x in read(tmp_path / "counts").split()]
    assert len(counts) == 6 and max(counts) == 2


def test_scheduler_options_are_accepted(tools, tmp_path):
    tools.run("run.pl", "--mem", "4G", "--gpu", "0", "--num-threads", "3", "--time", "01:00:00",
              "--config", "conf/queue.conf", "--max-jobs-run=2", "JOB=1:2", "log/o.JOB.log", "true")
    assert "threads=3" in read(tmp_path / "log/o.2.log")


@pytest.mark.parametrize("args, message", [
    (["--bogus", "1", "log/x.log", "true"], "unknown option --bogus"),
    (["--max-jobs-run", "0", "log/x.log", "true"], "--max-jobs-run must be a positive integer"),
    (["JOB=1:3", "log/x.log", "true"], "does not contain JOB"),
    (["JOB=4:2", "log/x.JOB.log", "true"], "empty job range"),
    (["log/x.log"], "expected a log file and a command"),
])
def test_usage_errors(tools, args, message):
    proc = tools.run("run.pl", *args, check=False)
    assert proc.returncode == 1 and message in proc.stderr


def test_help(tools):
    proc = tools.run("run.pl", "--help")
    assert proc.stdout.startswith("Usage: ") and "e.g.:" in proc.stdout


@pytest.mark.parametrize("name", ["lib/jobs.pl", "lib/datadir.pl"])
def test_libraries_say_what_they_are_when_run(tools, name):
    proc = tools.run(name, check=False)
    assert "a library of" in proc.stderr and "not a command" in proc.stderr

"""utils/parse_options.sh, sourced by a script written here under `set -euo pipefail`."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[2] / "utils"

HELP = "Usage: opts.sh [options] <in> <out>\ne.g.: opts.sh --stage 2 a b"

SCRIPT = f"""#!/usr/bin/env bash
set -euo pipefail
stage=1          # first stage
foo_bar=x        # set with --foo-bar
use_gpu=false    # a boolean
cmd="run.pl"
help_message="{HELP}"
. {UTILS}/parse_options.sh
echo "stage=$stage"
echo "foo_bar=$foo_bar"
echo "use_gpu=$use_gpu"
echo "cmd=$cmd"
echo "nargs=$#"
for a in "$@"; do echo "arg=$a"; done
"""


@pytest.fixture
def opts(tmp_path):
    script = tmp_path / "opts.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)

    def run(*args, ok=True):
        proc = subprocess.run(["./opts.sh", *args], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert (proc.returncode == 0) == ok, proc.stderr
        values = {}
        for line in proc.stdout.splitlines():
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
        return proc, {k: v[0] if k != "arg" else v for k, v in values.items()}

    return run


def test_defaults_untouched_without_options(opts):
    _, v = opts("a", "b")
    assert (v["stage"], v["foo_bar"], v["use_gpu"], v["cmd"]) == ("1", "x", "false", "run.pl")
    assert v["arg"] == ["a", "b"]


def test_stage_and_dashes_become_underscores(opts):
    _, v = opts("--stage", "3", "--foo-bar", "y z", "in", "out")
    assert v["stage"] == "3"
    assert v["foo_bar"] == "y z"
    assert v["arg"] == ["in", "out"]


def test_opt_equals_value_form(opts):
    _, v = opts("--stage=4", "--foo-bar=k=v", "--cmd=queue.pl --mem 4G")
    assert (v["stage"], v["foo_bar"], v["cmd"]) == ("4", "k=v", "queue.pl --mem 4G")
    assert v["nargs"] == "0"


def test_unknown_option_is_an_error_naming_it(opts):
    proc, _ = opts("--stgae", "3", "a", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("./opts.sh: ")
    assert "--stgae" in proc.stderr
    assert "stage=" not in proc.stdout  # the script did not go on


def test_internal_names_cannot_be_set(opts):
    proc, _ = opts("--__po_args", "x", ok=False)
    assert "--__po_args" in proc.stderr


def test_boolean_accepts_only_true_or_false(opts):
    _, v = opts("--use-gpu", "true")
    assert v["use_gpu"] == "true"
    proc, _ = opts("--use-gpu", "yes", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("./opts.sh: ") and "--use-gpu" in proc.stderr and "yes" in proc.stderr


def test_missing_value_is_an_error(opts):
    proc, _ = opts("--stage", ok=False)
    assert "--stage" in proc.stderr


def test_parsing_stops_at_first_positional_and_after_double_dash(opts):
    _, v = opts("a", "--stage", "3")
    assert v["stage"] == "1" and v["arg"] == ["a", "--stage", "3"]
    _, v = opts("--stage", "2", "--", "--foo-bar")
    assert v["stage"] == "2" and v["foo_bar"] == "x" and v["arg"] == ["--foo-bar"]


def test_config_file_then_command_line_overrides(opts, tmp_path):
    (tmp_path / "my.conf").write_text(
        "# options for opts.sh\n"
        "--stage 5   # trailing comment\n"
        "--use-gpu=true\n"
        'cmd="queue.pl --gpu 1"\n'
        '--foo-bar "quoted value"\n'
    )
    _, v = opts("--config", "my.conf", "x")
    assert (v["stage"], v["use_gpu"], v["cmd"], v["foo_bar"]) == ("5", "true", "queue.pl --gpu 1", "quoted value")
    # The config is applied first wherever it appears, so the command line wins in both orders.
    for args in (["--config", "my.conf", "--stage", "7"], ["--stage", "7", "--config=my.conf"]):
        _, v = opts(*args)
        assert v["stage"] == "7" and v["use_gpu"] == "true"


def test_config_file_errors(opts, tmp_path):
    proc, _ = opts("--config", "absent.conf", ok=False)
    assert "absent.conf" in proc.stderr
    (tmp_path / "bad.conf").write_text("--stage 2\n--nope 1\n")
    proc, _ = opts("--config", "bad.conf", ok=False)
    assert "--nope" in proc.stderr
    (tmp_path / "badbool.conf").write_text("--use-gpu maybe\n")
    proc, _ = opts("--config", "badbool.conf", ok=False)
    assert "--use-gpu" in proc.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_help_message_and_exits_zero(opts, flag):
    proc, _ = opts("--stage", "2", flag, "ignored")
    assert proc.stdout.strip() == HELP
    assert "stage=" not in proc.stdout
    proc, _ = opts(flag, "--config", "absent.conf")
    assert proc.stdout.strip() == HELP

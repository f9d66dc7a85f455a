"""Fixtures for the shell tools in utils/: a runner, a valid data directory and stand-in schedulers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[2] / "utils"


class Tools:
    """Runs ``utils/<name>`` from a working directory; returns the CompletedProcess (text mode)."""

    def __init__(self, cwd: Path, env: dict):
        self.cwd = cwd
        self.env = env

    def path(self, name: str) -> str:
        return str(UTILS / name)

    def run(self, name: str, *args, check: bool | None = True, env: dict | None = None, stdin: str | None = None,
            timeout: float = 60):
        """check=True: must exit 0; False: must exit non-zero; None: either."""
        proc = subprocess.run([self.path(name), *map(str, args)], cwd=self.cwd, env={**self.env, **(env or {})},
                              input=stdin, capture_output=True, text=True, timeout=timeout)
        if check is True:
            assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        elif check is False:
            assert proc.returncode != 0, f"{name} should have failed:\n{proc.stdout}\n{proc.stderr}"
        return proc


@pytest.fixture
def tools(tmp_path):
    env = dict(os.environ, LC_ALL="C")
    return Tools(tmp_path, env)


def write_files(directory: Path, files: dict[str, str]) -> Path:
    """Writes ``{name: text}`` into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def good_data_files(n_reco: int = 3, segments: bool = True) -> dict[str, str]:
    """A consistent data directory: recordings r1..rN with two segments each (or one utterance per
    recording), two speakers, three classes, multi-label utt2label, features and frame counts."""
    classes = ["bird", "cat", "dog"]
    files = {"labels.txt": "".join(c + "\n" for c in classes)}
    wav, seg, lab, dur, spk, feats, frames = [], [], [], [], [], [], []
    for r in range(1, n_reco + 1):
        reco = f"r{r}"
        wav.append(f"{reco} /corpus/{reco}.wav")
        utts = [(f"{reco}-{k}", 1.5 * k, 1.5 * (k + 1)) for k in range(2)] if segments else [(reco, 0.0, 2.0)]
        for i, (utt, start, end) in enumerate(utts):
            seg.append(f"{utt} {reco} {start} {end}")
            lab.append(f"{utt} {','.join(classes[: 1 + (r + i) % 3])}")
            dur.append(f"{utt} {end - start}")
            spk.append(f"{utt} s{r % 2}")
            feats.append(f"{utt} /feats/raw.1.ark:{100 * r + i}")
            frames.append(f"{utt} {int((end - start) * 100)}")
    files.update({
        "wav.scp": wav, "utt2label": lab, "utt2dur": dur, "utt2spk": spk, "feats.scp": feats,
        "utt2num_frames": frames,
    })
    if segments:
        files["segments"] = seg
    return {k: v if isinstance(v, str) else "".join(sorted(line + "\n" for line in v)) for k, v in files.items()}


@pytest.fixture
def data_dir(tmp_path):
    """``data_dir(name="data", **good_data_files kwargs) -> Path`` of a freshly written valid data directory."""

    def make(name: str = "data", **kwargs) -> Path:
        return write_files(tmp_path / name, good_data_files(**kwargs))

    return make


# Stand-in schedulers: each records its arguments (one JSON list per call) and runs the job script once per
# task id synchronously, as a scheduler would on its nodes, then prints a job id the way the real one does.
# The job gets the environment the real one would: qsub passes only -v's variables (all with -V), sbatch
# only --export's (all by default or with ALL) plus SLURM_*, and sets SLURM_EXPORT_ENV to --export's value.
_QSUB = r'''
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["SUBMIT_RECORD"], "a") as f:
    f.write(json.dumps(["qsub"] + args) + "\n")
first, last = map(int, args[args.index("-t") + 1].split(":"))
if "-V" in args:
    env = dict(os.environ)
else:
    names = [n for i, a in enumerate(args[:-1]) if a == "-v" for n in args[i + 1].split(",")]
    env = {n: os.environ[n] for n in names if n in os.environ}
if os.environ.get("SCHEDULER_LOSES_JOBS") != "1":
    for task in range(first, last + 1):
        subprocess.run(["bash", args[-1]], env=dict(env, SGE_TASK_ID=str(task), JOB_ID="4242"))
print(f'Your job-array 4242.{first}-{last}:1 ("{os.path.basename(args[-1])}") has been submitted')
'''

_SBATCH = r'''
import os, json, re, subprocess, sys
args = sys.argv[1:]
with open(os.environ["SUBMIT_RECORD"], "a") as f:
    f.write(json.dumps(["sbatch"] + args) + "\n")
spec = [a for a in args if a.startswith("--array=")][0]
first, last = map(int, re.match(r"--array=(\d+)-(\d+)", spec).groups())
export = ([a.split("=", 1)[1] for a in args if a.startswith("--export=")] or ["ALL"])[-1]
names = export.split(",")
env = dict(os.environ) if "ALL" in names else {k: v for k, v in os.environ.items() if k.startswith("SLURM_")}
for name in names:
    if name not in ("ALL", "NONE"):
        key, _, value = name.partition("=")
        if value or key in os.environ:
            env[key] = value or os.environ[key]
env["SLURM_EXPORT_ENV"] = export
if os.environ.get("SCHEDULER_LOSES_JOBS") != "1":
    for task in range(first, last + 1):
        subprocess.run(["bash", args[-1]], env=dict(env, SLURM_ARRAY_TASK_ID=str(task), SLURM_JOB_ID="4343"))
print("4343" if "--parsable" in args else "Submitted batch job 4343")
'''

# qstat -j / squeue -j report a job that no longer exists: the stand-ins know no job at all.
_QSTAT = "import sys\nprint('Following jobs do not exist: ' + sys.argv[-1], file=sys.stderr)\nsys.exit(1)\n"
_SQUEUE = "import sys\nprint('slurm_load_jobs error: Invalid job id specified', file=sys.stderr)\nsys.exit(1)\n"


@pytest.fixture
def scheduler(tmp_path, tools):
    """Puts stand-in qsub/qstat/sbatch/squeue first on PATH for ``tools``; ``scheduler()`` returns the list of
    recorded submissions (each the argv list, program first)."""
    bindir = tmp_path / "fake_bin"
    bindir.mkdir()
    for name, body in {"qsub": _QSUB, "sbatch": _SBATCH, "qstat": _QSTAT, "squeue": _SQUEUE}.items():
        path = bindir / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
    record = tmp_path / "submissions.jsonl"
    tools.env["PATH"] = f"{bindir}{os.pathsep}{tools.env['PATH']}"
    tools.env["SUBMIT_RECORD"] = str(record)

    def submissions() -> list[list[str]]:
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]

    return submissions

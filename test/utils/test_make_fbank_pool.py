"""utils/make_fbank_pool.sh: several sets' features in one pool, each clip computed once; .done markers ending
with the feats.scp checksum (older ones upgraded); sets redone when a file they name is gone or on --overwrite;
unused pool files deleted only when no other run holds the pool's lock."""
from __future__ import annotations

import fcntl
import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

TOOL = "make_fbank_pool.sh"


def write_sets(root: Path) -> None:
    """data/one holds clips a, b, c and data/two b, c, d (b and c with identical wav.scp entries)."""
    rng = np.random.default_rng(0)
    paths = {}
    for i, u in enumerate("abcd"):
        paths[u] = root / "audio" / f"{u}.wav"
        paths[u].parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(4800) / 16000
        sf.write(str(paths[u]), (0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t)
                                 + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 16000)
    for name, utts in (("one", "abc"), ("two", "bcd")):
        d = root / "data" / name
        d.mkdir(parents=True)
        (d / "wav.scp").write_text("".join(f"{u} {paths[u]}\n" for u in utts))
    (root / "fbank.yaml").write_text("sample_rate: 16000\nnum_mel_bins: 16\n")


def pool_env(tools) -> None:
    # python of the test run (the venv's, with maskspec), whatever PATH holds
    tools.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{tools.env['PATH']}"
    tools.env["OMP_NUM_THREADS"] = "1"


def run(tools, *args, sets=("one", "two"), check=True):
    return tools.run(TOOL, "--nj", "1", "--fbank_config", "fbank.yaml", *args, "data", "feats", "pool", *sets,
                     check=check, timeout=120)


def scp(tmp_path, name) -> dict[str, str]:
    lines = (tmp_path / "feats" / name / "feats.scp").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines)


def computed(proc) -> list[int]:
    return [int(line.split("computing fbank of ")[1].split()[0]) for line in proc.stderr.splitlines()
            if "computing fbank of " in line]


def test_each_clip_once_markers_reruns_and_overwrite(tools, tmp_path):
    pool_env(tools)
    write_sets(tmp_path)
    proc = run(tools)
    assert computed(proc) == [3, 1]  # b and c of "two" are "one"'s
    one, two = scp(tmp_path, "one"), scp(tmp_path, "two")
    assert two["b"] == one["b"] and two["c"] == one["c"] and "raw_fbank_two." in two["d"]
    marker = (tmp_path / "feats/two/.done").read_text().splitlines()
    digest = hashlib.md5((tmp_path / "feats/two/feats.scp").read_bytes()).hexdigest()
    assert marker[0].startswith("make_fbank.sh --filetype ark --dtype float32")
    assert marker[-1] == f"feats/two/feats.scp {digest}"
    # the jobs' own lists are deleted: the pool holds the lock and the feature files the sets name
    named = {spec.rsplit(":", 1)[0].rsplit("/", 1)[1] for spec in [*one.values(), *two.values()]}
    assert {p.name for p in (tmp_path / "pool").iterdir()} == named | {".lock"}

    proc = run(tools)
    assert "feats/one is complete; skipping" in proc.stderr and "feats/two is complete; skipping" in proc.stderr
    assert computed(proc) == []

    # a marker written before the feats.scp checksum was added is upgraded, not redone
    (tmp_path / "feats/one/.done").write_text("".join(f"{line}\n" for line in
                                                       (tmp_path / "feats/one/.done").read_text().splitlines()[:-1]))
    proc = run(tools, sets=("one",))
    assert "feats/one is complete; skipping" in proc.stderr and computed(proc) == []
    assert (tmp_path / "feats/one/.done").read_text().splitlines()[-1].startswith("feats/one/feats.scp ")

    # a file a set names is gone: that set is redone, taking what it can from the other
    Path(two["d"].rsplit(":", 1)[0]).unlink()
    proc = run(tools)
    assert "no longer exists; redoing feats/two" in proc.stderr and computed(proc) == [1]
    assert scp(tmp_path, "two")["b"] == one["b"] and scp(tmp_path, "two")["d"] != two["d"]

    # other settings stop the run
    two = scp(tmp_path, "two")
    proc = run(tools, "--dtype", "float16", check=False)
    assert "feats/one was made with other settings" in proc.stderr and "--overwrite true" in proc.stderr
    assert scp(tmp_path, "one") == one

    # --overwrite redoes "one" in new files without taking the other sets' features; "two" keeps its files
    proc = run(tools, "--overwrite", "true", sets=("one",))
    assert computed(proc) == [3]
    new = scp(tmp_path, "one")
    assert set(new.values()).isdisjoint(one.values()) and scp(tmp_path, "two") == two
    assert all(Path(spec.rsplit(":", 1)[0]).is_file() for spec in [*new.values(), *two.values()])
    assert Path(one["a"].rsplit(":", 1)[0]).exists()  # "two" still names its b and c

    proc = run(tools, "--overwrite", "true", "--reuse", "false")
    assert computed(proc) == [3, 3]
    # every earlier file is named by no feats.scp now, and gone
    named = {spec.rsplit(":", 1)[0] for name in ("one", "two") for spec in scp(tmp_path, name).values()}
    assert len(named) == 2 and {str(p) for p in (tmp_path / "pool").glob("*.ark")} == named


def test_unused_files_deleted_only_with_the_lock_alone(tools, tmp_path):
    pool_env(tools)
    (tmp_path / "pool").mkdir()
    (tmp_path / "feats").mkdir()
    stray = tmp_path / "pool" / "raw_fbank_x.killed.1.ark"
    stray.write_bytes(b"left by a killed job")
    with open(tmp_path / "pool" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # another run writing into the pool
        proc = run(tools, sets=())
        assert "another run is writing into pool" in proc.stderr and stray.exists()
    proc = run(tools, sets=())
    assert "deleted 1 files in pool" in proc.stderr and not stray.exists()


def test_bad_input_names_the_problem(tools, tmp_path):
    pool_env(tools)
    write_sets(tmp_path)
    assert "Usage:" in tools.run(TOOL, "--help").stdout
    assert "Usage:" in tools.run(TOOL, "data", "feats", check=False).stderr
    assert "no data/three/wav.scp" in run(tools, sets=("one", "three"), check=False).stderr
    assert not (tmp_path / "feats").exists()  # checked before any work
    assert "--nj must be a positive integer" in run(tools, "--nj", "0", check=False).stderr
    assert "--no_such" in tools.run(TOOL, "--no_such", "1", "data", "feats", "pool", check=False).stderr
    # a failing job: the end of its log
    (tmp_path / "audio" / "d.wav").write_bytes(b"RIFF not really a wave file")
    proc = run(tools, check=False)
    assert "feature extraction of feats/two failed" in proc.stderr and "last lines of feats/two/log/" in proc.stderr
    assert (tmp_path / "feats/one/.done").is_file() and not (tmp_path / "feats/two/.done").exists()

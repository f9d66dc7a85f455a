"""Checkpoint files: atomic writes, newest loadable, damaged files skipped, pruning, killed saves."""
from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from maskspec.train.checkpoint import (CheckpointError, checkpoint_name, latest_checkpoint, list_checkpoints,
                                       load_checkpoint, load_latest_checkpoint, prune_checkpoints,
                                       remove_stale_temporaries, save_checkpoint)


def state(step: int, size: int = 10) -> dict:
    return dict(version=1, kind="test", epoch=0, batches_done=step, step=step, model={"w": torch.full((size,), step)})


def test_names_sort_by_step_not_text(tmp_path):
    for epoch, step in ((1, 9), (2, 10), (10, 100)):
        save_checkpoint(state(step), tmp_path / checkpoint_name(epoch, step))
    (tmp_path / "best.pt").write_bytes(b"x")
    (tmp_path / ".ckpt_e011_s00000200.pt.abc.tmp").write_bytes(b"partial")
    assert [os.path.basename(p) for p in list_checkpoints(tmp_path)] == [
        "ckpt_e001_s00000009.pt", "ckpt_e002_s00000010.pt", "ckpt_e010_s00000100.pt"]
    assert latest_checkpoint(tmp_path).endswith("ckpt_e010_s00000100.pt")
    assert latest_checkpoint(tmp_path / "missing") is None


def test_latest_skips_a_truncated_file_with_a_warning(tmp_path, caplog):
    save_checkpoint(state(1), tmp_path / checkpoint_name(1, 1))
    newest = tmp_path / checkpoint_name(1, 2)
    save_checkpoint(state(2, size=10000), newest)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="maskspec.train"):
        path, st = load_latest_checkpoint(tmp_path)
    assert path.endswith(checkpoint_name(1, 1)) and st["step"] == 1
    assert "skipping unusable checkpoint" in caplog.text and checkpoint_name(1, 2) in caplog.text
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(newest)


def test_foreign_files_are_refused(tmp_path):
    torch.save({"something": 1}, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(tmp_path / "a.pt")
    bad = state(1)
    bad["version"] = 99
    torch.save(bad, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="lacks 'model'"):
        save_checkpoint({"version": 1, "kind": "x", "epoch": 0, "step": 0, "batches_done": 0}, tmp_path / "c.pt")


def test_prune_keeps_newest_and_never_best(tmp_path):
    for s in range(1, 6):
        save_checkpoint(state(s), tmp_path / checkpoint_name(1, s))
    save_checkpoint(state(0), tmp_path / "best.pt")
    removed = prune_checkpoints(tmp_path, keep=2)
    assert [os.path.basename(p) for p in removed] == [checkpoint_name(1, s) for s in (1, 2, 3)]
    assert sorted(os.listdir(tmp_path)) == sorted(["best.pt", checkpoint_name(1, 4), checkpoint_name(1, 5)])
    assert prune_checkpoints(tmp_path, keep=0) == []


def test_stale_temporaries_removed(tmp_path):
    (tmp_path / ".ckpt_e001_s00000001.pt.x1.tmp").write_bytes(b"")
    (tmp_path / ".best.pt.x2.tmp").write_bytes(b"")
    (tmp_path / "notes.tmp").write_bytes(b"")
    remove_stale_temporaries(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["notes.tmp"]


SAVER = textwrap.dedent("""
    import sys, torch
    from maskspec.train.checkpoint import checkpoint_name, save_checkpoint
    folder = sys.argv[1]
    big = torch.arange(4_000_000, dtype=torch.float32)  # 16 MB: a save takes long enough to be interrupted
    print("ready", flush=True)
    step = 0
    while True:
        step += 1
        save_checkpoint(dict(version=1, kind="t", epoch=0, batches_done=0, step=step, model={"w": big + step}),
                        folder + "/" + checkpoint_name(1, step))
""")


def test_killed_save_never_leaves_a_trusted_partial_file(tmp_path):
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(folder)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(random.uniform(0.3, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # whatever is under a final name loads completely; partial data only ever sits in a temporary
        expected = torch.arange(4_000_000, dtype=torch.float32)
        for path in list_checkpoints(folder):
            st = load_checkpoint(path)
            assert torch.equal(st["model"]["w"], expected + st["step"])
        latest = latest_checkpoint(folder)
        if latest is not None:
            assert load_checkpoint(latest)["step"] == max(load_checkpoint(p)["step"] for p in list_checkpoints(folder))
        temporaries = [n for n in os.listdir(folder) if n.endswith(".tmp")]
        assert len(temporaries) <= 1
        if temporaries:
            return  # killed in the middle of a save, the case this test is about
    pytest.fail("never caught a save in progress in 3 attempts")

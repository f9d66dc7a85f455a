"""The shared training loop: exact resume after SIGKILL, NaN stop, accumulation, best.pt, max_steps."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from maskspec.train.checkpoint import list_checkpoints, load_checkpoint
from maskspec.train.history import TIMING_KEYS, read_history
from maskspec.train.trainer import NonFiniteError

sys.path.insert(0, str(Path(__file__).parent))
from train_toy import ToyTask, make_trainer, training_args, write_toy_data  # noqa: E402

TOY = str(Path(__file__).parent / "train_toy.py")


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy_data")
    stats = write_toy_data(str(d))
    with open(d / "stats.json", "w") as f:
        json.dump(stats, f)
    return str(d), stats


def _run_toy(data, exp_dir, out, *extra, sleep=0.0):
    cmd = [sys.executable, TOY, "--data", data, "--exp_dir", str(exp_dir), "--out", str(out),
           "--sleep", str(sleep), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _mid_epoch_checkpoint(ckpt_dir) -> bool:
    for path in list_checkpoints(ckpt_dir):
        try:
            if load_checkpoint(path)["batches_done"] > 0:
                return True
        except Exception:  # noqa: BLE001 - being written right now
            pass
    return False


def test_killed_run_resumes_to_identical_weights(toy_data, tmp_path):
    data, _ = toy_data
    # reference: uninterrupted, no DataLoader workers
    ref = _run_toy(data, tmp_path / "ref", tmp_path / "ref.pt")
    out, err = ref.communicate(timeout=120)
    assert ref.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"step": 20, "resumed_from": None}

    # killed at a random moment after its first mid-epoch checkpoint, with 2 workers, then rerun
    exp = tmp_path / "killed"
    proc = _run_toy(data, exp, tmp_path / "killed.pt", "--num_workers", "2", sleep=0.03)
    deadline = time.time() + 60
    while not _mid_epoch_checkpoint(exp / "checkpoints"):
        assert proc.poll() is None, "toy run ended before writing a mid-epoch checkpoint: " + proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed.pt").exists()

    again = _run_toy(data, exp, tmp_path / "killed.pt", "--num_workers", "2")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["step"] == 20 and summary["resumed_from"] is not None

    a, b = torch.load(tmp_path / "ref.pt"), torch.load(tmp_path / "killed.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the per-epoch record continues across the kill: same entries, same losses and FLOPs (the partial epoch's
    # loss sum and the compute record travel in the checkpoint); only the measured seconds differ
    def untimed(history):
        return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history]

    ref_history, history = read_history(str(tmp_path / "ref")), read_history(str(exp))
    assert untimed(ref_history) == untimed(history)
    assert history[-1]["train_flops"] == 20 * history[-1]["flops_per_step"] > 0
    assert 0 < history[0]["train_seconds"] < history[-1]["train_seconds"]


def test_nan_loss_stops_naming_the_step_without_checkpoint(toy_data, tmp_path):
    data, stats = toy_data
    args = training_args(["--accum_grad", "1", "--save_interval_steps", "1", "--keep_checkpoints", "0"])
    trainer = make_trainer(data, str(tmp_path), args, ToyTask(nan_at=3), stats)
    with pytest.raises(NonFiniteError, match=r"non-finite loss at epoch 1 step 3\b"):
        trainer.fit()
    names = sorted(os.path.basename(p) for p in list_checkpoints(tmp_path / "checkpoints"))
    assert names == ["ckpt_e001_s00000001.pt", "ckpt_e001_s00000002.pt"]
    assert not (tmp_path / "checkpoints" / "best.pt").exists()


def test_nan_inside_accumulation_is_caught_at_its_step(toy_data, tmp_path):
    data, stats = toy_data
    args = training_args(["--accum_grad", "2", "--save_interval_steps", "1"])
    trainer = make_trainer(data, str(tmp_path), args, ToyTask(nan_at=5), stats)  # micro-batch 5 = step 3
    with pytest.raises(RuntimeError, match=r"step 3\b"):
        trainer.fit()
    assert [load_checkpoint(p)["step"] for p in list_checkpoints(tmp_path / "checkpoints")] == [1, 2]


def test_accumulation_matches_large_batch(toy_data, tmp_path):
    """accum_grad 2 x batch 4 takes the same steps as batch 8 when the model has no randomness."""
    data, stats = toy_data
    results = []
    for name, opts in (("accum", ["--batch_size", "4", "--accum_grad", "2"]),
                       ("big", ["--batch_size", "8", "--accum_grad", "1"])):
        args = training_args(opts + ["--epochs", "2", "--save_interval_steps", "0", "--clip_grad", "none"])
        trainer = make_trainer(data, str(tmp_path / name), args, ToyTask(), stats)
        trainer.model.net[2].p = 0.0  # no dropout
        trainer.task.train_step = lambda model, batch: (((model(batch["feats"]) - batch["feats"]) ** 2).mean(), {})
        trainer.fit()
        results.append(trainer.model.state_dict())
    for k in results[0]:
        torch.testing.assert_close(results[0][k], results[1][k], rtol=1e-5, atol=1e-6)


def test_best_checkpoint_epoch_hook_and_max_steps(toy_data, tmp_path):
    data, stats = toy_data
    args = training_args(["--max_steps", "7", "--keep_checkpoints", "2"])
    task = ToyTask()
    trainer = make_trainer(data, str(tmp_path), args, task, stats)
    result = trainer.fit()
    # 5 steps per epoch: one full epoch, then stop after step 7 inside epoch 2 (validated and saved there too)
    assert result["step"] == 7 and task.epochs_seen == [1, 2]
    ckpts = list_checkpoints(tmp_path / "checkpoints")
    assert len(ckpts) == 2  # keep_checkpoints
    last = load_checkpoint(ckpts[-1])
    assert (last["epoch"], last["batches_done"], last["step"]) == (1, 4, 7)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["optimizer"] is None and best["best_metric"] == pytest.approx(min(best["valid"].values()))
    assert last["kind"] == "toy" and last["args"]["max_steps"] == 7
    history = read_history(str(tmp_path))
    assert [(h["epoch"], h["step"]) for h in history] == [(1, 5), (2, 7)]
    assert history[-1]["loss"] == pytest.approx(last["valid"]["loss"]) and history[0]["train_loss"] > 0
    assert (tmp_path / "curves.png").stat().st_size > 0
    # rerunning with the same max_steps has nothing left to do
    again = make_trainer(data, str(tmp_path), args, ToyTask(), stats).fit()
    assert again["step"] == 7 and again["resumed_from"] == ckpts[-1]


def test_resume_false_starts_over(toy_data, tmp_path):
    data, stats = toy_data
    make_trainer(data, str(tmp_path), training_args(["--max_steps", "2"]), ToyTask(), stats).fit()
    result = make_trainer(data, str(tmp_path), training_args(["--max_steps", "2", "--resume", "false"]),
                          ToyTask(), stats).fit()
    assert result["resumed_from"] is None and result["step"] == 2


def test_too_small_training_set_is_an_error(toy_data, tmp_path):
    data, stats = toy_data
    with pytest.raises(ValueError, match="fewer than one optimiser step"):
        make_trainer(data, str(tmp_path), training_args(["--batch_size", "32"]), ToyTask(), stats)


def test_bf16_autocast_path_runs_on_cpu(toy_data, tmp_path):
    """The GPU default (bf16 autocast) exercised on CPU: loss finite, parameters stay float32."""
    data, stats = toy_data
    trainer = make_trainer(data, str(tmp_path), training_args(["--max_steps", "3", "--amp", "bf16"]), ToyTask(),
                           stats)
    assert trainer.fit()["step"] == 3
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])["args"]["amp"] == "bf16"

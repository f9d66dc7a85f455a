"""A resume under changed settings (issue 21, defect 5): a run interrupted and rerun with, say, other --epochs
stops and names the options that differ, unless --resume_changed true; options that do not change what the run
computes (where and how often it writes, loading, max_steps) may change freely."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from maskspec.train.checkpoint import ChangedSettingsError, changed_settings, list_checkpoints, load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from train_toy import ToyTask, make_trainer, training_args, write_toy_data  # noqa: E402


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy_data")
    stats = write_toy_data(str(d))
    (d / "stats.json").write_text(json.dumps(stats))
    return str(d), stats


def fit(data, exp_dir, argv):
    d, stats = data
    return make_trainer(d, str(exp_dir), training_args(argv), ToyTask(), stats).fit()


def test_changed_settings_compares_resolved_options_only():
    saved = dict(epochs=30, lr=0.001, exp_dir="a", max_steps=0, num_workers=4, model_conf={"depth": 2}, old=1)
    current = dict(epochs=20, lr=0.001, exp_dir="b", max_steps=5, num_workers=0, model_conf={"depth": 3}, new=2)
    assert changed_settings(saved, current) == [("epochs", 30, 20), ("model_conf", {"depth": 2}, {"depth": 3})]
    assert changed_settings(None, current) == []


def test_interrupted_run_rerun_with_other_epochs_stops_naming_them(toy_data, tmp_path, caplog):
    # "interrupted" in epoch 1 (max_steps 2 of 4 epochs x 5 steps), rerun with 3 epochs and another peak lr
    fit(toy_data, tmp_path, ["--max_steps", "2"])
    before = list_checkpoints(tmp_path / "checkpoints")
    with pytest.raises(ChangedSettingsError) as err:
        fit(toy_data, tmp_path, ["--epochs", "3", "--lr", "0.02"])
    message = str(err.value)
    assert before[-1] in message and "epochs 4 -> 3" in message and "lr 0.01 -> 0.02" in message
    assert "--resume_changed true" in message and "warmup" not in message
    assert list_checkpoints(tmp_path / "checkpoints") == before  # nothing trained, nothing written

    # asked for: continues from the checkpoint under the new schedule, and says so
    with caplog.at_level(logging.WARNING, logger="maskspec.train"):
        result = fit(toy_data, tmp_path, ["--epochs", "3", "--lr", "0.02", "--resume_changed", "true"])
    assert result["resumed_from"] == before[-1] and result["step"] == 15
    assert "continuing under the new ones" in caplog.text and "epochs 4 -> 3" in caplog.text
    assert load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])["args"]["epochs"] == 3


def test_options_that_do_not_change_the_run_may_change(toy_data, tmp_path):
    fit(toy_data, tmp_path, ["--max_steps", "2"])
    result = fit(toy_data, tmp_path, ["--max_steps", "4", "--log_interval", "3", "--keep_checkpoints", "5",
                                      "--save_interval_steps", "1"])
    assert result["resumed_from"] is not None and result["step"] == 4

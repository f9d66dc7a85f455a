"""The mini recipe end to end (./run.sh --quick true), the corpus generator, and maskspec.sh's own checks.

The recipe runs once per module in a linked working copy under a temporary folder (fixtures.link_recipe), so the
repository's egs/mini stays clean and a failed run leaves its logs in pytest's temporary folder.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from maskspec.train.history import read_history

from fixtures import REPO, mini_work_copy, read_kv, run_script

MINI = REPO / "egs" / "mini"
SETS = ("pretrain_quick", "train_quick", "valid_quick", "test_quick")
MODELS = ("pretrained", "scratch", "linear_probe")
# Chance is 0.1 (10 balanced classes). With --quick true the pre-trained model scored 0.38, 0.37, 0.515 and 0.35
# on the 200 test clips for seeds 0-3; 0.2 is twice chance and more than 4 standard deviations (about 0.034 for
# 200 clips) below the lowest of them, so it fails a model that learnt next to nothing without being flaky.
MIN_PRETRAINED_ACCURACY = 0.2
# Validation loss ratio after the quick pre-training (30 epochs of 400 clips): 0.835, 0.826, 0.839, 0.833 for seeds 0-3;
# the full run reaches 0.767. The clips' background noise (SNR -5 to 20 dB) cannot be predicted, which bounds it.
MAX_PRETRAIN_LOSS_RATIO = 0.9


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """(recipe folder, CompletedProcess) of ``egs/mini/run.sh --quick true`` with the recipe's cmd.sh (run.pl)."""
    work = mini_work_copy(tmp_path_factory.mktemp("mini"))
    return work, run_script(["run.sh", "--quick", "true"], work, timeout=900)


def validate(data_dir: Path, *opts: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "utils" / "validate_data_dir.sh"), *opts, str(data_dir)],
                          capture_output=True, text=True)


def test_data_dirs_are_valid_and_have_the_promised_content(quick_run):
    work, _ = quick_run
    for name in SETS:
        d = work / "data" / name
        opts = ("--no-feats", "--no-labels") if name.startswith("pretrain") else ("--no-feats",)
        proc = validate(d, *opts)
        assert proc.returncode == 0, proc.stderr
    assert len(read_kv(work / "data/pretrain_quick/wav.scp")) == 400
    assert not (work / "data/pretrain_quick/utt2label").exists()  # pre-training data is unlabelled
    classes = (work / "data/train_quick/labels.txt").read_text().split()
    assert len(classes) == 10
    for name, per_class in (("train_quick", 8), ("valid_quick", 10), ("test_quick", 20)):
        counts = Counter(read_kv(work / "data" / name / "utt2label").values())
        assert counts == {c: per_class for c in classes}, name


def test_audio_mixes_rates_channels_and_formats(quick_run):
    work, _ = quick_run
    paths = list(read_kv(work / "data/pretrain_quick/wav.scp").values())
    infos = [sf.info(p) for p in paths]
    assert {i.samplerate for i in infos} == {8000, 16000, 22050, 44100}
    assert {i.channels for i in infos} == {1, 2}
    assert {Path(p).suffix for p in paths} == {".wav", ".flac"}
    assert all(abs(i.duration - 2.0) < 1e-6 for i in infos)


def test_features_and_statistics(quick_run):
    work, _ = quick_run
    for name in SETS:
        d = work / "dump" / "fbank" / name
        opts = ("--no-labels",) if name.startswith("pretrain") else ()
        proc = validate(d, *opts)
        assert proc.returncode == 0, proc.stderr
        assert (d / ".done").is_file() and (d / "fbank.yaml").is_file()
        frames = {int(v) for v in read_kv(d / "utt2num_frames").values()}
        assert frames == {198}  # 2 s at 16 kHz, 25 ms windows every 10 ms
    for name in ("pretrain_quick", "train_quick"):  # the sets whose statistics normalise a model's input
        stats = json.loads((work / "dump/fbank" / name / "stats.json").read_text())
        assert len(stats["mean"]) == len(stats["std"]) == 64


def test_pretraining_outputs(quick_run):
    work, _ = quick_run
    exp = work / "exp" / "pretrain_mini_quick"
    for f in ("model.pt", ".done", "config.yaml", "train.log", "run.sh", "log/pretrain.log"):
        assert (exp / f).is_file(), f
    assert sorted(exp.glob("images/epoch_*.png")), "no reconstruction images"
    assert sorted(exp.glob("tensorboard/**/events.out.tfevents.*")), "no TensorBoard events"
    assert "# Ended (code 0)" in (exp / "log/pretrain.log").read_text()
    replay = (exp / "run.sh").read_text()  # maskspec.sh with the options run.sh gave it
    assert "maskspec.sh " in replay and "--pretrain_config conf/pretrain_mini.yaml" in replay
    assert replay.rstrip().endswith('--stage 3 --stop_stage 3 "$@"')
    assert os.access(exp / "run.sh", os.X_OK)


def test_pretraining_reconstructs_well_below_the_mean(quick_run):
    """Validation loss / loss of predicting each masked patch's mean (norm-pix targets: 1 = nothing learnt)."""
    work, _ = quick_run
    exp = work / "exp" / "pretrain_mini_quick"
    history = read_history(str(exp))
    ratios = [h["loss_ratio"] for h in history]
    assert len(ratios) == 30 and (exp / "curves.png").is_file()
    assert ratios[-1] < MAX_PRETRAIN_LOSS_RATIO, ratios
    assert ratios[-1] < ratios[0] - 0.1, ratios  # it learnt during this run, not before it


def test_every_model_is_trained_and_scored(quick_run):
    work, _ = quick_run
    exp = work / "exp" / "finetune_mini_quick"
    for model in MODELS:
        assert (exp / model / "model.pt").is_file(), model
        assert (exp / model / ".done").is_file(), model
        results = json.loads((exp / model / "decode_test_quick" / "results.json").read_text())
        assert results["metrics"]["num_clips"] == 200
        assert 0.0 <= results["metrics"]["accuracy"] <= 1.0
    config = (exp / "scratch" / "config.yaml").read_text()
    assert re.search(r"^init: none$", config, re.M)
    assert re.search(r"^freeze_encoder: true$", (exp / "linear_probe" / "config.yaml").read_text(), re.M)


def test_results_table_compares_the_models(quick_run):
    work, proc = quick_run
    table = (work / "exp" / "RESULTS.md").read_text()
    rows = {}
    for model in MODELS:
        line = next(l for l in table.splitlines() if l.startswith(f"| {model} "))
        rows[model] = float(line.split("|")[2])
        accuracy = json.loads((work / "exp/finetune_mini_quick" / model / "decode_test_quick/results.json")
                              .read_text())["metrics"]["accuracy"]
        assert rows[model] == pytest.approx(accuracy, abs=5e-5)
    assert "exp/RESULTS.md" in proc.stderr and "tensorboard --logdir exp" in proc.stderr


def test_pretrained_model_is_well_above_chance(quick_run):
    work, _ = quick_run
    results = json.loads((work / "exp/finetune_mini_quick/pretrained/decode_test_quick/results.json").read_text())
    assert results["metrics"]["accuracy"] > MIN_PRETRAINED_ACCURACY


def test_rerun_skips_completed_work(quick_run):
    work, _ = quick_run
    model = work / "exp/finetune_mini_quick/pretrained/model.pt"
    before = model.stat().st_mtime_ns
    proc = run_script(["run.sh", "--quick", "true"], work, timeout=300)
    assert "in data are complete (.done); skipping" in proc.stderr
    assert proc.stderr.count("is complete; skipping") >= 4 + 1 + 3 + 3  # sets, pre-training, models, scores
    assert model.stat().st_mtime_ns == before


def test_changed_settings_are_not_silently_reused(quick_run):
    work, _ = quick_run
    proc = run_script(["run.sh", "--quick", "true", "--stage", "4", "--stop_stage", "4",
                       "--finetune_args", "--epochs 3"], work, check=False)
    assert proc.returncode != 0
    assert "was made with other settings" in proc.stderr and "--overwrite true" in proc.stderr


def test_failing_stage_shows_the_end_of_its_log(quick_run):
    work, _ = quick_run
    proc = run_script(["run.sh", "--quick", "true", "--stage", "4", "--stop_stage", "4", "--tag", "broken",
                       "--finetune_args", "--no_such_option 1"], work, check=False)
    assert proc.returncode != 0
    assert "last lines of exp/finetune_broken/pretrained/log/finetune.log" in proc.stderr
    # the log's content (the program's own error), not just its path
    assert "unrecognized arguments: --no_such_option" in proc.stderr.split("last lines of", 1)[1]
    assert not (work / "exp/finetune_broken/pretrained/.done").exists()


# ------------------------------------------------------------------------------------------- no training
def run_generator(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MINI / "local" / "generate_corpus.py"), "--audio_dir",
                           str(tmp / "audio"), "--data_dir", str(tmp / "data"), *args],
                          capture_output=True, text=True)


def test_generator_is_deterministic_and_prefix_stable(tmp_path):
    def clips(folder: Path, n: int) -> list[np.ndarray]:
        scp = read_kv(folder / "data" / "valid" / "wav.scp")
        return [sf.read(p)[0] for p in list(scp.values())[:n]]

    assert run_generator(tmp_path / "a", "--sets", "valid:2").returncode == 0
    assert run_generator(tmp_path / "b", "--sets", "valid:1", "--nj", "1").returncode == 0
    assert run_generator(tmp_path / "c", "--sets", "valid:1", "--seed", "1").returncode == 0
    a, b, c = clips(tmp_path / "a", 10), clips(tmp_path / "b", 10), clips(tmp_path / "c", 10)
    assert len(read_kv(tmp_path / "a/data/valid/utt2label")) == 20
    for x, y in zip(a, b):  # a set's first clips depend neither on its size nor on the number of processes
        assert x.shape == y.shape and np.array_equal(x, y)
    assert any(x.shape != z.shape or not np.array_equal(x, z) for x, z in zip(a, c))


def test_generator_rejects_bad_set(tmp_path):
    proc = run_generator(tmp_path, "--sets", "training:3")
    assert proc.returncode != 0 and "bad set 'training:3'" in proc.stderr


def test_maskspec_sh_rejects_bad_options(tmp_path):
    work = mini_work_copy(tmp_path)
    for args, message in ((["--no_such_option", "1"], "unknown option --no_such_option"),
                          (["stray"], "unexpected argument 'stray'"),
                          (["--pretrain", "maybe"], "--pretrain must be auto, true or false"),
                          (["--num_nodes", "0"], "--num_nodes must be a positive integer"),
                          (["--ngpu", "x"], "--ngpu must be a non-negative integer"),
                          (["--train_set", "train_fold{fold}"], "uses {fold} but --folds is empty"),
                          (["--folds", "1 2", "--train_set", "train"], "--train_set 'train' has no {fold}"),
                          (["--init", "none", "--linear_probe", "true"], "--linear_probe true needs")):
        proc = run_script(["maskspec.sh", *args], work, check=False)
        assert proc.returncode == 1, args
        assert message in proc.stderr, (args, proc.stderr)
    proc = run_script(["maskspec.sh", "--help"], work)
    for option in ("--stage", "--ngpu", "--init", "--pretrain_config", "--finetune_config", "--folds", "--tag"):
        assert option in proc.stdout


def test_bootstrap_objective_through_stage_3(quick_run):
    """conf/pretrain_mini_bootstrap.yaml (issue 19's objective) through stage 3 of the quick corpus, cut short."""
    from maskspec.models.model_file import load_model_file

    work, _ = quick_run
    run_script(["run.sh", "--quick", "true", "--stage", "3", "--stop_stage", "3", "--pretrain_tag", "boot_quick",
                "--pretrain_config", "conf/pretrain_mini_bootstrap.yaml",
                "--pretrain_args", "--max_steps 4 --batch_size 8 --num_masks 2 --num_images 1"], work)
    exp = work / "exp" / "pretrain_boot_quick"
    mf = load_model_file(exp / "model.pt")
    assert mf["model_config"]["objective"] == "bootstrap" and mf["extra"]["step"] == 4
    assert not any(k.startswith("teacher.") for k in mf["state_dict"])
    assert sorted(exp.glob("images/epoch_*.png")) and "teacher_ranks_differ 0" in (exp / "train.log").read_text()

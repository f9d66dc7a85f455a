"""ESC-50 recipe: five-fold data directories from the official layout, failures on a broken corpus."""
from __future__ import annotations

import json
import statistics

import pytest

from fixtures import (assert_sorted_c, link_recipe, make_esc50, read_kv, read_labels, recipe_args, run_script,
                      shared_init, tiny_finetune_args)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """run.sh stages 1-5 on the fixture corpus, fine-tuning the shared tiny AudioSet model on each fold."""
    init, configs = shared_init(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("esc50")
    fx = make_esc50(tmp / "ESC-50-master")
    work = link_recipe("esc50", tmp)
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", str(init),
                                              "--finetune_args", tiny_finetune_args(48, 2))], work)
    return fx, work, proc


def test_five_folds_hold_out_each_fold_once(prepared):
    fx, work, _ = prepared
    folds = fx.expected["folds"]
    every = set().union(*folds.values())
    for k in range(1, 6):
        test = set(read_kv(work / f"data/test_fold{k}/wav.scp"))
        train = set(read_kv(work / f"data/train_fold{k}/wav.scp"))
        assert test == folds[k]
        assert train == every - folds[k]
    for name in ("train_fold3", "test_fold3"):
        d = work / "data" / name
        for f in ("wav.scp", "utt2label", "utt2dur"):
            assert_sorted_c(d / f)


def test_labels_are_category_names_in_target_order(prepared):
    fx, work, _ = prepared
    assert (work / "data/test_fold1/labels.txt").read_text().split() == ["dog", "rain", "chainsaw"]
    target_to_class = {"0": "dog", "10": "rain", "41": "chainsaw"}
    labels = read_labels(work / "data/train_fold2/utt2label")
    for utt, lab in labels.items():
        assert lab == {target_to_class[utt.rsplit("-", 1)[1]]}, utt
    durs = read_kv(work / "data/train_fold2/utt2dur")
    assert all(abs(float(v) - 0.5) < 1e-3 for v in durs.values())
    scp = read_kv(work / "data/test_fold1/wav.scp")
    assert all(path.startswith(str(fx.root / "audio")) and path.endswith(f"{utt}.wav") for utt, path in scp.items())


def test_each_fold_scored_and_five_folds_averaged(prepared):
    fx, work, proc = prepared
    assert "Stage 3: skipped" in proc.stderr  # the encoder comes from --init
    exp = work / "exp" / "finetune_default" / "pretrained"
    accuracies = []
    for k in range(1, 6):
        res = json.loads((exp / f"fold{k}" / f"decode_test_fold{k}" / "results.json").read_text())
        assert res["metrics"]["task_type"] == "single_label"
        assert res["metrics"]["num_clips"] == len(fx.expected["folds"][k])
        accuracies.append(res["metrics"]["accuracy"])
    summary = json.loads((exp / "decode_test_folds" / "results.json").read_text())
    acc = summary["metrics"]["accuracy"]
    assert summary["num_runs"] == 5
    assert acc["mean"] == pytest.approx(statistics.mean(accuracies))
    assert acc["std"] == pytest.approx(statistics.stdev(accuracies))
    assert "test_folds" in (work / "exp" / "RESULTS.md").read_text()
    # the test fold only monitors: model.pt is the last epoch's weights, not the best on the test fold
    assert "model.pt: mean of the checkpoints after epochs [1]" in (exp / "fold3" / "log" / "finetune.log").read_text()


def test_missing_meta_fails_naming_it(tmp_path):
    fx = make_esc50(tmp_path / "esc", per_fold=1)
    (fx.root / "meta" / "esc50.csv").unlink()
    work = link_recipe("esc50", tmp_path)
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0
    assert "meta/esc50.csv" in proc.stderr and "not found" in proc.stderr
    assert not (work / "data" / "train_fold1").exists()


def test_missing_audio_fails_naming_the_file(tmp_path):
    fx = make_esc50(tmp_path / "esc", per_fold=1)
    victim = sorted((fx.root / "audio").iterdir())[3]
    victim.unlink()
    work = link_recipe("esc50", tmp_path)
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0
    assert victim.name in proc.stderr and "missing" in proc.stderr


def test_bad_meta_row_names_file_and_line(tmp_path):
    fx = make_esc50(tmp_path / "esc", per_fold=1)
    meta = fx.root / "meta" / "esc50.csv"
    lines = meta.read_text().splitlines()
    fields = lines[4].split(",")
    fields[1] = "7"  # there is no fold 7
    lines[4] = ",".join(fields)
    meta.write_text("\n".join(lines) + "\n")
    work = link_recipe("esc50", tmp_path)
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "esc50.csv:5" in proc.stderr


def test_data_sh_rejects_unknown_option_and_prints_help(tmp_path):
    work = link_recipe("esc50", tmp_path)
    proc = run_script(["local/data.sh", "--no_such_option", "1"], work, check=False)
    assert proc.returncode != 0 and "--no_such_option" in proc.stderr
    proc = run_script(["local/data.sh", "--help"], work)
    assert "--db_root" in proc.stdout
    proc = run_script(["local/data.sh", "--db_root", str(tmp_path / "nowhere")], work, check=False)
    assert proc.returncode != 0 and "nowhere" in proc.stderr and "not a directory" in proc.stderr
    proc = run_script(["local/data.sh", "--db_root", ""], work, check=False)
    assert proc.returncode != 0 and "set ESC50 in db.sh" in proc.stderr
    proc = run_script(["run.sh", "--help"], work)
    assert "ESC-50 recipe" in proc.stdout and "train_fold{fold}" in proc.stdout
    proc = run_script(["run.sh", "--fold", "1"], work, check=False)
    assert proc.returncode != 0 and "--fold" in proc.stderr

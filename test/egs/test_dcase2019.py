"""DCASE2019 Task 1A recipe: fold1 train/evaluate, location-grouped validation split, 24-bit stereo audio."""
from __future__ import annotations

import collections

import json

import pytest

from fixtures import (assert_sorted_c, check_run_sh_cli, link_recipe, make_dcase2019, read_kv, read_labels, recipe_args,
                      run_script, shared_init, tiny_finetune_args)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """run.sh stages 1-5 on the fixture corpus (a fifth of the locations as validation)."""
    init, configs = shared_init(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("dcase")
    fx = make_dcase2019(tmp / "TAU-urban-acoustic-scenes-2019-development")
    work = link_recipe("dcase2019_task1a", tmp)
    args = recipe_args(fx.root, configs, "--init", str(init), "--finetune_args", tiny_finetune_args(48, 2))
    args[1] += " --valid_fraction 0.2"  # --local_data_opts
    proc = run_script(["run.sh", *args], work)
    return fx, work, proc


def test_official_split_and_labels(prepared):
    fx, work, _ = prepared
    assert set(read_kv(work / "data/test/wav.scp")) == fx.expected["test"]
    train_all = set(read_kv(work / "data/train/wav.scp")) | set(read_kv(work / "data/valid/wav.scp"))
    assert train_all == set(fx.expected["train_locations"])
    for split in ("train", "valid", "test"):
        d = work / "data" / split
        assert (d / "labels.txt").read_text().split() == fx.classes
        for utt, labels in read_labels(d / "utt2label").items():
            assert labels == {utt.split("-")[0]}
        for f in ("wav.scp", "utt2label", "utt2dur"):
            assert_sorted_c(d / f)


def test_valid_holds_whole_locations_of_every_scene(prepared):
    fx, work, _ = prepared
    locs = fx.expected["train_locations"]
    train = {locs[u] for u in read_kv(work / "data/train/wav.scp")}
    valid = {locs[u] for u in read_kv(work / "data/valid/wav.scp")}
    assert not train & valid  # no location on both sides
    per_scene = collections.Counter(loc.split("/")[0] for loc in valid)
    assert per_scene == {scene: 1 for scene in fx.classes}  # 20 % of five locations per scene


def test_missing_setup_file_fails(tmp_path):
    fx = make_dcase2019(tmp_path / "dc", seconds=0.1)
    work = link_recipe("dcase2019_task1a", tmp_path)
    (fx.root / "evaluation_setup" / "fold1_evaluate.csv").unlink()
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "fold1_evaluate.csv" in proc.stderr
    check_run_sh_cli(work, "DCASE2019 Task 1A recipe", "--init ../audioset/exp/pretrain_base/model.pt", "--train-sets")



def test_comma_separated_setup_file_is_rejected(tmp_path):
    fx = make_dcase2019(tmp_path / "dc", seconds=0.1)
    work = link_recipe("dcase2019_task1a", tmp_path)
    path = fx.root / "evaluation_setup" / "fold1_train.csv"
    path.write_text(path.read_text().replace("\t", ","))
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "fold1_train.csv:1" in proc.stderr and "tab-separated" in proc.stderr


def test_finetuned_and_scored_on_fold1_evaluate(prepared):
    fx, work, proc = prepared
    res = json.loads((work / "exp/finetune_default/pretrained/decode_test/results.json").read_text())
    assert res["metrics"]["task_type"] == "single_label"
    assert res["metrics"]["num_clips"] == len(fx.expected["test"])
    assert 0.0 <= res["metrics"]["accuracy"] <= 1.0

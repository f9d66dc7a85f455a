"""OpenMIC-2018 recipe: npz labels with partial annotation -> utt2label / utt2label_known, carved valid split."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures import (assert_sorted_c, check_run_sh_cli, link_recipe, make_openmic, read_kv, read_labels, recipe_args,
                      run_script, shared_init, tiny_finetune_args)
from maskspec.data.labels import read_targets


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """run.sh stages 1-5 on the fixture corpus (a quarter of split01_train as validation)."""
    init, configs = shared_init(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("openmic")
    fx = make_openmic(tmp / "openmic-2018")
    work = link_recipe("openmic2018", tmp)
    args = recipe_args(fx.root, configs, "--init", str(init), "--finetune_args", tiny_finetune_args(48, 2))
    args[1] += " --valid_fraction 0.25"  # --local_data_opts
    proc = run_script(["run.sh", *args], work)
    return fx, work, proc


def test_partial_labels(prepared):
    fx, work, _ = prepared
    for split in ("train", "valid", "test"):
        d = work / "data" / split
        pos = read_labels(d / "utt2label")
        known = read_labels(d / "utt2label_known")
        for key in pos:
            assert (pos[key], known[key]) == fx.expected[key], key
        assert (d / "labels.txt").read_text().split() == fx.classes
        for f in ("wav.scp", "utt2label", "utt2label_known", "utt2dur"):
            assert_sorted_c(d / f)
    # a confidence of exactly 0.5 is annotated but not positive; some clips have no positive at all
    all_pos = {**read_labels(work / "data/train/utt2label"), **read_labels(work / "data/test/utt2label")}
    assert any(not v for v in all_pos.values())
    targets, mask = read_targets(work / "data" / "train")
    assert mask is not None and 0 < np.mean([m.mean() for m in mask.values()]) < 1


def test_valid_carved_from_train_deterministically(prepared, tmp_path):
    fx, work, _ = prepared
    train, valid = set(read_kv(work / "data/train/wav.scp")), set(read_kv(work / "data/valid/wav.scp"))
    assert not train & valid and train | valid == set(fx.expected["train"])
    assert len(valid) == round(0.25 * len(fx.expected["train"]))
    assert set(read_kv(work / "data/test/wav.scp")) == set(fx.expected["test"])
    # same corpus listed in another order -> same split
    part = fx.root / "partitions" / "split01_train.csv"
    part.write_text("".join(f"{k}\n" for k in reversed(fx.expected["train"])))
    work2 = link_recipe("openmic2018", tmp_path)
    run_script(["local/data.sh", "--db_root", str(fx.root), "--valid_fraction", "0.25"], work2)
    assert set(read_kv(work2 / "data/valid/wav.scp")) == valid
    for k, path in read_kv(work / "data/valid/wav.scp").items():
        assert path.endswith(f"audio/{k[:3]}/{k}.ogg")


def test_missing_npz_or_partition_fails(tmp_path):
    fx = make_openmic(tmp_path / "om", n_train=4, n_test=2)
    work = link_recipe("openmic2018", tmp_path)
    (fx.root / "partitions" / "split01_test.csv").unlink()
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "split01_test.csv" in proc.stderr
    (fx.root / "openmic-2018.npz").unlink()
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "openmic-2018.npz" in proc.stderr
    check_run_sh_cli(work, "OpenMIC-2018 recipe", "--init ../audioset/exp/pretrain_base/model.pt", "--train-sets")



def test_partial_labels_masked_in_the_score(prepared):
    fx, work, proc = prepared
    res = json.loads((work / "exp/finetune_default/pretrained/decode_test/results.json").read_text())
    metrics = res["metrics"]
    assert metrics["task_type"] == "multi_label" and metrics["num_clips"] == len(fx.expected["test"])
    # per class, only the annotated test clips count as positives or negatives
    test_keys = fx.expected["test"]
    for row in metrics["per_class"]:
        pos = sum(row["class"] in fx.expected[k][0] for k in test_keys)
        known = sum(row["class"] in fx.expected[k][1] for k in test_keys)
        assert (row["positives"], row["positives"] + row["negatives"]) == (pos, known), row["class"]

"""Speech Commands V2 recipe: word folders and the two list files -> train/valid/test with speakers."""
from __future__ import annotations

import json

import pytest

from fixtures import (assert_sorted_c, check_run_sh_cli, link_recipe, make_speechcommands, read_kv, read_labels,
                      recipe_args, run_script, shared_init, tiny_finetune_args)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """run.sh stages 1-5 on the fixture corpus, fine-tuning the shared tiny AudioSet model."""
    init, configs = shared_init(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("sc")
    fx = make_speechcommands(tmp / "speech_commands_v0.02")
    work = link_recipe("speechcommands", tmp)
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", str(init),
                                              "--finetune_args", tiny_finetune_args(96))], work)
    return fx, work, proc


def test_splits_from_lists_and_everything_else_is_train(prepared):
    fx, work, _ = prepared
    for split in ("train", "valid", "test"):
        d = work / "data" / split
        expected = fx.expected[split]
        assert read_labels(d / "utt2label") == {u: {w} for u, (w, _) in expected.items()}
        assert read_kv(d / "utt2spk") == {u: s for u, (_, s) in expected.items()}
        assert (d / "labels.txt").read_text().split() == fx.classes
        for f in ("wav.scp", "utt2label", "utt2spk", "utt2dur"):
            assert_sorted_c(d / f)
    # speakers never cross splits (the official lists split by speaker hash)
    spk = {s: set(read_kv(work / "data" / s / "utt2spk").values()) for s in ("train", "valid", "test")}
    assert not (spk["train"] & spk["valid"]) and not (spk["train"] & spk["test"])


def test_short_clips_kept_and_noise_folder_separate(prepared):
    fx, work, _ = prepared
    durs = {float(v) for v in read_kv(work / "data/train/utt2dur").values()}
    assert durs == {1.0, 0.7}
    assert set(read_kv(work / "data/background_noise/wav.scp")) == fx.expected["noise"]
    assert not (work / "data/background_noise/utt2label").exists()
    for split in ("train", "valid", "test"):
        assert not any("_background_noise_" in p for p in read_kv(work / "data" / split / "wav.scp").values())


def test_missing_list_or_listed_file_fails(tmp_path):
    fx = make_speechcommands(tmp_path / "sc", speakers=3)
    work = link_recipe("speechcommands", tmp_path)
    (fx.root / "testing_list.txt").unlink()
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "testing_list.txt" in proc.stderr
    (fx.root / "testing_list.txt").write_text("yes/ffffffff_nohash_0.wav\n")
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "ffffffff_nohash_0.wav" in proc.stderr
    check_run_sh_cli(work, "Speech Commands V2 recipe", "--init ../audioset/exp/pretrain_base/model.pt", "--train-sets")



def test_finetuned_and_scored_on_test(prepared):
    fx, work, proc = prepared
    assert "Stage 3: skipped" in proc.stderr
    res = json.loads((work / "exp/finetune_default/pretrained/decode_test/results.json").read_text())
    assert res["metrics"]["task_type"] == "single_label"
    assert res["metrics"]["num_clips"] == len(fx.expected["test"])
    assert 0.0 <= res["metrics"]["accuracy"] <= 1.0
    # short clips were padded to the model's window: one frame count per clip, all scored
    frames = read_kv(work / "dump/fbank/train/utt2num_frames")
    assert {int(v) for v in frames.values()} == {98, 68}

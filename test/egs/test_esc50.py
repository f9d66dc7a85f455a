"""ESC-50 recipe: five-fold data directories from the official layout, failures on a broken corpus, and stage 2
computing each clip once although it is in five sets."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from fixtures import (REPO, assert_sorted_c, check_run_sh_cli, link_recipe, make_esc50, read_kv, read_labels,
                      recipe_args, run_script, shared_init, tiny_finetune_args, write_tiny_configs)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """run.sh stages 1-5 on the fixture corpus, fine-tuning the shared tiny AudioSet model on each fold."""
    init, configs = shared_init(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("esc50")
    fx = make_esc50(tmp / "ESC-50-master")
    work = link_recipe("esc50", tmp)
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", str(init),
                                              "--finetune_args", tiny_finetune_args(48, 2))], work)
    return fx, work, proc, init, configs


def test_five_folds_hold_out_each_fold_once(prepared):
    fx, work, *_ = prepared
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
    fx, work, *_ = prepared
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
    fx, work, proc, *_ = prepared
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
    check_run_sh_cli(work, "ESC-50 recipe", "train_fold{fold}", "--fold")


def test_pretraining_here_names_its_sets(tmp_path):
    """--init '' pre-trains once, but the default pre-training validation set is --valid_set, one set per fold:
    the run stops before any work, naming --pretrain_set/--pretrain_valid_set; with them, stage 1 prepares them."""
    fx = make_esc50(tmp_path / "esc", per_fold=1)
    configs = write_tiny_configs(tmp_path / "conf")
    work = link_recipe("esc50", tmp_path)
    for extra in ([], ["--stop_stage", "1"], ["--pretrain_set", "train_fold1"],
                  ["--pretrain_set", "train_fold{fold}", "--pretrain_valid_set", "test_fold1"]):
        proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", "", *extra)], work, check=False)
        assert proc.returncode != 0, extra
        assert "give --pretrain_set and --pretrain_valid_set without {fold}" in proc.stderr, extra
        assert "--pretrain_set train_fold1 --pretrain_valid_set test_fold1" in proc.stderr  # an example that works
        assert not (work / "data").exists()
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", "", "--pretrain_set", "train_fold1",
                                              "--pretrain_valid_set", "test_fold1", "--stop_stage", "1")], work)
    assert "pre-training: true" in proc.stderr
    assert sorted(p.name for p in (work / "data").iterdir() if (p / ".done").is_file()) == sorted(SETS)


# ------------------------------------------------------------------------------------------- feature reuse
SETS = [f"{kind}_fold{k}" for kind in ("train", "test") for k in range(1, 6)]


def named_files(scp) -> set[str]:
    return {spec.rsplit(":", 1)[0] for spec in read_kv(scp).values()}


def test_each_clip_featurised_once(prepared):
    """The ten sets hold every clip five times; its features are computed once and named by all five."""
    fx, work, proc, *_ = prepared
    every = set().union(*fx.expected["folds"].values())
    spec_of: dict[str, str] = {}
    for name in SETS:
        d = work / "dump" / "fbank" / name
        check = subprocess.run([str(REPO / "utils" / "validate_data_dir.sh"), str(d)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        feats = read_kv(d / "feats.scp")
        assert set(feats) == set(read_kv(d / "wav.scp"))
        for utt, spec in feats.items():
            assert spec_of.setdefault(utt, spec) == spec, (name, utt)
        # the marker ends with the checksum of the feats.scp it vouches for
        assert (d / ".done").read_text().splitlines()[-1].startswith(f"{d.relative_to(work)}/feats.scp ")
    assert set(spec_of) == every and len(set(spec_of.values())) == len(every)
    pool = work / "dump" / "fbank_pool"
    arks = sorted(pool.glob("*.ark"))
    assert sum(1 for ark in arks for _ in kaldiio.load_ark(str(ark))) == len(every)
    # the jobs' own lists are gone: only feature files that some feats.scp names are left
    assert {p.name for p in pool.iterdir()} == {a.name for a in arks} | {".lock"}
    computed = [int(line.split("computing fbank of ")[1].split()[0]) for line in proc.stderr.splitlines()
                if "computing fbank of " in line]
    assert sum(computed) == len(every)
    # a reused clip's features are those a fresh computation gives
    from maskspec.features.audio import load_audio
    from maskspec.features.fbank import FbankConfig, compute_fbank

    d = work / "dump" / "fbank" / "test_fold4"
    cfg = FbankConfig.from_yaml(d / "fbank.yaml")
    utt, wav = sorted(read_kv(d / "wav.scp").items())[0]
    assert "train_fold" in spec_of[utt]  # made for a training fold, reused here
    with kaldiio.ReadHelper(f"scp:{d / 'feats.scp'}") as reader:
        stored = dict(reader)[utt]
    np.testing.assert_array_equal(stored, compute_fbank(*load_audio(wav), cfg))


def test_redone_set_leaves_the_features_of_others_alone(prepared):
    """--overwrite redoes fold 1's sets in new files; the other sets keep naming the old ones, which stay; stage 4
    sees fold 1's new features; a set without its marker (a killed stage 2) is never a source; unused files go."""
    fx, work, _, init, configs = prepared
    dump = work / "dump" / "fbank"
    pool = work / "dump" / "fbank_pool"
    stray = pool / "raw_fbank_train_fold1.killed.1.ark"
    stray.write_bytes(b"left by a killed job")
    before = {name: (dump / name / "feats.scp").read_text() for name in SETS}
    stats_before = (dump / "train_fold1" / "stats.json").read_text()
    args = recipe_args(fx.root, configs, "--init", str(init), "--folds", "1", "--stage", "2", "--stop_stage", "2")
    proc = run_script(["run.sh", *args, "--overwrite", "true"], work)
    assert "computing fbank of 24 utterances" in proc.stderr and "computing fbank of 6 utterances" in proc.stderr
    redone = named_files(dump / "train_fold1" / "feats.scp") | named_files(dump / "test_fold1" / "feats.scp")
    assert redone.isdisjoint(set().union(*(named_files(dump / n / "feats.scp") for n in SETS if "fold1" not in n)))
    for name in SETS:
        if "fold1" not in name:
            assert (dump / name / "feats.scp").read_text() == before[name]
            assert all(os.path.isfile(f) for f in named_files(dump / name / "feats.scp"))
    assert (dump / "train_fold1" / "stats.json").read_text() == stats_before  # same clips, same features
    assert not stray.exists()
    # fine-tuning made from fold 1's former features is not taken as complete
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", str(init), "--folds", "1", "--stage", "4",
                                              "--stop_stage", "4")], work, check=False)
    assert proc.returncode != 0 and "was made with other settings" in proc.stderr

    # train_fold1 as a killed stage 2 leaves it: no marker (here with a feats.scp naming nothing real)
    old_files = named_files(dump / "train_fold1" / "feats.scp")
    (dump / "train_fold1" / ".done").unlink()
    wavs = read_kv(dump / "train_fold1" / "wav.scp")
    (dump / "train_fold1" / "feats.scp").write_text("".join(f"{u} /nonexistent.ark:1\n" for u in sorted(wavs)))
    subprocess.run(["rm", "-r", str(dump / "test_fold3")], check=True)
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", str(init), "--folds", "3", "--stage", "2",
                                              "--stop_stage", "2")], work)
    assert "train_fold3 is complete; skipping" in proc.stderr and "computing fbank" not in proc.stderr
    assert (dump / "test_fold3" / "feats.scp").read_text() == before["test_fold3"]  # from a trusted set
    assert not any(f.exists() for f in map(Path, old_files))  # named by no feats.scp now

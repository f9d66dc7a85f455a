"""AudioSet recipe: CSV parsing, audio lookup under several naming schemes, missing/corrupt audio skipped and
reported, AS-20K / AS-2M / eval / pretrain sets."""
from __future__ import annotations

import pytest

import json

from fixtures import (REPO, assert_sorted_c, check_run_sh_cli, link_recipe, make_audioset, read_kv, read_labels,
                      run_script, shared_audioset_run)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The recipe's stages 1-5 (tiny settings), run once per session and shared with the downstream tests."""
    return shared_audioset_run(tmp_path_factory)


def test_sets_and_multi_labels(prepared):
    fx, work, _ = prepared
    sets = fx.expected["sets"]
    assert read_labels(work / "data/balanced_train/utt2label") == sets["balanced_train"]
    assert read_labels(work / "data/eval/utt2label") == sets["eval"]
    assert read_labels(work / "data/train_2m/utt2label") == {**sets["balanced_train"], **sets["unbalanced_train"]}
    assert any(len(v) > 1 for v in sets["balanced_train"].values())  # the fixture has multi-label segments
    for name in ("balanced_train", "train_2m", "eval"):
        # display names made safe: "Male speech, man speaking" -> Male_speech_man_speaking, index order kept
        assert (work / "data" / name / "labels.txt").read_text().split("\n")[:-1] == fx.classes
        for f in ("wav.scp", "utt2label", "utt2dur"):
            assert_sorted_c(work / "data" / name / f)
    classes_tsv = (work / "data/local/audioset_classes.tsv").read_text().splitlines()
    assert "Male_speech_man_speaking\t/m/05zppz\tMale speech, man speaking" in classes_tsv


def test_audio_found_under_every_naming_scheme(prepared):
    fx, work, _ = prepared
    scp = read_kv(work / "data/train_2m/wav.scp")
    suffixes = {p.rsplit(".", 1)[1] for p in scp.values()}
    assert suffixes == {"wav", "flac", "mp3"}
    for utt, path in scp.items():
        assert utt[1:] in path  # Y<YTID> -> a file named after that YTID


def test_missing_and_unreadable_audio_reported_not_fatal(prepared):
    fx, work, proc = prepared
    local = work / "data" / "local"
    for name, csvs in (("balanced_train", ["balanced_train"]), ("eval", ["eval"]),
                       ("train_2m", ["balanced_train", "unbalanced_train"])):
        missing = {line.split()[0] for line in (local / f"audioset_missing_{name}.txt").read_text().splitlines()}
        assert missing == set().union(*(fx.expected["missing"][c] for c in csvs))
        bad = {line.split()[0] for line in (local / f"audioset_unreadable_{name}.txt").read_text().splitlines()}
        assert bad == set().union(*(fx.expected["unreadable"][c] for c in csvs))
    # the count is in the log, with the list file named
    assert "balanced_train: 4 of 6 segments kept; 1 without audio" in proc.stderr
    assert "audioset_missing_balanced_train.txt" in proc.stderr


def test_pretrain_set_is_all_training_audio_without_labels(prepared):
    fx, work, _ = prepared
    pre = work / "data" / "pretrain"
    assert not (pre / "utt2label").exists()
    train = set(fx.expected["sets"]["balanced_train"]) | set(fx.expected["sets"]["unbalanced_train"])
    assert set(read_kv(pre / "wav.scp")) == train | fx.expected["extra"]
    assert not set(read_kv(pre / "wav.scp")) & set(fx.expected["sets"]["eval"])  # eval audio never pre-trained on
    assert set(read_kv(pre / "utt2dur")) == set(read_kv(pre / "wav.scp"))


def test_balanced_only_needs_no_unbalanced_csv(tmp_path):
    fx = make_audioset(tmp_path / "as")
    (fx.root / "unbalanced_train_segments.csv").unlink()
    work = link_recipe("audioset", tmp_path)
    run_script(["local/data.sh", "--db_root", str(fx.root), "--sets", "balanced_train eval"], work)
    assert (work / "data/balanced_train/wav.scp").exists() and not (work / "data/train_2m").exists()
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "unbalanced_train_segments.csv" in proc.stderr


def test_custom_audio_dirs_and_patterns(tmp_path):
    fx = make_audioset(tmp_path / "as")
    work = link_recipe("audioset", tmp_path)
    # only Y<YTID> names, only the eval and extra folders (a comma-separated list): the rest is "missing"
    dirs = f"{fx.root / 'audio' / 'eval'},{fx.root / 'audio' / 'extra'}"
    run_script(["local/data.sh", "--db_root", str(fx.root), "--sets", "eval", "--audio_dirs", dirs,
                "--name_patterns", "Y{ytid}"], work)
    found = read_kv(work / "data/eval/wav.scp")
    assert found and all(p.rsplit("/", 1)[1].startswith("Y") for p in found.values())
    assert len(found) < len(fx.expected["sets"]["eval"])


def test_bad_label_and_missing_class_file_fail_clearly(tmp_path):
    fx = make_audioset(tmp_path / "as")
    work = link_recipe("audioset", tmp_path)
    csv_path = fx.root / "eval_segments.csv"
    lines = csv_path.read_text().splitlines()
    lines[4] = lines[4].replace("/m/", "/m/zz", 1)
    csv_path.write_text("\n".join(lines) + "\n")
    proc = run_script(["local/data.sh", "--db_root", str(fx.root), "--sets", "eval"], work, check=False)
    assert proc.returncode != 0 and "eval_segments.csv:5" in proc.stderr and "/m/zz" in proc.stderr
    (fx.root / "class_labels_indices.csv").unlink()
    proc = run_script(["local/data.sh", "--db_root", str(fx.root)], work, check=False)
    assert proc.returncode != 0 and "class_labels_indices.csv" in proc.stderr


def test_stages_2_to_5_pretrain_finetune_and_score(prepared):
    fx, work, proc = prepared
    # stage 2: features of the sets this run uses (AS-2M for pre-training and fine-tuning, eval)
    for name in ("train_2m", "eval"):
        assert set(read_kv(work / "dump/fbank" / name / "feats.scp")) == set(read_kv(work / "data" / name / "wav.scp"))
    assert (work / "dump/fbank/train_2m/stats.json").is_file()
    # stage 3: the checkpoint the downstream recipes fine-tune from
    assert (work / "exp/pretrain_tiny/model.pt").is_file()
    assert "Stage 3: pre-training" in proc.stderr
    # stages 4-5: multi-label scores on eval
    results = json.loads((work / "exp/finetune_default/pretrained/decode_eval/results.json").read_text())
    metrics = results["metrics"]
    assert metrics["task_type"] == "multi_label" and metrics["num_clips"] == len(fx.expected["sets"]["eval"])
    assert 0.0 <= metrics["mAP"] <= 1.0
    assert "eval mAP" in (work / "exp/RESULTS.md").read_text()


def test_run_sh_help_and_unknown_option(tmp_path):
    work = link_recipe("audioset", tmp_path)
    check_run_sh_cli(work, "AudioSet recipe", "--pretrain_set train_2m", "--no_such_option")


def test_paper_configs_are_accepted_by_the_training_clis():
    """The configs not exercised by the tiny runs parse (an unknown key is an error) and hold the paper's values."""
    from maskspec.bin import finetune, pretrain

    conf = REPO / "egs" / "audioset" / "conf"
    for name, model in (("pretrain_base.yaml", "base"), ("pretrain_small.yaml", "small")):
        args = pretrain.build_parser().parse_args(["--config", str(conf / name), "--train_data", "d",
                                                   "--exp_dir", "e"])
        assert args.model == model and args.mask_ratio == 0.75 and args.norm_pix_loss is True
        assert args.effective_batch_size == 512 and args.base_lr == 1e-3 and list(args.betas) == [0.9, 0.95]
        assert args.num_frames == 992 and args.warmup_epochs == 40
    for name, balanced in (("finetune.yaml", True), ("finetune_as20k.yaml", False)):
        args = finetune.build_parser().parse_args(["--config", str(conf / name), "--train_data", "d",
                                                   "--exp_dir", "e", "--init", "none"])
        assert args.balanced_sampling is balanced and args.patch_drop == 200 and args.layer_decay == 0.75
        assert args.label_smoothing == 0.1 and args.epochs == 80 and args.gain_db == 7.0  # random gain +-7 dB
        finetune.check_args(args)


def test_class_names_safe_and_unique(tmp_path):
    """Display names become label-list-safe names; two that differ only in punctuation are told apart by mid."""
    from maskspec.data.corpora.audioset import read_classes

    path = tmp_path / "class_labels_indices.csv"
    path.write_text('index,mid,display_name\n0,/m/a1,"Dog, bark"\n1,/m/b2,"Dog (bark)"\n2,/m/c3,"Dog bark"\n')
    names, mid2name, _ = read_classes(str(path))
    assert names == ["Dog_bark", "Dog_(bark)", "Dog_bark_m_c3"]
    assert mid2name["/m/c3"] == "Dog_bark_m_c3"
    assert all("," not in n and " " not in n for n in names)


def test_bootstrap_objective_through_stage_3(prepared, tmp_path_factory):
    """The bootstrap objective (issue 19) through the recipe's stage 3 on the shared run's features, and the
    shipped AS-2M config (EAT's settings) accepted by the pre-training CLI."""
    from maskspec.bin import pretrain
    from maskspec.models.model_file import load_model_file

    from fixtures import TINY_PRETRAIN, recipe_args, shared_init

    fx, work, _ = prepared
    _, configs = shared_init(tmp_path_factory)
    boot = configs["pretrain"].parent / "pretrain_tiny_bootstrap.yaml"
    boot.write_text(TINY_PRETRAIN.replace("mask_ratio: 0.75", "mask_ratio: 0.8") + "objective: bootstrap\n"
                    "decoder_type: cnn\ndecoder_groups: 4\nnum_masks: 2\nmask_type: inverse_block\n"
                    "ema_anneal_steps: 10\n")
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--stage", "3", "--stop_stage", "3",
                                              "--pretrain_config", str(boot), "--pretrain_tag", "tiny_bootstrap")],
                      work)
    assert "Stage 3: pre-training" in proc.stderr
    mf = load_model_file(work / "exp/pretrain_tiny_bootstrap/model.pt")
    assert mf["model_config"]["objective"] == "bootstrap" and mf["model_config"]["num_masks"] == 2
    assert not any(k.startswith("teacher.") for k in mf["state_dict"])
    history = json.loads((work / "exp/pretrain_tiny_bootstrap/history.json").read_text())
    assert history[-1]["train_flops"] > 0 and "loss_ratio" in history[-1]

    args = pretrain.build_parser().parse_args(["--config", str(REPO / "egs/audioset/conf/pretrain_base_bootstrap.yaml"),
                                               "--train_data", "d", "--exp_dir", "e"])
    assert (args.objective, args.decoder_type, args.num_masks, args.mask_type, args.mask_ratio) == (
        "bootstrap", "cnn", 16, "inverse_block", 0.8)
    assert (args.ema_decay, args.ema_end_decay, args.ema_anneal_steps, args.target_top_k) == (
        0.9998, 0.99999, 100000, 12)
    assert args.utterance_loss_weight == args.batch_size * args.num_masks == 192  # EAT's sum over a GPU's views
    assert (args.lr, args.effective_batch_size, args.epochs, args.clip_grad) == (5e-4, 48, 10, 4.0)

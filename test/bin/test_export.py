"""maskspec-export: model files from real pre-training and fine-tuning checkpoints, overrides, clear errors."""
import os
import shutil

import numpy as np
import pytest
import torch

from bin_data import CLASSES, finish_data_dir
from maskspec.bin import export, finetune, pretrain
from maskspec.data.feats import FeatWriter
from maskspec.features.fbank import FbankConfig
from maskspec.models.model_file import ModelFileError, build_model, load_model_file
from maskspec.inference.embed import Embedder
from maskspec.train.checkpoint import list_checkpoints

MEL = 32
TINY = ["--embed_dim", "32", "--depth", "1", "--num_heads", "2", "--decoder_embed_dim", "16", "--decoder_depth",
        "1", "--decoder_num_heads", "2", "--num_frames", "64"]
RUN = ["--epochs", "1", "--batch_size", "4", "--num_workers", "0", "--device", "cpu", "--tensorboard", "false",
       "--log_interval", "1"]


def make_data(d, n=8):
    os.makedirs(d)
    rng = np.random.default_rng(0)
    with FeatWriter(os.path.join(d, "feats"), "ark") as w:
        for i in range(n):
            w.write(f"utt{i}", rng.standard_normal((int(rng.integers(50, 90)), MEL)).astype(np.float32))
    return finish_data_dir(d, {f"utt{i}": CLASSES[i % 3] for i in range(n)}, MEL)


@pytest.fixture(scope="module")
def exps(tmp_path_factory):
    """Stage 3 and stage 4 experiment folders made by the real training CLIs (one step each)."""
    root = tmp_path_factory.mktemp("exp")
    data = make_data(str(root / "train"))
    pre, fine = root / "pretrain", root / "finetune"
    assert pretrain.main(["--train_data", data, "--exp_dir", str(pre), "--model", "tiny", *TINY, *RUN,
                          "--num_images", "0"]) == 0
    pre_ckpt = list_checkpoints(pre / "checkpoints")[-1]
    assert finetune.main(["--train_data", data, "--exp_dir", str(fine), "--init", pre_ckpt, "--num_frames", "48",
                          *RUN]) == 0
    return dict(data=data, pre=pre_ckpt, fine=list_checkpoints(fine / "checkpoints")[-1], root=root)


def test_export_pretraining_checkpoint(exps, tmp_path, capsys):
    out = tmp_path / "pre.pt"
    assert export.main(["--checkpoint", exps["pre"], "--output", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    mf = load_model_file(out)
    ckpt = torch.load(exps["pre"], weights_only=True)
    assert mf["kind"] == "pretrain" and mf["classes"] is None and mf["task_type"] is None
    assert mf["num_frames"] == 64 and mf["normalize"] == "per_bin" and mf["version"] >= 1
    assert mf["model_config"] == ckpt["model_config"] and mf["fbank_config"] == FbankConfig(num_mel_bins=MEL).to_dict()
    assert mf["stats"]["mean"] == ckpt["stats"]["mean"]
    assert set(mf["state_dict"]) == set(ckpt["model"]) and any(k.startswith("decoder") for k in mf["state_dict"])
    assert all(torch.equal(mf["state_dict"][k], v) for k, v in ckpt["model"].items())
    assert mf["extra"]["step"] == ckpt["step"]
    # the encoder of the exported file is the encoder of the pre-training model
    net = build_model(mf)
    x = torch.randn(1, 64, MEL)
    assert torch.allclose(Embedder(mf).scene(x), net.encoder(x)[0][:, 1:].mean(1), atol=1e-5)


def test_export_finetuning_checkpoint_with_overrides(exps, tmp_path):
    out = tmp_path / "clf.pt"
    assert export.main(["--checkpoint", exps["fine"], "--output", str(out)]) == 0
    mf = load_model_file(out)
    assert mf["kind"] == "classifier" and mf["classes"] == CLASSES and mf["task_type"] == "single_label"
    assert mf["num_frames"] == 48 and "head.weight" in mf["state_dict"]
    # overrides: other class names, global normalisation, other stats, another input length
    labels = tmp_path / "labels.txt"
    labels.write_text("x\ny\nz\n")
    stats = tmp_path / "stats.json"
    shutil.copy(os.path.join(exps["data"], "stats.json"), stats)
    out2 = tmp_path / "clf2.pt"
    assert export.main(["--checkpoint", exps["fine"], "--output", str(out2), "--classes", str(labels),
                        "--normalize", "global", "--stats", str(stats), "--num_frames", "96",
                        "--task_type", "multi_label"]) == 0
    mf2 = load_model_file(out2)
    assert mf2["classes"] == ["x", "y", "z"] and mf2["normalize"] == "global" and mf2["num_frames"] == 96
    assert mf2["task_type"] == "multi_label"


def _rc_err(capsys, argv):
    rc = export.main(argv)
    return rc, capsys.readouterr().err


def test_truncated_and_foreign_files(exps, tmp_path, capsys):
    bad = tmp_path / "truncated.pt"
    data = open(exps["pre"], "rb").read()
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.pt"
    rc, err = _rc_err(capsys, ["--checkpoint", str(bad), "--output", str(out)])
    assert rc == 1 and str(bad) in err and "truncated" in err and not out.exists()
    rc, err = _rc_err(capsys, ["--checkpoint", str(tmp_path / "missing.pt"), "--output", str(out)])
    assert rc == 1 and "no such checkpoint" in err
    good = tmp_path / "model.pt"
    assert export.main(["--checkpoint", exps["pre"], "--output", str(good)]) == 0
    # a model file is written again (here as it is); what it records is kept and extra names it
    assert export.main(["--checkpoint", str(good), "--output", str(out)]) == 0
    again, first = load_model_file(out), load_model_file(good)
    assert again["extra"]["exported_from"] == str(good) and again["extra"]["step"] == first["extra"]["step"]
    assert all(torch.equal(again["state_dict"][k], v) for k, v in first["state_dict"].items())
    assert {k: again[k] for k in ("kind", "model_config", "fbank_config", "stats", "normalize", "num_frames")} == \
        {k: first[k] for k in ("kind", "model_config", "fbank_config", "stats", "normalize", "num_frames")}
    out.unlink()
    # and a truncated model file is refused by the reader the tools share
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="cut.pt.*truncated"):
        load_model_file(cut)


def _edited_checkpoint(src, dst, **changes):
    ckpt = torch.load(src, weights_only=True)
    ckpt.update(changes)
    torch.save(ckpt, dst)
    return ckpt


@pytest.mark.parametrize("change,extra,msg", [
    (lambda c: {"model_config": dict(c["model_config"], depth=2)}, [], "do not match"),
    (lambda c: {"fbank_config": None}, [], "give --fbank_config"),
    (lambda c: {"kind": "classifier"}, [], "weights are a pretrain"),
    (lambda c: {"model": {k: v for k, v in c["model"].items() if not k.startswith("decoder")}}, [],
     "neither a decoder"),
    (lambda c: {}, ["--classes", "LABELS"], "fine-tuned checkpoints only"),
])
def test_incompatible_checkpoints(exps, tmp_path, capsys, change, extra, msg):
    ckpt = torch.load(exps["pre"], weights_only=True)
    path = tmp_path / "edited.pt"
    _edited_checkpoint(exps["pre"], path, **change(ckpt))
    (tmp_path / "labels.txt").write_text("a\n")
    extra = [str(tmp_path / "labels.txt") if a == "LABELS" else a for a in extra]
    out = tmp_path / "out.pt"
    rc, err = _rc_err(capsys, ["--checkpoint", str(path), "--output", str(out), *extra])
    assert rc == 1 and msg in err and str(path) in err and not out.exists()


def test_missing_fbank_supplied_and_bad_overrides(exps, tmp_path, capsys):
    path = tmp_path / "nofbank.pt"
    _edited_checkpoint(exps["pre"], path, fbank_config=None)
    out = tmp_path / "out.pt"
    assert export.main(["--checkpoint", str(path), "--output", str(out), "--fbank_config",
                        os.path.join(exps["data"], "fbank.yaml")]) == 0
    assert load_model_file(out)["fbank_config"]["num_mel_bins"] == MEL
    wrong = tmp_path / "fbank64.yaml"
    FbankConfig(num_mel_bins=64).to_yaml(wrong)
    rc, err = _rc_err(capsys, ["--checkpoint", str(path), "--output", str(tmp_path / "o2.pt"), "--fbank_config",
                               str(wrong)])
    assert rc == 1 and "64 features per frame" in err and str(wrong) in err
    two = tmp_path / "two.txt"
    two.write_text("a\nb\n")
    rc, err = _rc_err(capsys, ["--checkpoint", exps["fine"], "--output", str(tmp_path / "o3.pt"), "--classes",
                               str(two)])
    assert rc == 1 and "2 classes but the model has 3 outputs" in err


def test_an_imported_model_file_again_with_other_metadata(tmp_path, capsys):
    """An imported tagger (its source front end recorded) exported again with other class names and stats: the
    front end and the import's extra are kept; a CTC model file is refused, saying why."""
    import sys as _sys

    from maskspec.bin import import_checkpoint

    _sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
    from reference_vits import ViT, randomize_

    src = tmp_path / "finetuned.pth"
    torch.save(dict(model=randomize_(ViT((1024, 128), 16, 32, 1, 4, 3, cat_then_add=False), 3).state_dict()), src)
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    imported = tmp_path / "imported.pt"
    assert import_checkpoint.main(["--checkpoint", str(src), "--output", str(imported), "--num_heads", "4",
                                   "--class_labels", str(tmp_path / "labels.txt")]) == 0
    (tmp_path / "names.txt").write_text("dog\nrain\nsaw\n")
    stats = dict(mean=[-5.0] * 128, std=[4.0] * 128, global_mean=-5.0, global_std=4.0)
    (tmp_path / "stats.json").write_text(__import__("json").dumps(stats))
    out = tmp_path / "again.pt"
    assert export.main(["--checkpoint", str(imported), "--output", str(out), "--classes", str(tmp_path / "names.txt"),
                        "--stats", str(tmp_path / "stats.json")]) == 0
    mf, first = load_model_file(out), load_model_file(imported)
    assert mf["classes"] == ["dog", "rain", "saw"] and mf["stats"]["mean"][0] == -5.0
    assert mf["front_end"] == first["front_end"] and mf["front_end"]["pad"] == "fbank"
    assert mf["extra"]["source_format"] == "audiomae" and mf["extra"]["exported_from"] == str(imported)
    ctc = dict(first, kind="ctc", task_type="ctc", extra=dict(tokenizer={}))
    torch.save(ctc, tmp_path / "ctc.pt")
    rc, err = _rc_err(capsys, ["--checkpoint", str(tmp_path / "ctc.pt"), "--output", str(tmp_path / "x.pt")])
    assert rc == 1 and "ctc model file" in err and "tokenizer" in err

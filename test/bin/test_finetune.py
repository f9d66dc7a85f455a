"""finetune CLI end to end on generated features with a tiny model: from a pre-training checkpoint, from
scratch, linear probe, multi-label with partial labels + balanced sampling + averaging; then score and infer."""
import json
import os

import numpy as np
import pytest
import torch

from bin_data import CLASSES, finish_data_dir
from maskspec.bin import finetune, score
from maskspec.data.feats import FeatWriter
from maskspec.features.fbank import FbankConfig
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import build_model, load_model_file
from maskspec.train.checkpoint import save_checkpoint

MEL = 32
TINY = dict(embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
            num_mel_bins=MEL, num_frames=64)


def make_data(d, n, seed, multi=False):
    """n clips of 40-120 frames; class c lights up mel band c (so the task is learnable)."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels, known = {}, {}
    with FeatWriter(os.path.join(d, "feats"), "ark") as w:
        for i in range(n):
            utt = f"utt{i:03d}"
            if multi:
                pos = [c for c in CLASSES if rng.random() < 0.4]
                kn = sorted(set(pos) | {c for c in CLASSES if rng.random() < 0.6})
                labels[utt], known[utt] = ",".join(pos), ",".join(kn)
            else:
                pos = [CLASSES[i % 3]]
                labels[utt] = pos[0]
            x = rng.standard_normal((int(rng.integers(40, 120)), MEL)).astype(np.float32)
            for c in pos:
                k = CLASSES.index(c)
                x[:, k * 8:(k + 1) * 8] += 3.0
            w.write(utt, x)
    return finish_data_dir(d, labels, MEL, known if multi else None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return dict(train=make_data(str(root / "train"), 24, 0), valid=make_data(str(root / "valid"), 9, 1),
                mtrain=make_data(str(root / "mtrain"), 24, 2, multi=True),
                mvalid=make_data(str(root / "mvalid"), 9, 3, multi=True))


@pytest.fixture(scope="module")
def pretrain_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = model_config("tiny", **TINY)
    model = MaskSpecModel(cfg)
    path = str(tmp_path_factory.mktemp("pre") / "ckpt_e001_s00000010.pt")
    save_checkpoint(dict(version=1, kind="pretrain", epoch=1, step=10, batches_done=0, model=model.state_dict(),
                         model_config=cfg.to_dict(), fbank_config=FbankConfig(num_mel_bins=MEL).to_dict(),
                         args={"normalize": "per_bin"}), path)
    return path, model


COMMON = ["--epochs", "2", "--batch_size", "4", "--num_workers", "0", "--device", "cpu", "--tensorboard", "false",
          "--warmup_epochs", "1", "--lr", "1e-3", "--log_interval", "2", "--num_frames", "48"]


def test_finetune_from_pretrained_then_score(data, pretrain_ckpt, tmp_path):
    ckpt, pre = pretrain_ckpt
    exp = tmp_path / "exp"
    options = ["--train_data", data["train"], "--valid_data", data["valid"], "--exp_dir", str(exp),
               "--init", ckpt, "--mixup", "0.5", "--freqm", "4", "--timem", "8", "--time_shift", "4",
               "--gain_db", "7", "--filter_db", "5", "--noise_prob", "0.5",
               "--patch_drop", "2", "--label_smoothing", "0.1", *COMMON]
    rc = finetune.main(options)
    assert rc == 0 and "gain_db: 7.0" in (exp / "config.yaml").read_text()
    log = (exp / "train.log").read_text()
    assert "loaded" in log and "single_label, 3 classes" in log and "validation" in log
    mf = load_model_file(exp / "model.pt")
    assert mf["classes"] == CLASSES and mf["task_type"] == "single_label" and mf["num_frames"] == 48
    assert mf["model_config"]["drop_path"] == 0.1 and mf["model_config"]["embed_dim"] == 32
    assert mf["extra"]["selected"] == "best" and mf["stats"]["mean"] and mf["fbank_config"]["num_mel_bins"] == MEL
    model = build_model(mf)
    # the encoder started from the pre-trained weights and moved away from them by training
    assert not torch.equal(model.encoder.blocks[0].mlp.fc1.weight, pre.encoder.blocks[0].mlp.fc1.weight)
    assert torch.allclose(model.encoder.blocks[0].mlp.fc1.weight, pre.encoder.blocks[0].mlp.fc1.weight, atol=0.05)
    best = torch.load(exp / "checkpoints" / "best.pt", weights_only=True)
    assert all(torch.equal(best["model"][k], v) for k, v in mf["state_dict"].items())
    out = tmp_path / "decode"
    assert score.main(["--model", str(exp / "model.pt"), "--data", data["valid"], "--output_dir", str(out),
                       "--device", "cpu", "--num_workers", "0"]) == 0
    res = json.loads((out / "results.json").read_text())["metrics"]
    assert res["accuracy"] == pytest.approx(best["valid"]["accuracy"])  # validation scored like score.py
    # a rerun (same settings: other ones stop, see test/train/test_resume_settings.py) finds the finished
    # checkpoints and rewrites model.pt without training again
    assert finetune.main(options) == 0
    assert "resumed from" in (exp / "train.log").read_text()


def test_from_scratch_and_linear_probe(data, pretrain_ckpt, tmp_path):
    ckpt, pre = pretrain_ckpt
    exp = tmp_path / "scratch"
    rc = finetune.main(["--train_data", data["train"], "--valid_data", data["valid"], "--exp_dir", str(exp),
                        "--init", "none", "--model", "tiny", "--model_conf", "{embed_dim: 32, depth: 1, num_heads: 2}",
                        *COMMON])
    assert rc == 0 and "--init none" in (exp / "train.log").read_text()
    assert load_model_file(exp / "model.pt")["model_config"]["depth"] == 1
    probe = tmp_path / "probe"
    rc = finetune.main(["--train_data", data["train"], "--exp_dir", str(probe), "--init", ckpt,
                        "--freeze_encoder", "true", *COMMON])
    assert rc == 0
    mf = load_model_file(probe / "model.pt")
    assert mf["extra"]["selected"] == "last" and mf["extra"]["freeze_encoder"] is True
    model = build_model(mf)
    for k, v in pre.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[k], v), k  # frozen: untouched
    assert not torch.all(model.head.weight.abs() < 1e-3)  # the head trained


def test_multi_label_partial_balanced_average(data, pretrain_ckpt, tmp_path):
    ckpt, _ = pretrain_ckpt
    exp = tmp_path / "multi"
    rc = finetune.main(["--train_data", data["mtrain"], "--valid_data", data["mvalid"], "--exp_dir", str(exp),
                        "--init", ckpt, "--balanced_sampling", "true", "--samples_per_epoch", "16",
                        "--average_last", "2", "--keep_checkpoints", "0", "--mixup", "0.3", *COMMON])
    assert rc == 0
    mf = load_model_file(exp / "model.pt")
    assert mf["task_type"] == "multi_label" and mf["extra"]["selected"] == "average"
    assert mf["extra"]["epochs"] == [1, 2] and "mAP" in mf["extra"]["valid"]
    states = [torch.load(exp / "checkpoints" / name, weights_only=True)["model"]
              for name in sorted(os.listdir(exp / "checkpoints")) if name.startswith("ckpt_")]
    k = "head.weight"
    assert torch.allclose(mf["state_dict"][k], (states[0][k] + states[1][k]) / 2, atol=1e-6)
    assert "class-balanced sampling: 16 clips per epoch" in (exp / "train.log").read_text()


@pytest.mark.parametrize("extra, msg", [
    (["--init", "/nonexistent/ckpt.pt"], "no such file"),
    (["--init", "none", "--model", "tiny", "--task_type", "single_label", "--train_data", "MTRAIN"], "single_label"),
    (["--init", "PRE", "--model_conf", "{embed_dim: 64}"], "shape mismatch"),
    (["--init", "none", "--model", "tiny", "--average_last", "5", "--keep_checkpoints", "3"], "average_last"),
    (["--init", "PRE", "--patch_drop", "6"], "--patch_drop 6 must be below the 6 patches"),
])
def test_errors(data, pretrain_ckpt, tmp_path, capsys, extra, msg):
    extra = [{"MTRAIN": data["mtrain"], "PRE": pretrain_ckpt[0]}.get(a, a) for a in extra]
    argv = ["--train_data", data["train"], "--exp_dir", str(tmp_path / "e"), *COMMON, *extra]
    assert finetune.main(argv) == 1
    assert msg in capsys.readouterr().err


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE_CONFS = sorted(f for f in os.listdir(os.path.join(REPO, "egs", "TEMPLATE", "conf"))
                        if f.startswith("finetune_"))


@pytest.mark.parametrize("name", TEMPLATE_CONFS)
def test_template_configs_are_valid(name):
    args = finetune.build_parser().parse_args(["--config", os.path.join(REPO, "egs", "TEMPLATE", "conf", name),
                                               "--train_data", "d", "--exp_dir", "e", "--init", "none"])
    finetune.check_args(args)
    assert args.drop_path == 0.1 and args.num_frames >= 100


def test_tiny_config_runs(data, tmp_path):
    conf = os.path.join(REPO, "egs", "TEMPLATE", "conf", "finetune_tiny.yaml")
    rc = finetune.main(["--config", conf, "--train_data", data["train"], "--valid_data", data["valid"],
                        "--exp_dir", str(tmp_path / "tiny"), "--init", "none", "--epochs", "1", "--device", "cpu",
                        "--tensorboard", "false"])
    assert rc == 0
    mf = load_model_file(tmp_path / "tiny" / "model.pt")
    assert mf["num_frames"] == 128 and mf["model_config"]["embed_dim"] == 64

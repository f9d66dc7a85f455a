"""Pre-training task and CLI: fixed validation masks, mean-prediction baseline, images, a tiny real run, DDP."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from maskspec.data.dataset import FeatDataset, collate
from maskspec.data.feats import FeatWriter
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel, patch_targets
from maskspec.tasks.pretrain import PretrainTask
from maskspec.train.logs import NullWriter

from pretrain_cli import run_cli

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "egs" / "TEMPLATE" / "conf" / "pretrain_tiny.yaml"
BASE_YAML = REPO / "egs" / "audioset" / "conf" / "pretrain_base.yaml"
MEL, FRAMES = 32, 80
# a 2-layer 64-wide model on 8x8 patches of 32 mel x 64 frames
SMALL = ["--patch_size", "8", "--num_frames", "64"]


def write_data_dir(path: Path, num_utts: int, seed: int) -> None:
    """Stationary spectra: a comb with 4- or 8-bin spacing per clip, random level and gain, some noise. A
    masked patch is predictable from the visible patches of its clip, so a model can beat the mean."""
    rng = np.random.default_rng(seed)
    f = np.arange(MEL)[None, :]
    mats = []
    with FeatWriter(str(path / "feats"), "ark") as w:
        for i in range(num_utts):
            spacing = rng.choice([4, 8])
            x = rng.uniform(1, 3) * np.cos(2 * np.pi * f / spacing) + rng.uniform(-6, -4)
            x = x + 0.2 * rng.standard_normal((FRAMES, MEL))
            w.write(f"clip{i:03d}", x.astype(np.float32))
            mats.append(x)
    a = np.concatenate(mats)
    stats = dict(num_utts=num_utts, num_frames=len(a), mean=a.mean(0).tolist(), std=a.std(0).tolist(),
                 global_mean=float(a.mean()), global_std=float(a.std()))
    (path / "stats.json").write_text(json.dumps(stats))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain_data")
    for name, n, seed in (("train", 64, 0), ("valid", 16, 1)):
        (root / name).mkdir()
        write_data_dir(root / name, n, seed)
    (root / "train" / "fbank.yaml").write_text("sample_rate: 16000\nnum_mel_bins: 32\nframe_shift: 10.0\n")
    return root


def tiny_model():
    torch.manual_seed(0)
    return MaskSpecModel(model_config("tiny", embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=32,
                                      decoder_depth=1, decoder_num_heads=2, patch_size=8, num_mel_bins=MEL,
                                      num_frames=64))


def valid_loader(corpus):
    stats = json.loads((corpus / "train" / "stats.json").read_text())
    ds = FeatDataset(corpus / "valid", 64, stats, "per_bin", crop="start")
    # own generator: a DataLoader without one draws its worker seed from torch's global RNG
    return ds, torch.utils.data.DataLoader(ds, batch_size=5, collate_fn=collate, generator=torch.Generator())


def test_validation_masks_are_fixed_and_leave_global_rng_alone(corpus):
    model = tiny_model().eval()
    ds, loader = valid_loader(corpus)
    task = PretrainTask(ds)
    rng_before = torch.get_rng_state()
    with torch.no_grad():
        a, b = task.validate(model, loader), task.validate(model, loader)
    assert a == b
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert set(a) == {"loss", "mean_pred_loss", "loss_ratio"}
    assert a["loss_ratio"] == pytest.approx(a["loss"] / a["mean_pred_loss"])


def test_mean_prediction_baseline_is_the_masked_target_energy(corpus):
    model = tiny_model().eval()
    ds, loader = valid_loader(corpus)
    with torch.no_grad():
        result = PretrainTask(ds).validate(model, loader)
    # with norm_pix targets every patch has mean 0 and (unbiased) variance ~1: mean square = (n - 1) / n
    n = model.cfg.patch_size ** 2
    assert result["mean_pred_loss"] == pytest.approx((n - 1) / n, rel=1e-4)
    x = torch.stack([ds[i]["feats"] for i in range(len(ds))])
    target, _, _ = patch_targets(x, model.cfg.patch_size, model.cfg.norm_pix_loss)
    assert float((target ** 2).mean()) == pytest.approx(result["mean_pred_loss"], rel=1e-3)


def test_epoch_images(corpus, tmp_path):
    model = tiny_model().eval()
    ds, _ = valid_loader(corpus)
    with torch.no_grad():
        path = PretrainTask(ds, num_images=3).on_epoch_end(model, 7, str(tmp_path), NullWriter())
    assert path == str(tmp_path / "images" / "epoch_007.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path / "images") == ["epoch_007.png"]  # no temporary left behind


def test_tiny_pretraining_run_beats_mean_prediction(corpus, tmp_path):
    exp = tmp_path / "exp"
    r = run_cli("--config", TINY_YAML, "--train_data", corpus / "train", "--valid_data", corpus / "valid",
                "--exp_dir", exp, *SMALL, "--epochs", "4", "--warmup_epochs", "0.5", "--save_interval_steps", "3",
                "--num_images", "2", "--log_interval", "4")
    assert r.returncode == 0, r.stderr
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["depth"] == 2 and config["patch_size"] == 8 and config["lr"] == 2e-3
    assert config["stats"] == str(corpus / "train" / "stats.json") and config["amp"] == "fp32"
    ckpts = sorted(os.listdir(exp / "checkpoints"))
    assert "best.pt" in ckpts and len([c for c in ckpts if c.startswith("ckpt_")]) == 2  # keep_checkpoints 2
    assert sorted(os.listdir(exp / "images")) == [f"epoch_{e:03d}.png" for e in (1, 2, 3, 4)]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(exp / "tensorboard"))
    log = (exp / "train.log").read_text()
    assert "samples/s" in log and "ETA" in log and "trainable)" in log

    from maskspec.models.model_file import build_model, load_model_file

    mf = load_model_file(exp / "model.pt")
    assert mf["kind"] == "pretrain" and mf["num_frames"] == 64 and mf["normalize"] == "per_bin"
    assert mf["fbank_config"]["num_mel_bins"] == 32 and len(mf["stats"]["mean"]) == MEL
    valid = mf["extra"]["valid"]
    assert valid["loss"] < 0.5 * valid["mean_pred_loss"], valid
    build_model(mf)  # the weights match the stored config

    # config.yaml is a complete --config: a rerun resumes after the last step and only rewrites model.pt
    r = run_cli("--config", exp / "config.yaml")
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr and "step 33/" not in r.stderr


def test_cli_errors(corpus, tmp_path, capsys):
    from maskspec.bin.pretrain import main

    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(corpus / "train" / "feats.scp", empty / "feats.scp")
    assert main(["--train_data", str(empty), "--exp_dir", str(tmp_path / "e")]) == 1
    assert f"{empty}/stats.json: no such stats file" in capsys.readouterr().err

    assert main(["--train_data", str(corpus / "train"), "--exp_dir", str(tmp_path / "e"), "--model", "huge"]) == 1
    assert "unknown model name 'huge'" in capsys.readouterr().err

    bad = tmp_path / "bad.yaml"
    bad.write_text("mask_raito: 0.5\n")
    with pytest.raises(SystemExit) as e:
        main(["--config", str(bad), "--train_data", "x", "--exp_dir", "y"])
    assert e.value.code == 2 and "unknown key 'mask_raito'" in capsys.readouterr().err


def test_shipped_configs_parse():
    from maskspec.bin.pretrain import build_parser

    base = build_parser().parse_args(["--config", str(BASE_YAML), "--train_data", "d", "--exp_dir", "e"])
    assert (base.model, base.mask_ratio, base.num_frames, base.effective_batch_size) == ("base", 0.75, 992, 512)
    assert base.betas == [0.9, 0.95] and base.norm_pix_loss is True and base.clip_grad is None
    for conf in (BASE_YAML.parent / "pretrain_base_efficient.yaml",
                 REPO / "egs" / "mini" / "conf" / "pretrain_mini_efficient.yaml"):
        efficient = build_parser().parse_args(["--config", str(conf), "--train_data", "d", "--exp_dir", "e"])
        assert (efficient.num_masks, efficient.mask_type, efficient.mask_ratio) == (1, "random", 0.75), conf
    tiny = build_parser().parse_args(["--config", str(TINY_YAML), "--train_data", "d", "--exp_dir", "e"])
    assert tiny.model_conf["depth"] == 2 and tiny.amp == "fp32"


def test_ddp_two_processes_on_cpu(corpus, tmp_path):
    """torchrun with 2 gloo processes: the only DDP check CI can run."""
    exp = tmp_path / "ddp"
    r = run_cli("--config", TINY_YAML, "--train_data", corpus / "train", "--valid_data", corpus / "valid",
                "--exp_dir", exp, *SMALL, "--batch_size", "4", "--max_steps", "3", "--num_images", "0",
                "--log_interval", "1",
                launcher=[sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--standalone", "-m"])
    assert r.returncode == 0, r.stderr[-4000:]
    log = (exp / "train.log").read_text()
    assert "2 processes" in log and "8 clips per step (batch 4 x 2 processes x accum 1)" in log
    ckpt = torch.load(sorted((exp / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    # each rank drew its own masks: different torch RNG streams
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])
    assert (exp / "model.pt").is_file()


def test_k_views_resume_exactly(corpus, tmp_path):
    """K = 2 inverse-block views: stopping after 3 steps and rerunning to 6 gives the weights and FLOPs of an
    uninterrupted 6-step run (masks come from the saved RNG state), and history.json counts K views per clip."""
    conf = yaml.safe_load(TINY_YAML.read_text())
    conf["model_conf"].update(num_masks=2, mask_type="inverse_block", mask_block_freq=2, mask_block_time=2)
    yaml_path = tmp_path / "k2.yaml"
    yaml_path.write_text(yaml.safe_dump(conf))
    common = ["--config", yaml_path, "--train_data", corpus / "train", "--valid_data", corpus / "valid", *SMALL,
              "--num_images", "0", "--tensorboard", "false"]
    ref, split = tmp_path / "ref", tmp_path / "split"
    for exp, steps in ((ref, 6), (split, 3), (split, 6)):
        r = run_cli(*common, "--exp_dir", exp, "--max_steps", steps)
        assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in (split / "train.log").read_text()
    a = torch.load(ref / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(split / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    from maskspec.models.flops import pretrain_flops_per_clip
    from maskspec.models.model_file import load_model_file
    from maskspec.train.history import read_history

    cfg = model_config(load_model_file(ref / "model.pt")["model_config"])
    assert cfg.num_masks == 2
    per_step = 8 * pretrain_flops_per_clip(cfg, 64)  # batch 8 of 64-frame crops, 2 views each
    for exp in (ref, split):
        last = read_history(str(exp))[-1]
        assert last["flops_per_step"] == pytest.approx(per_step) and last["train_flops"] == pytest.approx(6 * per_step)


def test_efficient_configs_spend_the_paper_configs_pretraining_flops():
    """The efficient configs are the lighter decoder at equal compute (issue 14's study): per-clip FLOPs x epochs
    within 2 % below the paper config's, and a narrower decoder than it."""
    from maskspec.bin.pretrain import build_parser
    from maskspec.models.flops import pretrain_flops_per_clip
    from maskspec.train.model_options import model_field_options, resolve_model_options

    def cost(conf: Path, mel: int):
        args = build_parser().parse_args(["--config", str(conf), "--train_data", "d", "--exp_dir", "e"])
        cfg = resolve_model_options(args, args.model, [n for n, _ in model_field_options()], mel)
        return pretrain_flops_per_clip(cfg, cfg.num_frames) * args.epochs, cfg

    for paper, mel in ((BASE_YAML, 128), (REPO / "egs" / "mini" / "conf" / "pretrain_mini.yaml", 64)):
        efficient = paper.parent / paper.name.replace(".yaml", "_efficient.yaml")
        (paper_flops, paper_cfg), (flops, cfg) = cost(paper, mel), cost(efficient, mel)
        assert 0.98 <= flops / paper_flops <= 1.0, (efficient, flops / paper_flops)
        assert cfg.decoder_embed_dim == paper_cfg.decoder_embed_dim // 2, efficient
        assert (cfg.embed_dim, cfg.depth, cfg.decoder_depth) == (paper_cfg.embed_dim, paper_cfg.depth,
                                                                   paper_cfg.decoder_depth), efficient

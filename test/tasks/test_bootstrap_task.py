"""The bootstrap objective through the pre-training command: exact resume with the teacher, DDP, the model
file, the validation figures and pictures, and the embeddings of its model file."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from maskspec.data.dataset import FeatDataset
from maskspec.data.feats import FeatWriter
from maskspec.models.bootstrap import BootstrapModel
from maskspec.models.configs import model_config
from maskspec.tasks.bootstrap import BootstrapTask, target_maps
from maskspec.train.logs import NullWriter

from pretrain_cli import run_cli

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "egs" / "TEMPLATE" / "conf" / "pretrain_tiny.yaml"
MEL, FRAMES = 32, 80
SMALL = ["--patch_size", "8", "--num_frames", "64"]
BOOTSTRAP = {"objective": "bootstrap", "decoder_type": "cnn", "decoder_groups": 4, "num_masks": 2,
             "mask_type": "inverse_block", "mask_ratio": 0.8, "ema_decay": 0.99, "ema_end_decay": 0.999,
             "ema_anneal_steps": 20}


def write_data_dir(path: Path, num_utts: int, seed: int) -> None:
    """Comb spectra with 4- or 8-bin spacing (as test_pretrain.py)."""
    rng = np.random.default_rng(seed)
    f = np.arange(MEL)[None, :]
    mats = []
    path.mkdir(parents=True)
    with FeatWriter(str(path / "feats"), "ark") as w:
        for i in range(num_utts):
            x = rng.uniform(1, 3) * np.cos(2 * np.pi * f / rng.choice([4, 8])) + rng.uniform(-6, -4)
            x = x + 0.2 * rng.standard_normal((FRAMES, MEL))
            w.write(f"clip{i:03d}", x.astype(np.float32))
            mats.append(x)
    a = np.concatenate(mats)
    (path / "stats.json").write_text(json.dumps(dict(num_utts=num_utts, num_frames=len(a), mean=a.mean(0).tolist(),
                                                     std=a.std(0).tolist(), global_mean=float(a.mean()),
                                                     global_std=float(a.std()))))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bootstrap_data")
    write_data_dir(root / "train", 64, 0)
    write_data_dir(root / "valid", 16, 1)
    (root / "train" / "fbank.yaml").write_text("sample_rate: 16000\nnum_mel_bins: 32\nframe_shift: 10.0\n")
    conf = yaml.safe_load(TINY_YAML.read_text())
    conf["model_conf"].update(BOOTSTRAP)
    (root / "bootstrap.yaml").write_text(yaml.safe_dump(conf))
    return root


def test_resume_is_exact_with_the_teacher_and_the_model_file_keeps_the_student(corpus, tmp_path):
    """Stopping after 3 steps and rerunning to 6 gives the student AND teacher weights of an uninterrupted run."""
    common = ["--config", corpus / "bootstrap.yaml", "--train_data", corpus / "train", "--valid_data",
              corpus / "valid", *SMALL, "--num_images", "1", "--tensorboard", "false"]
    ref, split = tmp_path / "ref", tmp_path / "split"
    for exp, steps in ((ref, 6), (split, 3), (split, 6)):
        r = run_cli(*common, "--exp_dir", exp, "--max_steps", steps)
        assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in (split / "train.log").read_text()
    ck = [torch.load(sorted((e / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)["model"]
          for e in (ref, split)]
    teacher_keys = [k for k in ck[0] if k.startswith("teacher.")]
    assert teacher_keys and ck[0].keys() == ck[1].keys() and all(torch.equal(ck[0][k], ck[1][k]) for k in ck[0])
    # the teacher has moved away from its initial copy of the student, and is not the student
    assert not all(torch.equal(ck[0][k], ck[0][k[len("teacher."):]]) for k in teacher_keys)

    from maskspec.models.model_file import build_model, load_model_file

    mf = load_model_file(ref / "model.pt")
    assert not any(k.startswith("teacher.") for k in mf["state_dict"])
    assert mf["model_config"]["objective"] == "bootstrap" and mf["model_config"]["decoder_type"] == "cnn"
    assert all(torch.equal(mf["state_dict"][k], ck[0][k]) for k in mf["state_dict"])
    assert isinstance(build_model(mf), BootstrapModel)
    valid = mf["extra"]["valid"]
    for key in ("loss", "patch_loss", "mean_pred_loss", "loss_ratio", "utterance_loss", "cosine"):
        assert np.isfinite(valid[key]), key
    assert valid["teacher_ranks_differ"] == 0.0
    assert (ref / "images" / "epoch_001.png").is_file()
    history = json.loads((ref / "history.json").read_text())
    assert history[-1]["loss_ratio"] == pytest.approx(valid["loss_ratio"])

    from maskspec.inference.embed import Embedder

    emb = Embedder(mf)
    assert emb.scene_from_cls and emb.scene_pooling == "cls token"
    x = torch.randn(64, MEL)
    (cols, scene), = emb.embed([x])
    tokens, _, _ = emb.net.encoder(x[None])
    assert torch.allclose(scene, tokens[0, 0], atol=1e-5)  # the cls token, not the mean of the columns
    mf["model_config"]["utterance_loss_weight"] = 0.0
    assert Embedder(mf).scene_pooling == "mean of patch tokens"

    # maskspec-export of a training checkpoint keeps the student too
    from maskspec.bin.export import main as export

    out = tmp_path / "exported.pt"
    assert export(["--checkpoint", str(sorted((ref / "checkpoints").glob("ckpt_*.pt"))[-1]), "--output", str(out)]) == 0
    exported = load_model_file(out)
    assert exported["state_dict"].keys() == mf["state_dict"].keys()


def test_ddp_two_processes_keep_the_teacher_equal(corpus, tmp_path):
    exp = tmp_path / "ddp"
    r = run_cli("--config", corpus / "bootstrap.yaml", "--train_data", corpus / "train", "--valid_data",
                corpus / "valid", "--exp_dir", exp, *SMALL, "--batch_size", "4", "--max_steps", "3",
                "--num_images", "0", "--log_interval", "1", "--tensorboard", "false",
                launcher=[sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                          "-m"])
    assert r.returncode == 0, r.stderr[-4000:]
    log = (exp / "train.log").read_text()
    assert "2 processes" in log and "teacher_ranks_differ 0" in log
    ckpt = torch.load(sorted((exp / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2
    assert any(k.startswith("teacher.") for k in ckpt["model"])


def test_teacher_check_and_pictures_in_process(corpus, tmp_path):
    from maskspec.tasks.bootstrap import teacher_ranks_differ

    torch.manual_seed(0)
    cfg = model_config("tiny", embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
                       decoder_num_heads=2, patch_size=8, num_mel_bins=MEL, num_frames=64, **BOOTSTRAP)
    model = BootstrapModel(cfg).eval()
    assert teacher_ranks_differ(model) == 0.0  # one process: nothing to differ from
    stats = json.loads((corpus / "train" / "stats.json").read_text())
    ds = FeatDataset(corpus / "valid", 64, stats, "per_bin", crop="start")
    with torch.no_grad():
        path = BootstrapTask(ds, num_images=2).on_epoch_end(model, 3, str(tmp_path), NullWriter())
    assert path == str(tmp_path / "images" / "epoch_003.png") and Path(path).read_bytes()[:4] == b"\x89PNG"
    # the maps: visible patches of the prediction map show the target; the cosine is NaN there
    target = torch.randn(1, 8, 4)
    pred = target.clone()
    pred[0, :4] = -target[0, :4]
    mask = torch.tensor([[1.0, 1, 1, 1, 0, 0, 0, 0]])
    t_map, p_map, cos = target_maps(target, pred, mask, (2, 4))
    assert torch.allclose(p_map[0, 1], t_map[0, 1]) and torch.allclose(p_map[0, 0], -t_map[0, 0])
    assert torch.allclose(cos[0, 0], torch.full((4,), -1.0)) and torch.isnan(cos[0, 1]).all()

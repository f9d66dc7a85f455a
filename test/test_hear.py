"""maskspec.hear: the HEAR 2021 API on tiny model files, and hearvalidator run on it for real.

hearvalidator imports TensorFlow at module import; test/hear_stubs holds a stand-in with only the two names its
PyTorch path touches (see test/hear_stubs/README.md), put on PYTHONPATH for the validator subprocess only.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import maskspec.hear as hear
from maskspec.features.fbank import FbankConfig
from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import ModelFileError, load_model_file, save_model_file
from maskspec.inference.embed import Embedder
from maskspec.inference.featurize import featurize

REPO = Path(__file__).resolve().parents[1]
STUBS = Path(__file__).resolve().parent / "hear_stubs"
MEL = 32


def make_model_file(path, kind="pretrain", fbank=None):
    """A random tiny model file (32 mel bins, 64-frame windows), 16 kHz features unless ``fbank`` says otherwise."""
    torch.manual_seed(0)
    cfg = model_config("tiny", embed_dim=32, depth=1, num_heads=2, num_mel_bins=MEL, num_frames=64,
                       decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)
    net = MaskSpecModel(cfg) if kind == "pretrain" else AudioClassifier(cfg, 2)
    rng = np.random.default_rng(0)
    stats = dict(mean=rng.normal(-8, 1, MEL).tolist(), std=rng.uniform(1, 3, MEL).tolist(), global_mean=-8.0,
                 global_std=2.0)
    save_model_file(path, kind=kind, model_config=cfg, state_dict=net.state_dict(),
                    fbank_config=fbank or FbankConfig(num_mel_bins=MEL), stats=stats, normalize="per_bin",
                    classes=None if kind == "pretrain" else ["yes", "no"],
                    task_type=None if kind == "pretrain" else "single_label", num_frames=64)
    return str(path)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return make_model_file(tmp_path_factory.mktemp("hear") / "model.pt")


def noise(n, sr, seconds, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, int(sr * seconds), generator=g) * 2 - 1


def test_sample_rate_choice():
    assert hear.hear_sample_rate(16000) == 16000
    assert hear.hear_sample_rate(44100) == 44100
    assert hear.hear_sample_rate(32000) == 48000  # 48k / 32k = 3 / 2
    assert hear.hear_sample_rate(8000) == 16000  # ties go to the lower rate
    assert hear.hear_sample_rate(11025) == 22050


def test_attributes_and_shapes_for_any_length(model_path):
    model = hear.load_model(model_path)
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate == 16000 and type(model.sample_rate) is int
    assert model.scene_embedding_size == model.timestamp_embedding_size == 32
    for seconds, n_t in ((0.5, 3), (3.74, 24), (12.0, 75)):  # 48, 372, 1198 frames
        audio = noise(2, 16000, seconds)
        scene = hear.get_scene_embeddings(audio, model)
        emb, ts = hear.get_timestamp_embeddings(audio, model)
        assert scene.shape == (2, 32) and scene.dtype == torch.float32
        assert emb.shape == (2, n_t, 32) and emb.dtype == torch.float32 and ts.shape == (2, n_t)
        assert torch.allclose(ts, (87.5 + 160.0 * torch.arange(n_t)).expand(2, -1))
        assert torch.allclose(scene, emb.mean(1), atol=1e-5)  # pretrain: scene = mean of all columns
    with pytest.raises(ValueError, match=r"\[n_sounds, n_samples\]"):
        hear.get_scene_embeddings(torch.zeros(16000), model)


def test_same_as_embedding_tool_and_batched_equals_unbatched(model_path):
    model = hear.load_model(model_path)
    mf = load_model_file(model_path)
    audio = noise(3, 16000, 3.74, seed=1)
    scene = hear.get_scene_embeddings(audio, model)
    emb, _ = hear.get_timestamp_embeddings(audio, model)
    ref = Embedder(mf)
    for i in range(3):
        alone = hear.get_scene_embeddings(audio[i:i + 1], model)
        assert torch.allclose(scene[i], alone[0], atol=1e-4)
        # the numpy feature path of maskspec-embed gives the same vectors
        (cols,) = ref.columns([featurize(audio[i].numpy(), 16000, mf)])
        assert torch.allclose(emb[i], cols, atol=1e-4)


def test_32khz_features_take_48khz_audio(tmp_path):
    path = make_model_file(tmp_path / "m32.pt", kind="classifier",
                           fbank=FbankConfig(sample_rate=32000, num_mel_bins=MEL, high_freq=15000.0))
    model = hear.load_model(path)
    mf = load_model_file(path)
    assert model.sample_rate == 48000
    audio = noise(2, 48000, 2.0, seed=2)
    feats = model.features(audio)  # resampled 48k -> 32k inside: 2 s give 198 frames
    assert feats.shape == (2, 198, MEL)
    assert torch.allclose(feats[0], torch.from_numpy(featurize(audio[0].numpy(), 48000, mf)), atol=1e-3)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert emb.shape == (2, 13, 32) and torch.allclose(ts[0], 87.5 + 160.0 * torch.arange(13))
    # a classifier's scene vector is the input of its head
    clf = AudioClassifier(model_config(mf["model_config"]), 2)
    clf.load_state_dict(mf["state_dict"])
    x = feats[:, :64]  # one window: the whole input goes through the encoder at once
    assert torch.allclose(model.embedder.scene(x), clf.eval().embed(x), atol=1e-5)


def test_bad_model_files(model_path, tmp_path):
    with pytest.raises(ModelFileError, match="give the path"):
        hear.load_model()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(open(model_path, "rb").read()[:3000])
    with pytest.raises(ModelFileError, match=r"cut\.pt.*truncated"):
        hear.load_model(str(cut))
    junk = tmp_path / "junk.pt"
    torch.save({"weights": torch.zeros(3)}, junk)
    with pytest.raises(ModelFileError, match=r"junk\.pt: not a MaskSpec model file"):
        hear.load_model(str(junk))
    nofb = tmp_path / "nofbank.pt"
    mf = load_model_file(model_path)
    save_model_file(nofb, **{k: mf[k] for k in ("kind", "model_config", "state_dict", "stats", "normalize",
                                                "classes", "task_type", "num_frames")}, fbank_config=None)
    with pytest.raises(ModelFileError, match=r"nofbank\.pt: .*no fbank_config"):
        hear.load_model(str(nofb))


def run_validator(module, model, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STUBS), str(REPO), str(cwd)]))
    return subprocess.run([sys.executable, "-m", "hearvalidator.validate", module, "-m", model, "-d", "cpu"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_hearvalidator_passes(model_path, tmp_path):
    pytest.importorskip("hearvalidator")
    res = run_validator("maskspec.hear", model_path, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Looks good!" in res.stdout and "Received embedding of shape: torch.Size([8, 32])" in res.stdout
    # the check is real: a module returning float64 embeddings is refused by the same validator and stand-in
    (tmp_path / "broken_hear.py").write_text(
        "from maskspec.hear import load_model, get_scene_embeddings\n"
        "import maskspec.hear as h\n"
        "def get_timestamp_embeddings(audio, model):\n"
        "    emb, ts = h.get_timestamp_embeddings(audio, model)\n"
        "    return emb.double(), ts\n")
    bad = run_validator("broken_hear", model_path, tmp_path)
    assert bad.returncode != 0 and "Expected embeddings to be torch.float32" in bad.stdout + bad.stderr

"""Embedder: shapes and timestamps for any length and sample rate, windowing, padding, batching, pooling."""
import numpy as np
import pytest
import torch

from maskspec.features.fbank import FbankConfig
from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import ModelFileError, load_model_file, save_model_file
from maskspec.inference.embed import Embedder, column_times_ms
from maskspec.inference.featurize import featurize

MEL = 32
WINDOW = 64  # frames: 4 patch columns per window


def tiny_model_file(path, kind="pretrain", pos_embed="extend", fbank_config=None, **options):
    """A random tiny model file (16 kHz, 32 mel bins, 64-frame windows) and the network it holds."""
    torch.manual_seed(0)
    cfg = model_config("tiny", embed_dim=32, depth=2, num_heads=2, num_mel_bins=MEL, num_frames=WINDOW,
                       decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2, pos_embed=pos_embed, **options)
    net = MaskSpecModel(cfg) if kind == "pretrain" else AudioClassifier(cfg, 3)
    if kind == "classifier" and cfg.pool == "mean":  # non-trivial fc_norm, so a missing fc_norm would show
        torch.nn.init.normal_(net.fc_norm.weight, 1.0, 0.5)
        torch.nn.init.normal_(net.fc_norm.bias, 0.0, 0.5)
    rng = np.random.default_rng(0)
    stats = dict(mean=rng.normal(-8, 1, MEL).tolist(), std=rng.uniform(1, 3, MEL).tolist(), global_mean=-8.0,
                 global_std=2.0)
    save_model_file(path, kind=kind, model_config=cfg, state_dict=net.state_dict(),
                    fbank_config=fbank_config or FbankConfig(num_mel_bins=MEL), stats=stats, normalize="per_bin",
                    classes=None if kind == "pretrain" else ["a", "b", "c"],
                    task_type=None if kind == "pretrain" else "single_label", num_frames=WINDOW)
    return load_model_file(path), net.eval()


@pytest.fixture(scope="module")
def pretrain(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("m") / "pre.pt")


def noise(sr, seconds, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (1, int(round(sr * seconds)))).astype(np.float32)


def test_column_times_are_column_centres_in_ms():
    # 16 kHz: 160-sample shift, 400-sample frames; column j spans frames 16j..16j+15
    assert column_times_ms(3, 16, FbankConfig()).tolist() == [87.5, 247.5, 407.5]
    # 22.05 kHz: Kaldi takes whole samples, 220 shift and 551 length
    fb = FbankConfig(sample_rate=22050)
    shift, length = 1000 * 220 / 22050, 1000 * 551 / 22050
    assert column_times_ms(2, 16, fb).tolist() == pytest.approx([7.5 * shift + length / 2,
                                                                 23.5 * shift + length / 2])


@pytest.mark.parametrize("sr", [16000, 44100, 8000])
@pytest.mark.parametrize("seconds,frames,columns", [(0.5, 48, 3), (3.74, 372, 24), (12.0, 1198, 75)])
def test_shapes_and_timestamps_for_lengths_and_rates(pretrain, sr, seconds, frames, columns):
    mf, _ = pretrain
    emb = Embedder(mf)
    wave = noise(sr, seconds)
    feats = featurize(wave, sr, mf)  # resampled to the model's 16 kHz
    resampled = -(-wave.shape[1] * 16000 // sr)
    assert feats.shape[0] == 1 + (resampled - 400) // 160 == frames
    n_t = columns
    (cols,) = emb.columns([feats])
    assert cols.shape == (n_t, 32) and cols.dtype == torch.float32 and torch.isfinite(cols).all()
    assert emb.scene([feats]).shape == (1, 32)
    e, ts = emb.timestamps([feats])
    assert e.shape == (1, n_t, 32) and ts.shape == (1, n_t) and ts.dtype == torch.float32
    assert torch.allclose(ts[0], 87.5 + 160.0 * torch.arange(n_t, dtype=torch.float32))
    # the last column starts inside the clip
    assert (n_t - 1) * 16 < feats.shape[0] <= n_t * 16


def test_batched_equals_unbatched(pretrain):
    mf, _ = pretrain
    emb = Embedder(mf, batch_windows=3)  # several forward passes per length group
    rng = np.random.default_rng(1)
    clips = [rng.normal(size=(t, MEL)).astype(np.float32) for t in (48, 372, 1198, 64, 10, 372)]
    together = emb.columns(clips)
    one_by_one = Embedder(mf, batch_windows=1)
    for clip, cols in zip(clips, together):
        (alone,) = one_by_one.columns([clip])
        assert cols.shape == alone.shape
        assert torch.allclose(cols, alone, atol=1e-4)
    scenes = emb.scene(clips)
    for i, clip in enumerate(clips):
        assert torch.allclose(scenes[i], emb.scene([clip])[0], atol=1e-4)


def test_long_clips_are_cut_into_consecutive_windows(pretrain):
    mf, net = pretrain
    x = torch.randn(150, MEL)  # windows [0, 64), [64, 128), [128, 150) padded to 160
    (cols,) = Embedder(mf).columns([x])
    padded = torch.nn.functional.pad(x, (0, 0, 0, 10))
    want = []
    for a, b in ((0, 64), (64, 128), (128, 160)):
        tokens = net.encoder(padded[a:b][None])[0][0, 1:]  # [F_p * T_p, D], row-major (f, t)
        want.append(tokens.reshape(MEL // 16, (b - a) // 16, -1).mean(0))
    assert cols.shape == (10, 32)
    assert torch.allclose(cols, torch.cat(want), atol=1e-5)


def test_pretrain_scene_is_mean_of_encoder_tokens(pretrain):
    mf, net = pretrain
    x = torch.randn(2, WINDOW, MEL)
    want = net.encoder(x)[0][:, 1:].mean(1)
    assert torch.allclose(Embedder(mf).scene(x), want, atol=1e-5)
    # the same through the numpy list path, and a clip shorter than a patch gives one column
    assert torch.allclose(Embedder(mf).scene([a.numpy() for a in x]), want, atol=1e-5)
    assert Embedder(mf).columns([np.zeros((10, MEL), np.float32)])[0].shape == (1, 32)


def test_classifier_embeddings_match_its_own_methods(tmp_path):
    mf, clf = tiny_model_file(tmp_path / "clf.pt", kind="classifier")
    emb = Embedder(mf)
    x = torch.randn(3, WINDOW, MEL)
    assert torch.allclose(emb.scene(x), clf.embed(x), atol=1e-5)
    assert torch.allclose(emb.timestamps(x)[0], clf.frame_embed(x), atol=1e-5)
    # over several windows the scene vector is fc_norm of the mean of all columns
    long = torch.randn(200, MEL)
    (cols,) = emb.columns([long])
    assert torch.allclose(emb.scene([long])[0], clf.fc_norm(cols.mean(0)), atol=1e-5)


def test_cls_pooled_classifier_scene_is_its_cls_token(tmp_path):
    mf, clf = tiny_model_file(tmp_path / "cls.pt", kind="classifier", pool="cls")
    emb = Embedder(mf)
    x = torch.randn(3, WINDOW, MEL)
    want = clf.encoder(x)[0][:, 0]
    assert torch.allclose(clf.embed(x), want)  # the head's input is the cls token
    assert torch.allclose(emb.scene(x), want, atol=1e-5)
    assert not torch.allclose(emb.scene(x), emb.columns(x)[0].mean(0), atol=1e-2)
    (cols, scene), = emb.embed([x[0]])
    assert torch.allclose(scene, want[0], atol=1e-5) and torch.allclose(cols, clf.frame_embed(x[:1])[0], atol=1e-5)
    # a clip of two windows (4 + 2 columns): the cls tokens weighted by the columns each window gives
    long = torch.randn(96, MEL)
    parts = [clf.encoder(long[None, :64])[0][0, 0], clf.encoder(long[None, 64:])[0][0, 0]]
    assert torch.allclose(emb.scene([long])[0], (4 * parts[0] + 2 * parts[1]) / 6, atol=1e-5)
    with pytest.raises(ValueError, match="cls token"):
        emb.pool(cols)


def test_interpolate_positions_pad_the_last_window(tmp_path):
    mf, net = tiny_model_file(tmp_path / "interp.pt", pos_embed="interpolate")
    x = torch.randn(100, MEL)  # windows [0, 64) and [64, 100) -> padded to 64 frames, 3 columns kept
    (cols,) = Embedder(mf).columns([x])
    tail = torch.nn.functional.pad(x[64:], (0, 0, 0, 28))
    tokens = net.encoder(tail[None])[0][0, 1:].reshape(MEL // 16, 4, -1).mean(0)
    assert cols.shape == (7, 32)
    assert torch.allclose(cols[4:], tokens[:3], atol=1e-5)


def test_bad_input_and_ragged_timestamps(pretrain):
    mf, _ = pretrain
    emb = Embedder(mf)
    with pytest.raises(ValueError, match=r"clip 1 must be \[T > 0, 32\]"):
        emb.columns([np.zeros((20, MEL)), np.zeros((20, 40))])
    with pytest.raises(ValueError, match="no clips"):
        emb.columns([])
    with pytest.raises(ValueError, match="different numbers of columns"):
        emb.timestamps([np.zeros((20, MEL)), np.zeros((60, MEL))])


def test_missing_fbank_config_only_blocks_timestamps(pretrain):
    mf, _ = pretrain
    emb = Embedder(dict(mf, fbank_config=None))
    assert emb.scene(torch.zeros(1, 32, MEL)).shape == (1, 32)
    with pytest.raises(ModelFileError, match="fbank_config"):
        emb.timestamps(torch.zeros(1, 32, MEL))

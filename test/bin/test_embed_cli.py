"""maskspec-embed: files / wav.scp / data directory in, scene and frame embeddings + timestamps out, bad input."""
import logging
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from maskspec.bin import embed
from maskspec.data.datadir import read_kv, write_kv
from maskspec.data.feats import load_feat
from maskspec.data.extract import Utterance, extract
from maskspec.features.fbank import FbankConfig
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import load_model_file, save_model_file
from maskspec.inference.embed import Embedder
from maskspec.inference.featurize import featurize

MEL = 32


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A random tiny pre-training model file: 16 kHz, 32 mel bins, 64-frame windows."""
    torch.manual_seed(0)
    cfg = model_config("tiny", embed_dim=32, depth=1, num_heads=2, num_mel_bins=MEL, num_frames=64,
                       decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)
    rng = np.random.default_rng(0)
    stats = dict(mean=rng.normal(-8, 1, MEL).tolist(), std=rng.uniform(1, 3, MEL).tolist(), global_mean=-8.0,
                 global_std=2.0)
    path = str(tmp_path_factory.mktemp("model") / "model.pt")
    save_model_file(path, kind="pretrain", model_config=cfg, state_dict=MaskSpecModel(cfg).state_dict(),
                    fbank_config=FbankConfig(num_mel_bins=MEL), stats=stats, normalize="per_bin", classes=None,
                    task_type=None, num_frames=64)
    return path


def write_noise(path, sr, seconds, channels=1, seed=0):
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(round(sr * seconds)), channels)).astype(np.float32)
    sf.write(str(path), wave, sr)
    return str(path)


def test_files_of_any_rate_and_length_both_levels(model_path, tmp_path):
    files = [write_noise(tmp_path / "short.wav", 16000, 0.5), write_noise(tmp_path / "mid.flac", 44100, 3.74, 2),
             write_noise(tmp_path / "long.wav", 8000, 12.0)]
    prefix = str(tmp_path / "out" / "emb")
    assert embed.main(["--model", model_path, "--output_prefix", prefix, "--level", "both", "--device", "cpu",
                       "--batch_size", "2", *files]) == 0
    scene, frame = read_kv(prefix + ".scene.scp"), read_kv(prefix + ".frame.scp")
    stamps = read_kv(prefix + ".timestamps")
    assert sorted(scene) == sorted(frame) == sorted(stamps) == ["long", "mid", "short"]
    mf = load_model_file(model_path)
    ref = Embedder(mf)
    for path, n_t in zip(files, (3, 24, 75)):  # 48, 372 and 1198 frames at 16 kHz
        utt = os.path.splitext(os.path.basename(path))[0]
        s, f = load_feat(scene[utt]), load_feat(frame[utt])
        t = np.array(stamps[utt].split(), dtype=float)
        assert s.shape == (1, 32) and f.shape == (n_t, 32) and t.shape == (n_t,)
        assert np.allclose(t, 87.5 + 160.0 * np.arange(n_t))
        wave, sr = sf.read(path, dtype="float32", always_2d=True)
        (cols,) = ref.columns([featurize(wave.T, sr, mf)])
        assert np.allclose(f, cols.numpy(), atol=1e-5)
        assert np.allclose(s[0], cols.numpy().mean(0), atol=1e-5)


def test_wav_scp_with_segments_and_a_bad_file(model_path, tmp_path, capsys):
    a = write_noise(tmp_path / "a.wav", 16000, 4.0)
    b = write_noise(tmp_path / "b.wav", 22050, 1.0, seed=1)
    write_kv(tmp_path / "wav.scp", {"recA": a, "recB": b, "recC": str(tmp_path / "missing.wav")})
    write_kv(tmp_path / "segments", {"A1": "recA 0.0 1.5", "A2": "recA 1.5 -1", "B1": "recB 0 -1",
                                     "C1": "recC 0 1"})
    prefix = str(tmp_path / "seg")
    rc = embed.main(["--model", model_path, "--wav_scp", str(tmp_path / "wav.scp"), "--segments",
                     str(tmp_path / "segments"), "--output_prefix", prefix, "--filetype", "hdf5", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1 and "utterance 'C1'" in err and "missing.wav" in err and "1 of 4 utterances failed" in err
    scene = read_kv(prefix + ".scene.scp")
    assert sorted(scene) == ["A1", "A2", "B1"] and scene["A1"].startswith(os.path.abspath(prefix) + ".scene.h5:")
    assert not os.path.exists(prefix + ".frame.scp") and not os.path.exists(prefix + ".timestamps")
    # a segment is embedded as the same audio cut out by hand
    mf = load_model_file(model_path)
    wave, sr = sf.read(a, dtype="float32", always_2d=True)
    want = Embedder(mf).scene([featurize(wave[24000:].T, sr, mf)])[0].numpy()
    assert np.allclose(load_feat(scene["A2"])[0], want, atol=1e-5)


def make_data_dir(d, fbank):
    os.makedirs(d)
    specs = {f"u{i}": write_noise(os.path.join(d, f"u{i}.wav"), 16000, s, seed=i)
             for i, s in enumerate((0.7, 2.0, 9.0))}
    write_kv(os.path.join(d, "wav.scp"), specs)
    extract([Utterance(u, p) for u, p in specs.items()], fbank, os.path.join(d, "raw"))
    os.rename(os.path.join(d, "raw.scp"), os.path.join(d, "feats.scp"))
    fbank.to_yaml(os.path.join(d, "fbank.yaml"))
    return d


def test_data_dir_features_or_audio(model_path, tmp_path, capsys, caplog):
    d = make_data_dir(str(tmp_path / "data"), FbankConfig(num_mel_bins=MEL))
    outs = {}
    for use in ("true", "false"):
        prefix = str(tmp_path / f"e_{use}")
        assert embed.main(["--model", model_path, "--data_dir", d, "--use_feats", use, "--level", "frame",
                           "--output_prefix", prefix, "--device", "cpu", "--batch_size", "1" if use == "true"
                           else "3"]) == 0
        outs[use] = {u: load_feat(v) for u, v in read_kv(prefix + ".frame.scp").items()}
    assert sorted(outs["true"]) == ["u0", "u1", "u2"]
    for u in outs["true"]:  # stored features and features from audio give the same embeddings
        assert np.allclose(outs["true"][u], outs["false"][u], atol=1e-4)
    # other fbank settings: auto falls back to the audio, true is an error naming the difference
    other = make_data_dir(str(tmp_path / "other"), FbankConfig(num_mel_bins=MEL, low_freq=50.0))
    caplog.set_level(logging.INFO, "maskspec.embed")
    assert embed.main(["--model", model_path, "--data_dir", other, "--output_prefix", str(tmp_path / "o1"),
                       "--device", "cpu"]) == 0
    assert "computing features from audio" in caplog.text and "low_freq" in caplog.text
    capsys.readouterr()
    assert embed.main(["--model", model_path, "--data_dir", other, "--use_feats", "true", "--output_prefix",
                       str(tmp_path / "o2"), "--device", "cpu"]) == 1
    assert "differs from the model's fbank settings in low_freq" in capsys.readouterr().err


def test_bad_model_file_and_options(model_path, tmp_path, capsys):
    wav = write_noise(tmp_path / "x.wav", 16000, 1.0)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(open(model_path, "rb").read()[:2000])
    prefix = str(tmp_path / "bad")
    assert embed.main(["--model", str(cut), "--output_prefix", prefix, wav]) == 1
    err = capsys.readouterr().err
    assert str(cut) in err and "truncated" in err and not os.path.exists(prefix + ".scene.scp")
    with pytest.raises(SystemExit) as e:
        embed.main(["--model", model_path, "--output_prefix", prefix])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        embed.main(["--model", model_path, "--output_prefix", prefix, "--wav_scp", "w", wav])
    assert e.value.code == 2
    twin = tmp_path / "sub"
    twin.mkdir()
    other = write_noise(twin / "x.wav", 16000, 1.0)
    assert embed.main(["--model", model_path, "--output_prefix", prefix, wav, other]) == 1
    assert "same utterance id 'x'" in capsys.readouterr().err

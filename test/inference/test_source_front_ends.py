"""Every imported model file feeds its model what the source fed it: maskspec-import of synthetic stand-ins in each
source's layout, then ``featurize`` (the path of maskspec-infer, maskspec-embed and maskspec.hear) on generated
audio against the reference front ends written from the sources' published descriptions
(test/features/reference_front_ends.py): the same frame count, equal within 1e-4 per element."""
import os
import sys

import numpy as np
import pytest
import torch

from maskspec.bin import import_checkpoint
from maskspec.inference.embed import Embedder
from maskspec.inference.featurize import featurize
from maskspec.models.model_file import load_model_file

HERE = os.path.dirname(__file__)
sys.path[:0] = [os.path.join(HERE, "..", "features"), os.path.join(HERE, "..", "models")]
from reference_eat import Data2VecMulti  # noqa: E402
from reference_eat import randomize_ as randomize_eat_  # noqa: E402
from reference_front_ends import (AUDIOMAE_MEAN, AUDIOMAE_STD, EAT_MEAN, EAT_STD, ast_style_input,  # noqa: E402
                                  authors_input, generated_audio)
from reference_vits import ViT, randomize_  # noqa: E402

TOL = dict(atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Model files imported from tiny random checkpoints of each source (ViT width 32, one block)."""
    d = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(0)
    mean_std = dict(frame_mean=rng.normal(-0.3, 0.2, 128), frame_std=rng.uniform(0.5, 1.0, 128))
    np.save(d / "mean_std_128.npy", mean_std)
    (d / "labels.txt").write_text("".join(f"class{i}\n" for i in range(5)))
    torch.save(dict(model=randomize_(ViT((128, 1000), 16, 32, 1, 4, 5), 1).state_dict()), d / "authors.pth")
    torch.save(dict(model=randomize_(ViT((1024, 128), 16, 32, 1, 4, 5, cat_then_add=False), 2).state_dict()),
               d / "audiomae.pth")
    eat = randomize_eat_(Data2VecMulti(1024, 128, 16, 32, 1, 4), 3)
    torch.save(dict(model=eat.state_dict(), cfg=dict(model=dict(num_heads=4, layer_norm_first=False, norm_eps=1e-6),
                                                     task=dict(target_length=1024))), d / "eat.pt")
    out = {}
    for name, options in [("authors", ["--mean_std", str(d / "mean_std_128.npy"), "--class_labels",
                                       str(d / "labels.txt")]),
                          ("audiomae", ["--class_labels", str(d / "labels.txt")]), ("eat", [])]:
        src = d / ("eat.pt" if name == "eat" else f"{name}.pth")
        assert import_checkpoint.main(["--checkpoint", str(src), "--output", str(d / f"{name}.mf"),
                                       "--num_heads", "4", *options]) == 0
        out[name] = load_model_file(d / f"{name}.mf")
    out["mean_std"] = mean_std
    return out


@pytest.mark.parametrize("seconds", [3.3, 10.0])
def test_authors_tagger_input(imported, seconds):
    mf = imported["authors"]
    assert mf["front_end"] == dict(name="maskspec-authors", pad="waveform", pad_frames=0, pad_seconds=10.0)
    assert mf["fbank_config"]["framing"] == "centered" and mf["num_frames"] == 1000
    x = generated_audio(32000, seconds, seed=1)
    ours = featurize(x, 32000, mf)
    ref = authors_input(x, imported["mean_std"]["frame_mean"], imported["mean_std"]["frame_std"])
    assert ours.shape == ref.shape == (1000, 128)
    np.testing.assert_allclose(ours, ref, **TOL)
    # the embedder encodes the 992 frames the authors' patch embedding uses: 62 columns, one window
    assert Embedder(mf).columns([ours])[0].shape == (62, 32)


@pytest.mark.parametrize("source,mean,std", [("audiomae", AUDIOMAE_MEAN, AUDIOMAE_STD), ("eat", EAT_MEAN, EAT_STD)])
def test_audiomae_and_eat_input(imported, source, mean, std):
    mf = imported[source]
    assert mf["front_end"] == dict(name=source, pad="fbank", pad_frames=1024, pad_seconds=0.0)
    assert mf["num_frames"] == 1024 and "framing" not in mf["fbank_config"]  # Kaldi framing
    x = generated_audio(16000, 4.0, seed=2, dc=0.05)  # a DC offset: they subtract the waveform's mean, we don't
    ours = featurize(x, 16000, mf)
    ref = ast_style_input(x, mean, std)
    assert ours.shape == ref.shape == (1024, 128)
    np.testing.assert_allclose(ours, ref, **TOL)
    # the padded frames hold the normalised zero of the raw fbank, +0.467, not the mean (0)
    padded = ours[1 + (x.size - 400) // 160:]
    assert padded.shape[0] == 1024 - 398 and np.allclose(padded, -mean / (2 * std)) and padded[0, 0] > 0.46


def test_front_end_ours_keeps_kaldi_framing_and_no_record(imported, tmp_path):
    src = tmp_path / "authors.pth"
    torch.save(dict(model=randomize_(ViT((128, 1000), 16, 32, 1, 4, 5), 1).state_dict()), src)
    np.save(tmp_path / "ms.npy", imported["mean_std"])
    assert import_checkpoint.main(["--checkpoint", str(src), "--output", str(tmp_path / "m.pt"), "--num_heads", "4",
                                   "--mean_std", str(tmp_path / "ms.npy"), "--front_end", "ours",
                                   "--class_labels", str(tmp_path / "ms.npy")]) == 1  # not a labels file
    (tmp_path / "labels.txt").write_text("a\nb\nc\nd\ne\n")
    assert import_checkpoint.main(["--checkpoint", str(src), "--output", str(tmp_path / "m.pt"), "--num_heads", "4",
                                   "--mean_std", str(tmp_path / "ms.npy"), "--front_end", "ours",
                                   "--class_labels", str(tmp_path / "labels.txt")]) == 0
    mf = load_model_file(tmp_path / "m.pt")
    assert "front_end" not in mf and "framing" not in mf["fbank_config"]
    assert featurize(generated_audio(32000, 3.3), 32000, mf).shape == (328, 128)  # not padded, Kaldi frames


def test_scoring_stored_features_pads_as_the_source(imported, tmp_path, caplog):
    """maskspec.bin.score on stored (raw) features of short clips gives maskspec-infer's probabilities from the
    audio: Audio-MAE's fbank padding (normalised zeros) applied before the windows; the authors' waveform padding
    cannot be, and a warning says so."""
    from maskspec.bin import score
    from maskspec.data.datadir import write_kv
    from maskspec.data.feats import FeatWriter
    from maskspec.features.fbank import FbankConfig, compute_fbank
    from maskspec.models.model_file import build_model
    from maskspec.models.windows import predict_feats

    mf = imported["audiomae"]
    clips = {f"u{i}": generated_audio(16000, s, seed=i) for i, s in enumerate((2.0, 4.5))}
    d = tmp_path / "data"
    d.mkdir()
    with FeatWriter(str(d / "feats"), "ark") as w:
        for utt, x in clips.items():
            w.write(utt, compute_fbank(x, 16000, FbankConfig.from_dict(mf["fbank_config"])))
    write_kv(str(d / "utt2label"), {u: "class0" for u in clips})
    out = tmp_path / "decode"
    path = str(tmp_path / "audiomae.mf")
    torch.save(mf, path)
    assert score.main(["--model", path, "--data", str(d), "--output_dir", str(out), "--device", "cpu",
                       "--num_workers", "0"]) == 0
    got = np.load(out / "scores.npz")["scores"]
    model = build_model(mf)
    for row, (utt, x) in zip(got, sorted(clips.items())):
        want = predict_feats(model, featurize(x, 16000, mf), 1024, None, "multi_label")
        np.testing.assert_allclose(row, want, atol=1e-5)
    authors = str(tmp_path / "authors.mf")
    torch.save(imported["authors"], authors)
    assert score.source_padding(imported["authors"], authors) is None
    assert "cannot reproduce" in caplog.text

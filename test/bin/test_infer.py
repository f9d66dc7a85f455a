"""maskspec-infer end to end: any rate/length/channels, one error line per bad file, JSON lines output."""
import json
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from maskspec.bin import infer
from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.model_file import save_model_file

CLASSES = ["cat", "dog", "rain", "siren"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    cfg = model_config("tiny", embed_dim=32, depth=1, num_heads=2, num_mel_bins=32, num_frames=96)
    model = AudioClassifier(cfg, len(CLASSES))
    path = tmp_path_factory.mktemp("exp") / "model.pt"
    save_model_file(path, kind="classifier", model_config=cfg, state_dict=model.state_dict(),
                    fbank_config=dict(sample_rate=16000, num_mel_bins=32), normalize="per_bin",
                    stats=dict(mean=[-8.0] * 32, std=[3.0] * 32, global_mean=-8.0, global_std=3.0),
                    classes=CLASSES, task_type="multi_label", num_frames=96)
    return str(path)


def _write(path, seconds, sr, channels=1):
    rng = np.random.default_rng(int(seconds * 10) + sr)
    wave = (rng.standard_normal((int(seconds * sr), channels)) * 0.1).astype(np.float32)
    sf.write(str(path), wave, sr)
    return str(path)


def test_any_rate_length_and_channels(model_path, tmp_path, capsys):
    files = [_write(tmp_path / f"a{sec}_{sr}.wav", sec, sr) for sec in (0.3, 10) for sr in (8000, 16000, 44100)]
    files.append(_write(tmp_path / "stereo.flac", 2.0, 22050, channels=2))
    start = time.time()
    long = [_write(tmp_path / f"long_{sr}.wav", 60, sr) for sr in (8000, 16000, 44100)]
    out = tmp_path / "res.jsonl"
    rc = infer.main(["--model", model_path, "--topk", "3", "--output", str(out), "--device", "cpu", *files, *long])
    assert rc == 0
    assert time.time() - start < 30  # three 60 s files must stay quick with a tiny model
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == len(files) + len(long)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in records] == files + long
    for r in records:
        assert "error" not in r and len(r["labels"]) == 3
        assert {lab["label"] for lab in r["labels"]} <= set(CLASSES)
        scores = [lab["score"] for lab in r["labels"]]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert printed[0].startswith(files[0] + "\t")


def test_bad_files_reported_and_others_go_on(model_path, tmp_path, capsys):
    good = _write(tmp_path / "good.wav", 1.0, 16000)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    missing = str(tmp_path / "missing.wav")
    out = tmp_path / "res.jsonl"
    rc = infer.main(["--model", model_path, "--output", str(out), "--device", "cpu", str(broken), good, missing])
    assert rc == 1
    err = capsys.readouterr().err
    assert "broken.wav" in err and "missing.wav" in err and "2 of 3 files failed" in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [("error" in r) for r in records] == [True, False, True]
    assert len(records[1]["labels"]) == 4  # --topk 5 capped at the number of classes


def test_model_errors(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_text("not a model")
    assert infer.main(["--model", str(bad), "x.wav"]) == 1
    assert "model.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        infer.main(["--model", str(bad)])  # no files

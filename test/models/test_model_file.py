"""Model file: round trip, and a clear ModelFileError for every kind of bad file."""
import os

import pytest
import torch

from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import (VERSION, ModelFileError, build_model, load_model_file,
                                        save_model_file)

TINY = dict(embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
            num_mel_bins=32, num_frames=64)


def _save(path, **over):
    cfg = model_config("tiny", **TINY)
    torch.manual_seed(0)
    model = MaskSpecModel(cfg)
    kw = dict(kind="pretrain", model_config=cfg, state_dict=model.state_dict(),
              fbank_config={"sample_rate": 16000, "num_mel_bins": 32}, stats={"mean": [0.0] * 32, "std": [1.0] * 32},
              normalize="per_bin", classes=None, task_type=None, num_frames=64)
    kw.update(over)
    save_model_file(path, **kw)
    return model


def test_round_trip_builds_equal_model(tmp_path):
    path = tmp_path / "model.pt"
    model = _save(path, extra={"note": "x"})
    d = load_model_file(path)
    assert d["format"] == "maskspec-model" and d["version"] == VERSION and d["maskspec_version"]
    assert d["extra"] == {"note": "x"} and d["num_frames"] == 64 and d["fbank_config"]["sample_rate"] == 16000
    rebuilt = build_model(d)
    assert not rebuilt.training
    for k, v in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[k], v), k
    assert [f for f in os.listdir(tmp_path)] == ["model.pt"]  # no temporary left behind


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model_file(tmp_path / "absent.pt")


def test_truncated_file(tmp_path):
    path = tmp_path / "model.pt"
    _save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"model\.pt: cannot read model file"):
        load_model_file(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {}, "epoch": 3}, path)
    with pytest.raises(ModelFileError, match="not a MaskSpec model file.*checkpoint"):
        load_model_file(path)
    path.write_text("hello\n")
    with pytest.raises(ModelFileError, match="ckpt.pt"):
        load_model_file(path)


def test_newer_version_refused(tmp_path):
    path = tmp_path / "model.pt"
    _save(path)
    d = torch.load(path, weights_only=True)
    d["version"] = VERSION + 1
    torch.save(d, path)
    with pytest.raises(ModelFileError, match="newer MaskSpec"):
        load_model_file(path)


def test_missing_keys(tmp_path):
    path = tmp_path / "model.pt"
    _save(path)
    d = torch.load(path, weights_only=True)
    del d["stats"], d["fbank_config"]
    torch.save(d, path)
    with pytest.raises(ModelFileError, match="lacks fbank_config, stats"):
        load_model_file(path)


def test_classifier_needs_classes_and_task_type(tmp_path):
    with pytest.raises(ModelFileError, match="class names"):
        _save(tmp_path / "a.pt", kind="classifier", classes=[], task_type="multi_label")
    with pytest.raises(ModelFileError, match="task_type"):
        _save(tmp_path / "b.pt", kind="classifier", classes=["a"], task_type="regression")
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "b.pt").exists()


def test_weights_not_matching_config(tmp_path):
    path = tmp_path / "model.pt"
    _save(path)
    d = load_model_file(path)
    d["model_config"]["embed_dim"] = 64
    with pytest.raises(ModelFileError, match="do not match"):
        build_model(d)

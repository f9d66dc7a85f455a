"""score.py end to end on generated features: scores equal per-clip predictions, metrics and RESULTS.md written."""
import json
import os

import numpy as np
import pytest
import torch

from maskspec.bin import score
from maskspec.features.normalize import normalize
from maskspec.data.datadir import write_kv
from maskspec.data.feats import FeatWriter
from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.model_file import save_model_file
from maskspec.models.windows import predict_feats
from maskspec.tasks.metrics import compute_metrics

CLASSES = ["a", "b", "c"]
STATS = dict(mean=[0.5] * 16, std=[2.0] * 16, global_mean=0.5, global_std=2.0)


def _model_file(path, task_type):
    torch.manual_seed(1)
    cfg = model_config("tiny", embed_dim=32, depth=1, num_heads=2, num_mel_bins=16, num_frames=32)
    model = AudioClassifier(cfg, len(CLASSES))
    torch.nn.init.normal_(model.head.weight, std=1.0)  # spread the scores so the metrics are not all ties
    save_model_file(path, kind="classifier", model_config=cfg, state_dict=model.state_dict(),
                    fbank_config=dict(sample_rate=16000, num_mel_bins=16), stats=STATS, normalize="per_bin",
                    classes=CLASSES, task_type=task_type, num_frames=32)
    return model.eval()


def _data_dir(d, labels, known=None):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    feats = {}
    with FeatWriter(os.path.join(d, "feats"), "ark") as w:
        for i, utt in enumerate(sorted(labels)):
            feats[utt] = rng.standard_normal((10 + 37 * i, 16)).astype(np.float32)
            w.write(utt, feats[utt])
    write_kv(os.path.join(d, "utt2label"), labels)
    if known is not None:
        write_kv(os.path.join(d, "utt2label_known"), known)
    with open(os.path.join(d, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    return feats


def test_single_label_scoring(tmp_path):
    model = _model_file(tmp_path / "model.pt", "single_label")
    labels = {f"u{i}": CLASSES[i % 3] for i in range(7)}
    feats = _data_dir(tmp_path / "test", labels)
    out = tmp_path / "decode"
    assert score.main(["--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "test"),
                       "--output_dir", str(out), "--device", "cpu", "--num_workers", "0", "--batch_clips", "3"]) == 0
    npz = np.load(out / "scores.npz")
    utts = list(npz["utts"])
    assert utts == sorted(labels)
    for utt, row in zip(utts, npz["scores"]):
        want = predict_feats(model, normalize(feats[utt], STATS, "per_bin"), 32, 16, "single_label")
        assert row == pytest.approx(want, abs=1e-5)
    txt = (out / "scores.txt").read_text().splitlines()
    assert len(txt) == 7 and txt[0].split()[0] == "u0" and len(txt[0].split()) == 4
    assert (out / "labels.txt").read_text().split() == CLASSES
    res = json.loads((out / "results.json").read_text())
    want = compute_metrics(npz["scores"], npz["targets"], None, "single_label", CLASSES)
    assert res["metrics"]["accuracy"] == pytest.approx(want["accuracy"])
    assert res["metrics"]["mAP"] == pytest.approx(want["mAP"])
    md = (out / "RESULTS.md").read_text()
    assert "| accuracy |" in md and "## Per class" in md
    cm = np.array(res["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == 7 and cm.sum(axis=1).tolist() == [3, 2, 2]
    assert np.trace(cm) / 7 == pytest.approx(res["metrics"]["accuracy"])
    for png in ("confusion.png", "per_class_ap.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_partial_labels_and_unlabelled(tmp_path):
    _model_file(tmp_path / "model.pt", "multi_label")
    labels = {"u0": "a", "u1": "a,b", "u2": "", "u3": "c", "u4": "b"}
    known = {"u0": "a,b", "u1": "a,b,c", "u2": "a", "u3": "c", "u4": "b,c"}
    _data_dir(tmp_path / "test", labels, known)
    out = tmp_path / "decode"
    assert score.main(["--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "test"),
                       "--output_dir", str(out), "--device", "cpu", "--num_workers", "0"]) == 0
    npz = np.load(out / "scores.npz")
    res = json.loads((out / "results.json").read_text())["metrics"]
    assert "accuracy" not in res
    assert npz["known"].sum() == 9
    want = compute_metrics(npz["scores"], npz["targets"], npz["known"], "multi_label", CLASSES)
    assert res["mAP"] == pytest.approx(want["mAP"])
    assert [r["positives"] + r["negatives"] for r in res["per_class"]] == [3, 3, 3]
    assert (out / "per_class_ap.png").is_file() and not (out / "confusion.png").exists()
    # without utt2label: scores only
    os.remove(tmp_path / "test" / "utt2label")
    os.remove(tmp_path / "test" / "utt2label_known")
    out2 = tmp_path / "decode2"
    assert score.main(["--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "test"),
                       "--output_dir", str(out2), "--device", "cpu", "--num_workers", "0"]) == 0
    assert (out2 / "scores.txt").exists() and not (out2 / "results.json").exists()


def test_errors(tmp_path, caplog):
    _model_file(tmp_path / "model.pt", "multi_label")
    _data_dir(tmp_path / "test", {"u0": "a", "u1": "b"})
    with open(tmp_path / "test" / "labels.txt", "a") as f:
        f.write("d\n")  # a class the model was not trained on
    rc = score.main(["--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "test"),
                     "--output_dir", str(tmp_path / "o"), "--device", "cpu", "--num_workers", "0"])
    assert rc == 1 and "does not know" in caplog.text
    assert score.main(["--model", str(tmp_path / "nope.pt"), "--data", str(tmp_path / "test"),
                       "--output_dir", str(tmp_path / "o"), "--device", "cpu"]) == 1
    assert "nope.pt" in caplog.text

"""feats_space: the estimate equals the bytes the writer really takes; too little space stops with a message."""
import os

import numpy as np
import pytest

from maskspec.bin import feats_space
from maskspec.data.feats import FeatWriter
from maskspec.features.fbank import FbankConfig

CONFIG = "sample_rate: 16000\nnum_mel_bins: 40\nframe_length: 25.0\nframe_shift: 10.0\n"
DURS = {"a": 1.0, "b": 2.345, "c": 0.01, "d": 10.0}


def data_dir(path, durs):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "utt2dur"), "w") as f:
        f.writelines(f"{u} {d}\n" for u, d in sorted(durs.items()))
    return str(path)


@pytest.mark.parametrize("filetype, dtype", [("ark", "float16"), ("ark", "float32"), ("hdf5", "float32")])
def test_estimate_matches_written_features(tmp_path, filetype, dtype):
    (tmp_path / "fbank.yaml").write_text(CONFIG)
    cfg = FbankConfig.from_yaml(tmp_path / "fbank.yaml")
    with FeatWriter(str(tmp_path / "feats"), filetype, dtype) as w:
        for utt, dur in DURS.items():
            w.write("Yxxxxxxxxxx" + utt, np.zeros((cfg.num_frames(round(dur * 16000)), 40), np.float32))
    real = os.path.getsize(w.data_path)
    est = feats_space.estimate_bytes(DURS.values(), cfg, filetype, dtype)
    # ark: exact (same key length); hdf5: plus the file's own header
    assert est <= real and (est == real if filetype == "ark" else real - est < 8192)


def test_counts_only_clips_without_features_and_stops_when_full(tmp_path, monkeypatch, capsys):
    (tmp_path / "fbank.yaml").write_text(CONFIG)
    train = data_dir(tmp_path / "data" / "train", DURS)
    test = data_dir(tmp_path / "data" / "test", {"a": 1.0, "e": 3.0})
    done = tmp_path / "dump" / "fbank" / "old"
    os.makedirs(done)
    (done / "feats.scp").write_text("d x.ark:1\n")
    (done / ".done").write_text("x\n")
    durations, skipped = feats_space.clips_to_compute([train, test, str(tmp_path / "nodur")], str(done.parent))
    assert durations == {"a": 1.0, "b": 2.345, "c": 0.01, "e": 3.0} and skipped == [str(tmp_path / "nodur")]
    args = ["--fbank_config", str(tmp_path / "fbank.yaml"), "--dir", str(tmp_path / "dump" / "pool"), train, test]
    assert feats_space.main(args) == 0
    assert "features of 5 clips" in capsys.readouterr().err
    monkeypatch.setattr(feats_space, "free_bytes", lambda path: (1000, "/somewhere"))
    assert feats_space.main(args) == 1
    err = capsys.readouterr().err
    assert "not enough space" in err and "/somewhere" in err and "--check_space false" in err

"""FeatDataset: stats, normalisation, deterministic crops, zero padding after normalisation, labels, collate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from maskspec.data.datadir import DataDirError
from maskspec.data.dataset import FeatDataset, collate, crop_or_pad
from maskspec.features.normalize import load_stats
from maskspec.data.feats import FeatWriter

F = 3


@pytest.fixture
def data_dir(tmp_path):
    """Clips of 5, 10 and 20 frames; value = 100 * clip + frame index (+ bin index / 10)."""
    rng_lengths = {"a": 5, "b": 10, "c": 20}
    with FeatWriter(str(tmp_path / "feats"), "ark") as w:
        for k, (utt, t) in enumerate(rng_lengths.items()):
            mat = 100.0 * k + np.arange(t)[:, None] + np.arange(F)[None, :] / 10
            w.write(utt, mat.astype(np.float32))
    stats = dict(num_utts=3, num_frames=35, mean=[1.0, 2.0, 3.0], std=[2.0, 4.0, 0.0], global_mean=5.0,
                 global_std=10.0)
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    return tmp_path


def test_padding_is_zero_after_normalisation(data_dir):
    stats = load_stats(data_dir / "stats.json")
    ds = FeatDataset(data_dir, 8, stats, "global", crop="random")
    item = ds[0]  # clip "a": 5 frames
    assert item["utt"] == "a" and item["num_frames"] == 5 and item["feats"].shape == (8, F)
    assert item["feats"].dtype == torch.float32
    expected = (np.arange(5)[:, None] + np.arange(F)[None, :] / 10 - 5.0) / 10.0
    np.testing.assert_allclose(item["feats"][:5].numpy(), expected, rtol=1e-6)
    assert torch.count_nonzero(item["feats"][5:]) == 0


def test_random_crops_deterministic_per_seed_epoch_index(data_dir):
    ds = FeatDataset(data_dir, 8, None, "none", crop="random", seed=1)
    first = lambda d: [float(d[i]["feats"][0, 0]) % 100 for i in (1, 2)]  # crop offsets of clips b, c
    offsets = first(ds)
    assert all(0 <= o <= t - 8 for o, t in zip(offsets, (10, 20)))
    assert first(FeatDataset(data_dir, 8, None, "none", crop="random", seed=1)) == offsets
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        seen.add(tuple(first(ds)))
        assert first(ds) == first(ds)  # repeatable within an epoch
    assert len(seen) > 1  # crops change with the epoch
    # windows are contiguous: frame values increase by one
    c = ds[2]["feats"][:, 0].numpy()
    np.testing.assert_allclose(np.diff(c), 1.0)


def test_crops_do_not_depend_on_dataloader_workers(data_dir):
    ds = FeatDataset(data_dir, 4, None, "none", crop="random", seed=3)
    ds.set_epoch(5)
    def offsets(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=workers, collate_fn=collate)
        return [b["feats"].clone() for b in loader]
    for a, b in zip(offsets(0), offsets(2)):
        assert torch.equal(a, b)


def test_start_and_no_crop(data_dir):
    ds = FeatDataset(data_dir, 8, None, "none", crop="start")
    assert float(ds[2]["feats"][0, 0]) == 200.0 and ds[2]["num_frames"] == 8
    full = FeatDataset(data_dir, None, None, "none", crop="none")
    assert [full[i]["feats"].shape[0] for i in range(3)] == [5, 10, 20]
    batch = collate([full[0], full[2]])
    assert batch["feats"].shape == (2, 20, F) and batch["num_frames"].tolist() == [5, 20]
    assert torch.count_nonzero(batch["feats"][0, 5:]) == 0
    same = collate([full[2], full[2]])  # equal lengths: stacked as they are
    assert torch.equal(same["feats"][1], full[2]["feats"]) and same["num_frames"].tolist() == [20, 20]


def test_crop_or_pad_checks_mode():
    with pytest.raises(ValueError, match="crop must be"):
        crop_or_pad(np.zeros((3, 2)), 2, "middle")


def test_labels_and_known_mask(data_dir):
    (data_dir / "labels.txt").write_text("dog\ncat\nbird\n")
    (data_dir / "utt2label").write_text("a dog\nb cat,bird\nc\n")
    (data_dir / "utt2label_known").write_text("a dog,cat\nb cat,bird\nc bird\n")
    ds = FeatDataset(data_dir, 8, None, "none", crop="start", with_labels=True)
    assert ds.classes == ["dog", "cat", "bird"]
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["target"].tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert batch["known"].tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert batch["utt"] == ["a", "b", "c"] and batch["index"].tolist() == [0, 1, 2]


def test_missing_label_names_the_utterance(data_dir):
    (data_dir / "labels.txt").write_text("dog\n")
    (data_dir / "utt2label").write_text("a dog\nb dog\n")
    with pytest.raises(DataDirError, match="no label for utterance 'c'"):
        FeatDataset(data_dir, 8, None, "none", with_labels=True)


def test_mel_mismatch_names_the_utterance(data_dir):
    stats = dict(mean=[0.0] * 5, std=[1.0] * 5, global_mean=0.0, global_std=1.0)
    ds = FeatDataset(data_dir, 8, stats, "per_bin")
    with pytest.raises(DataDirError, match="utterance 'a'.*3 mel bins but the stats have 5"):
        ds[0]


def test_bad_modes():
    with pytest.raises(ValueError, match="normalize must be"):
        FeatDataset("x", 8, None, "mean")
    with pytest.raises(ValueError, match="needs stats"):
        FeatDataset("x", 8, None, "per_bin")

"""Packed labels and scp tables give exactly what the dense per-clip arrays gave: targets, known masks (OpenMIC's
partial labels), class-balanced weights, the fine-tuning draw; and DataLoader items are unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from maskspec.data.balanced import WeightedDistributedSampler, class_balanced_weights
from maskspec.data.datadir import DataDirError, read_scp
from maskspec.data.dataset import FeatDataset, collate
from maskspec.data.feats import FeatWriter
from maskspec.data.labels import LabelIndex, read_labels
from maskspec.data.strings import SpecArray, StringArray
from maskspec.tasks.classification import infer_task_type

C = 40


def dense_reference(lines: dict[str, str], classes: list[str]) -> dict[str, np.ndarray]:
    """The representation before packing: one float32 [C] multi-hot per clip."""
    out = {}
    for utt, value in lines.items():
        vec = np.zeros(len(classes), np.float32)
        for label in filter(None, value.split(",")):
            vec[classes.index(label)] = 1.0
        out[utt] = vec
    return out


def old_weights(dense: np.ndarray) -> np.ndarray:
    """class_balanced_weights as it was: the whole float64 [N, C] product."""
    pos = (np.asarray(dense, np.float64) > 0.5).astype(np.float64)
    return pos @ (1000.0 / (100.0 + pos.sum(axis=0)))


@pytest.fixture
def labelled_dir(tmp_path):
    """300 clips with skewed 0-6 labels (some repeated in a line), partial labels, feats.scp in another order."""
    rng = np.random.default_rng(0)
    classes = [f"c{i}_{'x' * (i % 3)}" for i in range(C)]
    p = 1.0 / np.arange(1, C + 1)
    utts = [f"u{i:04d}" for i in range(300)]
    labels, known = {}, {}
    for u in utts:
        picks = rng.choice(C, size=rng.integers(0, 7), p=p / p.sum())
        extra = rng.choice(C, size=rng.integers(0, 5))
        labels[u] = ",".join(classes[c] for c in picks)
        known[u] = ",".join(classes[c] for c in np.concatenate([picks, extra]).astype(int))
    (tmp_path / "labels.txt").write_text("".join(c + "\n" for c in classes))
    (tmp_path / "utt2label").write_text("".join(f"{u} {v}".rstrip() + "\n" for u, v in labels.items()))
    (tmp_path / "utt2label_known").write_text("".join(f"{u} {v}".rstrip() + "\n" for u, v in known.items()))
    with FeatWriter(str(tmp_path / "feats"), "ark") as w:
        for i, u in enumerate(utts):
            w.write(u, np.full((3, 2), i, np.float32))
    scp = tmp_path / "feats.scp"
    scp.write_text("".join(reversed(scp.read_text().splitlines(keepends=True))))  # another order than utt2label
    return tmp_path, classes, labels, known


def test_packed_labels_equal_dense_targets_known_and_weights(labelled_dir):
    path, classes, labels, known = labelled_dir
    ds = FeatDataset(path, None, None, "none", crop="none", with_labels=True)
    utts = list(ds.utts)
    assert utts == sorted(labels, reverse=True)
    ref_t, ref_k = dense_reference(labels, classes), dense_reference(known, classes)
    targets = np.stack([ref_t[u] for u in utts])
    mask = np.stack([ref_k[u] for u in utts])
    assert ds.labels.targets().dtype == np.float32
    np.testing.assert_array_equal(ds.labels.targets(), targets)
    np.testing.assert_array_equal(ds.labels.known_mask(), mask)
    np.testing.assert_array_equal(ds.labels.targets([5, 0, 5]), targets[[5, 0, 5]])
    for i in (0, 17, 299):
        item = ds[i]
        assert item["utt"] == utts[i]
        np.testing.assert_array_equal(item["target"].numpy(), targets[i])
        np.testing.assert_array_equal(item["known"].numpy(), mask[i])
    batch = collate([ds[i] for i in range(8)])
    np.testing.assert_array_equal(batch["target"].numpy(), targets[:8])
    # the weights are bit for bit those of the dense product (a draw depends on every bit of p)
    w = class_balanced_weights(ds.labels)
    assert np.array_equal(w, old_weights(targets))
    assert np.array_equal(class_balanced_weights(targets), w)
    assert (w == 0).sum() == (targets.sum(axis=1) == 0).sum() > 0
    assert infer_task_type(ds.labels) == "multi_label"


def test_weights_exact_over_several_blocks():
    rng = np.random.default_rng(1)
    dense = (rng.random((9000, 527)) < 0.004).astype(np.float32)
    dense[np.arange(0, 9000, 7), rng.integers(0, 527, 1286)] = 1
    packed = LabelIndex.from_dense(dense)
    assert np.array_equal(class_balanced_weights(packed), old_weights(dense))
    s_new = WeightedDistributedSampler(class_balanced_weights(packed), 5000, rank=1, world_size=4, seed=3)
    s_old = WeightedDistributedSampler(old_weights(dense), 5000, rank=1, world_size=4, seed=3)
    assert list(s_new) == list(s_old)


def test_single_label_and_no_known(tmp_path):
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    (tmp_path / "utt2label").write_text("x b\ny a\nz c\n")
    utts, labels = read_labels(tmp_path, ["a", "b", "c"])
    assert list(utts) == ["x", "y", "z"] and labels.known is None
    np.testing.assert_array_equal(labels.known_mask(), np.ones((3, 3), np.float32))
    assert infer_task_type(labels) == "single_label"
    (tmp_path / "utt2label").write_text("x b,a\ny a\nz c\n")
    assert infer_task_type(read_labels(tmp_path, ["a", "b", "c"])[1]) == "multi_label"


def test_label_errors(tmp_path):
    (tmp_path / "utt2label").write_text("x a\ny b\n")
    with pytest.raises(DataDirError, match=r"utt2label: no label for utterance 'q' of feats.scp \(1 missing\)"):
        read_labels(tmp_path, ["a", "b"], ["x", "q", "y"])
    (tmp_path / "utt2label_known").write_text("x a\ny a\n")
    with pytest.raises(DataDirError, match="utterance 'y' has positive label 'b' that is not marked known"):
        read_labels(tmp_path, ["a", "b"])
    (tmp_path / "utt2label_known").write_text("x a\n")
    with pytest.raises(DataDirError, match="utt2label_known: no label for utterance 'y' of utt2label"):
        read_labels(tmp_path, ["a", "b"])


def test_scp_tables_round_trip(tmp_path):
    values = ["/d/raw.1.ark:12", "/d/raw.1.ark:99", "x.h5:u:3", "plain", ":odd", "/d/raw.2.ark:0", "é.ark:5"]
    (tmp_path / "feats.scp").write_text("".join(f"k{i} {v}\n" for i, v in enumerate(values)), encoding="utf-8")
    utts, specs = read_scp(tmp_path / "feats.scp")
    assert isinstance(utts, StringArray) and isinstance(specs, SpecArray)
    assert list(utts) == [f"k{i}" for i in range(len(values))] and list(specs) == values
    assert specs[-1] == values[-1] and utts[-1] == "k6" and len(specs.files) == 5
    assert list(specs.take(np.array([3, 0]))) == [values[3], values[0]]
    with pytest.raises(IndexError):
        utts[7]
    (tmp_path / "feats.scp").write_text("a x.ark:1\na x.ark:2\n")
    with pytest.raises(DataDirError, match=r"feats.scp:2: duplicate key 'a'"):
        read_scp(tmp_path / "feats.scp")


def test_workers_get_the_same_items(labelled_dir):
    path = labelled_dir[0]
    ds = FeatDataset(path, None, None, "none", crop="none", with_labels=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=50, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert [u for b in batches for u in b["utt"]] == list(ds.utts)
    np.testing.assert_array_equal(torch.cat([b["target"] for b in batches]).numpy(), ds.labels.targets())


def test_first_duplicate_without_a_set_of_keys():
    keys = StringArray.from_strings(["b", "a", "c", "a", "b"])
    hashes = np.array([hash(k) for k in keys], np.int64)
    assert keys.first_duplicate(hashes) == 3  # line 4 repeats "a" before line 5 repeats "b"
    # colliding hashes: the strings decide
    assert keys.first_duplicate(np.zeros(5, np.int64)) == 3
    assert StringArray.from_strings(["x", "y", "z"]).first_duplicate(np.zeros(3, np.int64)) is None

import numpy as np
import pytest

from maskspec.data.datadir import (
    DataDirError, read_classes, read_kv, read_list, read_segments, write_kv,
)
from maskspec.data.labels import read_targets


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_kv_values_keep_spaces_and_pipes(tmp_path):
    path = write(tmp_path / "wav.scp", "b sox x.wav -t wav - |\na /data/a.wav\n")
    assert read_kv(path) == {"b": "sox x.wav -t wav - |", "a": "/data/a.wav"}
    assert list(read_kv(path)) == ["b", "a"]  # file order


@pytest.mark.parametrize(
    "text,message",
    [
        ("a 1\n\nb 2\n", ":2: empty line"),
        ("a 1\nb\n", ":2: key 'b' has no value"),
        ("a 1\nb 2\na 3\n", ":3: duplicate key 'a'"),
    ],
)
def test_read_kv_errors_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "utt2dur", text)
    with pytest.raises(DataDirError, match=f"{path}{message}"):
        read_kv(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataDirError, match="no such file"):
        read_kv(tmp_path / "absent")
    with pytest.raises(DataDirError, match="no such file"):
        read_list(tmp_path / "absent")


def test_write_kv_sorts_in_c_order_and_is_atomic(tmp_path):
    path = tmp_path / "utt2x"
    write_kv(path, {"b": 2, "B": 1, "a_1": "x y", "a": None, "é": 3})
    assert path.read_text(encoding="utf-8") == "B 1\na\na_1 x y\nb 2\né 3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["utt2x"]
    assert read_kv(path, allow_empty_value=True) == {"B": "1", "a": "", "a_1": "x y", "b": "2", "é": "3"}


def test_classes_and_targets(tmp_path):
    write(tmp_path / "labels.txt", "dog\ncat\nbird\n")
    write(tmp_path / "utt2label", "u1 cat\nu2 dog,bird\n")
    assert read_classes(tmp_path) == ["dog", "cat", "bird"]
    targets, known = read_targets(tmp_path)
    assert known is None
    np.testing.assert_array_equal(targets["u1"], [0, 1, 0])
    np.testing.assert_array_equal(targets["u2"], [1, 0, 1])


def test_partial_labels(tmp_path):
    write(tmp_path / "labels.txt", "a\nb\nc\n")
    write(tmp_path / "utt2label", "u1 a\nu2\n")
    write(tmp_path / "utt2label_known", "u1 a,b\nu2 c\n")
    targets, known = read_targets(tmp_path)
    np.testing.assert_array_equal(targets["u2"], [0, 0, 0])
    np.testing.assert_array_equal(known["u1"], [1, 1, 0])
    write(tmp_path / "utt2label_known", "u1 b\nu2 c\n")
    with pytest.raises(DataDirError, match="positive label 'a' that is not marked known"):
        read_targets(tmp_path)


def test_label_errors_name_file_and_line(tmp_path):
    write(tmp_path / "labels.txt", "a\nb\na\n")
    with pytest.raises(DataDirError, match=r"labels.txt:3: duplicate class 'a'"):
        read_classes(tmp_path)
    write(tmp_path / "labels.txt", "a\nb\n")
    write(tmp_path / "utt2label", "u1 a\nu2 z\n")
    with pytest.raises(DataDirError, match=r"utt2label:2: utterance 'u2' has label 'z' not in labels.txt"):
        read_targets(tmp_path)
    write(tmp_path / "utt2label", "u1 a\nu2\n")
    with pytest.raises(DataDirError, match=r"utt2label:2: key 'u2' has no value"):
        read_targets(tmp_path)


def test_segments(tmp_path):
    path = write(tmp_path / "segments", "s1 r1 0 1.5\ns2 r1 1.5 -1\n")
    assert read_segments(path) == {"s1": ("r1", 0.0, 1.5), "s2": ("r1", 1.5, -1.0)}
    for text, message in [
        ("s1 r1 0\n", ":1: expected '<utt> <reco> <start> <end>'"),
        ("s1 r1 0 1\ns2 r1 x 2\n", ":2: start/end of 's2' are not numbers"),
        ("s1 r1 2 1\n", ":1: segment 's1' ends"),
        ("s1 r1 -1 1\n", ":1: start/end of 's1' must be finite and start >= 0"),
    ]:
        write(path, text)
        with pytest.raises(DataDirError, match=f"{path}{message}"):
            read_segments(path)

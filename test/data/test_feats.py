import os

import kaldiio
import numpy as np
import pytest

from maskspec.data.datadir import read_kv
from maskspec.data.feats import FeatReadError, FeatWriter, load_feat, split_h5_spec


def random_mats(n=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    return {f"utt{i}": (rng.standard_normal((10 + 7 * i, dim)) * 5 - 3).astype(np.float32) for i in range(n)}


@pytest.mark.parametrize("filetype", ["ark", "hdf5"])
def test_round_trip_exact_float32(tmp_path, filetype):
    mats = random_mats()
    with FeatWriter(str(tmp_path / "f.1"), filetype) as w:
        for utt in reversed(list(mats)):  # written out of order, scp comes out sorted
            w.write(utt, mats[utt])
    scp = read_kv(tmp_path / "f.1.scp")
    assert list(scp) == sorted(mats)
    for utt, mat in mats.items():
        out = load_feat(scp[utt])
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, mat)
    assert w.num_frames == {u: m.shape[0] for u, m in mats.items()}


def test_ark_is_readable_by_kaldiio_as_kaldi_matrices(tmp_path):
    mats = random_mats(2)
    with FeatWriter(str(tmp_path / "f"), "ark") as w:
        for utt, mat in mats.items():
            w.write(utt, mat)
    for utt, mat in kaldiio.load_ark(str(tmp_path / "f.ark")):
        np.testing.assert_array_equal(mat, mats[utt])


@pytest.mark.parametrize("filetype", ["ark", "hdf5"])
def test_float16_storage(tmp_path, filetype):
    mats = random_mats(dim=128)
    with FeatWriter(str(tmp_path / "f"), filetype, "float16") as w:
        for utt, mat in mats.items():
            w.write(utt, mat)
    scp = read_kv(tmp_path / "f.scp")
    for utt, mat in mats.items():
        out = load_feat(scp[utt])
        assert out.dtype == np.float32 and out.flags.writeable
        np.testing.assert_allclose(out, mat, rtol=1e-3, atol=1e-3)
        # exactly the float16 values: the fast conversion changes nothing
        np.testing.assert_array_equal(out, mat.astype(np.float16).astype(np.float32))
    size16 = os.path.getsize(tmp_path / ("f.ark" if filetype == "ark" else "f.h5"))
    with FeatWriter(str(tmp_path / "g"), filetype) as w:
        for utt, mat in mats.items():
            w.write(utt, mat)
    size32 = os.path.getsize(tmp_path / ("g.ark" if filetype == "ark" else "g.h5"))
    assert size16 < 0.75 * size32


@pytest.mark.parametrize("filetype", ["ark", "hdf5"])
def test_exception_leaves_nothing(tmp_path, filetype):
    with pytest.raises(RuntimeError):
        with FeatWriter(str(tmp_path / "f"), filetype) as w:
            w.write("a", np.zeros((3, 4), np.float32))
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="filetype"):
        FeatWriter(str(tmp_path / "f"), "npy")
    with pytest.raises(ValueError, match="dtype"):
        FeatWriter(str(tmp_path / "f"), "ark", "int8")
    for filetype in ("ark", "hdf5"):
        with FeatWriter(str(tmp_path / f"f_{filetype}"), filetype) as w:
            w.write("a", np.zeros((3, 4), np.float32))
            with pytest.raises(ValueError, match="written twice"):
                w.write("a", np.zeros((3, 4), np.float32))
            with pytest.raises(ValueError, match="whitespace"):
                w.write("a b", np.zeros((3, 4), np.float32))
            with pytest.raises(ValueError, match=r"\[frames, mel\]"):
                w.write("c", np.zeros(3, np.float32))
        assert list(read_kv(tmp_path / f"f_{filetype}.scp")) == ["a"]


def test_load_feat_errors_name_the_value(tmp_path):
    with FeatWriter(str(tmp_path / "f"), "hdf5") as w:
        w.write("a", np.zeros((3, 4), np.float32))
    with FeatWriter(str(tmp_path / "g"), "ark") as w:
        w.write("a", np.zeros((3, 4), np.float32))
    for spec in [f"{tmp_path}/f.h5:nope", f"{tmp_path}/none.h5:a", f"{tmp_path}/none.ark:2", f"{tmp_path}/g.ark:1"]:
        with pytest.raises(FeatReadError, match=f"'{spec}'"):
            load_feat(spec)


def test_split_h5_spec():
    assert split_h5_spec("/d/x.h5:utt-1") == ("/d/x.h5", "utt-1")
    assert split_h5_spec("/d/x.hdf5:u") == ("/d/x.hdf5", "u")
    assert split_h5_spec("/d/x.ark:123") is None

"""Feature storage: the one reader for any ``feats.scp`` value, and the writer of ark/scp or HDF5 files.

Two storage formats are supported, chosen per job by ``--filetype``:

* ``ark``: Kaldi binary archive written with kaldiio; the scp value is ``<file>.ark:<byte offset>``. float16 data
  are stored as NPY blocks inside the archive (Kaldi's own tools cannot read those; kaldiio and MaskSpec can).
* ``hdf5``: one ``.h5`` file per job with one dataset per utterance; the scp value is ``<file>.h5:<utt-id>``.

Readers always return float32, whatever the storage dtype.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from maskspec.utils.atomic import atomic_path

FILETYPES = ("ark", "hdf5")
DTYPES = ("float32", "float16")


class FeatReadError(IOError):
    """A feats.scp value that cannot be read; the message names the value."""


class _H5Cache:
    """Open HDF5 files, a few at a time, per process (h5py handles must not cross a fork)."""

    def __init__(self, size: int = 16):
        self.size = size
        self.pid = os.getpid()
        self.files: OrderedDict[str, object] = OrderedDict()

    def get(self, path: str):
        import h5py

        if os.getpid() != self.pid:  # forked DataLoader worker: drop the parent's handles
            self.files = OrderedDict()
            self.pid = os.getpid()
        if path in self.files:
            self.files.move_to_end(path)
            return self.files[path]
        handle = h5py.File(path, "r")
        self.files[path] = handle
        if len(self.files) > self.size:
            _, old = self.files.popitem(last=False)
            old.close()
        return handle


_h5 = _H5Cache()


def split_h5_spec(spec: str) -> tuple[str, str] | None:
    """``'dir/x.h5:utt'`` -> ``('dir/x.h5', 'utt')``; None when ``spec`` is not an HDF5 value."""
    for ext in (".h5:", ".hdf5:"):
        i = spec.find(ext)
        if i >= 0:
            return spec[: i + len(ext) - 1], spec[i + len(ext) :]
    return None


def load_feat(spec: str) -> np.ndarray:
    """The feature matrix ``[frames, mel]`` (float32) of one feats.scp value (ark offset or HDF5 key)."""
    h5 = split_h5_spec(spec)
    try:
        if h5 is not None:
            path, key = h5
            mat = _h5.get(path)[key][()]
        else:
            import kaldiio

            mat = kaldiio.load_mat(spec)
    except Exception as e:  # noqa: BLE001 - re-raised with the value that failed
        raise FeatReadError(f"cannot read features '{spec}': {e}") from e
    mat = np.asarray(mat)
    if mat.ndim != 2:
        raise FeatReadError(f"features '{spec}' have shape {mat.shape}, expected [frames, mel]")
    if mat.dtype == np.float32:
        return mat
    # torch converts float16 (how features are often stored) about 10x faster than numpy's astype, which
    # otherwise is the largest per-clip cost of a pre-training loader (benchmarks/loader_throughput.py)
    import torch

    return torch.tensor(mat, dtype=torch.float32).numpy()


class FeatWriter:
    """Write feature matrices to ``<prefix>.ark`` (or ``.h5``) and ``<prefix>.scp``, atomically.

    Use as a context manager; files appear under their final names only when the block exits without an
    exception, so a killed job leaves no archive or scp that a later stage would trust::

        with FeatWriter("dump/raw_fbank_train.1", "ark", "float16") as w:
            w.write("utt1", mat)
    """

    def __init__(self, prefix: str, filetype: str = "ark", dtype: str = "float32"):
        if filetype not in FILETYPES:
            raise ValueError(f"filetype must be one of {FILETYPES}, got {filetype!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.filetype, self.dtype = filetype, np.dtype(dtype)
        self.data_path = os.path.abspath(prefix + (".ark" if filetype == "ark" else ".h5"))
        self.scp_path = os.path.abspath(prefix + ".scp")
        self.entries: list[tuple[str, str, int]] = []  # (utt, scp value, frames)
        self._seen: set[str] = set()

    def __enter__(self) -> "FeatWriter":
        self._data_ctx = atomic_path(self.data_path)
        tmp = self._data_ctx.__enter__()
        if self.filetype == "ark":
            self._fd = open(tmp, "wb")
        else:
            import h5py

            self._fd = h5py.File(tmp, "w")
        return self

    def write(self, utt: str, mat: np.ndarray) -> None:
        """Append one ``[frames, mel]`` matrix under the key ``utt``."""
        if not utt or any(c.isspace() for c in utt):
            raise ValueError(f"utterance id {utt!r} is empty or contains whitespace")
        if utt in self._seen:
            raise ValueError(f"utterance {utt!r} written twice to {self.data_path}")
        mat = np.asarray(mat)
        if mat.ndim != 2:
            raise ValueError(f"utterance {utt!r}: expected a [frames, mel] matrix, got shape {mat.shape}")
        mat = np.ascontiguousarray(mat, dtype=self.dtype)
        if self.filetype == "ark":
            from kaldiio import matio

            # the scp offset points just past "<utt> ", where the matrix header starts
            offset = self._fd.tell() + len(utt.encode("utf-8")) + 1
            # Kaldi matrices have no half type: float16 goes in as an NPY block, which kaldiio reads back
            write_function = None if self.dtype == np.float32 else "numpy"
            matio.save_ark(self._fd, {utt: mat}, write_function=write_function)
            value = f"{self.data_path}:{offset}"
        else:
            self._fd.create_dataset(utt, data=mat)
            value = f"{self.data_path}:{utt}"
        self._seen.add(utt)
        self.entries.append((utt, value, int(mat.shape[0])))

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._fd.close()
        finally:
            self._data_ctx.__exit__(exc_type, exc, tb)
        if exc_type is None:
            # the scp is what later stages trust, so it appears last, once the data file is in place
            from maskspec.data.datadir import write_kv

            write_kv(self.scp_path, [(u, v) for u, v, _ in self.entries])
        return False

    @property
    def num_frames(self) -> dict[str, int]:
        return {u: n for u, _, n in self.entries}

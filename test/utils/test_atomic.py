import os

import pytest

from maskspec.utils.atomic import atomic_open, atomic_path


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(target.parent) and tmp != str(target)
        with open(tmp, "wb") as f:
            f.write(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    assert os.listdir(target.parent) == ["out.bin"]


def test_atomic_path_keeps_old_content_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise KeyboardInterrupt  # BaseException too: a Ctrl-C must not leave the temporary file
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_open(tmp_path):
    target = tmp_path / "x.txt"
    with atomic_open(target, "w", encoding="utf-8") as f:
        f.write("héllo\n")
        assert not target.exists()
    assert target.read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(ValueError, match="boom"):
        with atomic_open(target, "w") as f:
            f.write("partial")
            raise ValueError("boom")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert os.listdir(tmp_path) == ["x.txt"]
    with pytest.raises(ValueError, match="for writing"):
        with atomic_open(target, "r"):
            pass


def test_atomic_file_gets_the_umask_mode_not_mkstemp_0600(tmp_path):
    import os

    from maskspec.utils.atomic import atomic_open

    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "shared.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "shared.txt").st_mode & 0o777) == 0o644

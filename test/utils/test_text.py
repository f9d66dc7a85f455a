"""Transcripts (`text`, `<utt> <words...>`) in data directories: validate, fix, subset and combine handle them."""
from __future__ import annotations

import pytest

TOOL = "validate_data_dir.sh"


def with_text(d, transcripts=None):
    """Adds a `text` file with one transcript (several words, a double space kept) per utterance of ``d``."""
    utts = [line.split()[0] for line in (d / "utt2dur").read_text().splitlines()]
    transcripts = transcripts or {u: f"HELLO  WORLD {u.upper()}" for u in utts}
    (d / "text").write_text("".join(f"{u} {transcripts[u]}\n" for u in utts))
    return transcripts


def test_valid_text_passes(tools, data_dir):
    with_text(data_dir("data"))
    assert "6 utterances" in tools.run(TOOL, "data").stdout


@pytest.mark.parametrize("lineno, line, words", [
    (2, b"r1-1", b"no value for r1-1"),
    (3, b"r2-0 caf\xe9", b"not valid UTF-8"),
    (4, b"r2-1 A\tB", b"tab or control character"),
    (5, b"r3-05 HELLO", b"r3-0 is not in text"),
])
def test_bad_text_line_is_named(tools, data_dir, lineno, line, words):
    d = data_dir("data")
    with_text(d)
    lines = (d / "text").read_bytes().splitlines()
    lines[lineno - 1] = line
    (d / "text").write_bytes(b"\n".join(lines) + b"\n")
    proc = tools.run(TOOL, "data", check=False)
    err = proc.stderr.encode()
    where = b"segments:5" if b"is not in text" in words else f"text:{lineno}".encode()
    assert f"data/{where.decode()}: ".encode() in err and words in err, proc.stderr


def test_fix_subset_combine_keep_transcripts(tools, data_dir, tmp_path):
    d = data_dir("data")
    texts = with_text(d)
    lines = (d / "text").read_text().splitlines(keepends=True)
    (d / "text").write_text("".join(reversed([l for l in lines if not l.startswith("r2-1 ")])))
    proc = tools.run("fix_data_dir.sh", "data")
    assert "text: kept 5 of 5 lines" in proc.stdout and "5 utterances kept" in proc.stdout
    assert "r2-1" not in (d / "utt2dur").read_text()  # dropped everywhere: it had no transcript
    assert (d / "text").read_text() == "".join(f"{u} {texts[u]}\n" for u in sorted(texts) if u != "r2-1")
    tools.run(TOOL, "data")

    tools.run("subset_data_dir.sh", "--first", "2", "data", "sub")
    assert (tmp_path / "sub/text").read_text() == "r1-0 HELLO  WORLD R1-0\nr1-1 HELLO  WORLD R1-1\n"
    other = data_dir("other", n_reco=4)
    with_text(other, {u: "BYE" for u in ("r4-0", "r4-1", "r1-0", "r1-1", "r2-0", "r2-1", "r3-0", "r3-1")})
    tools.run("subset_data_dir.sh", "--last", "2", other, "other4")
    (tmp_path / "other4/utt2spk").write_text((tmp_path / "other4/utt2spk").read_text().replace(" s", " t"))
    tools.run("combine_data.sh", "all", "sub", "other4")
    assert (tmp_path / "all/text").read_text().splitlines() == [
        "r1-0 HELLO  WORLD R1-0", "r1-1 HELLO  WORLD R1-1", "r4-0 BYE", "r4-1 BYE"]
    tools.run(TOOL, "all")

"""utils/split_scp.pl, filter_scp.pl, utt2spk_to_spk2utt.pl and spk2utt_to_utt2spk.pl."""
from __future__ import annotations

import pytest


def lines(path):
    return path.read_text().splitlines()


@pytest.fixture
def scp(tmp_path):
    path = tmp_path / "in.scp"
    path.write_text("".join(f"utt{i:02d} /wav/{i}.wav\n" for i in range(1, 11)))
    return path


@pytest.mark.parametrize("n, sizes", [(1, [10]), (3, [4, 3, 3]), (4, [3, 3, 2, 2]), (10, [1] * 10)])
def test_split_sizes_and_union(tools, scp, tmp_path, n, sizes):
    outs = [tmp_path / f"split{n}" / str(i) / "wav.scp" for i in range(1, n + 1)]
    tools.run("split_scp.pl", scp, *outs)
    assert [len(lines(o)) for o in outs] == sizes
    assert sum((lines(o) for o in outs), []) == lines(scp)  # every line once, in the original order


def test_split_more_outputs_than_lines_is_an_error(tools, scp, tmp_path):
    proc = tools.run("split_scp.pl", scp, *[tmp_path / f"o{i}" for i in range(11)], check=False)
    assert "10 lines" in proc.stderr and "11 outputs" in proc.stderr
    assert not (tmp_path / "o0").exists()


def test_split_by_speaker_keeps_speakers_whole_and_balanced(tools, scp, tmp_path):
    speakers = ["a", "a", "a", "b", "c", "c", "d", "d", "d", "e"]
    (tmp_path / "utt2spk").write_text("".join(f"utt{i:02d} {s}\n" for i, s in enumerate(speakers, 1)))
    outs = [tmp_path / f"o{i}" for i in range(3)]
    tools.run("split_scp.pl", "--utt2spk", tmp_path / "utt2spk", scp, *outs)
    parts = [lines(o) for o in outs]
    assert sum(parts, []) == lines(scp)
    spk_of = {f"utt{i:02d}": s for i, s in enumerate(speakers, 1)}
    owner = {}
    for k, part in enumerate(parts):
        for line in part:
            assert owner.setdefault(spk_of[line.split()[0]], k) == k
    assert [len(p) for p in parts] == [3, 3, 4]  # a | b c | d e : as even as whole speakers allow


def test_split_by_speaker_errors(tools, scp, tmp_path):
    (tmp_path / "utt2spk").write_text("".join(f"utt{i:02d} {'a' if i < 6 else 'b'}\n" for i in range(1, 11)))
    proc = tools.run("split_scp.pl", "--utt2spk", tmp_path / "utt2spk", scp, "x1", "x2", "x3", check=False)
    assert "2 speakers" in proc.stderr
    (tmp_path / "short").write_text("utt01 a\n")
    proc = tools.run("split_scp.pl", "--utt2spk", tmp_path / "short", scp, "x1", check=False)
    assert "in.scp:2" in proc.stderr and "utt02" in proc.stderr


def test_filter_keeps_order_of_input(tools, scp, tmp_path):
    (tmp_path / "ids").write_text("utt07\nutt02 extra fields\nnot-there\n")
    out = tools.run("filter_scp.pl", tmp_path / "ids", scp).stdout
    assert out == "utt02 /wav/2.wav\nutt07 /wav/7.wav\n"
    out = tools.run("filter_scp.pl", "--exclude", tmp_path / "ids", scp).stdout.splitlines()
    assert len(out) == 8 and "utt02 /wav/2.wav" not in out and out[0] == "utt01 /wav/1.wav"


def test_filter_on_another_field_and_stdin(tools, tmp_path):
    (tmp_path / "segments").write_text("u1 r1 0 1\nu2 r2 0 1\nu3 r1 1 2\n")
    (tmp_path / "recos").write_text("r1\n")
    out = tools.run("filter_scp.pl", "-f", "2", tmp_path / "recos", tmp_path / "segments").stdout
    assert out == "u1 r1 0 1\nu3 r1 1 2\n"
    out = tools.run("filter_scp.pl", tmp_path / "recos", stdin="r1 x\nr2 y\n").stdout
    assert out == "r1 x\n"
    proc = tools.run("filter_scp.pl", "-f", "5", tmp_path / "recos", tmp_path / "segments", check=False)
    assert "segments:1" in proc.stderr


def test_spk2utt_round_trip(tools, tmp_path):
    (tmp_path / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\nc-1 c\nc-2 c\n")
    spk2utt = tools.run("utt2spk_to_spk2utt.pl", tmp_path / "utt2spk").stdout
    assert spk2utt == "a a-1 a-2\nb b-1\nc c-1 c-2\n"
    back = tools.run("spk2utt_to_utt2spk.pl", stdin=spk2utt).stdout
    assert back == (tmp_path / "utt2spk").read_text()
    (tmp_path / "bad").write_text("a-1 a\na-2\n")
    proc = tools.run("utt2spk_to_spk2utt.pl", tmp_path / "bad", check=False)
    assert "bad:2" in proc.stderr

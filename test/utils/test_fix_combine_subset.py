"""utils/fix_data_dir.sh, combine_data.sh and subset_data_dir.sh keep data directories consistent."""
from __future__ import annotations

import pytest

FILES = ["wav.scp", "segments", "utt2label", "utt2dur", "utt2spk", "feats.scp", "utt2num_frames"]


def keys(path):
    return [line.split()[0] for line in path.read_text().splitlines()]


def utts(d):
    return keys(d / "segments")


# ---------------------------------------------------------------- fix_data_dir.sh

def test_fix_sorts_intersects_and_backs_up(tools, data_dir):
    d = data_dir("data")
    original = {name: (d / name).read_text() for name in FILES}
    # Shuffle one file, drop an utterance from another, add an unknown one, duplicate a line exactly,
    # and add a recording no segment uses.
    (d / "utt2dur").write_text("".join(reversed((d / "utt2dur").read_text().splitlines(keepends=True))))
    (d / "feats.scp").write_text(original["feats.scp"].replace("r2-1 /feats/raw.1.ark:201\n", ""))
    first_label_line = original["utt2label"].splitlines(keepends=True)[0]
    (d / "utt2label").write_text(original["utt2label"] + "zz-9 bird\n" + first_label_line)
    (d / "wav.scp").write_text(original["wav.scp"] + "r8 /corpus/r8.wav\n")
    assert tools.run("validate_data_dir.sh", "data", check=False).returncode == 1

    proc = tools.run("fix_data_dir.sh", "data")
    assert "utt2label: kept 5 of 8 lines, dropped 3" in proc.stdout
    assert "wav.scp: kept 3 of 4 lines, dropped 1" in proc.stdout
    assert "feats.scp: kept 5 of 5 lines" in proc.stdout
    assert "5 utterances kept" in proc.stdout
    for name in FILES:
        assert keys(d / name) == sorted(keys(d / name))
        if name != "wav.scp":
            assert "r2-1" not in keys(d / name)
    assert keys(d / "wav.scp") == ["r1", "r2", "r3"]
    assert (d / ".backup/utt2label").read_text() == original["utt2label"] + "zz-9 bird\n" + first_label_line
    assert "5 utterances" in tools.run("validate_data_dir.sh", "data").stdout


def test_fix_rebuilds_spk2utt_and_drops_orphan_recordings(tools, data_dir):
    d = data_dir("data")
    (d / "spk2utt").write_text("stale line\n")
    (d / "utt2dur").write_text("".join(l for l in (d / "utt2dur").read_text().splitlines(keepends=True)
                                       if not l.startswith("r3-")))
    tools.run("fix_data_dir.sh", "data")
    assert keys(d / "wav.scp") == ["r1", "r2"]
    assert (d / "spk2utt").read_text() == "s0 r2-0 r2-1\ns1 r1-0 r1-1\n"
    tools.run("validate_data_dir.sh", "data")


def test_fix_refuses_conflicting_duplicates(tools, data_dir):
    d = data_dir("data")
    before = (d / "utt2dur").read_text()
    (d / "utt2dur").write_text(before + "r1-0 9.0\n")
    proc = tools.run("fix_data_dir.sh", "data", check=False)
    assert "data/utt2dur:7: r1-0 has two different lines (also line 1)" in proc.stderr
    assert (d / "utt2dur").read_text() == before + "r1-0 9.0\n"  # nothing changed
    assert not (d / ".backup").exists()


def test_fix_with_no_common_utterance_is_an_error(tools, data_dir):
    d = data_dir("data")
    (d / "utt2spk").write_text("other s1\n")
    proc = tools.run("fix_data_dir.sh", "data", check=False)
    assert "no utterance" in proc.stderr


# ---------------------------------------------------------------- combine_data.sh

def test_combine_two_sources(tools, data_dir, tmp_path):
    a = data_dir("a", n_reco=2)
    b = data_dir("b", n_reco=4)
    # b keeps only its recordings r3 and r4 so that ids do not collide.
    tools.run("subset_data_dir.sh", "--last", "4", b, tmp_path / "b34")
    (tmp_path / "b34/utt2spk").write_text((tmp_path / "b34/utt2spk").read_text().replace(" s", " t"))
    proc = tools.run("combine_data.sh", "all", a, tmp_path / "b34")
    assert "8 utterances from 2 sources" in proc.stdout
    combined = tmp_path / "all"
    assert utts(combined) == ["r1-0", "r1-1", "r2-0", "r2-1", "r3-0", "r3-1", "r4-0", "r4-1"]
    assert keys(combined / "wav.scp") == ["r1", "r2", "r3", "r4"]
    assert (combined / "labels.txt").read_text() == (a / "labels.txt").read_text()
    assert (combined / "spk2utt").read_text().splitlines()[0] == "s0 r2-0 r2-1"
    assert "8 utterances" in tools.run("validate_data_dir.sh", "all").stdout


def test_combine_leaves_out_a_file_missing_from_a_source(tools, data_dir, tmp_path):
    a = data_dir("a", n_reco=1)
    b = data_dir("b", n_reco=2)
    tools.run("subset_data_dir.sh", "--last", "2", b, tmp_path / "b2")
    (tmp_path / "b2/feats.scp").unlink()
    (tmp_path / "out").mkdir()
    (tmp_path / "out/feats.scp").write_text("stale 1\n")
    proc = tools.run("combine_data.sh", "out", a, tmp_path / "b2")
    assert "feats.scp is not in every source" in proc.stderr
    assert not (tmp_path / "out/feats.scp").exists()
    tools.run("validate_data_dir.sh", "--no-feats", "out")


def test_combine_errors(tools, data_dir, tmp_path):
    a = data_dir("a", n_reco=2)
    b = data_dir("b", n_reco=2)
    proc = tools.run("combine_data.sh", "out", a, b, check=False)
    assert "r1 has a different entry" not in proc.stderr  # same wav.scp lines are shared recordings
    assert "b/segments:1: id r1-0 is also in" in proc.stderr
    c = data_dir("c", n_reco=3)
    tools.run("subset_data_dir.sh", "--last", "2", c, tmp_path / "c3")
    (tmp_path / "c3/labels.txt").write_text("bird\ncat\ndog\nfrog\n")
    proc = tools.run("combine_data.sh", "out", a, tmp_path / "c3", check=False)
    assert "labels.txt differs" in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing written on error
    proc = tools.run("combine_data.sh", a, a, check=False)
    assert "also a source" in proc.stderr


# ---------------------------------------------------------------- subset_data_dir.sh

@pytest.mark.parametrize("args, expected", [
    (["--first", "3"], ["r1-0", "r1-1", "r2-0"]),
    (["--last", "2"], ["r3-0", "r3-1"]),
])
def test_subset_first_last(tools, data_dir, tmp_path, args, expected):
    data_dir("data")
    tools.run("subset_data_dir.sh", *args, "data", "sub")
    sub = tmp_path / "sub"
    for name in FILES[1:]:
        assert keys(sub / name) == expected
    assert keys(sub / "wav.scp") == sorted({u.split("-")[0] for u in expected})
    assert (sub / "labels.txt").exists() and (sub / "spk2utt").exists()
    tools.run("validate_data_dir.sh", "sub")


def test_subset_random_is_deterministic_for_a_seed(tools, data_dir, tmp_path):
    data_dir("data", n_reco=20)
    picks = {}
    for name, seed in [("s1", 7), ("s1b", 7), ("s2", 8)]:
        tools.run("subset_data_dir.sh", "--random", "10", "--seed", seed, "data", name)
        picks[name] = utts(tmp_path / name)
        tools.run("validate_data_dir.sh", name)
    assert len(picks["s1"]) == 10 and picks["s1"] == sorted(picks["s1"])
    assert picks["s1"] == picks["s1b"]
    assert picks["s1"] != picks["s2"]
    assert set(picks["s1"]) <= set(utts(tmp_path / "data"))


def test_subset_utt_list(tools, data_dir, tmp_path):
    data_dir("data", segments=False)
    (tmp_path / "list").write_text("r3\nr1 extra\nnope\n")
    proc = tools.run("subset_data_dir.sh", "--utt-list", "list", "data", "sub")
    assert "1 ids of list are not in" in proc.stderr
    assert keys(tmp_path / "sub/wav.scp") == ["r1", "r3"]
    assert keys(tmp_path / "sub/utt2label") == ["r1", "r3"]
    tools.run("validate_data_dir.sh", "sub")


@pytest.mark.parametrize("args, message", [
    (["--first", "7"], "asked for 7 utterances but data has 6"),
    (["--first", "2", "--last", "2"], "exactly one of"),
    ([], "exactly one of"),
    (["--random", "x"], "positive integer"),
    (["--bogus", "1"], "--bogus"),
])
def test_subset_errors(tools, data_dir, tmp_path, args, message):
    data_dir("data")
    proc = tools.run("subset_data_dir.sh", *args, "data", "new/sub", check=False)
    assert message in proc.stderr
    assert not (tmp_path / "new").exists()

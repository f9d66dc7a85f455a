"""utils/validate_data_dir.sh: a valid directory passes; each kind of problem names its file and line."""
from __future__ import annotations

import pytest

TOOL = "validate_data_dir.sh"


def edit(path, lineno, new):
    """Replaces line ``lineno`` (1-based) of ``path``; ``new=None`` deletes it, a list inserts several."""
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1:lineno] = [] if new is None else [x + "\n" for x in ([new] if isinstance(new, str) else new)]
    path.write_text("".join(lines))


def test_valid_directory_passes_with_summary(tools, data_dir):
    data_dir("data")
    proc = tools.run(TOOL, "data")
    assert proc.stdout == f"{tools.path(TOOL)}: data: 6 utterances, 3 classes, ok\n"


def test_valid_directory_without_segments(tools, data_dir):
    data_dir("data", segments=False)
    assert "3 utterances" in tools.run(TOOL, "data/").stdout


# (file, line, replacement or None to delete, expected "file:line", words in the message)
CASES = {
    "unsorted": ("utt2dur", 3, "r0-9 1.0", "utt2dur:3", "not sorted"),
    "duplicate key": ("utt2spk", 2, ["r1-1 s1", "r1-1 s1"], "utt2spk:3", "appears twice"),
    "empty value": ("utt2dur", 4, "r2-1", "utt2dur:4", "no value"),
    "unknown label": ("utt2label", 5, "r3-0 bird,fish", "utt2label:5", "'fish' is not in labels.txt"),
    "label with space": ("utt2label", 1, "r1-0 bird, cat", "utt2label:1", "without spaces"),
    "repeated label": ("utt2label", 1, "r1-0 cat,cat", "utt2label:1", "twice"),
    "empty utt2label without known": ("utt2label", 1, "r1-0", "utt2label:1", "no value"),
    "duration not a number": ("utt2dur", 1, "r1-0 1.5s", "utt2dur:1", "not a number"),
    "negative duration": ("utt2dur", 1, "r1-0 -2", "utt2dur:1", "not positive"),
    "frames not an integer": ("utt2num_frames", 6, "r3-1 150.5", "utt2num_frames:6", "positive integer"),
    "feature without offset": ("feats.scp", 2, "r1-1 /feats/raw.1.ark", "feats.scp:2", "expected"),
    "segment end before start": ("segments", 2, "r1-1 r1 3.0 1.5", "segments:2", "not after start"),
    "segment start not a number": ("segments", 2, "r1-1 r1 x 1.5", "segments:2", "not a number"),
    "segment field count": ("segments", 2, "r1-1 r1 1.5", "segments:2", "expected"),
    "utterance missing from a file": ("feats.scp", 3, None, "segments:3", "r2-0 is not in feats.scp"),
    "extra utterance in a file": ("utt2label", 7, ["r3-2 bird"], "utt2label:7", "r3-2 is not in segments"),
    "recording without segment": ("wav.scp", 4, ["r4 /corpus/r4.wav"], "wav.scp:4", "r4 has no segment"),
    "segment recording missing": ("wav.scp", 3, "r9 /corpus/r9.wav", "segments:5", "r3 is not in wav.scp"),
    "duplicate class": ("labels.txt", 3, ["cat"], "labels.txt:3", "twice"),
    "class with comma": ("labels.txt", 1, "bi,rd", "labels.txt:1", "comma"),
    "dos line ending": ("wav.scp", 2, "r2 /corpus/r2.wav\r", "wav.scp:2", "carriage return"),
    "leading space": ("utt2spk", 2, " r1-1 s1", "utt2spk:2", "leading whitespace"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_problem_names_file_and_line(tools, data_dir, case):
    name, lineno, new, where, words = CASES[case]
    d = data_dir("data")
    edit(d / name, lineno, new)
    proc = tools.run(TOOL, "data", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{tools.path(TOOL)}: data/{where}: "), proc.stderr
    assert words in proc.stderr
    assert proc.stdout == ""


def test_partial_labels(tools, data_dir):
    d = data_dir("data")
    edit(d / "utt2label", 1, "r1-0")  # no positive: allowed once utt2label_known exists
    known = [f"{line.split()[0]} bird,cat,dog" for line in (d / "utt2label").read_text().splitlines()]
    (d / "utt2label_known").write_text("".join(k + "\n" for k in known))
    tools.run(TOOL, "data")
    edit(d / "utt2label", 2, "r1-1")
    edit(d / "utt2label_known", 2, "r1-1")  # a clip with no annotated class at all
    tools.run(TOOL, "data")
    edit(d / "utt2label_known", 3, "r2-0 dog")  # r2-0 is positive for bird,cat,dog in utt2label
    proc = tools.run(TOOL, "data", check=False)
    assert "data/utt2label_known:3: " in proc.stderr and "not known" in proc.stderr


def test_spk2utt_must_match_utt2spk(tools, data_dir):
    d = data_dir("data")
    (d / "spk2utt").write_text("s0 r2-0 r2-1\ns1 r1-0 r1-1 r3-0 r3-1\n")
    tools.run(TOOL, "data")
    (d / "spk2utt").write_text("s0 r2-0 r2-1\ns1 r1-0 r1-1 r3-0 r2-1\n")
    proc = tools.run(TOOL, "data", check=False)
    assert "data/spk2utt:2: " in proc.stderr and "r2-1 belongs to speaker s0" in proc.stderr


@pytest.mark.parametrize("missing, flag", [("feats.scp", "--no-feats"), ("wav.scp", "--no-wav"),
                                           ("utt2label", "--no-labels")])
def test_required_files_and_options(tools, data_dir, missing, flag):
    d = data_dir("data")
    (d / missing).unlink()
    if missing == "wav.scp":
        (d / "segments").unlink()
    proc = tools.run(TOOL, "data", check=False)
    assert f"data/{missing} is missing" in proc.stderr
    assert "6 utterances" in tools.run(TOOL, flag, "data").stdout


def test_usage_errors(tools, tmp_path):
    assert "Usage:" in tools.run(TOOL, "--help").stdout
    assert "--bogus" in tools.run(TOOL, "--bogus", "data", check=False).stderr
    assert "not a directory" in tools.run(TOOL, tmp_path / "nowhere", check=False).stderr

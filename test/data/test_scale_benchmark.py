"""benchmarks/scale.py at N=2000: its corpus is what it claims (AudioSet's shape, a valid data directory) and the
probes go through the real code (the workers' pass sees every clip and every label of utt2label)."""
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


def test_scale_smoke(tmp_path):
    work = tmp_path / "scale"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(BENCH), "--sizes", "2000", "--work", str(work), "--keep",
                           "--only", "validate", "make_fbank", "pretrain_rank", "finetune_rank", "workers",
                           "--json", str(tmp_path / "out.json")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "out.json").read_text())["2000"]
    assert set(rows) == {"validate --no-feats", "validate (feats)", "make_fbank.sh, all reused", "pretrain_rank",
                         "finetune_rank", "workers"}
    assert "| finetune_rank |" in proc.stdout
    train = work / "n2000" / "egs" / "audioset" / "data" / "train"
    lines = (train / "utt2label").read_text().splitlines()
    assert len(lines) == 2000 and len((train / "labels.txt").read_text().splitlines()) == 527
    counts = [len(line.split(" ", 1)[1].split(",")) for line in lines]
    assert min(counts) >= 1 and max(counts) <= 5
    assert rows["finetune_rank"]["clips"] == 2000 and rows["finetune_rank"]["task_type"] == "multi_label"
    assert rows["workers"]["clips"] == 2000 and rows["workers"]["positives"] == sum(counts)
    assert rows["finetune_rank"]["rss"] >= 0 and rows["workers"]["max_growth_private"] >= 0

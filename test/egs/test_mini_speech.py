"""The mini speech recipe end to end (./run.sh --quick true): generated speech, character token list, pre-training,
CTC fine-tuning from it and from scratch, WER scoring; maskspec-infer on the recogniser; the generator.

The recipe runs once per module in a linked working copy under a temporary folder (fixtures.link_recipe).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fixtures import REPO, link_recipe, read_kv, run_script

RECIPE = REPO / "egs" / "mini_speech"
MODELS = ("pretrained", "scratch")
# Test WER of the pre-trained model with --quick true (100 utterances, 371 words, greedy decoding): 0.367, 0.361 and
# 0.495 for seeds 0, 1, 2 (CER 0.071, 0.099, 0.124; README.md). An empty hypothesis has WER 1.0; 0.65 fails a model
# that learnt little while leaving room above the worst seed for other machines' arithmetic.
MAX_PRETRAINED_WER = 0.65
MAX_PRETRAINED_CER = 0.2


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mini_speech")
    for name in ("downloads", "data", "dump", "exp"):
        (tmp / "egs" / "mini_speech" / name).mkdir(parents=True, exist_ok=True)
    work = link_recipe("mini_speech", tmp)
    proc = run_script(["run.sh", "--quick", "true"], work, timeout=900)
    return work, proc


def test_data_and_token_list(quick_run):
    work, proc = quick_run
    text = read_kv(work / "data/train_quick/text")
    assert len(text) == 400 and not (work / "data/pretrain_quick/text").exists()
    tokens = (work / "data/token_list_quick/char/tokens.txt").read_text().split()
    assert tokens == ["<blank>", "<unk>", "<space>", "a", "e", "f", "i", "k", "m", "o", "s", "t", "u"]
    assert "token rate" in proc.stderr
    rate = json.loads((work / "exp/finetune_ctc_quick/pretrained/token_rate.json").read_text())
    assert 5 < rate["units_per_second"] < rate["output_steps_per_second"] == 25.0


def test_both_models_trained_and_scored(quick_run):
    work, _ = quick_run
    table = (work / "exp/RESULTS.md").read_text()
    for model in MODELS:
        out = work / "exp/finetune_ctc_quick" / model / "decode_test_quick"
        metrics = json.loads((out / "results.json").read_text())["metrics"]
        assert metrics["task_type"] == "ctc" and metrics["num_utts"] == 100
        row = next(l for l in table.splitlines() if l.startswith(f"| {model} "))
        assert float(row.split("|")[2]) == pytest.approx(metrics["wer"], abs=5e-5)
        assert len((out / "per_utt").read_text().splitlines()) == 400


def test_pretrained_recogniser_is_far_better_than_nothing(quick_run):
    work, _ = quick_run
    metrics = json.loads((work / "exp/finetune_ctc_quick/pretrained/decode_test_quick/results.json").read_text())
    assert metrics["metrics"]["wer"] < MAX_PRETRAINED_WER, metrics["metrics"]
    assert metrics["metrics"]["cer"] < MAX_PRETRAINED_CER, metrics["metrics"]


def test_infer_prints_the_transcript_stage_5_decoded(quick_run):
    """maskspec-infer featurises the wav itself; its transcript must equal stage 5's from the recipe's features."""
    work, _ = quick_run
    model = work / "exp/finetune_ctc_quick/pretrained/model.pt"
    hyps = read_kv(work / "exp/finetune_ctc_quick/pretrained/decode_test_quick/text")
    wavs = read_kv(work / "data/test_quick/wav.scp")
    utts = sorted(wavs)[:3]
    proc = subprocess.run([sys.executable, "-m", "maskspec.bin.infer", "--model", str(model), "--device", "cpu",
                           *(wavs[u] for u in utts)], capture_output=True, text=True, cwd=work)
    assert proc.returncode == 0, proc.stderr
    printed = dict(line.split("\t") for line in proc.stdout.splitlines())
    assert printed == {wavs[u]: hyps.get(u, "") for u in utts}


def test_rerun_skips_completed_work(quick_run):
    work, _ = quick_run
    proc = run_script(["run.sh", "--quick", "true"], work, timeout=300)
    assert "token list data/token_list_quick/char is complete; skipping" in proc.stderr
    assert proc.stderr.count("is complete; skipping") >= 1 + 4 + 1 + 2 + 2  # token list, sets, stage 3, models, scores


# ------------------------------------------------------------------------------------------- no training
def generate(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RECIPE / "local" / "generate_speech.py"), "--audio_dir",
                           str(tmp / "audio"), "--data_dir", str(tmp / "data"), *args], capture_output=True, text=True)


def test_generator_is_deterministic_and_varied(tmp_path):
    assert generate(tmp_path / "a", "--sets", "valid:6", "--nj", "2").returncode == 0
    assert generate(tmp_path / "b", "--sets", "valid:3", "--nj", "1").returncode == 0
    a, b = (read_kv(tmp_path / x / "data/valid/wav.scp") for x in ("a", "b"))
    for utt in b:
        assert np.array_equal(sf.read(a[utt])[0], sf.read(b[utt])[0])
    texts = read_kv(tmp_path / "a/data/valid/text")
    assert len(set(texts.values())) == 6 and all(2 <= len(t.split()) <= 5 for t in texts.values())
    durations = [float(v) for v in read_kv(tmp_path / "a/data/valid/utt2dur").values()]
    assert min(durations) > 0.5 and max(durations) < 5.0 and len(set(durations)) > 1
    assert generate(tmp_path, "--sets", "training:3").returncode != 0

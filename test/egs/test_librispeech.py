"""LibriSpeech 100 h recipe on a fixture in the official layout: data directories with transcripts, the
sentencepiece token list, CTC fine-tuning of the shared tiny AudioSet encoder and WER/CER scoring (stages 1-5)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fixtures import (REPO, assert_sorted_c, check_run_sh_cli, link_recipe, make_librispeech, read_kv, recipe_args,
                      run_script, shared_init)

SETS = ("train_clean_100", "dev_clean", "dev_other", "test_clean", "test_other")
# One CPU epoch of the tiny model; the recipe's own conf/finetune_ctc.yaml is used with these on top.
CTC_ARGS = ("--epochs 1 --warmup_epochs 0 --batch_size 4 --effective_batch_size none --freqm 4 --timem 8 "
            "--num_workers 0 --pin_memory false --log_interval 1 --tensorboard false --amp fp32")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    init, configs = shared_init(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("librispeech")
    fx = make_librispeech(tmp / "corpus")
    work = link_recipe("librispeech_100", tmp)
    proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--init", str(init), "--nbpe", "20",
                                              "--finetune_args", CTC_ARGS)], work)
    return fx, work, proc


def test_data_dirs_hold_transcripts_and_speakers(prepared):
    fx, work, _ = prepared
    for name in SETS:
        d = work / "data" / name
        assert read_kv(d / "text") == fx.expected["sets"][name]
        assert read_kv(d / "utt2spk") == {u: fx.expected["spk"][u] for u in fx.expected["sets"][name]}
        for f in ("wav.scp", "text", "utt2spk", "utt2dur"):
            assert_sorted_c(d / f)
        assert all(p.endswith(f"/{u}.flac") and "/LibriSpeech/" in p for u, p in read_kv(d / "wav.scp").items())
        assert not (d / "utt2label").exists()


def test_token_list_is_a_sentencepiece_model_of_the_training_text(prepared):
    _, work, proc = prepared
    tl = work / "data/token_list/bpe_unigram20"
    tokens = (tl / "tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and len(tokens) == 21 and (tl / ".done").is_file()
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tl / "bpe.model"))
    assert sp.get_piece_size() == 20 and sp.decode(sp.encode("DON'T STOP")) == "DON'T STOP"
    assert "token rate" in proc.stderr


def test_ctc_model_is_trained_and_every_test_set_scored(prepared):
    fx, work, proc = prepared
    exp = work / "exp/finetune_ctc/pretrained"
    assert "--task_type ctc" in (exp / "log/finetune.log").read_text()
    assert json.loads((exp / "token_rate.json").read_text())["output_steps_per_second"] == pytest.approx(25.0)
    for name in SETS[1:]:
        out = exp / f"decode_{name}"
        metrics = json.loads((out / "results.json").read_text())["metrics"]
        assert metrics["task_type"] == "ctc" and metrics["num_utts"] == len(fx.expected["sets"][name])
        assert metrics["wer"] >= 0 and metrics["cer"] >= 0
        assert len((out / "per_utt").read_text().splitlines()) == 4 * metrics["num_utts"]
        assert set(read_kv(out / "text")) <= set(fx.expected["sets"][name])
    table = (work / "exp/RESULTS.md").read_text()
    assert "test_other wer" in table and "test_other cer" in table


def test_rerun_skips_the_token_list(prepared):
    fx, work, _ = prepared
    proc = run_script(["run.sh", "--stop_stage", "1", *recipe_args(fx.root, {"fbank": "conf/fbank.yaml"},
                                                                   "--nbpe", "20")], work)
    assert "token list data/token_list/bpe_unigram20 is complete; skipping" in proc.stderr
    proc = run_script(["run.sh", "--stop_stage", "1", "--bpemode", "huffman",
                       *recipe_args(fx.root, {"fbank": "conf/fbank.yaml"})], work, check=False)
    assert proc.returncode == 1 and "--bpemode must be unigram or bpe" in proc.stderr


def test_run_sh_cli(tmp_path):
    check_run_sh_cli(link_recipe("librispeech_100", tmp_path), "LibriSpeech 100 h recipe", "--nbpe 300", "--nbpee")


def reader(*args):
    return subprocess.run([sys.executable, "-m", "maskspec.data.corpora.librispeech", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


def test_reader_names_the_bad_transcript_line(tmp_path):
    fx = make_librispeech(tmp_path / "c", speakers=(19,), chapters=1, subsets=("dev-clean",))
    trans = next((fx.root / "LibriSpeech/dev-clean").rglob("*.trans.txt"))
    trans.write_text(trans.read_text().replace("19-100-0001", "19-999-0001"))
    proc = reader("--db_root", fx.root, "--out_dir", tmp_path / "data", "--subsets", "dev-clean")
    assert proc.returncode == 1 and f"{trans}:2: utterance id '19-999-0001'" in proc.stderr
    trans.write_text(trans.read_text().splitlines()[0] + "\n")
    proc = reader("--db_root", fx.root, "--out_dir", tmp_path / "data", "--subsets", "dev-clean")
    assert proc.returncode == 1 and "19-100-0001.flac: not in" in proc.stderr
    proc = reader("--db_root", tmp_path, "--out_dir", tmp_path / "data")
    assert proc.returncode == 1 and "no LibriSpeech/ folder" in proc.stderr

"""CTC speech recognition: tokenizer, model shapes, decoding, WER alignment, length checks, fine-tuning + scoring."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from maskspec.data.datadir import write_kv
from maskspec.data.feats import FeatWriter
from maskspec.features.fbank import FbankConfig
from maskspec.data.stats import compute_stats, write_stats
from maskspec.models.configs import model_config
from maskspec.models.ctc import CTCModel
from maskspec.tasks.ctc import LengthBucketSampler, SpeechDataset, check_fit, ctc_collate, required_steps
from maskspec.tasks.ctc_decode import greedy_decode, prefix_beam_search
from maskspec.tasks.wer import align, per_utt_lines, score_corpus
from maskspec.text.tokenizer import Tokenizer, TokenizerError, read_text, train_token_list

MEL = 32
WORDS = ["ab", "ba", "cab", "bc"]


def speech_dir(d, n=12, seed=0, frames_per_char=8, text=None):
    """Features in which each character lights its own mel band for ``frames_per_char`` frames (a space is a
    gap): a transcript the features determine, so a CTC model can learn it."""
    rng = np.random.default_rng(seed)
    os.makedirs(d, exist_ok=True)
    bands = {c: slice(4 + 8 * i, 10 + 8 * i) for i, c in enumerate("abc")}
    texts, frames = {}, {}
    with FeatWriter(os.path.join(d, "raw")) as w:
        for i in range(n):
            utt = f"u{i:03d}"
            t = text or " ".join(rng.choice(WORDS, size=2))
            x = 0.1 * rng.standard_normal((16 + frames_per_char * len(t) + 16, MEL)).astype(np.float32)
            for k, c in enumerate(t):
                if c != " ":
                    x[16 + k * frames_per_char: 16 + (k + 1) * frames_per_char, bands[c]] += 3.0
            w.write(utt, x)
            texts[utt], frames[utt] = t, str(len(x))
    os.replace(os.path.join(d, "raw.scp"), os.path.join(d, "feats.scp"))
    write_kv(os.path.join(d, "text"), texts)
    write_kv(os.path.join(d, "utt2num_frames"), frames)
    write_stats(compute_stats(os.path.join(d, "feats.scp")), os.path.join(d, "stats.json"))
    FbankConfig(num_mel_bins=MEL).to_yaml(os.path.join(d, "fbank.yaml"))
    return d


# ------------------------------------------------------------------------------------------------ tokenizer
def test_token_lists_round_trip(tmp_path):
    texts = ["THE CAT SAT", "A DOG SAT ON THE MAT", "THE DOG"] * 10
    bpe = train_token_list(texts, str(tmp_path / "bpe"), "bpe", nbpe=16, bpemode="unigram")
    assert (tmp_path / "bpe/bpe.model").is_file()
    tokens = (tmp_path / "bpe/tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and len(tokens) == 17
    ids = bpe.encode("THE DOG SAT")
    assert 0 not in ids and bpe.decode(ids) == "THE DOG SAT"
    again = Tokenizer.from_dict(json.loads(json.dumps(bpe.to_dict())))  # plain data: survives a model file
    assert again.decode(ids) == "THE DOG SAT"
    assert Tokenizer.from_files(str(tmp_path / "bpe/tokens.txt"), str(tmp_path / "bpe/bpe.model")).encode(
        "THE DOG SAT") == ids
    char = train_token_list(texts, str(tmp_path / "char"), "char")
    assert "<space>" in char.token_list and not (tmp_path / "char/bpe.model").exists()
    assert char.decode(char.encode("THE  CAT")) == "THE CAT"
    assert char.encode("XYZ") == [1, 1, 1]  # unknown characters -> <unk>
    with pytest.raises(TokenizerError, match="smaller --nbpe"):
        train_token_list(texts, str(tmp_path / "big"), "bpe", nbpe=500)
    with pytest.raises(TokenizerError, match="does not match"):
        Tokenizer("bpe", tokens[:-1], (tmp_path / "bpe/bpe.model").read_bytes())


def test_read_text_names_the_bad_line(tmp_path):
    (tmp_path / "text").write_text("u1 HELLO\nu2\n")
    with pytest.raises(TokenizerError, match=r"text:2: expected"):
        read_text(str(tmp_path / "text"))


def test_token_list_cli_reports_the_token_rate(tmp_path):
    from maskspec.bin.token_list import main

    d = speech_dir(str(tmp_path / "train"), n=6)
    write_kv(os.path.join(d, "utt2dur"), {u: "2.0" for u in read_text(os.path.join(d, "text"))})
    assert main(["--text", os.path.join(d, "text"), "--token_type", "char", "--output_dir",
                 str(tmp_path / "tl")]) == 0
    tokens = (tmp_path / "tl/tokens.txt").read_text().split()
    assert tokens == ["<blank>", "<unk>", "<space>", "a", "b", "c"]
    assert main(["--text", str(tmp_path / "nope"), "--token_type", "char", "--output_dir", str(tmp_path)]) == 1


# ------------------------------------------------------------------------------------------------ model
def test_output_steps_follow_the_columns():
    cfg = model_config("tiny", embed_dim=32, depth=1, num_heads=2, num_mel_bins=MEL, num_frames=64)
    model = CTCModel(cfg, vocab_size=7, upsample=4)
    logits = model(torch.randn(2, 70, MEL))
    assert logits.shape == (2, 70 // 16 * 4, 7)
    assert model.output_lengths(torch.tensor([70, 33])).tolist() == [16, 8]
    assert model.layer_id("upsample_proj.weight") == model.num_layers


# ------------------------------------------------------------------------------------------------ decoding
def test_greedy_and_beam_search():
    # steps: a a _ a b b  -> greedy "a a b"
    lp = np.log(np.full((6, 3), 0.05))
    for t, k in enumerate([1, 1, 0, 1, 2, 2]):
        lp[t, k] = math.log(0.9)
    assert greedy_decode(lp) == [1, 1, 2]
    assert prefix_beam_search(lp, beam_size=4) == [1, 1, 2]
    # Best path "_" but the two paths of "a" ("a_" and "_a", "aa") together outweigh it: beam search finds "a".
    p = np.array([[0.4, 0.6 - 1e-6, 1e-6], [0.55, 0.45 - 1e-6, 1e-6]])
    assert greedy_decode(np.log(p)) == [1]
    p = np.array([[0.55, 0.45, 0.0], [0.55, 0.45, 0.0]]) + 1e-9
    assert greedy_decode(np.log(p)) == []
    assert prefix_beam_search(np.log(p), beam_size=4) == [1]  # P(a) = 1 - .55^2 - ... > P(empty) = .3025


# ------------------------------------------------------------------------------------------------ scoring
def test_alignment_counts_and_per_utt_layout():
    a = align("the cat sat on the mat".split(), "the bat sat the mat today".split())
    ops = [op for op, _, _ in a]
    assert ops.count("S") == 1 and ops.count("D") == 1 and ops.count("I") == 1 and ops.count("C") == 4
    summary, per_utt = score_corpus({"u1": "the cat sat on the mat", "u2": "hello"},
                                    {"u1": "the bat sat the mat today"}, "word")
    assert summary["error_rate"] == pytest.approx(4 / 7) and summary["num_ref"] == 7
    assert summary["sentence_error_rate"] == 1.0
    lines = per_utt_lines(per_utt)
    assert lines[3] == "u1 #csid 4 1 1 1" and lines[5].split() == ["u2", "hyp", "***"]
    assert lines[6].split() == ["u2", "op", "D"]
    chars, _ = score_corpus({"u": "ab c"}, {"u": "abd"}, "char")
    assert chars["error_rate"] == pytest.approx(1 / 3)


# ------------------------------------------------------------------------------------------------ data
def test_dataset_batches_and_length_check(tmp_path):
    d = speech_dir(str(tmp_path / "d"), n=5)
    tok = train_token_list([read_text(os.path.join(d, "text"))[u] for u in ("u000", "u001", "u002", "u003")],
                           str(tmp_path / "tl"), "char")
    stats = json.loads((tmp_path / "d/stats.json").read_text())
    ds = SpeechDataset(d, tok, stats, "per_bin")
    batch = ctc_collate([ds[0], ds[1]])
    assert batch["feats"].shape[0] == 2 and batch["tokens"].numel() == int(batch["token_lengths"].sum())
    rate = check_fit(ds, 16, 4, 10.0)
    assert rate["output_steps_per_second"] == pytest.approx(25.0)
    assert 5 < rate["units_per_second"] < 12.5  # a character per 80 ms, plus silence
    assert required_steps([3, 3, 4]) == 4
    with pytest.raises(ValueError, match="utterance 'u00"):
        check_fit(ds, 16, 1, 10.0)  # one step per 160 ms cannot carry a character per 80 ms
    sampler = LengthBucketSampler([10, 50, 11, 52, 90, 91], batch_size=2, seed=1)
    orders = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert sorted(map(sorted, np.reshape(order, (-1, 2)).tolist())) == [[0, 2], [1, 3], [4, 5]]
        orders.append(order)
    assert len({tuple(o) for o in orders}) > 1  # batch order shuffled per epoch
    sampler.set_epoch(0)
    assert list(sampler) == orders[0]


def test_missing_transcript_names_the_utterance(tmp_path):
    d = speech_dir(str(tmp_path / "d"), n=3)
    lines = (tmp_path / "d/text").read_text().splitlines()
    (tmp_path / "d/text").write_text("\n".join(lines[:2]) + "\n")
    tok = train_token_list(["ab"], str(tmp_path / "tl"), "char")
    with pytest.raises(ValueError, match="no transcript for utterance 'u002'"):
        SpeechDataset(d, tok, None, "none")


# ------------------------------------------------------------------------------------------------ end to end
def test_finetune_ctc_learns_and_scores(tmp_path):
    """A tiny CTC model learns the band-coded characters well below the empty hypothesis' WER of 1."""
    from maskspec.bin.finetune import main as finetune
    from maskspec.bin.score import main as score

    train = speech_dir(str(tmp_path / "train"), n=128, seed=0)
    valid = speech_dir(str(tmp_path / "valid"), n=8, seed=1)
    texts = list(read_text(os.path.join(train, "text")).values())
    train_token_list(texts, str(tmp_path / "tl"), "char")
    exp = str(tmp_path / "exp")
    rc = finetune(["--train_data", train, "--valid_data", valid, "--exp_dir", exp, "--init", "none",
                   "--task_type", "ctc", "--token_list", str(tmp_path / "tl/tokens.txt"), "--model", "tiny",
                   "--model_conf", "{embed_dim: 32, depth: 2, num_heads: 2, num_frames: 64}", "--epochs", "6",
                   "--batch_size", "8", "--lr", "3e-3", "--warmup_epochs", "1", "--num_workers", "0",
                   "--layer_decay", "1.0", "--drop_path", "0.0", "--tensorboard", "false", "--device", "cpu",
                   "--log_interval", "100"])
    assert rc == 0
    rate = json.loads((tmp_path / "exp/token_rate.json").read_text())
    assert rate["output_steps_per_second"] == pytest.approx(25.0)
    out = str(tmp_path / "decode")
    assert score(["--model", os.path.join(exp, "model.pt"), "--data", valid, "--output_dir", out,
                  "--device", "cpu", "--num_workers", "0", "--beam_size", "4"]) == 0
    results = json.loads((tmp_path / "decode/results.json").read_text())["metrics"]
    assert results["task_type"] == "ctc" and results["num_utts"] == 8
    assert results["cer"] < 0.3 and results["wer"] < 0.6, results
    per_utt = (tmp_path / "decode/per_utt").read_text().splitlines()
    assert len(per_utt) == 4 * 8 and per_utt[3].startswith("u000 #csid ")
    assert len((tmp_path / "decode/text").read_text().splitlines()) == 8
    from maskspec.models.model_file import ModelFileError, load_model_file, save_model_file

    mf = load_model_file(os.path.join(exp, "model.pt"))
    assert mf["kind"] == "ctc" and mf["classes"] == (tmp_path / "tl/tokens.txt").read_text().split()
    fields = {k: mf[k] for k in ("model_config", "state_dict", "fbank_config", "stats", "normalize", "classes",
                                 "task_type", "num_frames")}
    with pytest.raises(ModelFileError, match="needs extra.tokenizer"):
        save_model_file(str(tmp_path / "bad.pt"), kind="ctc", **fields, extra={})

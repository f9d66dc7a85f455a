"""LibriSpeech recipe on a corpus folder holding only some subsets, with a transcript too small for --nbpe 300:
stage 1 prepares what is there, names what it skipped, and trains the most sentencepiece pieces the text holds."""
from __future__ import annotations

from fixtures import link_recipe, make_librispeech, recipe_args, run_script

PRESENT = ("train-clean-100", "dev-clean", "test-clean")


def test_stage1_with_three_subsets_and_nbpe_fallback(tmp_path):
    fx = make_librispeech(tmp_path / "corpus", speakers=(19,), chapters=1, subsets=PRESENT)
    work = link_recipe("librispeech_100", tmp_path)
    proc = run_script(["run.sh", "--stop_stage", "1", "--test_sets", "test_clean",
                       *recipe_args(fx.root, {"fbank": "conf/fbank.yaml"})], work)
    assert "skipped dev-other test-other" in proc.stderr
    assert (work / "data/skipped_subsets").read_text().split() == ["dev-other", "test-other"]
    for name in ("train_clean_100", "dev_clean", "test_clean"):
        assert (work / "data" / name / ".done").is_file()
    assert not (work / "data/dev_other").exists()
    tokens = (work / "data/token_list/bpe_unigram300/tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and 2 < len(tokens) < 301
    assert "--nbpe 300 does not fit these transcripts" in proc.stderr
    # the default test sets name a skipped subset: the run stops, naming the set it needs
    proc = run_script(["run.sh", "--stop_stage", "1", *recipe_args(fx.root, {"fbank": "conf/fbank.yaml"})], work,
                      check=False)
    assert proc.returncode != 0 and "data/dev_other" in proc.stderr

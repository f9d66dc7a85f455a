"""The README's comparison of encoders, end to end on the ESC-50 fixture tree: the README's import commands on
synthetic stand-ins of the downloads (the MaskSpec authors', Audio-MAE's and EAT's pre-trained checkpoints in their
layouts), then its ``compare_encoders.sh`` line (fold 1 only, the tiny fine-tuning settings): each encoder is
fine-tuned by one recipe and one config on features of its own source's front end, and one table compares them."""
from __future__ import annotations

import os
import re
import shlex
import sys

import numpy as np
import torch

from fixtures import (REPO, TINY_FBANK, link_recipe, make_esc50, read_kv, recipe_args, run_script, tiny_finetune_args,
                      write_tiny_configs)
from maskspec.bin import import_checkpoint
from maskspec.features.fbank import FbankConfig
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import load_model_file, save_model_file

sys.path.insert(0, str(REPO / "test" / "models"))
from reference_eat import Data2VecMulti  # noqa: E402
from reference_eat import randomize_ as randomize_eat_  # noqa: E402
from reference_vits import MAE, randomize_  # noqa: E402

TAGS = ["authors", "audiomae", "eat", "ours"]


def readme_section():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("## Pre-trained models", 1)[1].split("\n## ", 1)[0]


def downloads(root):
    """Stand-ins of the downloaded files the README's comparison imports (ViT width 192, one block)."""
    torch.save(dict(model=randomize_(MAE((128, 992), 16, 192, 1, 3, 512, 1, 16), 1).state_dict()),
               root / "maskspec_pretrained.pth")
    rng = np.random.default_rng(0)
    np.save(root / "mean_std_128.npy", dict(frame_mean=rng.normal(-0.3, 0.2, 128), frame_std=rng.uniform(0.5, 1, 128)))
    mae = randomize_(MAE((1024, 128), 16, 192, 1, 3, 16, 1, 2, table_grid=(8, 64)), 2).state_dict()
    sd = {k: v for k, v in mae.items() if not k.startswith("decoder_blocks.")}
    sd.update({"decoder_blocks.0.norm1.weight": torch.ones(16), "decoder_blocks.0.attn.logit_scale": torch.ones(2, 1, 1)})
    torch.save(dict(model=sd), root / "pretrained.pth")  # Audio-MAE's, with (part of) its Swin decoder
    eat = randomize_eat_(Data2VecMulti(1024, 128, 16, 192, 1, 3), 3)
    torch.save(dict(model=eat.state_dict(), cfg=dict(model=dict(num_heads=3, layer_norm_first=False, norm_eps=1e-6),
                                                     task=dict(target_length=1024))), root / "EAT-base_epoch30_pt.pt")
    # our own pre-training: a tiny model file where the AudioSet recipe writes it, with the tiny features
    cfg = model_config("tiny", embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=32, decoder_depth=1,
                       decoder_num_heads=2, num_mel_bins=32, num_frames=96)
    torch.manual_seed(0)
    ours = root / "egs" / "audioset" / "exp" / "pretrain_base" / "model.pt"
    ours.parent.mkdir(parents=True)
    save_model_file(ours, kind="pretrain", model_config=cfg, state_dict=MaskSpecModel(cfg).state_dict(),
                    fbank_config=FbankConfig.from_dict(__import__("yaml").safe_load(TINY_FBANK)),
                    stats=dict(mean=[-8.0] * 32, std=[3.0] * 32, global_mean=-8.0, global_std=3.0),
                    normalize="per_bin", classes=None, task_type=None, num_frames=96)


def test_readme_comparison_of_encoders(tmp_path, monkeypatch):
    root = tmp_path  # stands for the clone's root: egs/esc50 is root/egs/esc50
    fx = make_esc50(tmp_path / "ESC-50-master", per_fold=1)
    work = link_recipe("esc50", root)
    configs = write_tiny_configs(tmp_path / "conf")
    downloads(root)
    section = readme_section()
    # the README's imports of the compared encoders, as written
    imports = [line for line in re.findall(r"^maskspec-import .*$", section, flags=re.M)
               if re.search(r"--output (maskspec_pretrained|audiomae_pretrained|eat_base30)\.pt$", line)]
    assert len(imports) == 3
    monkeypatch.chdir(root)
    for line in imports:
        assert import_checkpoint.main(shlex.split(line)[1:]) == 0, line
    # the README's comparison command, with the test's corpus and tiny settings after "--"
    command = re.search(r"^\(cd egs/esc50 && (\.\./TEMPLATE/scripts/compare_encoders\.sh [^)]*)\)$", section,
                        flags=re.M | re.S).group(1)
    argv = shlex.split(command.replace("\\\n", " "))
    assert [a.split("=")[0] for a in argv[1:]] == TAGS
    extra = [*recipe_args(fx.root, configs, "--folds", "1", "--check_space", "false",
                          "--finetune_args", tiny_finetune_args(48, 2))]
    proc = run_script([*argv, "--", *extra], work, timeout=1200)  # ~85 s of CPU; more on a busy machine

    table = (work / "exp" / "COMPARE.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert set(TAGS) <= set(rows) and "test_folds accuracy" in table, table
    for tag in TAGS:
        cell = rows[tag].split("|")[2].strip()
        assert re.fullmatch(r"[01]\.\d{4}( ± 0\.0000)?", cell), rows[tag]
    assert proc.stdout.count("| ") >= 5  # the table is printed too
    # each source's features: its own front end in its own folders; ours with the recipe's --fbank_config
    dump = work / "dump"
    expect = {"authors": ("fbank_maskspec-authors", 32000, "centered"), "audiomae": ("fbank_audiomae", 16000, None),
              "eat": ("fbank_eat", 16000, None), "ours": ("fbank", 16000, None)}
    for tag, (folder, rate, framing) in expect.items():
        fb = FbankConfig.from_yaml(dump / folder / "train_fold1" / "fbank.yaml")
        assert fb.sample_rate == rate and fb.framing == (framing or "kaldi"), tag
        assert fb.num_mel_bins == (32 if tag == "ours" else 128)
        mf = load_model_file(work / "exp" / f"finetune_{tag}" / "pretrained" / "fold1" / "model.pt")
        assert FbankConfig.from_dict(mf["fbank_config"]) == fb and "front_end" not in mf
        frames = {int(v) for v in read_kv(dump / folder / "test_fold1" / "utt2num_frames").values()}
        assert frames == {fb.num_frames(int(round(0.5 * rate)))}  # 0.5 s clips: 50 centred / 48 Kaldi frames
    assert not (dump / "fbank_maskspec-authors" / "train_fold1" / "feats.scp").read_text().count("fbank_pool/")
    assert os.path.isdir(dump / "fbank_maskspec-authors_pool")

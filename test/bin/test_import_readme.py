"""The README's "Pre-trained models" commands, run as written on synthetic stand-ins of the published files (standard
ViT width 192 so that the default head count applies, the published patch grids so that the format is
recognised, one block so that it is quick): import -> maskspec-infer prints AudioSet names; import -> fine-tuning
from the imported encoder on generated features."""
import json
import os
import re
import shlex
import sys

import numpy as np
import soundfile as sf
import torch
from safetensors.torch import save_file

from bin_data import CLASSES, finish_data_dir
from maskspec.bin import finetune, import_checkpoint, infer
from maskspec.data.feats import FeatWriter
from maskspec.inference.embed import Embedder
from maskspec.models.model_file import load_model_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
from reference_eat import Data2VecMulti, EATModel, hf_config  # noqa: E402
from reference_eat import randomize_ as randomize_eat_  # noqa: E402
from reference_vits import MAE, ViT, randomize_  # noqa: E402

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
NAMES = ["Speech", "Dog", "Bark, yip", "Music", "Rain"]
PROGRAMS = {"maskspec-import": import_checkpoint.main, "maskspec-infer": infer.main}


def readme_commands():
    """The maskspec-* command lines of the README's "Pre-trained models" section, in order."""
    text = open(README, encoding="utf-8").read()
    section = text.split("## Pre-trained models", 1)[1].split("\n## ", 1)[0]
    return [line for line in re.findall(r"^maskspec-\S+ .*$", section, flags=re.M)]


def stand_ins(d):
    """The files the README names, in d: the authors' pre-trained model and tagger, their mean_std file, an
    Audio-MAE tagger, EAT's pre-trained fairseq checkpoint and a Hugging Face directory of an EAT tagger,
    class_labels_indices.csv (quoted names with commas) and a clip."""
    torch.save(dict(model=randomize_(MAE((128, 992), 16, 192, 1, 3, 512, 1, 16), 1).state_dict()),
               d / "maskspec_pretrained.pth")
    torch.save(dict(model=randomize_(ViT((128, 1000), 16, 192, 1, 3, 5), 2).state_dict()), d / "maskspec_as2m.pth")
    torch.save(dict(model=randomize_(ViT((1024, 128), 16, 192, 1, 3, 5, cat_then_add=False), 3).state_dict()),
               d / "finetuned.pth")
    mae = randomize_(MAE((1024, 128), 16, 192, 1, 3, 16, 1, 2, table_grid=(8, 64)), 6).state_dict()
    torch.save(dict(model={k: v for k, v in mae.items() if not k.startswith("decoder_blocks.")}),
               d / "pretrained.pth")  # Audio-MAE's pre-trained encoder (its Swin decoder left out)
    eat = randomize_eat_(Data2VecMulti(1024, 128, 16, 192, 1, 3), 4)
    torch.save(dict(model=eat.state_dict(), cfg=dict(model=dict(num_heads=3, layer_norm_first=False, norm_eps=1e-6),
                                                     task=dict(target_length=1024))), d / "EAT-base_epoch30_pt.pt")
    hf = d / "EAT-base_epoch30_finetune_AS2M"
    hf.mkdir()
    eat_hf = randomize_eat_(EATModel(mel=128, patch=16, dim=192, depth=1, heads=3, max_length=96, num_classes=5), 5)
    save_file({k: v.contiguous() for k, v in eat_hf.state_dict().items()}, hf / "model.safetensors")
    (hf / "config.json").write_text(json.dumps(hf_config(192, 1, 3, 16, 128, 96, 1024, 5)))
    rng = np.random.default_rng(0)
    np.save(d / "mean_std_128.npy", dict(frame_mean=rng.normal(-0.3, 0.2, 128), frame_std=rng.uniform(0.5, 1, 128)))
    mids = ["/m/09x0r", "/m/0bt9lr", "/m/05tny_", "/m/04rlf", "/m/06mb1"]
    (d / "class_labels_indices.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},{m},"{n}"\n' for i, (m, n) in enumerate(zip(mids, NAMES))))
    sf.write(d / "clip.wav", (rng.standard_normal(3 * 16000) * 0.1).astype(np.float32), 16000)


def make_features(d, n=12):
    """n clips of 128-mel features (70-100 frames); class c lights up a band of bins."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(4)
    labels = {}
    with FeatWriter(os.path.join(d, "feats"), "ark") as w:
        for i in range(n):
            utt, c = f"utt{i:03d}", i % len(CLASSES)
            x = rng.standard_normal((int(rng.integers(70, 100)), 128)).astype(np.float32) - 8
            x[:, c * 32:(c + 1) * 32] += 3.0
            w.write(utt, x)
            labels[utt] = CLASSES[c]
    return finish_data_dir(d, labels, 128)


def test_readme_commands_import_infer_and_finetune(tmp_path, monkeypatch, capsys):
    commands = readme_commands()
    assert [c.split()[0] for c in commands] == (["maskspec-import"] * 3 + ["maskspec-infer"]
                                                + ["maskspec-import"] * 2 + ["maskspec-infer"]
                                                + ["maskspec-import"])  # Audio-MAE's encoder, for the comparison
    stand_ins(tmp_path)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)
        assert PROGRAMS[argv[0]](argv[1:]) == 0, command
    printed = capsys.readouterr().out
    labelled = [line for line in printed.splitlines() if line.startswith("clip.wav\t")]
    assert len(labelled) == 2 and all(name in line for name in NAMES for line in labelled)
    assert load_model_file("maskspec_as2m.pt")["classes"] == NAMES
    # embeddings (maskspec-embed, maskspec.hear) of a clip longer than a window, so the last one is shorter
    for name in ("maskspec_pretrained.pt", "audiomae_as2m.pt", "eat_base30.pt", "eat_base30_as2m.pt",
                 "audiomae_pretrained.pt"):
        mf = load_model_file(name)
        embedder = Embedder(mf)
        clip = torch.randn(mf["num_frames"] + 100, 128)
        columns = embedder.columns([clip])[0]
        assert columns.shape == (embedder.num_columns(clip.shape[0]), 192) and torch.isfinite(columns).all()
        assert embedder.scene([clip]).shape == (1, 192)

    # the recipe's stage 4 from the imported encoder (here on generated features, a few steps)
    data = make_features(str(tmp_path / "train"))
    exp = tmp_path / "exp"
    rc = finetune.main(["--train_data", data, "--valid_data", data, "--exp_dir", str(exp),
                        "--init", "maskspec_pretrained.pt", "--num_frames", "64", "--epochs", "1",
                        "--batch_size", "4", "--num_workers", "0", "--device", "cpu", "--tensorboard", "false",
                        "--lr", "1e-4", "--log_interval", "1", "--drop_path", "0"])
    assert rc == 0
    log = (exp / "train.log").read_text()
    assert "loaded" in log and "not initialised" not in log  # every encoder tensor, the positions resized
    mf = load_model_file(exp / "model.pt")
    assert mf["model_config"]["pos_embed"] == "learned" and mf["num_frames"] == 64
    table = load_model_file("maskspec_pretrained.pt")["state_dict"]["encoder.pos_embed.table"]
    assert mf["state_dict"]["encoder.pos_embed.table"].shape == (8 * 4, 192) and table.shape == (8 * 62, 192)
    # and from EAT's pre-trained encoder: its post-norm blocks, input LayerNorm and cls + fc_norm head carry over
    exp = tmp_path / "exp_eat"
    rc = finetune.main(["--train_data", data, "--valid_data", data, "--exp_dir", str(exp),
                        "--init", "eat_base30.pt", "--num_frames", "64", "--epochs", "1",
                        "--batch_size", "4", "--num_workers", "0", "--device", "cpu", "--tensorboard", "false",
                        "--lr", "1e-4", "--log_interval", "1", "--drop_path", "0"])
    assert rc == 0
    log = (exp / "train.log").read_text()
    assert "loaded" in log and "not initialised" not in log
    cfg = load_model_file(exp / "model.pt")["model_config"]
    assert cfg["post_norm"] and cfg["embed_norm"] and cfg["pool"] == "cls" and cfg["cls_fc_norm"]
    assert cfg["pos_embed"] == "extend" and not cfg["final_norm"]

"""maskspec-import: reference networks of each published format, random weights, saved in the source's layout,
imported; our tokens, pooled embedding and logits must equal the reference's on the same normalised input."""
import argparse
import datetime

import numpy as np
import pytest
import torch

from maskspec.bin import import_checkpoint
from maskspec.features.normalize import normalize
from maskspec.models.model_file import build_model, load_model_file
from maskspec.models.published import CheckpointImportError, detect_format
from reference_vits import MAE, ViT, randomize_, time_major_to_ours

MEL, FRAMES, P, D, DEPTH, HEADS = 128, 64, 16, 32, 2, 4
F_P, T_P = MEL // P, FRAMES // P
LABELS_CSV = ('index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n'
              '2,/m/02zsn,"Female speech, woman speaking"\n3,/m/0ytgt,"Child speech, kid speaking"\n'
              '4,/m/01h8n0,"Conversation"\n')
CLASS_NAMES = ["Speech", "Male speech, man speaking", "Female speech, woman speaking", "Child speech, kid speaking",
               "Conversation"]
TOL = dict(atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("published")
    rng = np.random.default_rng(0)
    mean_std = dict(frame_mean=rng.normal(-0.3, 0.2, MEL), frame_std=rng.uniform(0.5, 1.0, MEL).astype(np.float32),
                    all_mean=np.float64(-0.3), all_std=np.float64(0.8))
    np.save(d / "mean_std_128.npy", mean_std)  # as the authors' get_mean_std.py saves it: a pickled dict
    (d / "class_labels_indices.csv").write_text(LABELS_CSV)
    return dict(dir=d, mean_std=str(d / "mean_std_128.npy"), labels=str(d / "class_labels_indices.csv"),
                frame_mean=mean_std["frame_mean"], frame_std=mean_std["frame_std"])


def run_import(tmp_path, obj, *options, expect=0):
    src, out = tmp_path / "source.pth", tmp_path / "imported.pt"
    torch.save(obj, src)
    rc = import_checkpoint.main(["--checkpoint", str(src), "--output", str(out), "--num_frames", str(FRAMES),
                                 "--num_heads", str(HEADS), *options])
    assert rc == expect
    if expect:
        return None, None
    mf = load_model_file(out)
    return mf, build_model(mf)


def spectrogram(seed=1):
    return torch.randn(2, FRAMES, MEL, generator=torch.Generator().manual_seed(seed))  # normalised [B, T, F]


@pytest.mark.parametrize("global_pool", [True, False])
def test_authors_finetuned_tagger(files, tmp_path, global_pool):
    ref = randomize_(ViT((MEL, FRAMES), P, D, DEPTH, HEADS, 5, global_pool=global_pool), seed=2).eval()
    ckpt = dict(model=ref.state_dict(), epoch=7, args=argparse.Namespace(model="vit_base_patch16"))
    mf, ours = run_import(tmp_path, ckpt, "--format", "maskspec-authors", "--mean_std", files["mean_std"],
                          "--class_labels", files["labels"])
    assert mf["kind"] == "classifier" and mf["classes"] == CLASS_NAMES and mf["task_type"] == "multi_label"
    assert mf["model_config"]["pool"] == ("mean" if global_pool else "cls")
    assert mf["model_config"]["final_norm"] is (not global_pool)
    x = spectrogram()
    image = x.transpose(1, 2).unsqueeze(1)  # their input: [B, 1, mel, frames]
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(x)[0], ref.tokens(image), **TOL)
        torch.testing.assert_close(ours.embed(x), ref.forward_features(image), **TOL)
        torch.testing.assert_close(ours(x), ref(image), **TOL)
    # their normalisation ((log-mel + 4.5) / 5 - m) / s is what the stored statistics do to log-mel
    logmel = torch.randn(10, MEL, dtype=torch.float64) * 3 - 8
    theirs = ((logmel + 4.5) / 5 - torch.from_numpy(files["frame_mean"])) / torch.from_numpy(
        files["frame_std"].astype(np.float64))
    torch.testing.assert_close(normalize(logmel, mf["stats"], mf["normalize"]), theirs, atol=1e-5, rtol=1e-5)
    assert mf["fbank_config"]["sample_rate"] == 32000 and mf["fbank_config"]["log_offset"] == 1e-5


def test_authors_pretrained_encoder_and_decoder(files, tmp_path):
    ref = randomize_(MAE((MEL, FRAMES), P, D, DEPTH, HEADS, 16, 1, 2), seed=3).eval()
    mf, ours = run_import(tmp_path, dict(model=ref.state_dict()), "--format", "maskspec-authors",
                          "--decoder_num_heads", "2", "--mean_std", files["mean_std"])
    assert mf["kind"] == "pretrain" and mf["extra"]["decoder_imported"] and not mf["extra"]["dropped"]
    x = spectrogram(4)
    image = x.transpose(1, 2).unsqueeze(1)
    with torch.no_grad():
        latent = ours.encoder(x)[0]
        ref_latent = ref.forward_encoder(image)
        torch.testing.assert_close(latent, ref_latent, **TOL)
        ids = torch.arange(F_P * T_P).expand(2, -1)
        torch.testing.assert_close(ours.forward_decoder(latent, ids, (F_P, T_P)), ref.forward_decoder(ref_latent),
                                   **TOL)


def test_audiomae_finetuned_tagger(files, tmp_path):
    ref = randomize_(ViT((FRAMES, MEL), P, D, DEPTH, HEADS, 5, global_pool=True, cat_then_add=False), seed=5)
    mf, ours = run_import(tmp_path, dict(model=ref.eval().state_dict()),
                          "--format", "audiomae", "--class_labels", files["labels"])
    assert mf["normalize"] == "global" and mf["stats"]["global_mean"] == pytest.approx(-4.2677393)
    assert mf["stats"]["global_std"] == pytest.approx(2 * 4.5689974)
    assert mf["fbank_config"]["sample_rate"] == 16000 and mf["fbank_config"]["htk_compat"]
    x = spectrogram(6)
    image = x.unsqueeze(1)  # their input: [B, 1, frames, mel], time-major tokens
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(x)[0], time_major_to_ours(ref.tokens(image), F_P, T_P), **TOL)
        torch.testing.assert_close(ours.embed(x), ref.forward_features(image), **TOL)
        torch.testing.assert_close(ours(x), ref(image), **TOL)


def test_audiomae_pretrained_encoder_swin_decoder_dropped(tmp_path):
    # their flexible sin-cos table is laid out over patch_hw = (mel, time) columns while tokens are time-major
    ref = randomize_(MAE((FRAMES, MEL), P, D, DEPTH, HEADS, 16, 1, 2, table_grid=(F_P, T_P)), seed=7).eval()
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("decoder_blocks.")}
    swin = {"decoder_blocks.0.norm1.weight": (16,), "decoder_blocks.0.attn.qkv.weight": (48, 16),
            "decoder_blocks.0.attn.logit_scale": (2, 1, 1), "decoder_blocks.0.attn.meta_mlp.fc1.weight": (384, 2),
            "decoder_blocks.0.mlp.fc1.weight": (64, 16)}
    sd.update({k: torch.randn(s) for k, s in swin.items()})
    mf, ours = run_import(tmp_path, dict(model=sd), "--format", "audiomae")
    assert mf["kind"] == "pretrain" and not mf["extra"]["decoder_imported"]
    assert set(mf["extra"]["dropped"]) == {k for k in sd if k.startswith(("decoder_", "mask_token"))}
    x = spectrogram(8)
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(x)[0], time_major_to_ours(ref.forward_encoder(x.unsqueeze(1)),
                                                                          F_P, T_P), **TOL)


def test_unknown_missing_and_foreign_checkpoints(files, tmp_path, capsys):
    sd = randomize_(ViT((MEL, FRAMES), P, D, DEPTH, HEADS, 5), seed=9).state_dict()
    common = ("--format", "maskspec-authors", "--mean_std", files["mean_std"], "--class_labels", files["labels"])
    run_import(tmp_path, dict(model={**sd, "blocks.0.ls1.gamma": torch.ones(D)}), *common, expect=1)
    assert "unknown key 'blocks.0.ls1.gamma'" in capsys.readouterr().err
    run_import(tmp_path, dict(model={k: v for k, v in sd.items() if k != "blocks.1.mlp.fc2.bias"}), *common,
               expect=1)
    assert "missing key 'blocks.1.mlp.fc2.bias'" in capsys.readouterr().err
    run_import(tmp_path, dict(model={"conv1.weight": torch.zeros(8, 1, 3, 3)}), expect=1)
    assert "not a ViT checkpoint" in capsys.readouterr().err
    run_import(tmp_path, dict(model=sd, when=datetime.date(2022, 4, 1)), *common, expect=1)
    assert "--allow_pickle true" in capsys.readouterr().err
    run_import(tmp_path, dict(model=sd), "--format", "maskspec-authors", "--mean_std", files["mean_std"], expect=1)
    assert "--class_labels" in capsys.readouterr().err
    run_import(tmp_path, dict(model=sd), "--format", "audiomae", "--mean_std", files["mean_std"], expect=1)
    assert "applies to the authors' models" in capsys.readouterr().err
    run_import(tmp_path, dict(model=sd), *common)
    run_import(tmp_path, torch.load(tmp_path / "imported.pt", weights_only=True), expect=1)
    assert "already a MaskSpec model file" in capsys.readouterr().err


def test_format_detection_by_grid():
    def fake(n):
        return {"patch_embed.proj.weight": torch.zeros(4, 1, 16, 16), "cls_token": torch.zeros(1, 1, 4),
                "pos_embed": torch.zeros(1, n + 1, 4), "blocks.0.attn.qkv.weight": torch.zeros(12, 4)}
    assert detect_format(fake(8 * 62), "x") == "maskspec-authors"
    assert detect_format(fake(64 * 8), "x") == "audiomae"
    with pytest.raises(CheckpointImportError, match="give --format"):
        detect_format(fake(32), "x")
    with pytest.raises(CheckpointImportError, match="overlapping"):
        detect_format(fake(1212), "x")

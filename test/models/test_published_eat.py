"""maskspec-import of EAT: reference networks with EAT's parameter names and forward (reference_eat.py), random
weights, saved in each layout (fairseq checkpoint dict; Hugging Face safetensors / pytorch_model.bin + config.json),
imported; our tokens, pooled embedding and logits must equal the reference's on the same normalised input."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from maskspec.bin import import_checkpoint
from maskspec.features.normalize import normalize
from maskspec.models.configs import model_config
from maskspec.models.encoder import MaskSpecEncoder
from maskspec.models.model_file import build_model, load_model_file
from maskspec.models.published import detect_format, unwrap_state_dict
from reference_eat import (EATModel, Data2VecMulti, MaeImageClassification, hf_config, randomize_,
                           time_major_to_ours)

MEL, FRAMES, P, D, DEPTH, HEADS, CLASSES = 128, 64, 16, 64, 2, 4, 5
F_P, T_P = MEL // P, FRAMES // P
TOL = dict(atol=1e-5, rtol=0)
LABELS = "".join(f"class {i}\n" for i in range(CLASSES))


def fairseq_cfg(fine_tuned=False, mode="CLS_TOKEN"):
    """The plain-container cfg fairseq stores (the parts the import reads, and some it does not)."""
    model = dict(_name="data2vec_multi", depth=DEPTH, num_heads=HEADS, embed_dim=D, norm_eps=1e-6,
                 layer_norm_first=False, clone_batch=16, modalities=dict(image=dict(
                     in_chans=1, num_extra_tokens=1, prenet_depth=0, target_length=FRAMES)))
    if not fine_tuned:
        return dict(model=model, task=dict(_name="mae_image_pretraining", target_length=FRAMES), common=dict(seed=1))
    return dict(model=dict(_name="mae_image_classification", prediction_mode=mode, target_length=FRAMES,
                           num_classes=CLASSES, pretrained_model_args=dict(model=model)),
                task=dict(_name="mae_image_classification", target_length=FRAMES))


def run_import(tmp_path, source, *options, expect=0):
    out = tmp_path / "imported.pt"
    rc = import_checkpoint.main(["--checkpoint", str(source), "--output", str(out), *options])
    assert rc == expect
    if expect:
        return None, None
    mf = load_model_file(out)
    return mf, build_model(mf).eval()


def save_fairseq(tmp_path, model, cfg):
    """As fairseq's trainer saves: the training state beside the weights holds numpy numbers (a validation score,
    meters), which the import reads without --allow_pickle."""
    src = tmp_path / "eat.pt"
    meters = [(0, "loss", "AverageMeter", dict(val=np.float64(0.25), sum=np.float32(2.5), count=np.int64(10)))]
    torch.save(dict(model=model.state_dict(), cfg=cfg, optimizer_history=[dict(num_updates=10)],
                    extra_state=dict(previous_training_time=1.5, val_loss=np.float64(0.47),
                                     metrics=dict(train=meters), history=np.array([0.1, 0.2]))), src)
    return src


def spectrogram(seed=1, frames=FRAMES):
    return torch.randn(2, frames, MEL, generator=torch.Generator().manual_seed(seed))  # normalised [B, T, F]


def test_fairseq_pretrained_student_and_decoder_kept_teacher_dropped(tmp_path):
    ref = randomize_(Data2VecMulti(FRAMES, MEL, P, D, DEPTH, HEADS), seed=2).eval()
    mf, ours = run_import(tmp_path, save_fairseq(tmp_path, ref, fairseq_cfg()))
    assert mf["kind"] == "pretrain" and mf["extra"]["source_format"] == "eat-fairseq"
    cfg = mf["model_config"]
    assert (cfg["post_norm"], cfg["embed_norm"], cfg["final_norm"], cfg["pos_embed"], cfg["num_heads"]) == (
        True, True, False, "extend", HEADS)
    # a model file of the bootstrap objective (EAT's), with EAT's CNN decoder
    assert (cfg["objective"], cfg["decoder_type"], cfg["decoder_depth"], cfg["decoder_kernel"], cfg["decoder_groups"],
            cfg["utterance_loss_weight"], cfg["target_top_k"]) == ("bootstrap", "cnn", 2, 3, 4, 1.0, DEPTH)
    sd = ref.state_dict()
    teacher = {f"_ema.{k}" for k in sd["_ema"]}
    assert set(mf["extra"]["dropped"]) == teacher and teacher and mf["extra"]["decoder_imported"]
    # their normalisation (feature_extract.py): (fbank - (-4.268)) / (4.569 * 2), one value for every bin
    fbank = torch.randn(10, MEL, dtype=torch.float64) * 3 - 6
    torch.testing.assert_close(normalize(fbank, mf["stats"], mf["normalize"]), (fbank + 4.268) / (4.569 * 2),
                               atol=1e-6, rtol=1e-6)
    assert mf["fbank_config"]["sample_rate"] == 16000 and mf["fbank_config"]["htk_compat"]
    assert mf["fbank_config"]["num_mel_bins"] == 128 and mf["fbank_config"]["window_type"] == "hanning"
    x = spectrogram(3)
    with torch.no_grad():
        theirs = time_major_to_ours(ref.extract_features(x.unsqueeze(1)), F_P, T_P)
        torch.testing.assert_close(ours.encoder(x)[0], theirs, **TOL)
        # a shorter input: EAT's fixed table gives its first time columns, as our fixed positions do
        short = spectrogram(4, 2 * P)
        ref_short = ref.modality_encoders["IMAGE"]
        t = ref_short.local_encoder(short.unsqueeze(1))
        t = t + ref_short.fixed_positional_encoder.positions[:, :t.shape[1]]
        t = ref_short.context_encoder.norm(torch.cat([ref_short.extra_tokens.expand(2, -1, -1), t], dim=1))
        for blk in ref.blocks:
            t = blk(t)
        torch.testing.assert_close(ours.encoder(short)[0], time_major_to_ours(t, F_P, 2), **TOL)
        # the decoder on all patches visible (EAT's noise for hidden ones does not enter); EAT's LayerNorm eps is
        # 1e-5, ours 1e-6
        latent = ours.encoder(x)[0]
        pred = ours.forward_decoder(latent, torch.arange(F_P * T_P).expand(2, -1), (F_P, T_P))
        ref_pred = ref.modality_encoders["IMAGE"].decoder(ref.extract_features(x.unsqueeze(1))[:, 1:], T_P, F_P)
        torch.testing.assert_close(pred, time_major_to_ours(torch.cat([ref_pred[:, :1], ref_pred], 1), F_P, T_P)[:, 1:],
                                   atol=1e-4, rtol=0)


def test_fairseq_decoder_that_changes_width_is_dropped(tmp_path):
    ref = randomize_(Data2VecMulti(FRAMES, MEL, P, D, 1, HEADS, decoder_dim=32), seed=3).eval()
    mf, _ = run_import(tmp_path, save_fairseq(tmp_path, ref, fairseq_cfg()))
    sd = ref.state_dict()
    assert set(mf["extra"]["dropped"]) == {f"_ema.{k}" for k in sd["_ema"]} | {k for k in sd if ".decoder." in k}
    assert not mf["extra"]["decoder_imported"] and mf["model_config"]["decoder_type"] == "cnn"


@pytest.mark.parametrize("mean_pooling", [False, True])
def test_fairseq_finetuned_tagger(tmp_path, mean_pooling):
    ref = randomize_(MaeImageClassification(FRAMES, MEL, P, D, DEPTH, HEADS, CLASSES, mean_pooling), seed=5).eval()
    (tmp_path / "labels.txt").write_text(LABELS)
    cfg = fairseq_cfg(True, "MEAN_POOLING" if mean_pooling else "CLS_TOKEN")
    mf, ours = run_import(tmp_path, save_fairseq(tmp_path, ref, cfg), "--class_labels", str(tmp_path / "labels.txt"))
    assert mf["kind"] == "classifier" and mf["task_type"] == "multi_label" and not mf["extra"]["dropped"]
    assert mf["model_config"]["pool"] == ("mean" if mean_pooling else "cls")
    x = spectrogram(6)
    image = x.unsqueeze(1)
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(x)[0], time_major_to_ours(ref.model.extract_features(image), F_P,
                                                                          T_P), **TOL)
        torch.testing.assert_close(ours.embed(x), ref.forward_features(image), **TOL)
        torch.testing.assert_close(ours(x), ref(image), **TOL)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("fine_tuned", [False, True])
def test_hugging_face_layout(tmp_path, weights, fine_tuned):
    ref = randomize_(EATModel(mel=MEL, patch=P, dim=D, depth=DEPTH, heads=HEADS, max_length=2 * T_P,
                              num_classes=CLASSES if fine_tuned else None), seed=7).eval()
    d = tmp_path / "EAT-tiny"
    d.mkdir()
    sd = {k: v.contiguous() for k, v in ref.state_dict().items()}
    if weights.endswith(".safetensors"):
        save_file(sd, d / weights, metadata={"format": "pt"})
    else:
        torch.save(sd, d / weights)
    (d / "config.json").write_text(json.dumps(hf_config(D, DEPTH, HEADS, P, MEL, 2 * T_P, FRAMES,
                                                        CLASSES if fine_tuned else None)))
    (tmp_path / "labels.txt").write_text(LABELS)
    options = ("--class_labels", str(tmp_path / "labels.txt")) if fine_tuned else ()
    mf, ours = run_import(tmp_path, d, *options)
    assert mf["extra"]["source_format"] == "eat-hf" and mf["num_frames"] == FRAMES
    assert mf["kind"] == ("classifier" if fine_tuned else "pretrain") and not mf["extra"]["dropped"]
    # the tagger's fc_norm as the port builds it (nn.LayerNorm's default eps); else EAT's fine-tuning head's
    assert mf["model_config"]["fc_norm_eps"] == (1e-5 if fine_tuned else 1e-6)
    x = spectrogram(8)
    image = x.unsqueeze(1)
    net = ref.model
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(x)[0], time_major_to_ours(net.extract_features(image), F_P, T_P),
                                   **TOL)
        if fine_tuned:
            torch.testing.assert_close(ours.embed(x), net.forward_features(image), **TOL)
            torch.testing.assert_close(ours(x), net(image), **TOL)
    if weights.endswith(".safetensors"):  # the file itself, config.json beside it
        mf2, _ = run_import(tmp_path, d / weights, *options)
        assert all(torch.equal(mf2["state_dict"][k], v) for k, v in mf["state_dict"].items())


def test_safetensors_file_without_config_json(tmp_path, capsys):
    ref = randomize_(EATModel(mel=MEL, patch=P, dim=D, depth=1, heads=HEADS, max_length=T_P), seed=8).eval()
    # without the fixed position table too (the port computes it from config.json; so do we)
    save_file({k: v.contiguous() for k, v in ref.state_dict().items() if "positional" not in k},
              tmp_path / "eat.safetensors")
    run_import(tmp_path, tmp_path / "eat.safetensors", expect=1)  # width 64: the heads are not known
    assert "--num_heads" in capsys.readouterr().err
    mf, ours = run_import(tmp_path, tmp_path / "eat.safetensors", "--format", "eat-hf", "--num_heads", str(HEADS),
                          "--num_frames", str(FRAMES))
    printed = capsys.readouterr().out
    assert "no config.json" in printed and "positions: not stored" in printed
    assert mf["model_config"]["objective"] == "bootstrap" and mf["model_config"]["pos_embed"] == "extend"
    x = spectrogram(9)
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(x)[0], time_major_to_ours(ref.model.extract_features(x.unsqueeze(1)),
                                                                          F_P, T_P), **TOL)


def test_learned_positions_when_the_table_is_not_sincos(tmp_path):
    ref = randomize_(Data2VecMulti(FRAMES, MEL, P, D, DEPTH, HEADS), seed=9).eval()
    with torch.no_grad():
        ref.modality_encoders["IMAGE"].fixed_positional_encoder.positions.add_(0.05)
    mf, ours = run_import(tmp_path, save_fairseq(tmp_path, ref, fairseq_cfg()))
    assert mf["model_config"]["pos_embed"] == "learned"
    x = spectrogram(10)
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(x)[0], time_major_to_ours(ref.extract_features(x.unsqueeze(1)), F_P,
                                                                          T_P), **TOL)


def test_errors_name_the_key_or_setting(tmp_path, capsys):
    ref = randomize_(Data2VecMulti(FRAMES, MEL, P, D, DEPTH, HEADS), seed=11)
    sd = ref.state_dict()
    cfg = fairseq_cfg()
    src = tmp_path / "eat.pt"
    torch.save(dict(model={**sd, "modality_encoders.IMAGE.alibi_scale": torch.ones(1, 1, 1, 1, 1)}, cfg=cfg), src)
    run_import(tmp_path, src, expect=1)
    assert "unknown key 'modality_encoders.IMAGE.alibi_scale'" in capsys.readouterr().err
    torch.save(dict(model={k: v for k, v in sd.items() if k != "modality_encoders.IMAGE.context_encoder.norm.bias"},
                    cfg=cfg), src)
    run_import(tmp_path, src, expect=1)
    assert "missing key 'modality_encoders.IMAGE.context_encoder.norm.bias'" in capsys.readouterr().err
    torch.save(dict(model=sd, cfg={**cfg, "model": {**cfg["model"], "layer_norm_first": True}}), src)
    run_import(tmp_path, src, expect=1)
    assert "layer_norm_first" in capsys.readouterr().err
    torch.save(dict(model=sd, cfg=cfg, extra_state=dict(labels=np.array(["a", None], dtype=object))), src)
    run_import(tmp_path, src, expect=1)  # an object array: only with --allow_pickle
    assert "--allow_pickle true" in capsys.readouterr().err
    torch.save(dict(model=sd), src)  # no cfg: width 64 is no standard ViT size
    run_import(tmp_path, src, expect=1)
    assert "--num_heads" in capsys.readouterr().err
    mf, _ = run_import(tmp_path, src, "--num_heads", str(HEADS))
    assert mf["model_config"]["num_heads"] == HEADS
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"not safetensors")
    run_import(tmp_path, tmp_path / "hf", expect=1)
    assert "cannot read as safetensors" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    run_import(tmp_path, tmp_path / "empty", expect=1)
    assert "no model.safetensors or pytorch_model.bin" in capsys.readouterr().err


def test_detection_and_nested_state_dicts():
    fs = Data2VecMulti(FRAMES, MEL, P, D, 1, HEADS).state_dict()
    flat = unwrap_state_dict(dict(model=fs), "x")
    assert "_ema.blocks.0.norm1.weight" in flat and detect_format(flat, "x") == "eat-fairseq"
    assert set(unwrap_state_dict(dict(model={**fs, "_ema": {}}), "x")) == {k for k in fs if k != "_ema"}
    ft = MaeImageClassification(FRAMES, MEL, P, D, 1, HEADS, CLASSES).state_dict()
    assert detect_format(ft, "x") == "eat-fairseq"
    hf = EATModel(mel=MEL, patch=P, dim=D, depth=1, heads=HEADS, max_length=T_P).state_dict()
    assert detect_format(hf, "x") == "eat-hf"


def test_new_model_options_default_off_and_post_norm_differs():
    """The options EAT needs change nothing unless set; set, they change the computation."""
    base = model_config("tiny", depth=2, num_frames=64)
    assert not (base.post_norm or base.embed_norm or base.cls_fc_norm) and base.fc_norm_eps == 1e-6
    torch.manual_seed(0)
    enc = MaskSpecEncoder(base).eval()
    assert not any("embed_norm" in k for k in enc.state_dict())
    post = MaskSpecEncoder(model_config(base, post_norm=True, embed_norm=True)).eval()
    post.load_state_dict({**enc.state_dict(), "embed_norm.weight": torch.ones(192),
                          "embed_norm.bias": torch.zeros(192)})
    x = spectrogram(12)
    with torch.no_grad():
        assert not torch.allclose(enc(x)[0], post(x)[0], atol=1e-3)
    with pytest.raises(ValueError, match="cls_fc_norm"):
        model_config(base, cls_fc_norm=True)

import pytest
import torch

from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel

SMALL = dict(patch_size=8, num_mel_bins=32, num_frames=64, embed_dim=32, depth=2, num_heads=2,
             decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)


def _cfg(**kw):
    return model_config("tiny", **{**SMALL, **kw})


def test_load_encoder_from_pretraining_state_dict():
    torch.manual_seed(0)
    pre = MaskSpecModel(_cfg())
    clf = AudioClassifier(_cfg(drop_path=0.1), 5)
    missing, unexpected = clf.load_encoder(pre.state_dict())
    decoder_keys = [k for k in pre.state_dict() if not k.startswith("encoder.")]
    assert missing == [] and unexpected == sorted(decoder_keys) and len(unexpected) > 0
    for k, v in pre.encoder.state_dict().items():
        assert torch.equal(clf.encoder.state_dict()[k], v)
    # bare encoder dict with a DDP prefix, one key absent
    bare = {"module." + k: v for k, v in pre.encoder.state_dict().items() if k != "norm.bias"}
    assert AudioClassifier(_cfg(), 3).load_encoder(bare) == (["norm.bias"], [])


def test_shape_mismatch():
    pre = MaskSpecModel(_cfg(patch_size=16, num_frames=64))
    clf = AudioClassifier(_cfg(), 2)
    with pytest.raises(ValueError, match="encoder.patch_embed.proj.weight"):
        clf.load_encoder(pre.state_dict())
    before = clf.encoder.patch_embed.proj.weight.clone()
    missing, _ = clf.load_encoder(pre.state_dict(), ignore_shape_mismatch=True)
    assert missing == ["patch_embed.proj.weight"]
    assert torch.equal(clf.encoder.patch_embed.proj.weight, before)
    assert torch.equal(clf.encoder.cls_token, pre.encoder.cls_token)
    with pytest.raises(ValueError, match="no encoder weights"):
        clf.load_encoder({"foo.weight": torch.zeros(1)})


def test_outputs_and_frame_embed():
    torch.manual_seed(0)
    clf = AudioClassifier(_cfg(), 7).eval()
    x = torch.randn(3, 100, 32)  # grid 4 x 12, 4 frames cropped
    assert clf(x).shape == (3, 7) and clf(x, num_drop=20).shape == (3, 7)
    assert clf.embed(x).shape == (3, 32)
    frames = clf.frame_embed(x)
    assert frames.shape == (3, 12, 32)
    tokens = clf.encoder(x)[0][:, 1:].view(3, 4, 12, 32)
    torch.testing.assert_close(frames[:, 5], tokens[:, :, 5].mean(1))
    # pooled embedding = fc_norm of the mean over patch tokens, cls excluded
    torch.testing.assert_close(clf.embed(x), clf.fc_norm(tokens.mean((1, 2))))
    assert clf.head.weight.abs().max() < 1e-4


def test_layer_ids_cover_every_parameter():
    clf = AudioClassifier(_cfg(), 2)
    assert clf.num_layers == 3
    ids = {name: clf.layer_id(name) for name, _ in clf.named_parameters()}
    assert ids["encoder.patch_embed.proj.weight"] == 0 and ids["encoder.cls_token"] == 0
    assert ids["encoder.blocks.0.attn.qkv.weight"] == 1 and ids["encoder.blocks.1.mlp.fc2.bias"] == 2
    assert ids["encoder.norm.weight"] == ids["fc_norm.weight"] == ids["head.bias"] == 3
    assert clf.layer_id("module.encoder.blocks.1.norm1.weight") == 2
    assert set(ids.values()) == {0, 1, 2, 3}


def test_backward_and_freeze_encoder():
    torch.manual_seed(0)
    clf = AudioClassifier(_cfg(drop_path=0.1), 4).train()
    x = torch.randn(2, 64, 32)
    clf(x, num_drop=8).sum().backward()
    assert all(p.grad is not None for p in clf.parameters())
    clf.zero_grad(set_to_none=True)
    clf.freeze_encoder()
    clf(x).sum().backward()
    assert all(p.grad is None for p in clf.encoder.parameters())
    assert clf.head.weight.grad is not None and clf.fc_norm.weight.grad is not None

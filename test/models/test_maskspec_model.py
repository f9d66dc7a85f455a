import pytest
import torch
from torch import nn

from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel, patch_targets
from maskspec.models.patch import patchify

SMALL = dict(patch_size=8, num_mel_bins=32, num_frames=64, embed_dim=32, depth=2, num_heads=2,
             decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2)


def _model(**kw):
    torch.manual_seed(0)
    return MaskSpecModel(model_config("tiny", **{**SMALL, **kw}))


def test_loss_only_on_masked_patches():
    model = _model()
    x = torch.randn(2, 64, 32)
    loss, pred, mask = model(x, generator=torch.Generator().manual_seed(0))
    assert pred.shape == (2, 32, 64) and mask.shape == (2, 32) and torch.equal(mask.sum(1), torch.tensor([24., 24.]))
    visible = (mask == 0).unsqueeze(-1)
    same = model.forward_loss(x, pred + 5.0 * visible, mask)
    torch.testing.assert_close(same, loss)
    changed = model.forward_loss(x, pred + 5.0 * ~visible, mask)
    assert changed > loss + 1
    target, _, _ = patch_targets(x, 8, True)
    manual = ((pred - target) ** 2).mean(-1)[mask.bool()].mean()
    torch.testing.assert_close(loss, manual)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_targets(norm_pix):
    model = _model(norm_pix_loss=norm_pix)
    x = torch.randn(2, 64, 32) * 3 + 1
    target, mean, std = patch_targets(x, 8, norm_pix)
    raw = patchify(x, 8)
    if norm_pix:
        torch.testing.assert_close(target.mean(-1), torch.zeros(2, 32), atol=1e-5, rtol=0)
        torch.testing.assert_close(target.var(-1), raw.var(-1) / (raw.var(-1) + 1e-6))
        torch.testing.assert_close(target * std + mean, raw, atol=1e-5, rtol=0)
    else:
        assert torch.equal(target, raw)
    mask = (torch.rand(2, 32) < 0.5).float()
    mask[:, 0] = 1
    assert model.forward_loss(x, target, mask) == 0


def test_decoder_restores_patch_order():
    model = _model().eval()
    model.decoder_blocks = nn.ModuleList()  # each output then depends only on its own input token
    x = torch.randn(2, 64, 32)
    latent, mask, ids_restore = model.forward_encoder(x, 0.75, torch.Generator().manual_seed(1))
    pred = model.forward_decoder(latent, ids_restore, (4, 8))
    pos = model.decoder_pos_embed((4, 8), pred)
    head = lambda t: model.decoder_pred(model.decoder_norm(t))  # noqa: E731
    for b in range(2):
        for i in range(32):
            slot = ids_restore[b, i].item()  # place of patch i in [visible..., masked...]
            if mask[b, i]:
                expected = head(model.mask_token[0, 0] + pos[i])
            else:
                expected = head(model.decoder_embed(latent[b, 1 + slot]) + pos[i])
            torch.testing.assert_close(pred[b, i], expected)


def test_reconstruct():
    model = _model()
    x = torch.randn(2, 70, 32)  # 6 frames cropped
    target, _, _ = patch_targets(x, 8, True)
    _, mask, _ = model.encoder(x, mask_ratio=0.5)
    masked_input, recon = model.reconstruct(x, target, mask)
    assert masked_input.shape == recon.shape == (2, 64, 32)
    torch.testing.assert_close(recon, x[:, :64], atol=1e-5, rtol=0)
    keep = patchify(masked_input, 8)
    assert torch.all(keep[mask.bool()] == 0)
    torch.testing.assert_close(keep[~mask.bool()], patchify(x, 8)[~mask.bool()])


def test_tiny_forward_backward_on_cpu():
    torch.manual_seed(0)
    model = MaskSpecModel(model_config("tiny", num_frames=128, drop_path=0.1)).train()
    loss, pred, mask = model(torch.randn(2, 128, 128))
    assert pred.shape == (2, 64, 256) and torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.mask_token.grad.abs().sum() > 0 and model.encoder.cls_token.grad.abs().sum() > 0


def test_mask_ratio_errors():
    model = _model()
    with pytest.raises(ValueError, match="mask_ratio"):
        model(torch.randn(1, 64, 32), mask_ratio=0.0)

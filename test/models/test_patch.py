import pytest
import torch

from maskspec.models.patch import PatchEmbed, patchify, unpatchify


def test_round_trip_exact():
    x = torch.randn(3, 64, 32)
    patches = patchify(x, 16)
    assert patches.shape == (3, 2 * 4, 256)
    assert torch.equal(unpatchify(patches, 16, (2, 4)), x)


def test_frames_beyond_multiple_of_p_are_cropped():
    x = torch.randn(2, 70, 32)
    patches = patchify(x, 16)
    assert patches.shape == (2, 2 * 4, 256)
    assert torch.equal(unpatchify(patches, 16, (2, 4)), x[:, :64])


def test_patch_order_is_row_major_over_freq_then_time():
    t_p, f_p, p = 5, 3, 4
    # value = 1000 * mel bin + frame, so each patch's origin identifies it
    frames = torch.arange(t_p * p).view(-1, 1)
    mels = torch.arange(f_p * p).view(1, -1)
    x = (1000 * mels + frames).float().unsqueeze(0)  # [1, T, F]
    patches = patchify(x, p)
    for f in range(f_p):
        for t in range(t_p):
            patch = patches[0, f * t_p + t].view(p, p)  # [mel offset i, frame offset j]
            assert patch[0, 0] == 1000 * f * p + t * p
            assert patch[1, 0] == 1000 * (f * p + 1) + t * p
            assert patch[0, 1] == 1000 * f * p + t * p + 1


def test_patch_embed_matches_linear_on_patchify_order():
    torch.manual_seed(0)
    embed = PatchEmbed(4, 8)
    x = torch.randn(2, 22, 12)  # 22 frames -> 5 columns, 2 frames cropped
    out = embed(x)
    assert out.shape == (2, 3 * 5, 8)
    linear = patchify(x, 4) @ embed.proj.weight.view(8, -1).T + embed.proj.bias
    torch.testing.assert_close(out, linear, rtol=1e-5, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="smaller than one"):
        patchify(torch.randn(1, 8, 32), 16)
    with pytest.raises(ValueError, match=r"\[B, T, F\]"):
        patchify(torch.randn(8, 32), 16)
    with pytest.raises(ValueError, match="unpatchify expects"):
        unpatchify(torch.randn(1, 7, 256), 16, (2, 4))

import pytest
import torch

from maskspec.models.pos_embed import SinCosPosEmbed, interpolate_pos_embed, sincos_1d, sincos_2d


def test_halves_encode_frequency_and_time():
    pe = sincos_2d(16, 3, 5).view(3, 5, 16)
    assert pe.dtype == torch.float32
    # first half depends only on the frequency row, second half only on the time column
    assert torch.equal(pe[:, :1, :8].expand(-1, 5, -1), pe[..., :8])
    assert torch.equal(pe[:1, :, 8:].expand(3, -1, -1), pe[..., 8:])
    torch.testing.assert_close(pe[2, 4, 8:], sincos_1d(8, torch.tensor([4]))[0].float())
    assert not torch.equal(pe[0, 0], pe[0, 1]) and not torch.equal(pe[0, 0], pe[1, 0])


def test_extend_longer_and_shorter_grid_share_prefix_columns():
    module = SinCosPosEmbed(32, (8, 62), "extend")
    like = torch.zeros(())
    base = module((8, 62), like).view(8, 62, 32)
    longer = module((8, 100), like).view(8, 100, 32)
    shorter = module((8, 6), like).view(8, 6, 32)
    assert torch.equal(longer[:, :62], base)
    assert torch.equal(shorter, base[:, :6])


def test_interpolate_shape_and_corners():
    pe = sincos_2d(32, 8, 62)
    for new in [(8, 100), (8, 6), (4, 31)]:
        out = interpolate_pos_embed(pe, (8, 62), new)
        assert out.shape == (new[0] * new[1], 32)
        grid_in, grid_out = pe.view(8, 62, 32), out.view(*new, 32)
        for fi, fo in ((0, 0), (-1, -1)):
            for ti, to in ((0, 0), (-1, -1)):
                torch.testing.assert_close(grid_out[fo, to], grid_in[fi, ti])
    assert interpolate_pos_embed(pe, (8, 62), (8, 62)) is pe
    module = SinCosPosEmbed(32, (8, 62), "interpolate")
    longer = module((8, 100), torch.zeros(()))
    torch.testing.assert_close(longer, interpolate_pos_embed(pe, (8, 62), (8, 100)))
    assert not torch.equal(longer.view(8, 100, 32)[:, :62], pe.view(8, 62, 32))


def test_cache_follows_dtype_and_has_no_state():
    module = SinCosPosEmbed(16, (2, 4), "extend")
    a = module((2, 4), torch.zeros((), dtype=torch.bfloat16))
    assert a.dtype == torch.bfloat16 and module((2, 4), torch.zeros((), dtype=torch.bfloat16)) is a
    assert module.state_dict() == {} and list(module.parameters()) == []


def test_errors():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(6, 2, 2)
    with pytest.raises(ValueError, match="mode"):
        SinCosPosEmbed(16, (2, 4), "learned")
    with pytest.raises(ValueError, match="does not match grid"):
        interpolate_pos_embed(torch.zeros(7, 16), (2, 4), (2, 8))

"""Pre-training masks: exact hidden counts for every mask type and view, block shapes, K distinct views."""
import pytest
import torch

from maskspec.models.block_masking import mask_scores
from maskspec.models.configs import MASK_TYPES, model_config
from maskspec.models.masking import num_keep, random_masking
from maskspec.models.maskspec import MaskSpecModel


def small_config(**kw):
    # 64 mel x 192 frames on 16x16 patches: the mini recipe's 4 x 12 grid
    return model_config("tiny", embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=32, decoder_depth=1,
                        decoder_num_heads=2, num_mel_bins=64, num_frames=192, **kw)


@pytest.mark.parametrize("mask_type", MASK_TYPES)
@pytest.mark.parametrize("ratio,block", [(0.75, (2, 2)), (0.8, (1, 5)), (0.5, (4, 3))])
def test_every_view_hides_exactly_the_ratio(mask_type, ratio, block):
    cfg = small_config(mask_type=mask_type, mask_ratio=ratio, mask_block_freq=block[0], mask_block_time=block[1],
                       num_masks=3)
    torch.manual_seed(0)
    x = torch.randn(5, 192, 64)
    _, pred, mask = MaskSpecModel(cfg)(x)
    assert pred.shape == (15, 48, 256) and mask.shape == (15, 48)
    assert mask.sum(dim=1).tolist() == [48 - num_keep(48, ratio)] * 15


def _rectangle(cells: torch.Tensor) -> tuple[int, int]:
    """(height, width) of a [F, T] 0/1 grid whose ones form one full rectangle; AssertionError otherwise."""
    rows, cols = cells.nonzero(as_tuple=True)
    f0, f1, t0, t1 = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
    assert int(cells.sum()) == (f1 - f0 + 1) * (t1 - t0 + 1), cells
    return f1 - f0 + 1, t1 - t0 + 1


@pytest.mark.parametrize("block", [(2, 3), (4, 2), (1, 5), (8, 1)])
def test_block_shapes(block):
    """With exactly one rectangle's worth of cells, block hides one rectangle and inverse_block shows one."""
    grid, gen = (4, 12), torch.Generator().manual_seed(1)
    clipped = (min(block[0], grid[0]), min(block[1], grid[1]))
    area = clipped[0] * clipped[1]
    x = torch.zeros(20, 48, 1)
    for mask_type, ratio, wanted in (("block", area / 48, 1.0), ("inverse_block", 1 - area / 48, 0.0)):
        scores = mask_scores(20, grid, mask_type, block, gen)
        _, mask, _ = random_masking(x, ratio, noise=scores)
        for row in mask:
            assert _rectangle((row == wanted).view(grid).int()) == clipped


def test_block_masks_are_mostly_contiguous():
    """At 75 % on a 4 x 12 grid, 2 x 2 rectangles: a hidden (block) or visible (inverse_block) patch has far more
    same-state neighbours along time than under random masking."""
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(400, 48, 1)

    def same_neighbour_share(mask_type, state):
        _, mask, _ = random_masking(x, 0.75, noise=mask_scores(400, (4, 12), mask_type, (2, 2), gen))
        m = (mask.view(-1, 4, 12) == state).float()
        return float((m[..., 1:] * m[..., :-1]).sum() / m[..., :-1].sum())

    # measured: visible 0.59 (inverse_block) vs 0.23 (random); hidden 0.85 (block) vs 0.74 (random)
    assert same_neighbour_share("inverse_block", 0.0) > 0.45 and same_neighbour_share("random", 0.0) < 0.3
    assert same_neighbour_share("block", 1.0) > same_neighbour_share("random", 1.0) + 0.05


def test_views_differ_share_targets_and_average_their_losses():
    cfg = small_config(num_masks=4, mask_type="inverse_block")
    torch.manual_seed(0)
    model, x = MaskSpecModel(cfg), torch.randn(3, 192, 64)
    loss, pred, mask = model(x)
    views = mask.view(4, 3, 48)
    for b in range(3):
        assert len({tuple(views[k, b].tolist()) for k in range(4)}) == 4  # K distinct masks of each clip
    per_view = [model.forward_loss(x, pred.view(4, 3, 48, -1)[k], views[k]) for k in range(4)]
    assert torch.allclose(loss, torch.stack(per_view).mean(), rtol=1e-6)
    # validation and images take one view whatever the config
    assert model(x, num_masks=1)[2].shape == (3, 48)
    with pytest.raises(ValueError, match="mask_type"):
        small_config(mask_type="blocks")

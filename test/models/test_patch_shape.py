"""Patch shape as a model option (patch_freq x patch_time, e.g. 64 x 4 frame patches), time-span masking, and
that the square default is unchanged (old model files without the new fields load and give the same outputs)."""
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from maskspec.models.block_masking import mask_scores
from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.ctc import CTCModel, auto_upsample
from maskspec.models.flops import classifier_flops_per_clip, pretrain_flops_per_clip
from maskspec.models.masking import num_keep, random_masking
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import build_model
from maskspec.models.patch import PatchEmbed, patch_grid, patchify, unpatchify
from maskspec.models.summary import describe

SMALL = dict(num_mel_bins=32, num_frames=64, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16,
             decoder_depth=1, decoder_num_heads=2)


def test_patchify_frame_patches_roundtrip_and_layout():
    x = torch.randn(2, 19, 32)  # 19 frames: the last 3 (not a whole 4-frame column) are cropped
    p = patchify(x, (32, 4))
    assert patch_grid(19, 32, (32, 4)) == (1, 4) and p.shape == (2, 4, 128)
    # value index i * p_t + j: mel offset i, frame offset j
    assert torch.equal(p[1, 2].reshape(32, 4), x[1, 8:12].T)
    assert torch.equal(unpatchify(p, (32, 4), (1, 4)), x[:, :16])
    q = patchify(x, (8, 2))
    assert q.shape == (2, 4 * 9, 16) and torch.equal(unpatchify(q, (8, 2), (4, 9)), x[:, :18])
    assert torch.equal(patchify(x[:, :16], 4), patchify(x[:, :16], (4, 4)))  # an int is the square shape
    with pytest.raises(ValueError, match="smaller than one 32x4 patch"):
        patch_grid(3, 32, (32, 4))


def test_patch_embed_is_a_linear_map_of_the_patch_vector():
    embed = PatchEmbed((16, 2), 8)
    x = torch.randn(3, 10, 32)
    w = embed.proj.weight.reshape(8, -1)  # the kernel flattened row-major over (mel i, frame j)
    expected = patchify(x, (16, 2)) @ w.T + embed.proj.bias
    assert torch.allclose(embed(x), expected, atol=1e-5)


def test_config_patch_shape_defaults_to_square_and_checks():
    cfg = model_config("tiny", **SMALL)
    assert cfg.patch_shape == (16, 16) and cfg.grid == (2, 4)
    frame = model_config(cfg, patch_freq=32, patch_time=4)
    assert frame.patch_shape == (32, 4) and frame.grid == (1, 16)
    assert "patch 32x4 (mel x frames), grid 1x16" in describe(frame) and "patch 16, grid 2x4" in describe(cfg)
    for bad in (dict(patch_freq=-1), dict(patch_time=128), dict(mask_span=0), dict(mask_type="span")):
        with pytest.raises(ValueError):
            model_config(cfg, **bad)


def test_default_outputs_and_old_model_files_unchanged():
    """A model file written before the new fields (no patch_freq / patch_time / mask_span in its config) loads
    strictly and gives the outputs of the network it was saved from; setting the shape explicitly to 16 x 16 is
    the same network."""
    cfg = model_config("tiny", **SMALL)
    torch.manual_seed(0)
    net = AudioClassifier(cfg, 3).eval()
    old_config = {k: v for k, v in cfg.to_dict().items() if k not in ("patch_freq", "patch_time", "mask_span")}
    mf = dict(kind="classifier", model_config=old_config, state_dict=net.state_dict(), classes=["a", "b", "c"])
    loaded = build_model(mf)
    x = torch.randn(2, 64, 32)
    assert torch.equal(loaded(x), net(x))
    explicit = AudioClassifier(model_config(cfg, patch_freq=16, patch_time=16), 3).eval()
    explicit.load_state_dict(net.state_dict())
    assert torch.equal(explicit(x), net(x))
    # CTC: the column projection of square patches is kept (4 steps per 16-frame column)
    ctc = CTCModel(cfg, 7, 4)
    assert not ctc.direct and ctc(x).shape == (2, 16, 7)


def test_frame_patch_models_pretrain_and_ctc():
    cfg = model_config("tiny", **SMALL, patch_freq=32, patch_time=2, mask_type="time_span", mask_span=3)
    x = torch.randn(2, 64, 32)
    model = MaskSpecModel(cfg)
    loss, pred, mask = model(x, generator=torch.Generator().manual_seed(0))
    assert pred.shape == (2, 32, 64) and torch.isfinite(loss)
    assert mask.sum(1).tolist() == [32 - num_keep(32, 0.75)] * 2
    masked, recon = model.reconstruct(x, pred, mask)
    assert masked.shape == recon.shape == (2, 64, 32)
    # CTC on frame patches: the tokens are the output steps, one per 2-frame column, no projection
    assert auto_upsample(cfg) == 1 and auto_upsample(model_config("tiny", **SMALL)) == 4
    ctc = CTCModel(cfg, 7, 0)
    assert ctc.direct and not hasattr(ctc, "upsample_proj") and ctc.upsample == 1
    assert ctc(x).shape == (2, 32, 7)
    assert ctc.output_lengths(torch.tensor([64, 9])).tolist() == [32, 4]
    ctc.load_encoder(model.state_dict())  # the pre-trained frame-patch encoder loads into it
    # 8 x 4 patches on 32 mel bins (4 rows): the column projection stays
    rows = CTCModel(model_config(cfg, patch_freq=8, patch_time=4), 7, 0)
    assert not rows.direct and rows(x).shape == (2, 16, 7)


def _counted(model, *args, **kwargs) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(*args, **kwargs)
    return counter.get_total_flops()


@pytest.mark.parametrize("shape", [(32, 2), (8, 4)])
def test_flops_follow_the_patch_shape(shape):
    cfg = model_config("tiny", **SMALL, patch_freq=shape[0], patch_time=shape[1], mask_ratio=0.6)
    x = torch.randn(2, 64, 32)
    assert _counted(MaskSpecModel(cfg), x) == pytest.approx(2 * pretrain_flops_per_clip(cfg, 64, train=False),
                                                            rel=1e-9)
    assert _counted(AudioClassifier(cfg, 5), x) == pytest.approx(
        2 * classifier_flops_per_clip(cfg, 64, 5, train=False), rel=1e-9)


def test_time_span_masks_hide_whole_columns_in_spans():
    grid = (1, 40)
    gen = torch.Generator().manual_seed(3)
    scores = mask_scores(64, grid, "time_span", (99, 4), gen)
    tokens = torch.zeros(64, 40, 1)
    _, mask, _ = random_masking(tokens, 0.5, noise=scores)
    assert (mask.sum(1) == 20).all()
    # hidden runs: every run but the one the cut shortened (and runs at the edges) is at least a span long
    short = 0
    for row in mask.int().tolist():
        runs, n = [], 0
        for v in row + [0]:
            if v:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        short += sum(r < 4 for r in runs)
    assert short <= 2 * 64  # at most the cut span and one edge span per row
    # on a taller grid the spans cover every row of a column: at most one column is partly hidden
    scores = mask_scores(16, (4, 12), "time_span", (1, 3), gen)
    _, mask, _ = random_masking(torch.zeros(16, 48, 1), 0.75, noise=scores)
    per_column = mask.reshape(16, 4, 12).sum(1)
    assert (((per_column > 0) & (per_column < 4)).sum(1) <= 1).all()


def test_time_span_goes_through_the_encoder_masking_entry_point():
    cfg = model_config("tiny", **SMALL, mask_type="time_span", mask_span=2)
    model = MaskSpecModel(cfg)
    _, _, mask = model(torch.randn(3, 64, 32), generator=torch.Generator().manual_seed(1), num_masks=2)
    per_column = mask.reshape(6, 2, 4).sum(1)
    assert mask.shape == (6, 8) and (((per_column > 0) & (per_column < 2)).sum(1) <= 1).all()

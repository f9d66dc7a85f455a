import pytest
import torch

from maskspec.models.configs import MODEL_SIZES, ModelConfig, check_mask_ratio, model_config
from maskspec.models.encoder import MaskSpecEncoder
from maskspec.models.summary import count_parameters, describe


@pytest.mark.parametrize("name,dim,heads", [("tiny", 192, 3), ("small", 384, 6), ("base", 768, 12),
                                            ("vit_base_patch16", 768, 12), ("ViT_Small_Patch16", 384, 6)])
def test_named_sizes(name, dim, heads):
    cfg = model_config(name)
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.patch_size) == (dim, 12, heads, 16)
    assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads) == (512, 8, 16)


def test_patch_size_from_name_and_overrides():
    cfg = model_config("vit_tiny_patch8", num_frames=500, drop_path=0.1)
    assert (cfg.patch_size, cfg.num_frames, cfg.drop_path, cfg.grid) == (8, 500, 0.1, (16, 62))


def test_dict_round_trip_and_size_key():
    cfg = model_config({"size": "small", "num_frames": 100, "mlp_ratio": 4})
    assert cfg.embed_dim == 384 and cfg.num_frames == 100 and isinstance(cfg.mlp_ratio, float)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert model_config(cfg.to_dict()) == cfg
    assert model_config(cfg) == cfg


@pytest.mark.parametrize("bad", [{"embed_dm": 8}, {"size": "tiny", "mask_rate": 0.5}])
def test_unknown_key_is_named(bad):
    with pytest.raises(ValueError, match=repr(next(k for k in bad if k != "size"))):
        model_config(bad)


def test_unknown_key_in_overrides_and_from_dict():
    with pytest.raises(ValueError, match="'depthh'"):
        model_config("tiny", depthh=3)
    with pytest.raises(ValueError, match="'foo'"):
        ModelConfig.from_dict({"foo": 1})


@pytest.mark.parametrize("name", ["huge", "vit_large_patch16", "base16", ""])
def test_unknown_size_name(name):
    with pytest.raises(ValueError, match="unknown model name"):
        model_config(name)


@pytest.mark.parametrize("override,match", [
    (dict(embed_dim=100, num_heads=3), "divisible by num_heads"),
    (dict(embed_dim=6, num_heads=3), "divisible by 4"),
    (dict(mask_ratio=1.0), "mask_ratio"),
    (dict(pos_embed="rotary"), "pos_embed"),
    (dict(pool="max"), "pool"),
    (dict(depth=2.5), "depth must be int"),
    (dict(norm_pix_loss="yes"), "norm_pix_loss must be bool"),
    (dict(num_frames=8), "at least patch_size"),
])
def test_invalid_values(override, match):
    with pytest.raises(ValueError, match=match):
        model_config("tiny", **override)


def test_base_encoder_is_vit_b_sized_and_describe_prints_counts():
    cfg = model_config("base")
    # ViT-B/16 is ~86M; one input channel and fixed positions make ours slightly smaller.
    with torch.device("meta"):  # shapes only: no 86M-parameter initialisation
        n = count_parameters(MaskSpecEncoder(cfg))
    assert 85e6 < n < 87e6
    text = describe(cfg)
    assert f"encoder {n / 1e6:.2f}M" in text and "total" in text and "8x62" in text


def test_sizes_grow():
    with torch.device("meta"):
        counts = [count_parameters(MaskSpecEncoder(model_config(name))) for name in MODEL_SIZES]
    assert counts == sorted(counts) and 5e6 < counts[0] < 6e6  # ViT-Ti ~5.7M


def test_one_mask_ratio_rule_zero_only_without_pretraining():
    assert check_mask_ratio(0.0) == 0.0 and check_mask_ratio(0.75, pretraining=True) == 0.75
    for ratio, pretraining in ((0.0, True), (1.0, False), (-0.1, False), (float("nan"), False)):
        with pytest.raises(ValueError, match=r"where must be in"):
            check_mask_ratio(ratio, "where", pretraining=pretraining)

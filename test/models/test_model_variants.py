"""Model options for imported checkpoints: learned positions, no final norm, cls pooling; defaults unchanged."""
import torch

from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.encoder import MaskSpecEncoder
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.pos_embed import sincos_2d
from maskspec.train.optim import no_weight_decay

SMALL = dict(embed_dim=32, depth=2, num_heads=4, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
             num_mel_bins=32, num_frames=64, patch_size=16)


def test_defaults_keep_the_state_dict_layout():
    keys = set(AudioClassifier(model_config(SMALL), 3).state_dict())
    assert "encoder.norm.weight" in keys and "fc_norm.weight" in keys
    assert not any("pos_embed" in k for k in keys)  # fixed sin-cos: no tensor
    assert not any("pos_embed" in k for k in MaskSpecModel(model_config(SMALL)).state_dict())


def test_learned_positions_start_as_sincos_and_crop_shorter_grids():
    torch.manual_seed(0)
    fixed = MaskSpecEncoder(model_config(SMALL)).eval()
    learned = MaskSpecEncoder(model_config(SMALL, pos_embed="learned")).eval()
    sd = fixed.state_dict()
    missing, unexpected = learned.load_state_dict(sd, strict=False)
    assert missing == ["pos_embed.table"] and not unexpected
    assert torch.equal(learned.pos_embed.table.detach(), sincos_2d(32, 2, 4))
    x = torch.randn(2, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(learned(x)[0], fixed(x)[0])
        # 32 frames: the first two columns of the table, which are the sin-cos codes of columns 0 and 1
        torch.testing.assert_close(learned(x[:, :32])[0], fixed(x[:, :32])[0])
        assert learned(torch.randn(1, 96, 32))[0].shape == (1, 1 + 2 * 6, 32)  # longer: resized table
    assert no_weight_decay("encoder.pos_embed.table", learned.pos_embed.table)


def test_learned_table_of_another_length_is_adapted_on_load():
    src = AudioClassifier(model_config(SMALL, pos_embed="learned"), 3)
    with torch.no_grad():
        src.encoder.pos_embed.table.normal_()
    dst = AudioClassifier(model_config(SMALL, pos_embed="learned", num_frames=32), 3)
    missing, _ = dst.load_encoder(src.state_dict())
    assert not missing
    table = src.encoder.pos_embed.table.detach().reshape(2, 4, 32)[:, :2].reshape(4, 32)
    assert torch.equal(dst.encoder.pos_embed.table.detach(), table)


def test_no_final_norm_and_cls_pooling():
    cfg = model_config(SMALL, final_norm=False)
    keys = set(AudioClassifier(cfg, 3).state_dict())
    assert "encoder.norm.weight" not in keys and "fc_norm.weight" in keys
    model = AudioClassifier(model_config(SMALL, pool="cls"), 3).eval()
    assert "fc_norm.weight" not in model.state_dict()
    x = torch.randn(2, 64, 32)
    with torch.no_grad():
        tokens, _, _ = model.encoder(x)
        torch.testing.assert_close(model(x), model.head(tokens[:, 0]))

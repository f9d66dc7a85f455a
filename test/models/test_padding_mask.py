"""Key-padding masks: a clip's outputs do not depend on the zero padding of the batch it is in."""
import pytest
import torch

from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.ctc import CTCModel
from maskspec.models.windows import predict_many

SMALL = dict(num_mel_bins=32, num_frames=64, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16,
             decoder_depth=1, decoder_num_heads=2)
SHAPES = [dict(), dict(patch_freq=32, patch_time=4), dict(patch_freq=8, patch_time=4)]


def _padded(clips):
    t = max(c.shape[0] for c in clips)
    x = torch.zeros(len(clips), t, clips[0].shape[1])
    for i, c in enumerate(clips):
        x[i, : c.shape[0]] = c
    return x, torch.tensor([c.shape[0] for c in clips])


@pytest.mark.parametrize("shape", SHAPES)
def test_padding_no_longer_changes_a_clips_outputs(shape):
    torch.manual_seed(0)
    cfg = model_config("tiny", **SMALL, **shape)
    clips = [torch.randn(n, 32) for n in (64, 37, 50)]
    x, lengths = _padded(clips)
    ctc = CTCModel(cfg, 9, 0).eval()
    cls = AudioClassifier(cfg, 4).eval()
    with torch.no_grad():
        batch_ctc = ctc(x, num_frames=lengths)
        batch_cls = cls(x, num_frames=lengths)
        unmasked = ctc(x)
        for i, c in enumerate(clips):
            alone = ctc(c.unsqueeze(0))[0]
            n = int(ctc.output_lengths(lengths[i:i + 1]))
            assert alone.shape[0] == n
            assert torch.allclose(batch_ctc[i, :n], alone, atol=1e-5)
            assert torch.allclose(batch_cls[i], cls(c.unsqueeze(0))[0], atol=1e-5)
        # without the mask the padding did change the shorter clip's outputs
        n = int(ctc.output_lengths(lengths[1:2]))
        assert not torch.allclose(unmasked[1, :n], ctc(clips[1].unsqueeze(0))[0], atol=1e-3)


def test_no_padding_is_bit_identical_to_no_mask():
    cfg = model_config("tiny", **SMALL)
    model = AudioClassifier(cfg, 4).eval()
    x = torch.randn(3, 64, 32)
    assert torch.equal(model(x, num_frames=torch.tensor([64, 64, 70])), model(x))


def test_patch_out_with_padding_keeps_the_mask_with_its_tokens():
    cfg = model_config("tiny", **SMALL, patch_freq=32, patch_time=4)
    enc = AudioClassifier(cfg, 4).encoder
    x = torch.randn(2, 64, 32)
    tokens, _, _, valid = enc.encode(x, num_drop=5, generator=torch.Generator().manual_seed(0),
                                     num_frames=torch.tensor([64, 20]))
    assert tokens.shape == (2, 12, 32) and valid.shape == (2, 12)
    assert valid[0].all() and valid[1, 0] and int(valid[1, 1:].sum()) <= 5


def test_windowed_prediction_masks_a_short_clips_padding():
    torch.manual_seed(0)
    cfg = model_config("tiny", **SMALL, patch_freq=32, patch_time=4)
    model = AudioClassifier(cfg, 3).eval()
    short = torch.randn(40, 32)
    with torch.no_grad():
        alone = torch.softmax(model(short.unsqueeze(0)), -1)[0]
        probs = predict_many(model, [short, torch.randn(64, 32)], 64, task_type="single_label")
    assert torch.allclose(torch.as_tensor(probs[0]), alone, atol=1e-5)

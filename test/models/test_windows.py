"""Test-time windowing: window placement, probability averaging, batching across clips."""
import numpy as np
import pytest
import torch

from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.windows import clip_windows, predict_feats, predict_many, to_probs, window_starts


def test_window_starts_cover_the_clip():
    assert window_starts(50, 100, 50) == [0]
    assert window_starts(100, 100, 50) == [0]
    assert window_starts(250, 100, 50) == [0, 50, 100, 150]
    assert window_starts(260, 100, 50) == [0, 50, 100, 150, 160]  # last window ends at the clip's end
    with pytest.raises(ValueError):
        window_starts(10, 100, 0)


def test_clip_windows_pad_short_clips_with_zeros():
    x = torch.arange(30, dtype=torch.float32).view(10, 3)
    w = clip_windows(x, 16, 8)
    assert w.shape == (1, 16, 3) and torch.equal(w[0, :10], x) and torch.all(w[0, 10:] == 0)
    long = torch.randn(40, 3)
    w = clip_windows(long, 16, 8)
    assert w.shape == (4, 16, 3) and torch.equal(w[3], long[24:40])


class _MeanFirstFrames(torch.nn.Module):
    """Logits = mean over frames of the first C mel bins: each window's output is known by hand."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x[:, :, : self.c].mean(dim=1)


def test_probabilities_averaged_over_windows():
    model = _MeanFirstFrames(2)
    feats = torch.zeros(30, 4)
    feats[:10, 0] = 3.0  # only the first window (frames 0-9) sees class 0 high
    feats[20:, 1] = -2.0
    # windows of 10 frames, hop 10: [0:10], [10:20], [20:30]
    logits = torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, -2.0]])
    want_multi = torch.sigmoid(logits).mean(0).numpy()
    want_single = torch.softmax(logits, -1).mean(0).numpy()
    assert predict_feats(model, feats, 10, 10, "multi_label") == pytest.approx(want_multi, abs=1e-6)
    assert predict_feats(model, feats.numpy(), 10, 10, "single_label") == pytest.approx(want_single, abs=1e-6)
    with pytest.raises(ValueError, match="task_type"):
        to_probs(logits, "regression")


def test_predict_many_equals_one_by_one_with_small_batches():
    torch.manual_seed(0)
    cfg = model_config("tiny", embed_dim=32, depth=1, num_heads=2, num_mel_bins=32, num_frames=64)
    model = AudioClassifier(cfg, 5).eval()
    clips = [torch.randn(t, 32) for t in (20, 64, 200, 333)]
    together = predict_many(model, clips, 64, 32, "multi_label", batch_windows=3)
    alone = np.stack([predict_feats(model, c, 64, 32, "multi_label") for c in clips])
    assert together.shape == (4, 5) and together.dtype == np.float32
    assert together == pytest.approx(alone, abs=1e-5)

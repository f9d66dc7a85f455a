"""Classification task: losses per task type, partial-label masking, task-type detection, encoder initialisation
from a pre-training checkpoint, validation metrics and checkpoint averaging."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import save_model_file
from maskspec.tasks.classification import (ClassificationTask, average_state_dicts, classification_loss,
                                           infer_task_type, load_init, read_init)
from maskspec.train.checkpoint import save_checkpoint

TINY = dict(embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
            num_mel_bins=32, num_frames=64)


def test_single_label_loss_is_cross_entropy_with_smoothing():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y = torch.eye(3)[[0, 2]]
    want = F.cross_entropy(logits, torch.tensor([0, 2]), label_smoothing=0.1)
    assert classification_loss(logits, y, None, "single_label", 0.1) == pytest.approx(float(want), abs=1e-6)
    # by hand for one clip without smoothing: -log softmax
    lse = math.log(math.exp(2) + 1 + math.exp(-1))
    got = classification_loss(logits[:1], y[:1], None, "single_label")
    assert float(got) == pytest.approx(lse - 2.0, abs=1e-6)


def test_multi_label_loss_and_smoothing_by_hand():
    logits = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([[1.0, 0.0]])
    sp = lambda z: math.log1p(math.exp(z))  # noqa: E731 - softplus
    # BCE(z, t) = softplus(z) - t z
    want = (sp(0.0) - 1.0 * 0.0 + sp(2.0) - 0.0) / 2
    assert float(classification_loss(logits, y, None, "multi_label")) == pytest.approx(want, abs=1e-6)
    # smoothing 0.2 moves targets to 0.9 and 0.1
    want_s = (sp(0.0) - 0.9 * 0.0 + sp(2.0) - 0.1 * 2.0) / 2
    assert float(classification_loss(logits, y, None, "multi_label", 0.2)) == pytest.approx(want_s, abs=1e-6)


def test_partial_labels_masked_entries_do_not_change_the_loss():
    torch.manual_seed(0)
    logits, y = torch.randn(4, 5), (torch.rand(4, 5) > 0.5).float()
    known = (torch.rand(4, 5) > 0.4).float()
    base = classification_loss(logits, y, known, "multi_label")
    # change logits and targets only where unknown: loss unchanged
    logits2 = logits + 10.0 * (1 - known) * torch.randn(4, 5)
    y2 = torch.where(known > 0, y, 1 - y)
    assert float(classification_loss(logits2, y2, known, "multi_label")) == pytest.approx(float(base), abs=1e-6)
    # equals the mean BCE over the known entries only
    per = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    assert float(base) == pytest.approx(float(per[known > 0].mean()), abs=1e-6)
    # gradient is zero on unknown entries
    z = logits.clone().requires_grad_(True)
    classification_loss(z, y, known, "multi_label").backward()
    assert torch.all(z.grad[known == 0] == 0) and torch.any(z.grad[known > 0] != 0)
    # nothing known: zero loss, not NaN
    assert float(classification_loss(logits, y, torch.zeros_like(known), "multi_label")) == 0.0
    with pytest.raises(ValueError, match="task_type"):
        classification_loss(logits, y, None, "regression")


def test_infer_task_type():
    one_hot = [np.eye(3)[i] for i in (0, 1, 2)]
    assert infer_task_type(one_hot, has_known=False) == "single_label"
    assert infer_task_type(one_hot, has_known=True) == "multi_label"
    assert infer_task_type(one_hot + [np.array([1.0, 1.0, 0.0])], False) == "multi_label"
    assert infer_task_type(one_hot + [np.zeros(3)], False) == "multi_label"


def _pretrain_checkpoint(path):
    torch.manual_seed(3)
    cfg = model_config("tiny", **TINY)
    pre = MaskSpecModel(cfg)
    save_checkpoint(dict(version=1, kind="pretrain", epoch=1, step=5, batches_done=0, model=pre.state_dict(),
                         model_config=cfg.to_dict(), fbank_config=None, args={"normalize": "global"}), path)
    return pre, cfg


def test_pretrained_encoder_loaded_into_classifier(tmp_path):
    pre, cfg = _pretrain_checkpoint(tmp_path / "ckpt.pt")
    init = read_init(str(tmp_path / "ckpt.pt"))
    assert init["normalize"] == "global" and init["model_config"]["embed_dim"] == 32
    torch.manual_seed(4)
    clf = AudioClassifier(model_config(init["model_config"], drop_path=0.1), 7)
    missing, unexpected = load_init(clf, init)
    assert missing == []
    assert unexpected and all(not k.startswith("encoder.") for k in unexpected)  # the decoder
    for k, v in pre.encoder.state_dict().items():
        assert torch.equal(clf.encoder.state_dict()[k], v), k
    # the same through a model file
    save_model_file(tmp_path / "model.pt", kind="pretrain", model_config=cfg, state_dict=pre.state_dict(),
                    fbank_config=None, stats=None, normalize="per_bin", classes=None, task_type=None, num_frames=64)
    init2 = read_init(str(tmp_path / "model.pt"))
    clf2 = AudioClassifier(cfg, 7)
    load_init(clf2, init2)
    for k, v in pre.encoder.state_dict().items():
        assert torch.equal(clf2.encoder.state_dict()[k], v), k


def test_init_shape_mismatch(tmp_path):
    _pretrain_checkpoint(tmp_path / "ckpt.pt")
    init = read_init(str(tmp_path / "ckpt.pt"))
    other = AudioClassifier(model_config("tiny", **{**TINY, "mlp_ratio": 2.0}), 3)
    with pytest.raises(ValueError, match="shape mismatch.*ignore_init_mismatch"):
        load_init(other, init)
    missing, _ = load_init(other, init, ignore_mismatch=True)
    assert "blocks.0.mlp.fc1.weight" in missing and "blocks.0.attn.qkv.weight" not in missing


def test_read_init_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_init(str(tmp_path / "absent.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.pt"):
        read_init(str(bad))


class _Fixed(torch.nn.Module):
    """Logits read from the first C mel bins of the input (mean over frames)."""

    def __init__(self, c):
        super().__init__()
        self.c, self.w = c, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, num_drop=0):
        return x[:, :, : self.c].mean(dim=1)


def test_validate_scores_whole_clips():
    c = 3
    task = ClassificationTask("single_label", num_frames=8, classes=["a", "b", "c"])
    feats = torch.zeros(2, 20, 4)
    feats[0, :20, 0] = 5.0  # clip 0 -> class 0 (right)
    feats[1, :12, 2] = 5.0  # clip 1 -> class 2 over its 12 real frames (target 1: wrong)
    batch = dict(feats=feats, num_frames=torch.tensor([20, 12]), index=torch.tensor([0, 1]),
                 target=torch.eye(c)[[0, 1]], known=torch.ones(2, c))
    out = task.validate(_Fixed(c), [batch])
    assert out["accuracy"] == pytest.approx(0.5)
    assert set(out) == {"loss", "accuracy", "mAP", "mAUC"}


def test_average_state_dicts():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    avg = average_state_dicts([a, b])
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0])) and int(avg["n"]) == 5
    with pytest.raises(ValueError):
        average_state_dicts([a, {"x": torch.zeros(1)}])


def test_train_step_applies_gain_in_feature_units():
    from maskspec.tasks.augment import AugmentConfig, LogMelScale

    stats = dict(mean=[-3.0] * 4, std=[2.0] * 4, global_mean=-3.0, global_std=2.0)
    with pytest.raises(ValueError, match="feature scale"):
        ClassificationTask("single_label", num_frames=8, augment=AugmentConfig(gain_db=7.0))
    scale = LogMelScale.from_features(stats, "per_bin", dict(log_offset=0.0))
    task = ClassificationTask("single_label", num_frames=8, augment=AugmentConfig(gain_db=7.0), feature_scale=scale)
    seen = []

    class _Record(_Fixed):
        def forward(self, x, num_drop=0):
            seen.append(x)
            return super().forward(x, num_drop)

    batch = dict(feats=torch.zeros(5, 8, 4), target=torch.eye(4)[[0, 1, 2, 3, 0]], known=torch.ones(5, 4))
    loss, _ = task.train_step(_Record(4), batch)
    assert torch.isfinite(loss)
    # each clip moved by one gain in [-7, 7] dB: 7 ln(10) / 10 / std = 0.806 normalised units at most
    shift = seen[0] - batch["feats"]
    assert torch.allclose(shift, shift[:, :1, :1].expand_as(shift), atol=1e-5)
    assert float(shift.abs().max()) <= 7 * math.log(10) / 10 / 2.0 + 1e-5 and float(shift.abs().max()) > 0

"""Audio classification fine-tuning: loss, the Task for the shared trainer, encoder initialisation, averaging.

Task types:

* ``single_label``: one class per clip; cross-entropy (with label smoothing) on softmax outputs; metric accuracy.
* ``multi_label``: any number of classes per clip; binary cross-entropy on each (class, clip) entry, optionally
  with label smoothing towards 0.5; metric mAP. With partial labels (``utt2label_known``), an entry whose label
  is unknown contributes nothing: the per-entry loss is multiplied by the known mask and the sum divided by the
  number of known entries.

Validation scores whole clips the way ``maskspec.bin.score`` does (sliding windows, averaged probabilities), so
the checkpoint chosen on it is chosen on the number that will be reported.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from maskspec.models.flops import classifier_flops_per_clip
from maskspec.tasks.augment import AugmentConfig, LogMelScale, augment_batch
from maskspec.models.windows import DEFAULT_BATCH_WINDOWS, predict_many
from maskspec.tasks.metrics import PRIMARY_METRIC, compute_metrics
from maskspec.train import distributed as D

logger = logging.getLogger("maskspec.finetune")

TASK_TYPES = tuple(PRIMARY_METRIC)
PROB_EPS = 1e-7


def infer_task_type(targets, has_known: bool = False) -> str:
    """multi_label when partial labels exist or any clip has other than exactly one positive, else single_label.

    ``targets``: a dataset's ``ClipLabels`` (its partial labels count as ``has_known``) or dense rows [N][C].
    """
    if getattr(targets, "known", None) is not None or has_known:
        return "multi_label"
    if hasattr(targets, "positive"):
        return "single_label" if bool(np.all(targets.positive.counts() == 1)) else "multi_label"
    return "single_label" if all(int((t > 0.5).sum()) == 1 for t in targets) else "multi_label"


def classification_loss(logits: torch.Tensor, target: torch.Tensor, known: Optional[torch.Tensor], task_type: str,
                        label_smoothing: float = 0.0) -> torch.Tensor:
    """Scalar training loss (float32) of logits [B, C] against (possibly mixed, soft) targets [B, C].

    single_label: cross-entropy with probability targets; known is ignored (every label is known).
    multi_label: BCE-with-logits per entry, targets smoothed as y (1 - s) + s / 2, entries with known = 0 left
    out, averaged over the known entries.
    """
    logits, target = logits.float(), target.float()
    if task_type == "single_label":
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    if task_type != "multi_label":
        raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")
    if label_smoothing > 0:
        target = target * (1.0 - label_smoothing) + 0.5 * label_smoothing
    per_entry = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if known is None:
        return per_entry.mean()
    known = known.float()
    # clamp: a batch where nothing is known gives loss 0 (and zero gradients) instead of 0/0
    return (per_entry * known).sum() / known.sum().clamp_min(1.0)


class ClassificationTask:
    """Task for maskspec.train.trainer.Trainer.

    Args:
        task_type: single_label or multi_label.
        num_frames: training window length; also the validation window.
        label_smoothing: see classification_loss.
        augment: training-time augmentation (mixup, SpecAugment, time shift, gain, filter, background).
        feature_scale: how the features relate to mel power (``LogMelScale.from_features``); required when
            ``augment`` has gain, filter or background on.
        patch_drop: patches dropped per training clip (patch-out), 0 = none.
        freeze_encoder: linear probe; the encoder stays in eval mode (no drop-path) during training.
        valid_hop: validation window hop (default half a window).
        classes: class names, for the validation log.
    """

    def __init__(self, task_type: str, num_frames: int, label_smoothing: float = 0.0,
                 augment: Optional[AugmentConfig] = None, patch_drop: int = 0, freeze_encoder: bool = False,
                 valid_hop: Optional[int] = None, batch_windows: int = DEFAULT_BATCH_WINDOWS,
                 classes: Optional[Sequence[str]] = None, feature_scale: Optional[LogMelScale] = None):
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if patch_drop < 0:
            raise ValueError(f"patch_drop must be >= 0, got {patch_drop}")
        self.task_type, self.num_frames, self.label_smoothing = task_type, num_frames, label_smoothing
        self.augment = augment or AugmentConfig()
        if self.augment.needs_scale and feature_scale is None:
            raise ValueError("gain_db, filter_db and noise_prob need the feature scale (stats, fbank settings)")
        if self.augment.needs_scale and feature_scale.use_energy:
            raise ValueError("gain_db, filter_db and noise_prob need features without the energy column "
                             "(fbank use_energy: false)")
        self.feature_scale = feature_scale
        self.patch_drop, self.freeze_encoder = patch_drop, freeze_encoder
        self.valid_hop = valid_hop or max(1, num_frames // 2)
        self.batch_windows, self.classes = batch_windows, classes

    def train_step(self, model, batch: dict):
        if self.freeze_encoder:
            D.unwrap(model).encoder.eval()  # the trainer puts the whole model in train mode every epoch
        known = batch["known"] if self.task_type == "multi_label" else None
        # Global torch RNG: the trainer saves and restores it, so a resumed run draws the same augmentation.
        x, y, known = augment_batch(self.augment, batch["feats"], batch["target"], known, scale=self.feature_scale)
        # clips shorter than the window are zero-padded: their padded columns are masked out of attention
        lengths = batch.get("num_frames")
        padded = lengths is not None and bool((lengths < x.shape[1]).any())
        extra = {"num_frames": lengths.to(x.device)} if padded else {}
        logits = model(x, num_drop=self.patch_drop, **extra)
        loss = classification_loss(logits, y, known, self.task_type, self.label_smoothing)
        return loss, {}

    def train_flops(self, model, batch: dict) -> float:
        """Analytic FLOPs of train_step on this batch (patch-out shortens the encoder's sequence)."""
        core, x = D.unwrap(model), batch["feats"]
        return x.shape[0] * classifier_flops_per_clip(core.cfg, x.shape[1], core.num_classes, self.patch_drop)

    def evaluate(self, model, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indices [N], probabilities [N, C], targets [N, C], known [N, C]) of this process's clips."""
        core = D.unwrap(model)
        idx, probs, targets, known = [], [], [], []
        for batch in loader:
            lengths = batch["num_frames"].tolist()
            clips = [batch["feats"][i, :n] for i, n in enumerate(lengths)]
            probs.append(predict_many(core, clips, self.num_frames, self.valid_hop, self.task_type,
                                      self.batch_windows))
            idx.append(batch["index"].cpu().numpy())
            targets.append(batch["target"].float().cpu().numpy())
            known.append(batch["known"].float().cpu().numpy())
        if not idx:
            return np.zeros(0, np.int64), *(np.zeros((0, 0), np.float32),) * 3
        return np.concatenate(idx), np.concatenate(probs), np.concatenate(targets), np.concatenate(known)

    def metrics(self, probs: np.ndarray, targets: np.ndarray, known: np.ndarray) -> dict:
        """Validation numbers: primary metric, mAP, mAUC, (accuracy) and the loss of the averaged probabilities."""
        m = compute_metrics(probs, targets, known if self.task_type == "multi_label" else None, self.task_type,
                            self.classes)
        p = np.clip(probs.astype(np.float64), PROB_EPS, 1.0 - PROB_EPS)
        if self.task_type == "single_label":
            loss = float(-np.mean(np.log((p * targets).sum(axis=1).clip(PROB_EPS))))
        else:
            bce = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
            loss = float((bce * known).sum() / max(known.sum(), 1.0))
        out = {"loss": loss}
        for key in ("accuracy", "mAP", "mAUC"):
            if key in m:
                out[key] = float("nan") if m[key] is None else m[key]
        return out

    def validate(self, model, loader) -> dict:
        """Metrics over the whole validation set: every process scores its shard, then the shards are gathered."""
        parts = D.all_gather_object(self.evaluate(model, loader))
        idx = np.concatenate([p[0] for p in parts])
        if idx.size == 0:
            return {}
        order = np.argsort(idx, kind="stable")
        probs, targets, known = (np.concatenate([p[k] for p in parts if p[0].size])[order] for k in (1, 2, 3))
        return self.metrics(probs, targets, known)


# ---------------------------------------------------------------------------------------- initialisation
def read_init(path: str) -> dict:
    """Weights and settings of a ``--init`` file: a training checkpoint (pre-training or fine-tuning) or a model
    file. Returns dict(state_dict, model_config (dict or None), fbank_config, normalize, kind, source)."""
    from maskspec.models.model_file import ModelFileError, check_model_file, file_kind, read_torch_file
    from maskspec.train.checkpoint import load_checkpoint

    if not os.path.isfile(path):
        raise FileNotFoundError(f"--init {path}: no such file")
    try:
        probe = read_torch_file(path, "file")
    except ModelFileError as e:
        raise ValueError(f"--init {e}") from e
    if file_kind(probe) == "model file":
        mf = check_model_file(probe, path)
        return dict(state_dict=mf["state_dict"], model_config=mf["model_config"], fbank_config=mf["fbank_config"],
                    normalize=mf["normalize"], kind=mf["kind"], source="model file")
    del probe
    ckpt = load_checkpoint(path)
    args = ckpt.get("args") or {}
    return dict(state_dict=ckpt["model"], model_config=ckpt.get("model_config"),
                fbank_config=ckpt.get("fbank_config"), normalize=args.get("normalize"), kind=ckpt.get("kind"),
                source="checkpoint")


def load_init(model, init: Mapping[str, Any], ignore_mismatch: bool = False, where: str = "--init") -> tuple:
    """Load the encoder weights of ``init`` (from read_init) into an AudioClassifier, logging what did not load.

    Returns (missing, unexpected) key lists. A shape mismatch is a ValueError unless ignore_mismatch.
    """
    try:
        missing, unexpected = model.load_encoder(init["state_dict"], ignore_shape_mismatch=ignore_mismatch)
    except ValueError as e:
        raise ValueError(f"{where}: {e} (use --ignore_init_mismatch true to skip mismatched weights)") from e
    logger.info("%s: loaded %d encoder tensors from the %s (%s)", where,
                len(model.encoder.state_dict()) - len(missing), init["source"], init.get("kind"))
    if missing:
        logger.warning("%s: %d encoder keys not initialised: %s", where, len(missing), _short(missing))
    if unexpected:
        logger.info("%s: %d keys not used (decoder/head): %s", where, len(unexpected), _short(unexpected))
    return missing, unexpected


def _short(keys: Sequence[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def average_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]]) -> dict:
    """Element-wise mean of floating-point tensors (in float64, cast back); other tensors from the last dict."""
    if not state_dicts:
        raise ValueError("average_state_dicts: nothing to average")
    keys = list(state_dicts[-1])
    for i, sd in enumerate(state_dicts):
        if list(sd) != keys:
            raise ValueError(f"average_state_dicts: state dict {i} has other keys than the last one")
    out = {}
    for k in keys:
        last = state_dicts[-1][k]
        if torch.is_floating_point(last):
            out[k] = (sum(sd[k].double() for sd in state_dicts) / len(state_dicts)).to(last.dtype)
        else:
            out[k] = last.clone()
    return out

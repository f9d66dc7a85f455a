"""Clip-level prediction of a classifier for clips of any length: the one place where test-time windowing
happens (validation during fine-tuning, ``maskspec.bin.score`` and ``maskspec-infer``).

A model is trained on ``num_frames``-frame crops. At test time a clip ``[T, F]`` is cut into windows of
``num_frames`` frames every ``hop`` frames (the last window ends at the clip's end so the tail is covered), a
clip shorter than one window is zero-padded as in training (0 = the normalised mean), and the window outputs are
turned into probabilities (sigmoid for multi-label, softmax for single-label) and averaged.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

DEFAULT_BATCH_WINDOWS = 32


def window_starts(total: int, num_frames: int, hop: int) -> list[int]:
    """First frames of the windows covering ``total`` frames; [0] when the clip fits in one window."""
    if num_frames <= 0 or hop <= 0:
        raise ValueError(f"windows: num_frames ({num_frames}) and hop ({hop}) must be positive")
    if total <= num_frames:
        return [0]
    starts = list(range(0, total - num_frames + 1, hop))
    if starts[-1] + num_frames < total:
        starts.append(total - num_frames)
    return starts


def clip_windows(feats: torch.Tensor, num_frames: int, hop: int) -> torch.Tensor:
    """[T, F] -> [W, num_frames, F]: the windows of one clip (zero-padded when T < num_frames)."""
    t, f = feats.shape
    if t < num_frames:
        padded = feats.new_zeros(num_frames, f)
        padded[:t] = feats
        return padded.unsqueeze(0)
    return torch.stack([feats[s: s + num_frames] for s in window_starts(t, num_frames, hop)])


def to_probs(logits: torch.Tensor, task_type: str) -> torch.Tensor:
    """[N, C] logits -> probabilities: softmax over classes (single-label) or per-class sigmoid (multi-label)."""
    if task_type == "single_label":
        return logits.float().softmax(dim=-1)
    if task_type == "multi_label":
        return logits.float().sigmoid()
    raise ValueError(f"task_type must be single_label or multi_label, got {task_type!r}")


@torch.no_grad()
def predict_many(model: torch.nn.Module, clips: Sequence[Any], num_frames: int, hop: Optional[int] = None,
                 task_type: str = "multi_label", batch_windows: int = DEFAULT_BATCH_WINDOWS) -> np.ndarray:
    """Probabilities ``[N, C]`` (float32) for N normalised clips ``[T_i, F]`` (numpy or torch).

    Windows of all clips are pooled and run ``batch_windows`` at a time on the model's device; ``hop``
    defaults to half a window. The model is used as given: put it in eval mode first.
    """
    hop = hop or max(1, num_frames // 2)
    device = next(model.parameters()).device
    windows, owner, valid = [], [], []
    for i, clip in enumerate(clips):
        x = torch.as_tensor(np.asarray(clip, dtype=np.float32) if not isinstance(clip, torch.Tensor) else clip)
        if x.dim() != 2:
            raise ValueError(f"predict: clip {i} must be [T, F], got shape {tuple(x.shape)}")
        w = clip_windows(x.float(), num_frames, hop)
        windows.append(w)
        owner.extend([i] * w.shape[0])
        valid.extend([min(x.shape[0], num_frames)] * w.shape[0])
    if not windows:
        raise ValueError("predict: no clips")
    all_windows = torch.cat(windows)
    valid_t = torch.tensor(valid)
    probs = []
    for s in range(0, all_windows.shape[0], batch_windows):
        # a clip shorter than a window is zero-padded: its padded columns are masked out of attention
        lengths = valid_t[s: s + batch_windows]
        padded = bool((lengths < all_windows.shape[1]).any())
        logits = model(all_windows[s: s + batch_windows].to(device),
                       **({"num_frames": lengths.to(device)} if padded else {}))
        probs.append(to_probs(logits, task_type).cpu())
    probs = torch.cat(probs)
    owner_t = torch.tensor(owner)
    out = torch.zeros(len(windows), probs.shape[1]).index_add_(0, owner_t, probs)
    out /= torch.bincount(owner_t, minlength=len(windows)).unsqueeze(1).float()
    return out.numpy()


def predict_feats(model: torch.nn.Module, feats: Any, num_frames: int, hop: Optional[int] = None,
                  task_type: str = "multi_label", batch_windows: int = DEFAULT_BATCH_WINDOWS) -> np.ndarray:
    """Probabilities ``[C]`` of one normalised clip ``feats [T, F]`` (see ``predict_many``)."""
    return predict_many(model, [feats], num_frames, hop, task_type, batch_windows)[0]

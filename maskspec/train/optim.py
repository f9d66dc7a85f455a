"""AdamW parameter groups (weight decay, layer-wise lr decay) and the warm-up + cosine learning-rate schedule."""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

import torch
from torch import nn

# Parameter names (last component) that never get weight decay: learned tokens and positions ("table": a
# learned position table, pos_embed "learned").
NO_DECAY_NAMES = ("cls_token", "mask_token", "pos_embed", "decoder_pos_embed", "table")


def no_weight_decay(name: str, param: torch.Tensor, extra_names: Iterable[str] = ()) -> bool:
    """True for biases, norm gains (any tensor with <= 1 dimension) and the token/position parameters."""
    last = name.split(".")[-1]
    return param.ndim <= 1 or last in NO_DECAY_NAMES or last in tuple(extra_names)


def param_groups(model: nn.Module, weight_decay: float, layer_id: Optional[Callable[[str], int]] = None,
                 num_layers: Optional[int] = None, layer_decay: float = 1.0,
                 no_decay_names: Iterable[str] = ()) -> list[dict]:
    """AdamW parameter groups of the trainable parameters of ``model``.

    Each group has ``params``, ``weight_decay`` and ``lr_scale`` (the scheduler multiplies the lr by it) plus
    ``group_name`` and ``param_names`` for inspection. With ``layer_decay < 1``, ``layer_id(name)`` in
    ``0..num_layers`` gives ``lr_scale = layer_decay ** (num_layers - layer_id(name))``: the top layer (head)
    trains at the full lr, the patch embedding at the smallest.
    """
    use_layers = layer_decay != 1.0
    if use_layers and (layer_id is None or num_layers is None):
        raise ValueError("layer-wise lr decay needs layer_id and num_layers")
    groups: dict[tuple[str, int], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not no_weight_decay(name, p, no_decay_names)
        lid = layer_id(name) if use_layers else 0
        if use_layers and not 0 <= lid <= num_layers:
            raise ValueError(f"layer_id({name!r}) = {lid} outside 0..{num_layers}")
        key = ("decay" if decay else "no_decay", lid)
        if key not in groups:
            scale = layer_decay ** (num_layers - lid) if use_layers else 1.0
            groups[key] = dict(params=[], param_names=[], weight_decay=weight_decay if decay else 0.0,
                               lr_scale=scale, group_name=f"layer{lid}_{key[0]}" if use_layers else key[0])
        groups[key]["params"].append(p)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return [groups[k] for k in sorted(groups, key=lambda k: (k[1], k[0]))]


def build_optimizer(groups: list[dict], lr: float, betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW over ``groups`` (fused kernel when every parameter is on CUDA)."""
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=fused or None)


def warmup_cosine(step: int, peak_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """lr of optimiser step ``step`` (0-based): linear from peak/warmup to peak over ``warmup_steps``, then a
    half cosine from peak down to ``min_lr`` at ``total_steps``; stays at min_lr after that."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Sets ``group["lr"] = warmup_cosine(step) * group["lr_scale"]`` for every group, once per optimiser step.

    The lr for step 0 is set at construction; call ``step()`` after each ``optimizer.step()``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, peak_lr: float, warmup_steps: int, total_steps: int,
                 min_lr: float = 0.0):
        if total_steps < 1 or warmup_steps < 0:
            raise ValueError(f"bad schedule: warmup_steps={warmup_steps}, total_steps={total_steps}")
        self.optimizer = optimizer
        self.peak_lr, self.warmup_steps, self.total_steps, self.min_lr = peak_lr, warmup_steps, total_steps, min_lr
        self.last_step = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.peak_lr, self.warmup_steps, self.total_steps, self.min_lr)

    def _apply(self) -> None:
        lr = self.lr_at(self.last_step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return dict(last_step=self.last_step, peak_lr=self.peak_lr, warmup_steps=self.warmup_steps,
                    total_steps=self.total_steps, min_lr=self.min_lr)

    def load_state_dict(self, state: dict) -> None:
        """Restore the position; the shape of the schedule stays the one given at construction (a resumed run may
        change epochs or lr on purpose)."""
        self.last_step = int(state["last_step"])
        self._apply()

"""Targets of the bootstrap objective from the teacher's block outputs (data2vec 2.0 / EAT).

The teacher encodes the whole unmasked clip once; the outputs of its top ``k`` blocks (the residual stream after
each block, patch tokens only) are each instance-normalised over the patches (per clip and channel: mean 0,
variance 1 across the patch positions), averaged, then layer-normalised over the channels (EAT's
``instance_norm_target_layer`` and ``layer_norm_targets``). Every patch gets a target [D]; the utterance target
is the mean of a clip's patch targets.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-5  # instance and layer norm of the targets (torch's defaults, as data2vec)


def block_outputs(encoder: nn.Module, x: torch.Tensor, top_k: int) -> list[torch.Tensor]:
    """The outputs [B, 1 + L, D] of the last ``top_k`` blocks (0: all) of ``encoder`` on the unmasked ``x``.

    Read with forward hooks on ``encoder.blocks`` during one ordinary forward pass, so the tokens are exactly
    those the encoder computes (cls first).
    """
    blocks = list(encoder.blocks)
    chosen = blocks[-top_k:] if top_k else blocks
    outputs: list[torch.Tensor] = []
    handles = [b.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for b in chosen]
    try:
        encoder(x)
    finally:
        for h in handles:
            h.remove()
    return outputs


def layer_average_targets(outputs: list[torch.Tensor], num_extra_tokens: int = 1) -> torch.Tensor:
    """[B, L, D] float32 patch targets from block outputs [B, num_extra_tokens + L, D] (see the module docstring)."""
    if not outputs:
        raise ValueError("layer_average_targets: no block outputs")
    total = None
    for y in outputs:
        y = y[:, num_extra_tokens:].float().transpose(1, 2)  # [B, D, L]
        y = F.instance_norm(y, eps=NORM_EPS).transpose(1, 2)
        total = y if total is None else total + y
    avg = total / len(outputs)
    return F.layer_norm(avg, avg.shape[-1:], eps=NORM_EPS)


@torch.no_grad()
def teacher_targets(teacher: nn.Module, x: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(patch targets [B, L, D], utterance targets [B, D]) of the teacher encoder on [B, T, F] input."""
    targets = layer_average_targets(block_outputs(teacher, x, top_k))
    return targets, targets.mean(dim=1)

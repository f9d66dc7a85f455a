"""The EMA teacher of the bootstrap objective: a copy of the student encoder that follows it slowly.

After every optimiser step the teacher's weights move towards the student's: ``t = d * t + (1 - d) * s``, with
the decay ``d`` going linearly from ``start`` to ``end`` over ``anneal_steps`` steps and staying at ``end``
after that (data2vec 2.0 / EAT: 0.9998 -> 0.99999 over 100k updates). The teacher starts equal to the student,
takes no gradients and always runs in eval mode (no stochastic depth).

Its weights are parameters without gradients of the model that owns it, so the model's state dict (checkpoints:
exact resume) and DDP's start-up broadcast (every rank equal) carry them like any other weight; the update is
deterministic arithmetic on the student's weights, which DDP keeps equal on every rank, so the teachers stay
equal too.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay_at(step: int, start: float, end: float, anneal_steps: int) -> float:
    """The decay used for the update after optimiser step ``step`` (1-based): linear from ``start`` (step 0) to
    ``end`` (step ``anneal_steps`` and later)."""
    if anneal_steps <= 0:
        raise ValueError(f"ema anneal_steps must be positive, got {anneal_steps}")
    if step >= anneal_steps:
        return end
    return start + (end - start) * max(step, 0) / anneal_steps


class EMATeacher(nn.Module):
    """A frozen copy of ``student`` (an encoder module) updated by ``update``."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.encoder = copy.deepcopy(student)
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> "EMATeacher":
        """The teacher stays in eval mode whatever its owner's mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def update(self, student: nn.Module, decay: float) -> None:
        """``t = decay * t + (1 - decay) * s`` for every parameter; buffers are copied."""
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        t_params, s_params = dict(self.encoder.named_parameters()), dict(student.named_parameters())
        if t_params.keys() != s_params.keys():
            raise ValueError("EMA teacher: the student's parameters differ from the teacher's")
        for name, t in t_params.items():
            t.mul_(decay).add_(s_params[name].detach().to(t.dtype), alpha=1.0 - decay)
        s_buffers = dict(student.named_buffers())
        for name, b in self.encoder.named_buffers():
            b.copy_(s_buffers[name])

    def forward(self, *args, **kwargs):
        return self.encoder(*args, **kwargs)

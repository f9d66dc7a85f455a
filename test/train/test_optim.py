"""AdamW parameter groups and the warm-up + cosine schedule."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from maskspec.train.optim import WarmupCosineSchedule, build_optimizer, param_groups, warmup_cosine


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(2))
        self.head = nn.Linear(8, 3)
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)


def names_of(groups, decay: bool):
    return sorted(n for g in groups if (g["weight_decay"] > 0) == decay for n in g["param_names"])


def test_no_decay_on_biases_norms_tokens_and_positions():
    groups = param_groups(Net(), weight_decay=0.05)
    assert names_of(groups, True) == ["blocks.0.0.weight", "blocks.1.0.weight", "head.weight"]
    assert names_of(groups, False) == sorted([
        "cls_token", "pos_embed", "mask_token", "blocks.0.0.bias", "blocks.0.1.weight", "blocks.0.1.bias",
        "blocks.1.0.bias", "blocks.1.1.weight", "blocks.1.1.bias", "head.bias"])
    assert all(g["lr_scale"] == 1.0 for g in groups)
    # frozen parameters are left out entirely
    assert not any("frozen" in n for g in groups for n in g["param_names"])


def test_real_model_tokens_get_no_decay():
    from maskspec.models.configs import model_config
    from maskspec.models.maskspec import MaskSpecModel

    cfg = model_config("tiny", depth=1, embed_dim=32, num_heads=2, decoder_embed_dim=32, decoder_depth=1,
                       decoder_num_heads=2, num_mel_bins=16, num_frames=32)
    groups = param_groups(MaskSpecModel(cfg), 0.05)
    no_decay = names_of(groups, False)
    assert "encoder.cls_token" in no_decay and "mask_token" in no_decay
    assert all(n.endswith(".weight") for n in names_of(groups, True))


def test_layer_decay_scales():
    def layer_id(name):
        if name.startswith(("cls_token", "pos_embed", "mask_token")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return 3

    groups = param_groups(Net(), 0.05, layer_id=layer_id, num_layers=3, layer_decay=0.5)
    scale = {n: g["lr_scale"] for g in groups for n in g["param_names"]}
    assert scale["head.weight"] == 1.0 and scale["blocks.1.0.weight"] == 0.5
    assert scale["blocks.0.0.bias"] == 0.25 and scale["cls_token"] == 0.125
    with pytest.raises(ValueError, match="needs layer_id"):
        param_groups(Net(), 0.05, layer_decay=0.5)


def test_schedule_values():
    assert warmup_cosine(0, 1.0, 4, 14) == pytest.approx(0.25)
    assert warmup_cosine(3, 1.0, 4, 14) == pytest.approx(1.0)
    assert warmup_cosine(4, 1.0, 4, 14) == pytest.approx(1.0)  # cosine starts at the peak
    assert warmup_cosine(9, 1.0, 4, 14, min_lr=0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert warmup_cosine(14, 1.0, 4, 14, min_lr=0.1) == pytest.approx(0.1)
    assert warmup_cosine(100, 1.0, 4, 14, min_lr=0.1) == pytest.approx(0.1)
    assert warmup_cosine(0, 1.0, 0, 10) == pytest.approx(1.0)  # no warm-up


def test_scheduler_applies_lr_scale_and_resumes():
    net = Net()
    groups = [dict(params=[net.head.weight], lr_scale=1.0), dict(params=[net.head.bias], lr_scale=0.5)]
    opt = build_optimizer(groups, lr=2.0, betas=(0.9, 0.95))
    sched = WarmupCosineSchedule(opt, peak_lr=2.0, warmup_steps=2, total_steps=10)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1.0, 0.5])
    for _ in range(5):
        sched.step()
    expected = warmup_cosine(5, 2.0, 2, 10)
    assert sched.get_last_lr() == pytest.approx([expected, expected * 0.5])
    opt2 = build_optimizer([dict(params=[net.head.weight], lr_scale=1.0), dict(params=[net.head.bias], lr_scale=0.5)],
                           lr=2.0, betas=(0.9, 0.95))
    sched2 = WarmupCosineSchedule(opt2, peak_lr=2.0, warmup_steps=2, total_steps=10)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())

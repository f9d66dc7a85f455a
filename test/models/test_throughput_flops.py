"""The analytic FLOP count of maskspec.models.flops (history.json's compute record, the MFU of
benchmarks/pretrain_throughput.py) against torch's counter, and the benchmark's CPU table."""
import importlib.util
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from maskspec.models.configs import model_config
from maskspec.models.flops import classifier_flops_per_clip, pretrain_flops_per_clip
from maskspec.models.classifier import AudioClassifier
from maskspec.models.maskspec import MaskSpecModel

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "pretrain_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("pretrain_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _counted(model, *args, **kwargs) -> int:
    counter = FlopCounterMode(display=False)
    # the math backend runs attention as matmuls, which the counter sees (the fused CPU kernel it skips)
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(*args, **kwargs)
    return counter.get_total_flops()


@pytest.mark.parametrize("frames", [64, 100])
def test_analytic_flops_match_counted_forward(bench, frames):
    cfg = model_config("tiny", patch_size=8, num_mel_bins=32, num_frames=64, embed_dim=32, depth=2,
                       num_heads=2, decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2, mask_ratio=0.6)
    x = torch.randn(2, frames, 32)
    for model in (MaskSpecModel(cfg), bench.ReferenceMAE(cfg, bench.reference_block_factory()[0], frames)):
        assert _counted(model, x) == pytest.approx(2 * pretrain_flops_per_clip(cfg, frames, train=False), rel=1e-9)
    # K views: one patch embedding, K encoder and decoder passes
    three = model_config(cfg, num_masks=3, mask_type="inverse_block")
    assert _counted(MaskSpecModel(three), x) == pytest.approx(2 * pretrain_flops_per_clip(three, frames, train=False),
                                                             rel=1e-9)
    assert pretrain_flops_per_clip(three, frames) < 3 * pretrain_flops_per_clip(cfg, frames)
    assert _counted(AudioClassifier(cfg, 5), x, num_drop=3) == pytest.approx(
        2 * classifier_flops_per_clip(cfg, frames, 5, num_drop=3, train=False), rel=1e-9)


def test_cpu_table_runs(bench, capsys, monkeypatch):
    # a miniature "tiny" keeps this a test of the table plumbing, not of CPU speed
    small = dict(patch_size=8, num_mel_bins=128, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16,
                 decoder_depth=1, decoder_num_heads=2)
    monkeypatch.setattr(bench, "model_config", lambda name: model_config(name, **small))
    assert bench.main(["--device", "cpu", "--size", "tiny", "--batch_size", "1", "--steps", "1", "--warmup", "0",
                       "--num_frames", "16", "--num_masks", "1", "3"]) == 0
    out = capsys.readouterr().out
    assert "MaskSpecModel (ours)" in out and "reference MAE" in out and "ratio ours / reference" in out
    three = next(line for line in out.splitlines() if "3 views" in line).split("|")
    header = next(line for line in out.splitlines() if "views/s" in line).split("|")
    clips, views = (float(three[header.index(c)]) for c in (f" {'clips/s':>10} ", f" {'views/s':>10} "))
    assert views == pytest.approx(3 * clips, abs=0.25)  # both printed to 0.1
    assert bench.main(["--size", "huge", "--device", "cpu"]) == 2

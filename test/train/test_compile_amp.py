"""GPU paths checked on CPU: torch.compile of the pre-training model (and the trainer's --compile) and bf16 autocast.

torch.compile runs with the ``aot_eager`` backend here: dynamo's graph capture and AOT autograd, which is where
a model breaks under compilation, with eager kernels. Inductor's C++ code generation took 400 s for this tiny
model on the shared 2-core CI machine, too long for a unit test; benchmarks/gpu_check.sh measures the inductor
path on a GPU.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest
import torch

from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel

sys.path.insert(0, str(Path(__file__).parent))
from train_toy import ToyTask, make_trainer, training_args, write_toy_data  # noqa: E402

# fp32 on CPU: the same aten kernels in another order of a few reductions
COMPILE_RTOL = 1e-5
# bf16 autocast keeps ~3 significant digits in the matmuls; the loss itself is computed in float32
BF16_RTOL = 3e-2


def k_view_model():
    torch.manual_seed(0)
    return MaskSpecModel(model_config("tiny", embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=32,
                                      decoder_depth=1, decoder_num_heads=2, num_mel_bins=32, num_frames=64,
                                      patch_size=8, num_masks=2, mask_type="inverse_block"))


def test_compiled_model_loss_and_grads_equal_eager():
    model, x = k_view_model(), torch.randn(4, 64, 32)
    gen = torch.Generator()
    loss = model(x, generator=gen.manual_seed(1))[0]
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, backend="aot_eager")
    c_loss = compiled(x, generator=gen.manual_seed(1))[0]
    c_loss.backward()
    assert c_loss.item() == pytest.approx(loss.item(), rel=COMPILE_RTOL)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=COMPILE_RTOL, atol=1e-7, msg=n)


def test_bf16_autocast_k_views_on_cpu():
    model, x = k_view_model(), torch.randn(4, 64, 32)
    gen = torch.Generator()
    ref = model(x, generator=gen.manual_seed(1))[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, pred, _ = model(x, generator=gen.manual_seed(1))
    assert pred.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=BF16_RTOL)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_trainer_compile_option(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    stats = write_toy_data(str(data))
    (data / "stats.json").write_text(json.dumps(stats))
    calls, compile_ = [], functools.partial(torch.compile, backend="aot_eager")

    def spy(model, **kw):
        calls.append(model)
        return compile_(model, **kw)

    losses = {}
    for name, option in (("eager", "false"), ("compiled", "true")):
        monkeypatch.setattr(torch, "compile", spy)
        task = ToyTask()
        trainer = make_trainer(str(data), str(tmp_path / name),
                               training_args(["--max_steps", "2", "--compile", option]), task, stats)
        assert trainer.fit()["step"] == 2
        losses[name] = [h["train_loss"] for h in json.loads((tmp_path / name / "history.json").read_text())]
    assert len(calls) == 1 and calls[0] is trainer.model  # only the compiled run, the plain model (no DDP)
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=COMPILE_RTOL)

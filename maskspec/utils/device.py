"""The ``--device`` choice of every command line (training: one device per torchrun process; score,
maskspec-infer, maskspec-embed: ``auto|cpu|cuda``)."""
from __future__ import annotations

from maskspec.utils.cli import UsageError


def select_device(device: str, local_rank: int = 0) -> "torch.device":
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else cpu; ``cuda`` -> ``cuda:<local_rank>``;
    ``cuda:N`` as given. ``cuda`` without a CUDA device, or another name, is a UsageError (a ValueError: exit
    status 2 under ``run_main``) naming ``--device``."""
    import torch

    device = device.strip().lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device} asked for, but no CUDA device is available (CUDA is not available "
                             f"to this torch: no GPU, no driver, or a CPU-only build)")
        return torch.device(device if ":" in device else f"cuda:{local_rank}")
    raise UsageError(f"--device must be auto, cpu or cuda[:N], got {device!r}")

"""The ``--device auto|cpu|cuda`` choice of the inference command lines (score, maskspec-infer, maskspec-embed)."""
from __future__ import annotations


def pick_device(choice: str) -> str:
    """``"auto"``: cuda when a CUDA device is available, else cpu; ``"cuda"`` without one is a ValueError."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return choice

"""Per-epoch record of a training run: ``exp_dir/history.json`` and the plot ``exp_dir/curves.png``.

One entry per epoch end: ``{"epoch", "step", "train_loss", "lr", <validation results>..., <COMPUTE_KEYS>}`` (the
compute so far: analytic training FLOPs of all processes, the last step's FLOPs, wall seconds in training
steps, the same x processes = GPU-seconds on CUDA, the main process's CPU seconds), written after every
epoch so that a finished or interrupted run can be read (and plotted) without TensorBoard. The list travels in the
checkpoint, so a resumed run continues it instead of starting again.
"""
from __future__ import annotations

import json
import math
import os

from maskspec.utils.atomic import atomic_open
from maskspec.utils.plots import pyplot, save_png

HISTORY_NAME = "history.json"
CURVES_NAME = "curves.png"
# the compute record the trainer adds to every entry (maskspec.train.trainer); cumulative, so not plotted
COMPUTE_KEYS = ("train_flops", "flops_per_step", "train_seconds", "device_seconds", "cpu_seconds")
TIMING_KEYS = ("train_seconds", "device_seconds", "cpu_seconds")  # differ between identical runs
_NOT_PLOTTED = ("epoch", "step", *COMPUTE_KEYS)


def write_history(exp_dir: str, history: list[dict], plot: bool = True) -> None:
    """Write ``history.json`` (and ``curves.png`` when ``plot``) in ``exp_dir``, each atomically."""
    # strict JSON: a non-finite value (e.g. a loss ratio with a zero baseline) becomes null
    clean = [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in h.items()}
             for h in history]
    with atomic_open(os.path.join(exp_dir, HISTORY_NAME)) as f:
        json.dump(clean, f, indent=1, allow_nan=False)
        f.write("\n")
    if plot and history:
        plot_history(history, os.path.join(exp_dir, CURVES_NAME))


def read_history(exp_dir: str) -> list[dict]:
    path = os.path.join(exp_dir, HISTORY_NAME)
    with open(path) as f:
        try:
            history = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(history, list):
        raise ValueError(f"{path}: expected a list of per-epoch entries, found {type(history).__name__}")
    return history


def plot_history(history: list[dict], path: str) -> None:
    """One panel per quantity (training loss, learning rate, each validation result) against the epoch."""
    plt = pyplot()
    names = [k for k in history[-1] if k not in _NOT_PLOTTED]
    cols = min(3, len(names)) or 1
    rows = math.ceil(len(names) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        points = [(h["epoch"], h[name]) for h in history if isinstance(h.get(name), (int, float))]
        if points:
            ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if name == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    save_png(fig, path, dpi=80)

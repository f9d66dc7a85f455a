"""Training checkpoints: atomic files, the newest loadable one, keep the last N.

Files in ``<exp_dir>/checkpoints/``:

* ``ckpt_e{E}_s{S}.pt``: the full training state after optimiser step S, written during epoch E (1-based),
  every ``--save_interval_steps`` steps and at the end of each epoch. There is no separate "latest" pointer:
  the newest checkpoint is the one with the highest (step, epoch, batches_done) among the files that load, so
  a pointer can never disagree with the files. Only the last ``--keep_checkpoints`` of them are kept.
* ``best.pt``: the state at the epoch with the best validation metric (no optimiser state); never pruned.

Each file is written to a temporary name in the same folder and renamed when complete, so a process killed
mid-save leaves either the previous set of checkpoints or the new one, never a truncated ``ckpt_*.pt``. A file
damaged in another way (disk full, copied half) is skipped with a warning by ``latest_checkpoint``.

Content (a dict; see docs/ARCHITECTURE.md): ``version, kind, epoch`` (0-based epoch to continue in),
``batches_done`` (micro-batches of that epoch already consumed), ``step`` (optimiser steps so far), ``model,
optimizer, scheduler, scaler, rng`` (python/numpy/torch/cuda states, one entry per process), ``args`` (dict),
``model_config, fbank_config, stats, classes, task_type`` (metadata), ``best_metric`` (value so far),
``best_metric_name``, ``valid`` (last validation results), ``world_size``. Only tensors and plain containers,
so files load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any, Optional

import torch

from maskspec.utils.atomic import atomic_path

CHECKPOINT_VERSION = 1
CHECKPOINT_SUBDIR = "checkpoints"
BEST_NAME = "best.pt"
REQUIRED_KEYS = ("version", "kind", "epoch", "step", "batches_done", "model")
_NAME_RE = re.compile(r"^ckpt_e(\d+)_s(\d+)\.pt$")

logger = logging.getLogger("maskspec.train")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


class ChangedSettingsError(CheckpointError):
    """The newest checkpoint was written under other resolved settings than the run resuming from it; the message
    names the file and each differing option."""


# Options that do not change what a resumed run computes, so a resume may change them freely: where the files
# go and how often they are written, how data are loaded, when to stop (max_steps: a run may be cut in parts),
# the device, and the layout of the effective batch over processes (batch_size, accum_grad: the trainer resumes
# such a run after the same clips, not bit-exact, and says so; effective_batch_size itself is checked).
RESUME_FREE_ARGS = frozenset({
    "config", "exp_dir", "resume", "resume_changed", "max_steps", "num_workers", "pin_memory", "log_interval",
    "save_interval_steps", "keep_checkpoints", "tensorboard", "compile", "device", "batch_size", "accum_grad",
    "valid_batch_size", "num_images",
})


def changed_settings(saved: Optional[dict], current: dict) -> list[tuple[str, Any, Any]]:
    """``(option, checkpoint's value, this run's value)`` for each resolved option that differs between a
    checkpoint's ``args`` and this run's (both as ``maskspec.train.config.plain`` writes them), sorted by name.
    Options in ``RESUME_FREE_ARGS``, and options only one side has (written by other code), are not compared."""
    saved = saved or {}
    return [(name, saved[name], current[name]) for name in sorted(set(saved) & set(current))
            if name not in RESUME_FREE_ARGS and saved[name] != current[name]]


def checkpoint_dir(exp_dir: str | os.PathLike) -> str:
    return os.path.join(os.fspath(exp_dir), CHECKPOINT_SUBDIR)


def checkpoint_name(epoch: int, step: int) -> str:
    """File name of a checkpoint written in (1-based) epoch ``epoch`` after optimiser step ``step``."""
    return f"ckpt_e{epoch:03d}_s{step:08d}.pt"


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[str]:
    """``ckpt_*.pt`` paths in ``ckpt_dir``, oldest first by (step, epoch) from the names; temporaries ignored."""
    ckpt_dir = os.fspath(ckpt_dir)
    if not os.path.isdir(ckpt_dir):
        return []
    found = []
    for name in os.listdir(ckpt_dir):
        m = _NAME_RE.match(name)
        if m:
            found.append(((int(m.group(2)), int(m.group(1))), os.path.join(ckpt_dir, name)))
    return [path for _, path in sorted(found)]


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, renamed to ``path`` once complete."""
    for key in REQUIRED_KEYS:
        if key not in state:
            raise CheckpointError(f"{path}: checkpoint state lacks '{key}'")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load and check a checkpoint; CheckpointError naming the file when it is truncated or not ours."""
    path = os.fspath(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a damaged or foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or not a torch file?): {e}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a MaskSpec checkpoint (got {type(state).__name__})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a MaskSpec training checkpoint (lacks {', '.join(missing)})")
    if not isinstance(state["version"], int) or state["version"] > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state['version']!r} is newer than this code "
                              f"reads ({CHECKPOINT_VERSION})")
    return state


def load_latest_checkpoint(ckpt_dir: str | os.PathLike,
                           map_location: Any = "cpu") -> tuple[Optional[str], Optional[dict]]:
    """``(path, state)`` of the newest checkpoint that loads, or ``(None, None)``; damaged ones are skipped with
    a warning."""
    for path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as e:
            logger.warning("skipping unusable checkpoint: %s", e)
    return None, None


def latest_checkpoint(ckpt_dir: str | os.PathLike) -> Optional[str]:
    """Path of the newest checkpoint in ``ckpt_dir`` that loads, or None."""
    return load_latest_checkpoint(ckpt_dir)[0]


def remove_stale_temporaries(ckpt_dir: str | os.PathLike) -> list[str]:
    """Delete temporaries of checkpoint saves that were killed (``.ckpt_*.tmp``, ``.best.pt.*.tmp``).

    Call only while no process of this experiment is saving (e.g. at start-up on the main rank).
    """
    ckpt_dir = os.fspath(ckpt_dir)
    if not os.path.isdir(ckpt_dir):
        return []
    stale = [os.path.join(ckpt_dir, n) for n in os.listdir(ckpt_dir)
             if n.endswith(".tmp") and (n.startswith(".ckpt_e") or n.startswith("." + BEST_NAME + "."))]
    for path in stale:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    return stale


def prune_checkpoints(ckpt_dir: str | os.PathLike, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` ``ckpt_*.pt`` files (keep <= 0: delete none); returns the deleted.

    ``best.pt`` and anything not named ``ckpt_e*_s*.pt`` is never touched.
    """
    if keep <= 0:
        return []
    old = list_checkpoints(ckpt_dir)[:-keep]
    for path in old:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    return old

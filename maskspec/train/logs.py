"""Training logs: text log (file + stderr), TensorBoard writer, throughput/ETA meter, optional progress bar.

Only the main process writes the log file, TensorBoard events and the progress bar; other ranks log warnings
and errors to stderr, prefixed with their rank.
"""
from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Optional

LOGGER_NAME = "maskspec"
_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(log_file: Optional[str], is_main: bool = True, rank: int = 0) -> logging.Logger:
    """Configure the ``maskspec`` logger: INFO to stderr and (appending) to ``log_file`` on the main process."""
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.propagate = False
    fmt = logging.Formatter(_FORMAT if is_main else f"%(asctime)s [rank {rank}] %(levelname)s %(message)s",
                            datefmt="%Y-%m-%d %H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    if is_main and log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        fh = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger


class NullWriter:
    """Stands in for a SummaryWriter on non-main ranks or with --tensorboard false."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def add_figure(self, *args, **kwargs) -> None:
        pass

    def add_image(self, *args, **kwargs) -> None:
        pass

    def add_text(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_writer(log_dir: str, enabled: bool):
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir`` or a NullWriter."""
    if not enabled:
        return NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=log_dir)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{h}:{m:02d}:{s:02d}"


class Throughput:
    """Samples/s and ETA over the optimiser steps since the last ``reset`` (i.e. of this run, not of resumes)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.start = time.perf_counter()
        self.window_start = self.start
        self.steps = 0
        self.window_samples = 0

    def update(self, samples: int) -> None:
        self.steps += 1
        self.window_samples += samples

    def window(self) -> float:
        """Samples/s since the previous call; starts a new window."""
        now = time.perf_counter()
        rate = self.window_samples / max(now - self.window_start, 1e-9)
        self.window_start, self.window_samples = now, 0
        return rate

    def eta(self, remaining_steps: int) -> float:
        if self.steps == 0:
            return float("nan")
        return (time.perf_counter() - self.start) / self.steps * remaining_steps


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    """A tqdm bar when ``enabled`` and stderr is a terminal, else None."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False, file=sys.stderr)

"""matplotlib for files only: the pyplot module on the Agg backend, and figures saved atomically as PNG."""
from __future__ import annotations

import os

from maskspec.utils.atomic import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, never a window), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str, dpi: int = 80, close: bool = True) -> None:
    """Write ``fig`` to ``path`` (folders created) under a temporary name, renamed when complete."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    if close:
        pyplot().close(fig)

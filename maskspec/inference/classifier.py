"""A fine-tuned classifier ready for inference: the network of a model file, checked to have classes and feature
settings (scoring features, labelling audio)."""
from __future__ import annotations

from typing import Optional

import torch

from maskspec.inference.featurize import model_fbank
from maskspec.models.model_file import ModelFileError, build_model, load_model_file


def load_classifier(path: str, device: str | torch.device = "cpu", mf: Optional[dict] = None):
    """(model in eval mode on ``device``, model-file dict) for a classifier model file; ``mf``: the file's dict
    when the caller has read it already (it is not read again)."""
    mf = load_model_file(path) if mf is None else mf
    if mf["kind"] != "classifier":
        raise ModelFileError(f"{path}: a {mf['kind']} model has no classes; inference needs a fine-tuned "
                             f"classifier (exp/<tag>/model.pt from fine-tuning)")
    try:
        model_fbank(mf)
    except ValueError as e:  # ModelFileError, or FbankError: settings this code cannot use
        raise ModelFileError(f"{path}: {e}") from e
    return build_model(mf).to(device), mf

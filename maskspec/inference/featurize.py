"""The model's input from raw audio, with the feature settings and statistics stored in its model file.

One path from a waveform to normalised features for ``maskspec-infer``, ``maskspec-embed`` and ``maskspec.hear``,
so each computes features exactly as the training data's were computed (``utils/make_fbank.sh``) and normalised
(``FeatDataset``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from maskspec.features.fbank import FbankConfig, fbank_tensor
from maskspec.features.normalize import normalize
from maskspec.models.model_file import ModelFileError


def model_fbank(model_file: Mapping[str, Any]) -> FbankConfig:
    """The fbank settings of a loaded model file, checked (also as model input); ModelFileError when it has none."""
    if model_file.get("fbank_config") is None:
        raise ModelFileError("model file has no fbank_config, cannot compute features from audio")
    source = "model file fbank_config"
    return FbankConfig.from_dict(dict(model_file["fbank_config"]), source=source).check_model_input(source)


def featurize(waveform, sample_rate: int, model_file: Mapping[str, Any]):
    """Normalised model input ``[T, F]`` float32 from one clip's waveform ``[C, N]`` (or ``[N]``) at
    ``sample_rate``: channels averaged, resampled to the model's feature rate, fbank with the model file's
    settings, standardised with its stats and mode.

    ``model_file`` needs ``fbank_config``, ``stats`` and ``normalize``. A numpy waveform gives a numpy array; a
    tensor gives a tensor on its own device (HEAR computes on the model's device).
    """
    feats = normalize(fbank_tensor(waveform, sample_rate, model_fbank(model_file)), model_file["stats"],
                      model_file["normalize"])
    if isinstance(waveform, torch.Tensor):
        return feats
    return np.asarray(feats.numpy(), dtype=np.float32)

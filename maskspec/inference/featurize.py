"""The model's input from raw audio, with the feature settings and statistics stored in its model file.

One path from a waveform to normalised features for ``maskspec-infer``, ``maskspec-embed`` and ``maskspec.hear``,
so each computes features exactly as the training data's were computed (``utils/make_fbank.sh``) and normalised
(``FeatDataset``), and an imported model gets its source's input (its ``front_end``: the padding of short clips;
``maskspec.features.front_end``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from maskspec.features.fbank import FbankConfig, FbankError, kaldi_fbank, prepare_waveform
from maskspec.features.front_end import FrontEnd, FrontEndError
from maskspec.features.normalize import normalize
from maskspec.models.model_file import ModelFileError


def model_fbank(model_file: Mapping[str, Any]) -> FbankConfig:
    """The fbank settings of a loaded model file, checked (also as model input); ModelFileError when it has none."""
    if model_file.get("fbank_config") is None:
        raise ModelFileError("model file has no fbank_config, cannot compute features from audio")
    source = "model file fbank_config"
    return FbankConfig.from_dict(dict(model_file["fbank_config"]), source=source).check_model_input(source)


def model_front_end(model_file: Mapping[str, Any]) -> FrontEnd:
    """The padding of short clips a loaded model file records (``front_end``; the default when it has none)."""
    try:
        return FrontEnd.from_dict(model_file.get("front_end"), "model file front_end")
    except FrontEndError as e:
        raise ModelFileError(str(e)) from None


def featurize(waveform, sample_rate: int, model_file: Mapping[str, Any]):
    """Normalised model input ``[T, F]`` float32 from one clip's waveform ``[C, N]`` (or ``[N]``) at
    ``sample_rate``: channels averaged, resampled to the model's feature rate, padded as its front end says
    (``pad: waveform``), fbank with the model file's settings, padded (``pad: fbank``), standardised with its
    stats and mode.

    ``model_file`` needs ``fbank_config``, ``stats`` and ``normalize`` (and may have ``front_end``). A numpy
    waveform gives a numpy array; a tensor gives a tensor on its own device (HEAR computes on the model's device).
    """
    cfg, front_end = model_fbank(model_file), model_front_end(model_file)
    mono = front_end.pad_waveform(prepare_waveform(waveform, sample_rate, cfg), cfg.sample_rate)
    raw = kaldi_fbank(mono, cfg)
    if not torch.isfinite(raw).all():
        raise FbankError("features contain NaN or inf values")
    feats = normalize(front_end.pad_fbank(raw), model_file["stats"], model_file["normalize"])
    if isinstance(waveform, torch.Tensor):
        return feats
    return np.asarray(feats.numpy(), dtype=np.float32)

"""The HEAR 2021 API for MaskSpec model files (https://hearbenchmark.com, hearvalidator 2021.0.2).

    import maskspec.hear as hear
    model = hear.load_model("exp/pretrain_base/model.pt")          # a torch.nn.Module
    scene = hear.get_scene_embeddings(audio, model)               # audio [n, samples] -> [n, D]
    emb, ts = hear.get_timestamp_embeddings(audio, model)         # [n, n_t, D], [n, n_t] (ms)

``audio`` is a float tensor in [-1, 1] at ``model.sample_rate``, on the model's device; the outputs are float32 on
the same device. Any model file written by the recipes works: a pre-trained one (embeddings from its encoder)
or a fine-tuned classifier (the vector its head sees); see ``maskspec.inference.embed`` for the pooling, the
windowing of long audio and the timestamps (one vector per 16-frame patch column, i.e. every 160 ms with a 10 ms
frame shift, at the centre of the column; coarser than the 50 ms hearvalidator suggests for music transcription,
so it prints a warning, which is expected).

Sample rate: HEAR accepts only 16000, 22050, 44100 and 48000 Hz. A model whose features are computed at one of
these rates takes audio at that rate; otherwise (e.g. the paper's 32 kHz features) the model announces an
accepted rate at least as high that converts most simply (48000 for 32 kHz) and resamples on the device
before computing the features with the model file's own fbank settings and statistics.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import nn

from maskspec.features.fbank import FbankConfig, FbankError
from maskspec.inference.embed import Embedder
from maskspec.inference.featurize import featurize
from maskspec.models.model_file import ModelFileError, load_model_file

HEAR_SAMPLE_RATES = (16000, 22050, 44100, 48000)


def hear_sample_rate(feature_rate: int) -> int:
    """The HEAR input rate for features computed at ``feature_rate`` Hz: the rate itself when HEAR accepts it;
    else, among the accepted rates not below it (no bandwidth lost; 48000 if it is above them all), the one
    sharing the largest common divisor with it (simplest resampling), the lower on a tie."""
    if feature_rate in HEAR_SAMPLE_RATES:
        return feature_rate
    higher = [r for r in HEAR_SAMPLE_RATES if r >= feature_rate] or [max(HEAR_SAMPLE_RATES)]
    return max(higher, key=lambda r: (math.gcd(r, feature_rate), -r))


class HearModel(nn.Module):
    """A MaskSpec model file behind the HEAR interface (attributes ``sample_rate``, ``scene_embedding_size``,
    ``timestamp_embedding_size``); ``.to(device)`` moves it like any module."""

    def __init__(self, model_file: dict, device: Union[str, torch.device] = "cpu"):
        super().__init__()
        self.embedder = Embedder(model_file, device)
        if self.embedder.fbank is None:
            raise ModelFileError("model file has no fbank_config: HEAR needs the feature settings to embed audio")
        self.fbank: FbankConfig = self.embedder.fbank
        # what featurize needs, without a second copy of the weights
        self.feature_settings = {k: model_file.get(k) for k in ("fbank_config", "stats", "normalize", "front_end")}
        self.sample_rate = int(hear_sample_rate(self.fbank.sample_rate))
        self.scene_embedding_size = int(self.embedder.embed_dim)
        # which vector the scene embedding is: "cls token" or "mean of patch tokens" (maskspec.inference.embed)
        self.scene_pooling = self.embedder.scene_pooling
        self.timestamp_embedding_size = int(self.embedder.embed_dim)

    @torch.no_grad()
    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """[n, samples] audio at ``sample_rate`` -> normalised log-mel [n, T, F] on the model's device."""
        if not isinstance(audio, torch.Tensor) or audio.dim() != 2 or audio.shape[0] == 0 or audio.shape[1] == 0:
            shape = tuple(audio.shape) if hasattr(audio, "shape") else type(audio).__name__
            raise ValueError(f"maskspec.hear: audio must be a float tensor [n_sounds, n_samples], got {shape}")
        wave = audio.to(self.embedder.device, torch.float32)
        try:
            return torch.stack([featurize(clip, self.sample_rate, self.feature_settings) for clip in wave])
        except FbankError as e:
            raise ValueError(f"maskspec.hear: {e} (audio with NaN/inf samples?)") from e

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Scene embeddings [n, D] (the same as ``get_scene_embeddings``)."""
        return self.embedder.scene(self.features(audio))


def load_model(model_file_path: str = "", device: Optional[Union[str, torch.device]] = None) -> HearModel:
    """A ``HearModel`` from a MaskSpec model file (``exp/<tag>/model.pt`` or one made by maskspec-export).

    ``device`` defaults to the CPU; the HEAR tools move the module with ``.to(device)`` afterwards.
    Raises ModelFileError naming the file when it is missing, truncated or not a MaskSpec model file.
    """
    if not model_file_path:
        raise ModelFileError("maskspec.hear.load_model: give the path of a MaskSpec model file (model.pt); "
                             "there is no built-in default model")
    model_file = load_model_file(model_file_path)
    try:
        return HearModel(model_file, device or "cpu").eval()
    except ValueError as e:  # ModelFileError, or bad fbank settings / stats inside the file
        raise ModelFileError(f"{model_file_path}: {e}") from e


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """[n_sounds, n_samples] audio -> [n_sounds, scene_embedding_size] float32 on the model's device."""
    return model.embedder.scene(model.features(audio))


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """[n_sounds, n_samples] audio -> (embeddings [n_sounds, n_t, timestamp_embedding_size] float32,
    timestamps [n_sounds, n_t] float32 in ms, evenly spaced by patch_size frame shifts)."""
    return model.embedder.timestamps(model.features(audio))

"""How a clip shorter than the model's input is padded: the part of a front end beyond the fbank settings
(``FbankConfig``) and the normalisation (stats.json), recorded in a model file as ``front_end``.

Models trained here pad the *normalised* features with zeros (the mean): the windowing of
``maskspec.models.windows`` and the embedder do it, and a model file without a ``front_end`` entry means that.
The published models this project imports were fed short clips padded otherwise, and reproducing their input
exactly needs the same padding:

* ``pad: fbank``, ``pad_frames`` (Audio-MAE, EAT): the raw log-mel is padded with zeros to ``pad_frames`` frames
  *before* it is normalised, so the padded frames hold ``(0 - mean) / std`` (+0.467 with their AudioSet
  statistics) instead of 0;
* ``pad: waveform``, ``pad_seconds`` (the MaskSpec authors' tagger): the audio is padded with silence to
  ``pad_seconds`` before the features are computed, so the padded frames are features of silence;
* ``pad: features`` (the default): nothing here; the normalised features are padded with zeros downstream.

Clips longer than the source's input are not cut (the sources cut at 10 s / 1024 frames): every tool windows
long clips as for any model, and its first window is the source's input. Frame-level embeddings of a padded
clip cover the padding too (their timestamps run to the padded length), as the sources' frame features do.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from maskspec.utils.fields import check_field_types, check_fields

PAD_MODES = ("features", "fbank", "waveform")


class FrontEndError(ValueError):
    """A front-end record that cannot be used; the message names where it came from."""


@dataclass
class FrontEnd:
    """Padding of short clips (see the module docstring).

    Attributes:
        name: whose front end this is (``maskspec``, ``maskspec-authors``, ``audiomae``, ``eat``): informative.
        pad: ``features`` | ``fbank`` | ``waveform``.
        pad_frames: ``pad: fbank``: the raw fbank of a shorter clip is zero-padded to this many frames.
        pad_seconds: ``pad: waveform``: a shorter waveform is zero-padded to this duration.
    """

    name: str = "maskspec"
    pad: str = "features"
    pad_frames: int = 0
    pad_seconds: float = 0.0

    def __post_init__(self) -> None:
        check_field_types(self, "invalid front end:", FrontEndError, coerce=True)
        checks = [
            (self.pad in PAD_MODES, f"pad must be one of {PAD_MODES}, got {self.pad!r}"),
            (self.pad != "fbank" or self.pad_frames > 0, "pad: fbank needs pad_frames > 0"),
            (self.pad != "waveform" or self.pad_seconds > 0, "pad: waveform needs pad_seconds > 0"),
            (self.pad_frames >= 0 and self.pad_seconds >= 0, "pad_frames and pad_seconds must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise FrontEndError(f"invalid front end: {message}")

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]], source: str = "front end") -> "FrontEnd":
        """From a model file's ``front_end`` entry; None (older model files) is the default front end."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise FrontEndError(f"{source}: expected a mapping, got {type(values).__name__}")
        check_fields(cls, dict(values), f"{source}: unknown front-end setting", FrontEndError)
        try:
            return cls(**dict(values))
        except FrontEndError as e:
            raise FrontEndError(f"{source}: {e}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def pad_waveform(self, mono, sample_rate: int):
        """``[1, N]`` tensor at ``sample_rate`` zero-padded at the end to ``pad_seconds`` (``pad: waveform``);
        otherwise (or when long enough) returned as it is."""
        import torch

        if self.pad != "waveform":
            return mono
        short = int(round(self.pad_seconds * sample_rate)) - mono.shape[-1]
        return torch.nn.functional.pad(mono, (0, short)) if short > 0 else mono

    def pad_fbank(self, feats):
        """Raw (not yet normalised) fbank ``[T, F]`` tensor zero-padded at the end to ``pad_frames`` frames
        (``pad: fbank``); otherwise (or when long enough) returned as it is."""
        import torch

        if self.pad != "fbank" or feats.shape[0] >= self.pad_frames:
            return feats
        return torch.nn.functional.pad(feats, (0, 0, 0, self.pad_frames - feats.shape[0]))

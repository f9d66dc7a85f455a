"""Training-time augmentation of batched, normalised log-mel spectrograms ``x [B, T, F]`` and targets ``y [B, C]``.

Every function takes an optional ``torch.Generator`` so a run is reproducible, and works on the batch's device.
Features are normalised to zero mean per mel bin, so masked regions are set to 0 (the training-set mean).
Patch-out is not here: it happens inside the encoder (``AudioClassifier(x, num_drop=N)``).

The paper's waveform-domain augmentations (random gain, random filters, background noise) are done here on the
precomputed features, through ``LogMelScale``: the features are ``(log(p + c) - mean) / std`` of mel *power*
``p`` (natural log; ``c`` is the fbank ``log_offset``, or Kaldi's ``log(max(p, eps))`` when it is 0), so a
change of level is a product in ``p``:

* random gain of ``g`` dB: ``p * 10^(g/10)`` for every bin; exact for a waveform gain, except at the log floor
  (``p`` below ``eps``, or near ``c``), where what was below the floor cannot be recovered: a value at the
  floor is taken as ``p = eps`` (``c = 0``) or ``p = 0`` (``c > 0``).
* random filter: a smooth random curve ``r[F]`` in dB over the mel bins, ``p * 10^(r/10)``; the waveform
  equivalent multiplies every FFT bin by ``|H|^2``, which is the same where ``H`` varies little across one mel
  filter (a smooth curve over the bins is that).
* background: ``p_a + k p_b`` with ``p_b`` another clip of the batch scaled to a random SNR; the power of a sum
  of independent signals is the sum of the powers (the cross term averages out), as in waveform mixing.

Waveform mixup cannot be done here (the waveforms are gone once the features are dumped); spectrogram mixup
(``mixup``) stands in for it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import torch

from maskspec.utils.rand import rand, randint, randperm

# Kaldi's log floor: log(max(p, float32 eps)) when the fbank log_offset is 0 (torchaudio.compliance.kaldi).
KALDI_EPS = float(np.finfo(np.float32).eps)
DB_TO_NEPER = math.log(10.0) / 10.0  # a gain of g dB adds g * this to a natural-log power


def mixup(x: torch.Tensor, y: torch.Tensor, known: Optional[torch.Tensor], alpha: float,
          generator: Optional[torch.Generator] = None):
    """Mix each sample with a random other sample of the batch.

    lam ~ Beta(alpha, alpha) per sample, folded to lam >= 0.5 so the first clip stays dominant;
    x' = lam x + (1 - lam) x[perm], y' likewise; a label is known after mixing only if known in both clips.

    Args:
        x: [B, T, F]; y: [B, C] float targets; known: [B, C] (1 = annotated) or None.
    Returns:
        (x' [B, T, F], y' [B, C], known' [B, C] or None, lam [B])
    """
    if alpha <= 0:
        raise ValueError(f"mixup: alpha must be positive, got {alpha}")
    b = x.shape[0]
    # torch.distributions.Beta cannot take a generator: seed numpy's Beta from the torch generator instead.
    seed = int(randint(0, 2 ** 31 - 1, (1,), generator, x.device))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=b)).float()
    lam = torch.maximum(lam, 1.0 - lam).to(x.device)
    perm = randperm(b, generator, x.device)
    lam_x = lam.to(x.dtype).view(b, 1, 1)
    lam_y = lam.to(y.dtype).view(b, 1)
    x = lam_x * x + (1.0 - lam_x) * x[perm]
    y = lam_y * y + (1.0 - lam_y) * y[perm]
    if known is not None:
        known = known * known[perm]
    return x, y, known, lam


def _band_mask(b: int, size: int, max_width: int, count: int, generator, device) -> torch.Tensor:
    """[B, size] bool: ``count`` bands per sample, width ~ U{0..max_width}, start ~ U{0..size - width}."""
    pos = torch.arange(size, device=device).view(1, 1, size)
    width = (rand((b, count), generator, device) * (min(max_width, size) + 1)).floor()
    start = (rand((b, count), generator, device) * (size - width + 1)).floor()
    inside = (pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))
    return inside.any(dim=1)


def spec_augment(x: torch.Tensor, freqm: int = 0, timem: int = 0, num_freq_masks: int = 1,
                 num_time_masks: int = 1, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """SpecAugment masking: ``num_*_masks`` bands of up to ``freqm`` mel bins / ``timem`` frames set to 0.

    x: [B, T, F] -> [B, T, F] (a new tensor; each sample draws its own bands).
    """
    b, t, f = x.shape
    keep = torch.ones(b, t, f, dtype=torch.bool, device=x.device)
    if freqm > 0 and num_freq_masks > 0:
        keep &= ~_band_mask(b, f, freqm, num_freq_masks, generator, x.device).unsqueeze(1)
    if timem > 0 and num_time_masks > 0:
        keep &= ~_band_mask(b, t, timem, num_time_masks, generator, x.device).unsqueeze(2)
    return x * keep.to(x.dtype)


def time_shift(x: torch.Tensor, max_shift: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Roll each sample along time by a random integer in [-max_shift, max_shift] (content wraps around).

    x: [B, T, F] -> [B, T, F].
    """
    b, t, f = x.shape
    if max_shift <= 0:
        return x
    shift = (rand((b,), generator, x.device) * (2 * max_shift + 1)).floor().long() - max_shift
    # out[:, i] = x[:, (i - shift) mod T], as torch.roll does, but with one shift per sample.
    src = (torch.arange(t, device=x.device).view(1, t) - shift.view(b, 1)) % t
    return torch.gather(x, 1, src.unsqueeze(-1).expand(b, t, f))


# ------------------------------------------------------------------------------ power-domain augmentation
@dataclass
class LogMelScale:
    """How normalised features relate to mel power: ``x = (log(p + log_offset) - mean) / std``.

    ``log_offset`` 0 means Kaldi's ``log(max(p, eps))``. mean/std are [F] (per_bin), [1] (global) or 0/1 (none).
    """

    mean: torch.Tensor
    std: torch.Tensor
    log_offset: float = 0.0
    use_energy: bool = False  # a log-energy column: not a mel power, so power-domain augmentation refuses it

    @classmethod
    def from_features(cls, stats: Optional[Mapping[str, Any]], normalize: str,
                      fbank_config: Optional[Mapping[str, Any]]) -> "LogMelScale":
        """The scale of features read by ``FeatDataset(stats, normalize)`` and computed with ``fbank_config``
        (the resolved fbank.yaml dict; None: the defaults, log_offset 0)."""
        from maskspec.features.normalize import normalization

        mean, std = normalization(stats, normalize)
        fbank = dict(fbank_config or {})
        return cls(torch.from_numpy(mean), torch.from_numpy(std), float(fbank.get("log_offset", 0.0)),
                   bool(fbank.get("use_energy", False)))

    def _stats(self, x: torch.Tensor):
        return self.mean.to(x.device, torch.float32), self.std.to(x.device, torch.float32)

    def to_power(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] normalised features -> float32 mel power [B, T, F] (>= 0)."""
        if self.use_energy:
            raise ValueError("gain/filter/background augmentation needs features without the energy column "
                             "(fbank use_energy: false)")
        mean, std = self._stats(x)
        # in place after the first op: the batch is large ([32, 992, 128] for AudioSet)
        return torch.addcmul(mean, x.float(), std).exp_().sub_(self.log_offset).clamp_min_(0.0)

    def from_power(self, p: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """float32 mel power [B, T, F] -> normalised features of ``dtype``, floored as the fbank floors."""
        mean, std = self._stats(p)
        log_p = (p + self.log_offset).log_() if self.log_offset > 0 else p.clamp_min(KALDI_EPS).log_()
        return log_p.sub_(mean).div_(std).to(dtype)

    def power_gain(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        """Multiply the mel power of ``x [B, T, F]`` by ``10^(gain_db / 10)``; gain_db broadcasts ([B, 1, 1],
        [B, 1, F])."""
        return self.from_power(self.to_power(x) * (gain_db.float() * DB_TO_NEPER).exp(), x.dtype)


def random_gain(x: torch.Tensor, scale: LogMelScale, max_db: float,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A gain ~ U[-max_db, max_db] dB per clip. x: [B, T, F] -> [B, T, F]."""
    gain = (rand((x.shape[0], 1, 1), generator, x.device) * 2.0 - 1.0) * max_db
    return scale.power_gain(x, gain)


def random_response(b: int, f: int, max_db: float, num_points: int, generator: Optional[torch.Generator] = None,
                    device=None) -> torch.Tensor:
    """[B, F] random smooth frequency responses in dB, within [-max_db, max_db].

    ``num_points`` control points ~ U[-max_db, max_db], evenly spread from the first to the last mel bin, joined
    by half-cosine interpolation: each value is a convex mix of two control points (so the bound holds), the
    slope is continuous, and two neighbouring bins differ by at most ``pi * max_db * (num_points - 1) / (F - 1)``.
    """
    points = (rand((b, num_points), generator, device) * 2.0 - 1.0) * max_db
    pos = torch.arange(f, device=device, dtype=torch.float32) * ((num_points - 1) / max(f - 1, 1))
    left = pos.floor().long().clamp(max=num_points - 2)
    w = (1.0 - torch.cos(math.pi * (pos - left))) / 2.0
    return points[:, left] * (1.0 - w) + points[:, left + 1] * w


def random_filter(x: torch.Tensor, scale: LogMelScale, max_db: float, num_points: int,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A random smooth equaliser per clip (``random_response``), applied to the mel power. [B, T, F] -> same."""
    b, _, f = x.shape
    return scale.power_gain(x, random_response(b, f, max_db, num_points, generator, x.device).unsqueeze(1))


def _background_power(p: torch.Tensor, y: torch.Tensor, known: Optional[torch.Tensor], prob: float,
                      snr_min: float, snr_max: float, generator: Optional[torch.Generator]):
    """``background_mix`` on mel power p [B, T, F]: (p' [B, T, F], known' [B, C] or None, chosen [B] bool)."""
    b = p.shape[0]
    chosen = rand((b,), generator, p.device) < prob
    perm = randperm(b, generator, p.device)
    snr = snr_min + rand((b,), generator, p.device) * (snr_max - snr_min)
    chosen &= perm != torch.arange(b, device=p.device)
    level = p.mean(dim=(1, 2))
    # clips of pure floor have level 0: nothing to add, and no 0/0
    k = torch.where(chosen & (level[perm] > 0), level / level[perm].clamp_min(1e-30) * 10.0 ** (-snr / 10.0),
                    torch.zeros_like(level))
    p = p + k.view(b, 1, 1) * p[perm]
    if known is not None:
        added = chosen.view(b, 1) & (y[perm] > 0.5) & ~(y > 0.5)
        known = known * (~added).to(known.dtype)
    return p, known, chosen


def background_mix(x: torch.Tensor, y: torch.Tensor, known: Optional[torch.Tensor], scale: LogMelScale,
                   prob: float, snr_min: float, snr_max: float, generator: Optional[torch.Generator] = None):
    """Add another clip of the batch as background noise, in the power domain, to a share ``prob`` of clips.

    The background's mean mel power is set SNR ~ U[snr_min, snr_max] dB below the clip's. Targets keep the
    clip's own labels; with ``known`` (multi-label), a class positive in the background but not in the clip
    becomes unknown, so the loss does not teach "absent" for a sound that is in the mixture.

    Args:
        x: [B, T, F]; y: [B, C] targets (0/1: apply before mixup); known: [B, C] or None.
    Returns:
        (x' [B, T, F], known' [B, C] or None)
    """
    p, known, chosen = _background_power(scale.to_power(x), y, known, prob, snr_min, snr_max, generator)
    # clips left alone keep their exact values (no exp/log round trip)
    return torch.where(chosen.view(-1, 1, 1), scale.from_power(p, x.dtype), x), known


def power_augment(cfg: "AugmentConfig", x: torch.Tensor, y: torch.Tensor, known: Optional[torch.Tensor],
                  scale: LogMelScale, generator: Optional[torch.Generator] = None):
    """Gain, filter and background of ``cfg`` in one pass through the mel power.

    The same draws as ``random_gain``, ``random_filter`` and ``background_mix`` one after the other, but one
    exp/log round trip instead of three: cheaper, and the log floor is applied once, at the end, so a gain
    down then a filter up does not lose what the first step pushed below the floor.
    Returns (x' [B, T, F], known' [B, C] or None).
    """
    b, _, f = x.shape
    db = torch.zeros((b, 1, 1), device=x.device)
    if cfg.gain_db > 0:
        db = db + (rand((b, 1, 1), generator, x.device) * 2.0 - 1.0) * cfg.gain_db
    if cfg.filter_db > 0:
        db = db + random_response(b, f, cfg.filter_db, cfg.filter_points, generator, x.device).unsqueeze(1)
    p = scale.to_power(x)
    if cfg.gain_db > 0 or cfg.filter_db > 0:
        p.mul_((db * DB_TO_NEPER).exp())
    if cfg.noise_prob > 0:
        p, known, _ = _background_power(p, y, known, cfg.noise_prob, cfg.noise_snr_min, cfg.noise_snr_max,
                                        generator)
    return scale.from_power(p, x.dtype), known


# ------------------------------------------------------------------------------------------ configuration
@dataclass
class AugmentConfig:
    """Augmentation settings of fine-tuning; the defaults switch everything off.

    Field names are those of the ``maskspec.bin.finetune`` options (``from_args``). Bad values raise ValueError.
    """

    mixup: float = 0.0  # Beta(alpha, alpha) parameter
    mixup_prob: float = 1.0  # share of batches that are mixed
    freqm: int = 0  # max mel bins per frequency mask
    timem: int = 0  # max frames per time mask
    num_freq_masks: int = 1
    num_time_masks: int = 1
    time_shift: int = 0  # max frames of random roll
    gain_db: float = 0.0  # random gain ~ U[-gain_db, gain_db] dB per clip
    filter_db: float = 0.0  # random smooth filter within +-filter_db dB per clip
    filter_points: int = 5  # control points of the filter curve over the mel bins (>= 2)
    noise_prob: float = 0.0  # share of clips given another clip of the batch as background
    noise_snr_min: float = 10.0  # background SNR range in dB
    noise_snr_max: float = 30.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            ok = isinstance(value, (int, np.integer)) if f.type == "int" else isinstance(value, (int, float, np.number))
            if not ok or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"augmentation option {f.name} must be a finite {f.type}, got {value!r}")
        checks = [
            (self.mixup >= 0, f"mixup must be >= 0, got {self.mixup}"),
            (0 <= self.mixup_prob <= 1, f"mixup_prob must be in [0, 1], got {self.mixup_prob}"),
            (self.freqm >= 0 and self.timem >= 0, f"freqm and timem must be >= 0, got {self.freqm}, {self.timem}"),
            (self.num_freq_masks >= 0 and self.num_time_masks >= 0,
             f"num_freq_masks and num_time_masks must be >= 0, got {self.num_freq_masks}, {self.num_time_masks}"),
            (self.time_shift >= 0, f"time_shift must be >= 0, got {self.time_shift}"),
            (self.gain_db >= 0, f"gain_db must be >= 0 (the range is +-gain_db), got {self.gain_db}"),
            (self.filter_db >= 0, f"filter_db must be >= 0 (the range is +-filter_db), got {self.filter_db}"),
            (self.filter_points >= 2, f"filter_points must be >= 2, got {self.filter_points}"),
            (0 <= self.noise_prob <= 1, f"noise_prob must be in [0, 1], got {self.noise_prob}"),
            (self.noise_snr_min <= self.noise_snr_max,
             f"noise_snr_min ({self.noise_snr_min}) must be <= noise_snr_max ({self.noise_snr_max})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"augmentation: {message}")

    @classmethod
    def from_args(cls, args) -> "AugmentConfig":
        """From parsed command-line options (an argparse Namespace with a field of each name)."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    @property
    def needs_scale(self) -> bool:
        """True when a power-domain augmentation is on (gain, filter, background): it needs a LogMelScale."""
        return self.gain_db > 0 or self.filter_db > 0 or self.noise_prob > 0


def augment_batch(cfg: AugmentConfig, x: torch.Tensor, y: torch.Tensor, known: Optional[torch.Tensor],
                  generator: Optional[torch.Generator] = None, scale: Optional[LogMelScale] = None):
    """Apply time shift, gain, filter, background, mixup and SpecAugment (in that order) to one training batch.

    Gain and filter act on each clip before it meets another one, as a recording's level and channel would;
    the background is added before mixup so that it sees 0/1 targets; masking comes last so the masked bands
    are blank in the mixture too, as in SpecAugment. An augmentation that is off draws no random numbers, so a
    config that leaves gain, filter and background off gets the same batches as before they existed.
    ``scale`` is required when ``cfg.needs_scale``.
    Returns (x [B, T, F], y [B, C], known [B, C] or None).
    """
    if cfg.needs_scale and scale is None:
        raise ValueError("gain_db, filter_db and noise_prob need the features' LogMelScale (stats and fbank "
                         "settings)")
    if cfg.time_shift > 0:
        x = time_shift(x, cfg.time_shift, generator)
    if cfg.needs_scale:
        x, known = power_augment(cfg, x, y, known, scale, generator)
    if cfg.mixup > 0 and cfg.mixup_prob > 0:
        if float(rand((1,), generator, x.device)) < cfg.mixup_prob:
            x, y, known, _ = mixup(x, y, known, cfg.mixup, generator)
    if cfg.freqm > 0 or cfg.timem > 0:
        x = spec_augment(x, cfg.freqm, cfg.timem, cfg.num_freq_masks, cfg.num_time_masks, generator)
    return x, y, known

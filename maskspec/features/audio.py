"""Audio decoding for feature extraction: files through soundfile, ``cmd |`` values of wav.scp through bash.

Everything returned is float32 in [-1, 1] (soundfile's float scale), shaped ``[channels, samples]``. Every problem
is an ``AudioError`` whose message names the file or command and says what is wrong, so a job log points at the
input to fix.
"""
from __future__ import annotations

import io
import os
import re
import subprocess

import numpy as np
import soundfile as sf

# Kaldi's extract-segments accepts a segment that ends up to 0.5 s past the recording (annotation rounding).
MAX_SEGMENT_OVERSHOOT = 0.5
# A WAV data chunk size that means "unknown length" (written by programs that stream to a pipe).
_STREAMED_WAV_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)
_WAV_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


class AudioError(RuntimeError):
    """Audio that cannot be used; the message names the file or command and the reason."""


def is_command(spec: str) -> bool:
    """True for a wav.scp value that is a shell command piping audio to stdout (ends with ``|``)."""
    return spec.rstrip().endswith("|")


def describe(spec: str) -> str:
    """``file 'x.wav'`` or ``command 'sox x.wav -t wav - |'``: how error messages name an input."""
    spec = spec.strip()
    return f"command '{spec}'" if is_command(spec) else f"file '{spec}'"


def run_command(cmd: str) -> bytes:
    """stdout of ``bash -c cmd`` with pipefail, so a failure anywhere in a pipeline is an error."""
    try:
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False
        )
    except OSError as e:
        raise AudioError(f"command '{cmd} |': cannot start bash: {e}") from e
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        detail = " / ".join(tail) if tail else "no error output"
        raise AudioError(f"command '{cmd} |' failed with exit status {proc.returncode}: {detail}")
    if not proc.stdout:
        raise AudioError(f"command '{cmd} |' wrote no audio to stdout (empty output)")
    return proc.stdout


class AudioReader:
    """``load_audio`` that keeps the output of the last piped command.

    Segments of one recording come one after another in a sorted segments file; caching the command's output
    means a ``cmd |`` recording with many segments is decoded by its command once, not once per segment.
    """

    def __init__(self) -> None:
        self._cmd: str | None = None
        self._bytes: bytes | None = None

    def _source(self, spec: str):
        if is_command(spec):
            cmd = spec.rstrip()[:-1].strip()
            if not cmd:
                raise AudioError("command '|': empty command in wav.scp value")
            if cmd != self._cmd:
                self._cmd, self._bytes = None, None  # never keep a stale output if the command fails
                self._bytes = run_command(cmd)
                self._cmd = cmd
            return io.BytesIO(self._bytes)
        if not os.path.exists(spec):
            raise AudioError(f"file '{spec}': no such file")
        if os.path.isdir(spec):
            raise AudioError(f"file '{spec}': is a directory")
        if os.path.getsize(spec) == 0:
            raise AudioError(f"file '{spec}': empty file (0 bytes)")
        return spec

    def __call__(
        self, spec: str, start: float = 0.0, end: float | None = None, expect_channels: int | None = None
    ) -> tuple[np.ndarray, int]:
        """See ``load_audio``."""
        spec = spec.strip()
        name = describe(spec)
        source = self._source(spec)
        try:
            snd = sf.SoundFile(source)
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            raise AudioError(f"{name}: unreadable or corrupt audio: {e}") from e
        with snd:
            sr, frames, channels = snd.samplerate, snd.frames, snd.channels
            _check_wav_header(snd, name)
            if frames <= 0:
                raise AudioError(f"{name}: zero-length audio (0 samples)")
            if expect_channels is not None and channels != expect_channels:
                raise AudioError(f"{name}: has {channels} channels, the fbank config expects {expect_channels}")
            first, last = _segment_frames(name, start, end, sr, frames)
            try:
                if first:
                    snd.seek(first)
                data = snd.read(last - first, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioError(f"{name}: corrupt audio data: {e}") from e
        if data.shape[0] < last - first:
            raise AudioError(
                f"{name}: truncated: the header declares {frames} samples, "
                f"only {first + data.shape[0]} could be decoded"
            )
        bad = ~np.isfinite(data)
        if bad.any():
            where = int(np.argwhere(bad)[0][0]) + first
            raise AudioError(f"{name}: contains NaN or inf samples (first at sample {where})")
        return np.ascontiguousarray(data.T), sr


def _check_wav_header(snd: sf.SoundFile, name: str) -> None:
    """A WAV whose data chunk declares more bytes than the file holds was cut short (copy/download interrupted).

    libsndfile silently shortens such a file; we refuse it, except for the sizes streaming writers use to mean
    "unknown length".
    """
    match = _WAV_DATA_SIZE.search(snd.extra_info or "")
    if match:
        declared, present = int(match.group(1)), int(match.group(2))
        if declared > present and declared not in _STREAMED_WAV_SIZES:
            raise AudioError(
                f"{name}: truncated: the WAV header declares {declared} bytes of audio data, the file holds {present}"
            )


def _segment_frames(name: str, start: float, end: float | None, sr: int, frames: int) -> tuple[int, int]:
    """Sample range ``[first, last)`` of a segment in seconds; ``end`` None or negative means to the end."""
    duration = frames / sr
    if start < 0:
        raise AudioError(f"{name}: segment start {start} s is negative")
    first = int(round(start * sr))
    if first >= frames:
        raise AudioError(f"{name}: segment starts at {start} s, after the end of the audio ({duration:.3f} s)")
    if end is None or end < 0:
        return first, frames
    if end <= start:
        raise AudioError(f"{name}: segment end {end} s is not after its start {start} s")
    if end > duration + MAX_SEGMENT_OVERSHOOT:
        raise AudioError(f"{name}: segment ends at {end} s, past the end of the audio ({duration:.3f} s)")
    return first, min(frames, int(round(end * sr)))


def load_audio(
    spec: str, start: float = 0.0, end: float | None = None, expect_channels: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode one wav.scp value (a path, or a shell command ending in ``|``).

    Args:
        spec: path to a wav/flac/ogg/mp3 (anything libsndfile reads) or ``"<command> |"``.
        start, end: segment in seconds; ``end`` None or < 0 reads to the end. For files only the needed samples
            are read.
        expect_channels: if set, audio with another channel count is an error.

    Returns:
        ``(wave, sample_rate)`` with ``wave`` float32 ``[channels, samples]`` in [-1, 1].

    Raises:
        AudioError: missing, empty, unreadable, truncated, zero-length, non-finite or wrong-channel audio, a
            failing command; the message names the file or command.
    """
    return AudioReader()(spec, start, end, expect_channels)

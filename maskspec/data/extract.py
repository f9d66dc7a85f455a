"""Feature extraction for one job: wav.scp (+ segments) -> ark/HDF5 + scp + utt2num_frames + utt2dur.

This is the logic behind ``python -m maskspec.bin.compute_fbank``. Output files are written under temporary names
and renamed at the end; ``<prefix>.scp`` appears last, so its presence means the job completed.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from maskspec.data.datadir import DataDirError, iter_kv, read_segments, write_kv
from maskspec.data.feats import FeatWriter
from maskspec.features.audio import AudioError, AudioReader, describe
from maskspec.features.fbank import FbankConfig, FbankError, compute_fbank
from maskspec.utils.atomic import atomic_open

log = logging.getLogger("maskspec.compute_fbank")


class ExtractError(RuntimeError):
    """A job that cannot go on; the message names the utterance and the audio file or command."""


@dataclass(frozen=True)
class Utterance:
    """One item to extract: ``spec`` is the wav.scp value; ``end`` None = to the end of the recording."""

    utt: str
    spec: str
    start: float = 0.0
    end: float | None = None


def read_utterances(wav_scp: str, segments: str | None = None) -> list[Utterance]:
    """Utterances of a job in file order: one per wav.scp line, or one per segments line.

    Raises DataDirError (naming file:line) for malformed lines or a segment whose recording is not in wav.scp.
    """
    wavs = {}
    for _, reco, spec in iter_kv(wav_scp):
        wavs[reco] = spec
    if segments is None:
        return [Utterance(reco, spec) for reco, spec in wavs.items()]
    out = []
    for lineno, (utt, (reco, start, end)) in enumerate(read_segments(segments).items(), 1):
        if reco not in wavs:
            raise DataDirError(f"{segments}:{lineno}: recording '{reco}' of utterance '{utt}' is not in {wav_scp}")
        out.append(Utterance(utt, wavs[reco], start, None if end < 0 else end))
    return out


class Progress:
    """Log lines with utterances done, speed (utt/s and x real time) and ETA every ``every`` utterances."""

    def __init__(self, total: int, every: int):
        self.total, self.every = total, max(1, every)
        self.t0 = time.monotonic()
        self.audio_seconds = 0.0

    def update(self, done: int, bad: int, audio_seconds: float) -> None:
        self.audio_seconds += audio_seconds
        if done % self.every and done != self.total:
            return
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "%d/%d utterances (%d bad), %.1f utt/s, %.0fx real time, ETA %s",
            done, self.total, bad, rate, self.audio_seconds / elapsed, _hms(eta),
        )


def _hms(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def extract(
    utterances: list[Utterance],
    cfg: FbankConfig,
    out_prefix: str,
    filetype: str = "ark",
    dtype: str = "float32",
    skip_bad: bool = False,
    bad_list: str | None = None,
    log_every: int = 100,
) -> tuple[int, list[tuple[str, str]]]:
    """Compute and store features of ``utterances``.

    Writes ``<out_prefix>.ark|.h5``, ``.utt2num_frames``, ``.utt2dur`` and (last) ``.scp``; with ``skip_bad`` the
    skipped utterances go to ``bad_list`` (default ``<out_prefix>.bad``) as ``<utt> <reason>`` lines, written
    even when empty so a rerun never sees a stale list.

    Returns:
        ``(number written, [(utt, reason), ...] skipped)``.

    Raises:
        ExtractError: a bad utterance when not ``skip_bad``; nothing is left under the final names.
    """
    bad_list = bad_list or out_prefix + ".bad"
    reader = AudioReader()
    bad: list[tuple[str, str]] = []
    durations: dict[str, str] = {}
    progress = Progress(len(utterances), log_every)
    with FeatWriter(out_prefix, filetype, dtype) as writer:
        for i, u in enumerate(utterances, 1):
            try:
                wave, sr = reader(u.spec, u.start, u.end, cfg.expect_channels)
                feats = compute_fbank(wave, sr, cfg)
            except (AudioError, FbankError) as e:
                reason = str(e) if isinstance(e, AudioError) else f"{describe(u.spec)}: {e}"
                if not skip_bad:
                    raise ExtractError(f"utterance '{u.utt}': {reason}") from e
                log.warning("skipping utterance '%s': %s", u.utt, reason)
                bad.append((u.utt, " ".join(reason.split())))
                progress.update(i, len(bad), 0.0)
                continue
            writer.write(u.utt, feats)
            seconds = wave.shape[1] / sr
            durations[u.utt] = f"{seconds:.4f}"
            progress.update(i, len(bad), seconds)
        # written inside the block: if any of them fails, the scp (the completion marker) never appears
        write_kv(out_prefix + ".utt2num_frames", writer.num_frames)
        write_kv(out_prefix + ".utt2dur", durations)
        if skip_bad:
            with atomic_open(bad_list, "w", encoding="utf-8") as f:
                f.writelines(f"{utt} {reason}\n" for utt, reason in bad)
    if not writer.entries and utterances:
        log.warning("no utterance of %d could be processed", len(utterances))
    return len(writer.entries), bad

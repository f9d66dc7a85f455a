"""Embeddings of audio with a MaskSpec model file: ``maskspec-embed --model model.pt --wav_scp S --output_prefix P``.

Input (one of): ``--wav_scp S`` (optionally with ``--segments``), ``--data_dir D`` (its wav.scp and segments, or
its feats.scp, see ``--use_feats``) or audio files on the command line (utterance id = file name without
extension). Audio of any rate, channel count and length is turned into the model file's own features
(fbank settings, statistics, normalisation), exactly as for ``maskspec-infer``.

Output (``--filetype ark``: Kaldi ark + scp; ``hdf5``: .h5 + scp; read back with ``maskspec.data.feats.load_feat``):

* ``--level scene``: ``P.scene.ark`` / ``P.scene.scp``, one ``[1, D]`` matrix per utterance (mean-pooled
  encoder tokens, or the cls token of a cls-pooled classifier; see ``maskspec.inference.embed``).
* ``--level frame``: ``P.frame.ark`` / ``P.frame.scp``, one ``[n_t, D]`` matrix per utterance (one row per
  16-frame patch column, windows of the model's input length, hop = window), and ``P.timestamps`` with lines
  ``<utt> t_0 t_1 ... t_{n_t-1}``: the column centres in milliseconds from the start of the utterance.
* ``--level both``: all of these.

Utterances that cannot be read are reported on stderr (naming the utterance and file) and skipped; the others
are written, and the exit status is then 1. Every output file appears under its final name only when complete.
Exit status 0 on success, 1 on a bad model file or failed utterances, 2 on bad options.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Callable, Optional, Sequence

import numpy as np

from maskspec.utils.cli import UsageError, run_main
from maskspec.utils.device import select_device

PROG = "maskspec-embed"
logger = logging.getLogger("maskspec.embed")


def get_parser() -> argparse.ArgumentParser:
    from maskspec.data.feats import DTYPES, FILETYPES
    from maskspec.inference.embed import DEFAULT_BATCH_WINDOWS, LEVELS

    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        epilog="e.g.: maskspec-embed --model exp/pretrain_base/model.pt --data_dir data/test "
               "--output_prefix exp/embed/test --level both")
    p.add_argument("files", nargs="*", help="audio files (instead of --wav_scp / --data_dir)")
    p.add_argument("--model", required=True, help="model file (pre-trained or fine-tuned, or from maskspec-export)")
    p.add_argument("--wav_scp", default=None, help="wav.scp: <utt> <path> or <utt> <command> |")
    p.add_argument("--segments", default=None, help="segments file for --wav_scp")
    p.add_argument("--data_dir", default=None, help="Kaldi data directory (wav.scp [+ segments], or feats.scp)")
    p.add_argument("--use_feats", default="auto", choices=("auto", "true", "false"),
                   help="with --data_dir: read its feats.scp instead of the audio; auto = when its fbank.yaml has "
                        "the model's fbank settings (default auto)")
    p.add_argument("--output_prefix", required=True, help="output files start with this path")
    p.add_argument("--level", default="scene", choices=LEVELS, help="scene, frame or both (default scene)")
    p.add_argument("--filetype", default="ark", choices=FILETYPES, help="default ark")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="storage type (default float32)")
    p.add_argument("--batch_size", type=int, default=16, help="utterances read per batch (default 16)")
    p.add_argument("--batch_windows", type=int, default=DEFAULT_BATCH_WINDOWS,
                   help="model windows per forward pass (default %(default)s)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto = cuda when available (default auto)")
    return p


Loader = Callable[[], np.ndarray]


def audio_items(utterances, model_file) -> list[tuple[str, Loader]]:
    """(utt, loader of normalised features) for maskspec.data.extract.Utterance items."""
    from maskspec.features.audio import AudioReader
    from maskspec.inference.featurize import featurize

    reader = AudioReader()  # keeps a piped command's output for its consecutive segments
    channels = (model_file["fbank_config"] or {}).get("expect_channels")

    def loader(u):
        return lambda: featurize(*reader(u.spec, u.start, u.end, channels), model_file)

    return [(u.utt, loader(u)) for u in utterances]


def file_items(paths: Sequence[str], model_file) -> list[tuple[str, Loader]]:
    """Items for audio files named on the command line; the id is the file name without its extension."""
    from maskspec.data.extract import Utterance

    seen: dict[str, str] = {}
    utts = []
    for path in paths:
        utt = os.path.splitext(os.path.basename(path))[0]
        if not utt or any(c.isspace() for c in utt):
            raise ValueError(f"{path}: the file name gives no usable utterance id (empty or with spaces); "
                             f"use --wav_scp")
        if utt in seen:
            raise ValueError(f"{path} and {seen[utt]} give the same utterance id '{utt}'; use --wav_scp")
        seen[utt] = path
        utts.append(Utterance(utt, path))
    return audio_items(utts, model_file)


def feats_items(data_dir: str, model_file) -> list[tuple[str, Loader]]:
    """Items reading ``data_dir/feats.scp`` and normalising with the model file's statistics."""
    from maskspec.data.datadir import read_kv
    from maskspec.features.normalize import normalize
    from maskspec.data.feats import load_feat
    from maskspec.inference.featurize import model_front_end

    scp = read_kv(os.path.join(data_dir, "feats.scp"))
    front_end = model_front_end(model_file)

    def load(spec):
        import torch

        raw = front_end.pad_fbank(torch.from_numpy(np.array(load_feat(spec), dtype=np.float32)))  # a copy
        return np.asarray(normalize(raw, model_file["stats"], model_file["normalize"]), dtype=np.float32)

    def loader(spec):
        return lambda: load(spec)

    return [(utt, loader(spec)) for utt, spec in scp.items()]


def feats_match(data_dir: str, model_file) -> tuple[bool, str]:
    """Whether ``data_dir`` has a feats.scp computed with the model's fbank settings, and why not."""
    from maskspec.features.fbank import FbankConfig, FbankError
    from maskspec.inference.featurize import model_front_end

    fbank_yaml = os.path.join(data_dir, "fbank.yaml")
    front_end = model_front_end(model_file)
    if front_end.pad == "waveform":
        return False, (f"the model pads audio shorter than {front_end.pad_seconds:g} s before computing its "
                       f"features ({front_end.name}'s front end), which stored features cannot reproduce")
    if not os.path.isfile(os.path.join(data_dir, "feats.scp")):
        return False, f"{data_dir}/feats.scp does not exist"
    if not os.path.isfile(fbank_yaml):
        return False, f"{fbank_yaml} does not exist, so the feature settings are unknown"
    try:
        theirs = FbankConfig.from_yaml(fbank_yaml).to_dict()
    except FbankError as e:
        return False, str(e)
    ours = FbankConfig.from_dict(dict(model_file["fbank_config"])).to_dict()
    diff = sorted(k for k in ours if ours[k] != theirs.get(k))
    return (not diff), f"{fbank_yaml} differs from the model's fbank settings in {', '.join(diff)}"


def input_items(args, model_file) -> list[tuple[str, Loader]]:
    from maskspec.data.extract import read_utterances

    if args.files:
        return file_items(args.files, model_file)
    if args.wav_scp:
        return audio_items(read_utterances(args.wav_scp, args.segments), model_file)
    d = args.data_dir
    if args.use_feats != "false":
        ok, why = feats_match(d, model_file)
        if ok:
            logger.info("reading features from %s/feats.scp", d)
            return feats_items(d, model_file)
        if args.use_feats == "true":
            raise ValueError(f"--use_feats true: {why}")
        logger.info("computing features from audio: %s", why)
    segments = os.path.join(d, "segments")
    return audio_items(read_utterances(os.path.join(d, "wav.scp"), segments if os.path.isfile(segments) else None),
                       model_file)


def ms_text(times: np.ndarray) -> str:
    """Timestamps as text: milliseconds with at most three decimals, no trailing zeros."""
    return " ".join(f"{t:.3f}".rstrip("0").rstrip(".") for t in times)


def run(args, embedder, items) -> int:
    """Embed ``items`` and write the outputs; returns the number of failed utterances."""
    from maskspec.data.datadir import write_kv
    from maskspec.data.feats import FeatWriter

    want_scene, want_frame = args.level in ("scene", "both"), args.level in ("frame", "both")
    failed, stamps = 0, {}
    with contextlib.ExitStack() as stack:
        scene_w = (stack.enter_context(FeatWriter(args.output_prefix + ".scene", args.filetype, args.dtype))
                   if want_scene else None)
        frame_w = (stack.enter_context(FeatWriter(args.output_prefix + ".frame", args.filetype, args.dtype))
                   if want_frame else None)
        for start in range(0, len(items), args.batch_size):
            utts, feats = [], []
            for utt, load in items[start: start + args.batch_size]:
                try:
                    x = load()
                    if x.ndim != 2 or x.shape[1] != embedder.num_mel_bins:
                        raise ValueError(f"features of shape {x.shape}, the model takes [frames, "
                                         f"{embedder.num_mel_bins}]")
                except Exception as e:  # noqa: BLE001 - one bad utterance must not stop the others
                    failed += 1
                    print(f"{PROG}: error: utterance '{utt}': {e}", file=sys.stderr)
                    continue
                utts.append(utt)
                feats.append(x)
            if not utts:
                continue
            for utt, (cols, scene) in zip(utts, embedder.embed(feats)):
                if scene_w is not None:
                    scene_w.write(utt, scene.unsqueeze(0).cpu().numpy())
                if frame_w is not None:
                    frame_w.write(utt, cols.cpu().numpy())
                    stamps[utt] = ms_text(embedder.times_ms(cols.shape[0]).numpy())
            logger.info("%d/%d utterances done", min(start + args.batch_size, len(items)), len(items))
        if want_frame:
            write_kv(args.output_prefix + ".timestamps", stamps)
    return failed


def main_run(args) -> int:
    """The command line after parsing: checks, model, inputs, ``run``; the exit status."""
    sources = [bool(args.files), args.wav_scp is not None, args.data_dir is not None]
    if sum(sources) != 1:
        raise UsageError("give exactly one of --wav_scp, --data_dir or audio files")
    if args.segments and not args.wav_scp:
        raise UsageError("--segments goes with --wav_scp (a --data_dir's segments file is used automatically)")
    if args.batch_size < 1 or args.batch_windows < 1:
        raise UsageError("--batch_size and --batch_windows must be at least 1")
    device = select_device(args.device)
    logging.basicConfig(level=logging.INFO, format=f"{PROG}: %(message)s")

    from maskspec.inference.embed import Embedder
    from maskspec.inference.featurize import model_fbank
    from maskspec.models.model_file import load_model_file

    model_file = load_model_file(args.model)
    try:
        model_fbank(model_file)  # features are computed (or checked) with these settings
        embedder = Embedder(model_file, device, args.batch_windows)
    except ValueError as e:
        raise ValueError(f"{args.model}: {e}") from e
    if args.level != "frame":
        logger.info("scene embedding of %s (%s model): the %s", args.model, model_file["kind"],
                    embedder.scene_pooling)
    items = input_items(args, model_file)
    if not items:
        raise ValueError("no utterances to embed")
    failed = run(args, embedder, items)
    outputs = [args.output_prefix + s for s, on in ((".scene.scp", args.level != "frame"),
                                                     (".frame.scp", args.level != "scene"),
                                                     (".timestamps", args.level != "scene")) if on]
    print(f"{PROG}: {len(items) - failed} of {len(items)} utterances embedded: {', '.join(outputs)}")
    if failed:
        print(f"{PROG}: {failed} of {len(items)} utterances failed", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(PROG, get_parser, main_run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Label audio files with a fine-tuned MaskSpec model: ``maskspec-infer --model exp/<tag>/model.pt a.wav b.flac``.

Any sample rate, length and channel count: the model file carries its feature settings, normalisation stats and
class names, so no recipe folder is needed. An unreadable file gets an error line and the others go on; the exit
status is 1 if any file failed. A speech recogniser (CTC model file) prints each file's transcript instead of labels.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from maskspec.features.audio import load_audio
from maskspec.inference.classifier import load_classifier
from maskspec.inference.featurize import featurize
from maskspec.models.model_file import load_model_file
from maskspec.models.windows import DEFAULT_BATCH_WINDOWS, predict_feats
from maskspec.utils.atomic import atomic_open
from maskspec.utils.cli import UsageError, run_main
from maskspec.utils.device import select_device

PROG = "maskspec-infer"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="e.g.: maskspec-infer --model exp/esc50_fold1/model.pt --topk 3 dog.wav rain.flac")
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, ... anything libsndfile reads)")
    parser.add_argument("--model", required=True, help="model file written by fine-tuning (exp/<tag>/model.pt)")
    parser.add_argument("--topk", type=int, default=5, help="labels printed per file (default 5)")
    parser.add_argument("--output", default=None, help="also write JSON lines {file, labels[, error]} here")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto = cuda when available (default auto)")
    parser.add_argument("--hop_frames", type=int, default=None,
                        help="hop between analysis windows in frames (default: half the model's window)")
    parser.add_argument("--batch_windows", type=int, default=DEFAULT_BATCH_WINDOWS,
                        help="windows per forward pass (default %(default)s)")
    parser.add_argument("--beam_size", type=int, default=1,
                        help="speech recognisers (CTC): 1 = greedy, more = prefix beam search (default 1)")
    return parser


def top_labels(probs: np.ndarray, classes: Sequence[str], k: int) -> list[dict]:
    """The k best classes, highest score first (ties keep class order)."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": classes[i], "score": round(float(probs[i]), 6)} for i in order]


def label_file(path: str, model: torch.nn.Module, mf: dict, args) -> list[dict]:
    wave, sr = load_audio(path)
    feats = featurize(wave, sr, mf)
    probs = predict_feats(model, feats, mf["num_frames"], args.hop_frames, mf["task_type"], args.batch_windows)
    return top_labels(probs, mf["classes"], args.topk)


def transcribe_file(path: str, model: torch.nn.Module, mf: dict, args) -> str:
    """The transcript of one file by a CTC model (``mf["tokenizer"]`` decodes its units)."""
    from maskspec.tasks.ctc_score import transcribe_feats

    wave, sr = load_audio(path)
    return transcribe_feats(model, featurize(wave, sr, mf), mf["tokenizer"], args.beam_size)


def run(args) -> int:
    if args.topk < 1:
        raise UsageError(f"--topk must be at least 1, got {args.topk}")
    if args.hop_frames is not None and args.hop_frames < 1:
        raise UsageError(f"--hop_frames must be at least 1, got {args.hop_frames}")
    device = select_device(args.device)
    mf = load_model_file(args.model)
    if mf["kind"] == "ctc":  # a speech recogniser: one transcript per file
        from maskspec.tasks.ctc_score import load_ctc_model

        model, mf, mf["tokenizer"] = load_ctc_model(args.model, device, mf)
        work = transcribe_file
    else:
        model, mf = load_classifier(args.model, device, mf)
        work = label_file
    records, failed = [], 0
    for path in args.files:
        try:
            labels = work(path, model, mf, args)
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others; the message names it
            failed += 1
            message = str(e) if path in str(e) else f"{path}: {e}"
            print(f"{PROG}: error: {message}", file=sys.stderr)
            records.append({"file": path, "labels": [], "error": message})
            continue
        if isinstance(labels, str):
            print(f"{path}\t{labels}")
            records.append({"file": path, "text": labels})
            continue
        print(f"{path}\t" + "  ".join(f"{r['label']} {r['score']:.3f}" for r in labels))
        records.append({"file": path, "labels": labels})
    if args.output:
        with atomic_open(args.output, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if failed:
        print(f"{PROG}: {failed} of {len(args.files)} files failed", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(PROG, get_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

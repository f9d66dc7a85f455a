"""Score a data directory with a fine-tuned model (recipe stage 5).

e.g.: python -m maskspec.bin.score --model exp/esc50_fold1/model.pt --data data/fold1_test \\
          --output_dir exp/esc50_fold1/decode_fold1_test

Predicts every utterance of <data>/feats.scp (whole clips, sliding windows with averaged probabilities), and
writes to <output_dir>:
  scores.txt    <utt> <p_1> ... <p_C>, class order of labels.txt beside it
  labels.txt    the model's classes (output order)
  scores.npz    utts, classes, scores [N, C] (+ targets, known when labelled)
  results.json  accuracy (single-label), mAP, mAUC, d', per-class AP/AUC (when <data>/utt2label exists)
  RESULTS.md    the same, readable
  per_class_ap.png, confusion.png (single-label; the counts are in results.json as confusion_matrix)
The features must have been computed with the fbank settings of the model's training data; the model file's
stats normalise them.
A speech recogniser (a model file of kind ctc) writes text, per_utt, per_utt_char, results.json (WER, CER) and
RESULTS.md instead (maskspec.tasks.ctc_score); <data> needs a text file.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from maskspec.data.datadir import DataDirError, read_classes
from maskspec.data.dataset import FeatDataset
from maskspec.inference.classifier import load_classifier
from maskspec.inference.score_plots import confusion_matrix, plot_confusion, plot_per_class_ap
from maskspec.models.model_file import load_model_file
from maskspec.models.windows import DEFAULT_BATCH_WINDOWS, predict_many
from maskspec.tasks.metrics import compute_metrics, primary_value
from maskspec.utils.atomic import atomic_open, atomic_path
from maskspec.utils.cli import UsageError, run_main
from maskspec.utils.device import select_device

PROG = "score.py"
logger = logging.getLogger("maskspec.score")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model file from fine-tuning (exp/<tag>/model.pt)")
    p.add_argument("--data", required=True, help="data directory with feats.scp (and utt2label for metrics)")
    p.add_argument("--output_dir", required=True, help="where scores and results go (exp/<tag>/decode_<set>)")
    p.add_argument("--hop_frames", type=int, default=None, help="window hop in frames (default: half a window)")
    p.add_argument("--batch_clips", type=int, default=16, help="clips read per batch (default %(default)s)")
    p.add_argument("--batch_windows", type=int, default=DEFAULT_BATCH_WINDOWS,
                   help="windows per forward pass (default %(default)s)")
    p.add_argument("--num_workers", type=int, default=2, help="DataLoader workers (default %(default)s)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda if available")
    p.add_argument("--beam_size", type=int, default=1,
                   help="speech recognisers (CTC): 1 = greedy, more = prefix beam search (default %(default)s)")
    return p


def predict_dataset(model, dataset: FeatDataset, num_frames: int, hop: Optional[int], task_type: str,
                    batch_clips: int, batch_windows: int, num_workers: int,
                    pad: Optional[tuple[int, np.ndarray]] = None) -> np.ndarray:
    """Probabilities [N, C] for every item of ``dataset`` (uncropped clips, in dataset order). ``pad`` (frames,
    normalised frame [F]): clips shorter than that many frames are padded with that frame first (an imported
    model whose source padded the raw fbank with zeros before normalising: the frame is normalised zeros)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_clips, shuffle=False, num_workers=num_workers,
                                         collate_fn=list)
    out = []
    for items in loader:
        clips = [it["feats"][: it["num_frames"]] for it in items]
        if pad is not None:
            clips = [np.concatenate([np.asarray(c, np.float32), np.tile(pad[1], (pad[0] - len(c), 1))])
                     if len(c) < pad[0] else c for c in clips]
        out.append(predict_many(model, clips, num_frames, hop, task_type, batch_windows))
        logger.debug("scored %d clips", sum(len(o) for o in out))
    return np.concatenate(out)


def json_safe(value):
    """Non-finite floats (d' of a perfect AUC is infinite) become None: strict JSON has no Infinity."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def results_markdown(results: dict) -> str:
    """RESULTS.md: the summary first, then the per-class table sorted by AP (worst classes last)."""
    m = results["metrics"]
    lines = [f"# Results: {results['data']}", "",
             f"- model: `{results['model']}`",
             f"- clips: {m['num_clips']}, task: {m['task_type']}, windows of {results['num_frames']} frames, hop "
             f"{results['hop_frames']}", ""]
    lines += ["| metric | value |", "|---|---|"]
    if "accuracy" in m:
        lines.append(f"| accuracy | {_fmt(m['accuracy'])} |")
    lines += [f"| mAP | {_fmt(m['mAP'])} |", f"| mAUC | {_fmt(m['mAUC'])} |", f"| d' | {_fmt(m['d_prime'], 3)} |"]
    if m["classes_without_ap"]:
        lines += ["", f"{len(m['classes_without_ap'])} classes have no known positive and are left out of mAP: "
                  + ", ".join(m["classes_without_ap"][:20]) + (" ..." if len(m["classes_without_ap"]) > 20 else "")]
    rows = sorted(m["per_class"], key=lambda r: -1.0 if r["ap"] is None else r["ap"], reverse=True)
    lines += ["", "## Per class", "", "| class | AP | AUC | positives | negatives |", "|---|---|---|---|---|"]
    lines += [f"| {r['class']} | {_fmt(r['ap'])} | {_fmt(r['auc'])} | {r['positives']} | {r['negatives']} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def write_outputs(output_dir: str, utts: Sequence[str], classes: Sequence[str], scores: np.ndarray,
                  targets: Optional[np.ndarray], known: Optional[np.ndarray], results: Optional[dict]) -> None:
    os.makedirs(output_dir, exist_ok=True)
    with atomic_open(os.path.join(output_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.writelines(c + "\n" for c in classes)
    with atomic_open(os.path.join(output_dir, "scores.txt"), "w", encoding="utf-8") as f:
        for utt, row in zip(utts, scores):
            f.write(utt + " " + " ".join(f"{v:.6g}" for v in row) + "\n")
    arrays = dict(utts=np.array(list(utts)), classes=np.array(classes), scores=scores.astype(np.float32))
    if targets is not None:
        arrays.update(targets=targets.astype(np.float32), known=known.astype(np.float32))
    with atomic_path(os.path.join(output_dir, "scores.npz")) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would add .npz to the temporary name
            np.savez(f, **arrays)
    if results is not None:
        with atomic_open(os.path.join(output_dir, "results.json"), "w", encoding="utf-8") as f:
            json.dump(json_safe(results), f, indent=2, allow_nan=False)
            f.write("\n")
        with atomic_open(os.path.join(output_dir, "RESULTS.md"), "w", encoding="utf-8") as f:
            f.write(results_markdown(json_safe(results)))
        title = os.path.basename(os.path.normpath(results.get("data", "")))
        plot_per_class_ap(results["metrics"]["per_class"], os.path.join(output_dir, "per_class_ap.png"), title)
        if "confusion_matrix" in results:
            plot_confusion(np.asarray(results["confusion_matrix"]), classes,
                           os.path.join(output_dir, "confusion.png"), title)


def source_padding(mf: dict, where: str) -> Optional[tuple[int, np.ndarray]]:
    """How an imported model's source padded short clips, as ``predict_dataset``'s ``pad``; None for the default
    (normalised features padded with zeros). A source that padded the audio (the MaskSpec authors' tagger) cannot
    be reproduced from stored features: a warning says so, and the default padding is used."""
    from maskspec.features.normalize import normalize
    from maskspec.inference.featurize import model_front_end

    front_end = model_front_end(mf)
    if front_end.pad == "fbank":
        zero = np.zeros((1, int(mf["model_config"]["num_mel_bins"])), np.float32)
        return front_end.pad_frames, np.asarray(normalize(zero, mf["stats"], mf["normalize"]), np.float32)[0]
    if front_end.pad == "waveform":
        logger.warning("%s: its source (%s) pads audio shorter than %g s with silence before computing features, "
                       "which stored features cannot reproduce: shorter clips are padded with the mean instead "
                       "(maskspec-infer on the audio pads as the source did)", where, front_end.name,
                       front_end.pad_seconds)
    return None


def score(args) -> Optional[dict]:
    device = select_device(args.device)
    mf = load_model_file(args.model)
    if mf["kind"] == "ctc":  # a speech recogniser: WER/CER instead of class scores
        from maskspec.tasks.ctc_score import score_ctc

        return score_ctc(args, device, mf)
    model, mf = load_classifier(args.model, device, mf)
    classes = mf["classes"]
    labelled = os.path.isfile(os.path.join(args.data, "utt2label"))
    if labelled and os.path.isfile(os.path.join(args.data, "labels.txt")):
        data_classes = read_classes(args.data)
        if set(data_classes) - set(classes):
            raise DataDirError(f"{args.data}/labels.txt has classes the model does not know: "
                               f"{sorted(set(data_classes) - set(classes))[:5]}")
    dataset = FeatDataset(args.data, num_frames=None, stats=mf["stats"], normalize=mf["normalize"], crop="none",
                          with_labels=labelled, classes=classes)
    hop = args.hop_frames or max(1, mf["num_frames"] // 2)
    logger.info("scoring %d clips of %s with %s (%s, %d classes) on %s", len(dataset), args.data, args.model,
                mf["task_type"], len(classes), device)
    scores = predict_dataset(model, dataset, mf["num_frames"], hop, mf["task_type"], args.batch_clips,
                             args.batch_windows, args.num_workers, source_padding(mf, args.model))
    results = targets = known = None
    if labelled:
        targets, known = dataset.labels.targets(), dataset.labels.known_mask()
        metrics = compute_metrics(scores, targets, known if dataset.labels.known is not None else None,
                                  mf["task_type"], classes)
        results = dict(model=os.path.abspath(args.model), data=os.path.abspath(args.data),
                       num_frames=mf["num_frames"], hop_frames=hop, metrics=metrics)
        if mf["task_type"] == "single_label":
            results["confusion_matrix"] = confusion_matrix(scores, targets).tolist()
        logger.info("%s: %s = %.4f (mAP %s, mAUC %s)", args.data, metrics["primary_metric"], primary_value(metrics),
                    _fmt(metrics["mAP"]), _fmt(metrics["mAUC"]))
    else:
        logger.warning("%s has no utt2label: writing scores only, no metrics", args.data)
    write_outputs(args.output_dir, dataset.utts, classes, scores, targets, known, results)
    return results


def run(args) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s {PROG} %(levelname)s: %(message)s")
    for name in ("batch_clips", "batch_windows"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")
    if args.hop_frames is not None and args.hop_frames < 1:
        raise UsageError("--hop_frames must be at least 1")
    score(args)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(PROG, get_parser, run, argv, log=logger)


if __name__ == "__main__":
    sys.exit(main())

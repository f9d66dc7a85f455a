"""Turn a training checkpoint into a model file: ``maskspec-export --checkpoint C --output model.pt``.

Works on pre-training (stage 3) and fine-tuning (stage 4) checkpoints, e.g. ``exp/<tag>/checkpoints/best.pt`` or
any ``ckpt_e*_s*.pt``. The model file (see ``maskspec.models.model_file``) holds the weights, the model
configuration, the fbank settings, the normalisation statistics and mode, the class names and task type, the
input length in frames and a version; ``maskspec-infer``, ``maskspec-embed`` and ``maskspec.hear`` read it.

* The kind follows the weights: decoder weights -> "pretrain" (encoder + decoder kept; embeddings use the
  encoder), a classification head -> "classifier".
* Metadata come from the checkpoint; ``--stats``, ``--fbank_config``, ``--classes``, ``--normalize``,
  ``--task_type`` and ``--num_frames`` replace or supply them (e.g. ``--fbank_config data/train/fbank.yaml``
  when pre-training ran without one).
* A model file (e.g. one of ``maskspec-import``) is accepted too, to write it again with some of its metadata
  replaced: your own data's ``--stats``, other ``--classes`` names, ``--num_frames`` ...; what it records
  beyond a checkpoint's metadata (an imported model's source front end, its ``extra``) is kept, and ``extra``
  names the file it was exported from. A speech recogniser's (kind "ctc") is refused: its tokenizer is part of
  the model, and nothing here could replace it consistently.
* Before writing, the weights are loaded strictly into the network the configuration describes, and the stats
  and fbank settings are checked against the model's mel bins, so an incompatible checkpoint never becomes a
  model file. The file is written atomically.

Exit status 0 on success, 1 on an unusable checkpoint or metadata (the message names the file), 2 on bad options.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Mapping, Optional, Sequence

PROG = "maskspec-export"


class ExportError(ValueError):
    """A checkpoint or option that cannot give a valid model file; the message names the file."""


def get_parser() -> argparse.ArgumentParser:
    from maskspec.features.normalize import NORMALIZE_MODES
    from maskspec.models.model_file import TASK_TYPES

    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        epilog="e.g.: maskspec-export --checkpoint exp/pretrain_base/checkpoints/best.pt --output pretrained.pt")
    p.add_argument("--checkpoint", required=True,
                   help="training checkpoint (.pt) from pretrain or finetune, or a model file to write again")
    p.add_argument("--output", required=True, help="model file to write")
    p.add_argument("--stats", default=None, help="stats.json to store instead of the checkpoint's")
    p.add_argument("--fbank_config", default=None, help="fbank.yaml to store instead of the checkpoint's")
    p.add_argument("--classes", default=None, help="labels.txt (one class per line) for a fine-tuned checkpoint")
    p.add_argument("--normalize", default=None, choices=NORMALIZE_MODES,
                   help="feature standardisation (default: the checkpoint's)")
    p.add_argument("--task_type", default=None, choices=TASK_TYPES, help="default: the checkpoint's")
    p.add_argument("--num_frames", type=int, default=None,
                   help="input length in frames the model was trained on (default: the checkpoint's)")
    return p


def read_checkpoint(path: str) -> dict:
    """The training state in ``path``; ExportError naming the file when it is damaged, foreign or a model file."""
    from maskspec.models.model_file import ModelFileError, file_kind, read_torch_file
    from maskspec.train.checkpoint import CheckpointError, load_checkpoint

    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such checkpoint")
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        # only now look closer, so a good checkpoint is read once: a model file is a common mix-up
        try:
            probe = read_torch_file(path, "checkpoint")
        except ModelFileError:  # unreadable: the checkpoint error already says so
            probe = None
        if file_kind(probe) == "model file":
            return model_file_checkpoint(probe, path)
        raise ExportError(str(e)) from None


def model_file_checkpoint(obj: Mapping[str, Any], path: str) -> dict:
    """A model file read from ``path`` in the shape of a training checkpoint (its weights under "model", its
    metadata beside them), marked ``from_model_file``; ExportError for a file that is not usable."""
    from maskspec.models.model_file import ModelFileError, check_model_file

    try:
        mf = check_model_file(dict(obj), path)
    except ModelFileError as e:
        raise ExportError(str(e)) from None
    if mf["kind"] not in ("pretrain", "classifier"):
        raise ExportError(f"{path}: a {mf['kind']} model file (a speech recogniser) cannot be exported again: its "
                          f"tokenizer belongs to its output layer, and maskspec-export replaces only the metadata of "
                          f"pre-trained and classifier models; use the file as it is")
    ckpt = {k: mf.get(k) for k in ("kind", "model_config", "fbank_config", "stats", "normalize", "classes",
                                   "task_type", "num_frames")}
    ckpt.update(model=mf["state_dict"], from_model_file=dict(front_end=mf.get("front_end"),
                                                              extra=dict(mf.get("extra") or {})))
    return ckpt


def weights_kind(state_dict: Mapping[str, Any], where: str) -> str:
    """"pretrain" for weights with a decoder, "classifier" for weights with a head."""
    if "decoder_pred.weight" in state_dict or "cnn_decoder.pred.weight" in state_dict:  # either objective
        return "pretrain"
    if "head.weight" in state_dict:
        return "classifier"
    raise ExportError(f"{where}: the weights have neither a decoder (pre-training) nor a classification head "
                      f"(fine-tuning); e.g. {sorted(state_dict)[:3]}")


def build_model_file(ckpt: Mapping[str, Any], where: str, stats_path: Optional[str] = None,
                     fbank_path: Optional[str] = None, classes_path: Optional[str] = None,
                     normalize: Optional[str] = None, task_type: Optional[str] = None,
                     num_frames: Optional[int] = None) -> dict:
    """Keyword arguments for ``save_model_file`` from a checkpoint dict and the overrides, checked.

    ``where`` names the checkpoint in error messages.
    """
    from maskspec.features.normalize import StatsError, check_stats, load_stats
    from maskspec.data.datadir import DataDirError, read_list
    from maskspec.features.fbank import FbankConfig, FbankError
    from maskspec.models.configs import model_config
    from maskspec.models.model_file import ModelFileError, build_model

    state_dict, args = ckpt["model"], ckpt.get("args") or {}
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise ExportError(f"{where}: the checkpoint holds no weights")
    kind = weights_kind(state_dict, where)
    if ckpt.get("kind") in ("pretrain", "classifier") and ckpt["kind"] != kind:
        raise ExportError(f"{where}: checkpoint kind {ckpt['kind']!r} but its weights are a {kind} model's")
    if not ckpt.get("model_config"):
        raise ExportError(f"{where}: the checkpoint has no model_config")
    try:
        cfg = model_config(dict(ckpt["model_config"]))
    except ValueError as e:
        raise ExportError(f"{where}: {e}") from e

    try:
        fbank = (FbankConfig.from_yaml(fbank_path) if fbank_path else
                 FbankConfig.from_dict(dict(ckpt["fbank_config"]), source=f"{where}: fbank_config")
                 if ckpt.get("fbank_config") else None)
        stats = load_stats(stats_path) if stats_path else ckpt.get("stats")
        if stats is not None and not stats_path:
            check_stats(stats, f"{where}: stats")
        classes = read_list(classes_path) if classes_path else ckpt.get("classes")
    except (FbankError, StatsError, DataDirError) as e:
        raise ExportError(str(e)) from e
    if fbank is None:
        raise ExportError(f"{where}: the checkpoint has no fbank settings; give --fbank_config (the fbank.yaml "
                          f"of the training data)")
    if fbank.feat_dim != cfg.num_mel_bins:
        raise ExportError(f"{fbank_path or where}: fbank settings give {fbank.feat_dim} features per frame but "
                          f"the model takes {cfg.num_mel_bins} mel bins")
    normalize = normalize or ckpt.get("normalize") or args.get("normalize")
    if normalize is None:
        raise ExportError(f"{where}: the checkpoint does not say how features were normalised; give --normalize")
    if normalize != "none" and stats is None:
        raise ExportError(f"{where}: normalize {normalize!r} needs statistics; give --stats")
    if normalize == "per_bin" and len(stats["mean"]) != cfg.num_mel_bins:
        raise ExportError(f"{stats_path or where}: stats have {len(stats['mean'])} mel bins, the model "
                          f"{cfg.num_mel_bins}")
    num_frames = num_frames or ckpt.get("num_frames") or args.get("num_frames") or cfg.num_frames
    if kind == "pretrain":
        if classes_path or task_type:
            raise ExportError(f"{where}: --classes and --task_type apply to fine-tuned checkpoints only")
        classes, task_type = None, None
        if cfg.objective == "bootstrap":  # the model file keeps the student, not the EMA teacher
            from maskspec.models.bootstrap import student_weights

            state_dict = student_weights(state_dict)
    else:
        task_type = task_type or ckpt.get("task_type") or args.get("task_type")
        n_out = state_dict["head.weight"].shape[0]
        if not classes:
            raise ExportError(f"{where}: the checkpoint has no class names; give --classes labels.txt")
        if len(classes) != n_out:
            raise ExportError(f"{classes_path or where}: {len(classes)} classes but the model has {n_out} outputs")

    fields = dict(kind=kind, model_config=cfg.to_dict(), state_dict=state_dict, fbank_config=fbank.to_dict(),
                  stats=None if stats is None else dict(stats), normalize=normalize,
                  classes=None if classes is None else list(classes), task_type=task_type,
                  num_frames=int(num_frames))
    try:
        build_model(fields)  # strict load: weights and configuration must agree
    except (ModelFileError, ValueError) as e:
        raise ExportError(f"{where}: {e}") from e
    if ckpt.get("from_model_file") is not None:  # a model file written again: what it records is kept
        kept = ckpt["from_model_file"]
        fields["extra"] = dict(kept["extra"], exported_from=os.path.abspath(where))
        if kept["front_end"] is not None:
            fields["front_end"] = kept["front_end"]
        return fields
    fields["extra"] = dict(source=os.path.abspath(where), epoch=ckpt.get("epoch"), step=ckpt.get("step"),
                           best_metric=ckpt.get("best_metric"), best_metric_name=ckpt.get("best_metric_name"))
    return fields


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if args.num_frames is not None and args.num_frames < 1:
        print(f"{PROG}: --num_frames must be positive, got {args.num_frames}", file=sys.stderr)
        return 2
    from maskspec.models.model_file import ModelFileError, load_model_file, save_model_file

    try:
        ckpt = read_checkpoint(args.checkpoint)
        fields = build_model_file(ckpt, args.checkpoint, args.stats, args.fbank_config, args.classes,
                                  args.normalize, args.task_type, args.num_frames)
        del ckpt
        save_model_file(args.output, **fields)
        load_model_file(args.output)  # what was written reads back
    except (ExportError, ModelFileError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    origin = ("the model file" if "exported_from" in fields["extra"]
              else f"step {fields['extra']['step']} of")
    print(f"{PROG}: wrote {args.output} ({fields['kind']}, {len(fields['state_dict'])} tensors, "
          f"{fields['num_frames']} frames, from {origin} {args.checkpoint})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

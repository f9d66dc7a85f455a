"""Turn a published checkpoint into a MaskSpec model file: ``maskspec-import --checkpoint C --output model.pt``.

Sources (the format is recognised from the weights, or given with ``--format``):

* ``maskspec-authors``: the MaskSpec paper's code (github WangHelin1997/MaskSpec): the pre-trained model
  (``models/models_mae.py``, encoder and decoder) or the fine-tuned AudioSet tagger (``models/models_vit.py``).
  Features: ``egs/TEMPLATE/conf/fbank_paper.yaml``; normalisation: their per-bin mean/std, from the
  ``mean_std_128.npy`` their ``audioset/get_mean_std.py`` writes (``--mean_std``), or a ``stats.json`` of your
  own data (``--stats``, with a warning: not the statistics the model was trained with).
* ``audiomae``: Audio-MAE (github facebookresearch/AudioMAE): ``pretrained.pth`` (encoder; its Swin decoder is
  not imported) or the fine-tuned AudioSet tagger. Features: ``egs/TEMPLATE/conf/fbank_ast.yaml`` (their
  16 kHz Kaldi fbank); normalisation: their AudioSet mean and twice their std, one value for every bin
  (``dataset.py``: ``(fbank - mean) / (std * 2)``).

* ``eat-fairseq``, ``eat-hf``: EAT (github cwx-worst-one/EAT), pre-trained (the student encoder and its CNN
  decoder, as a model file of the bootstrap objective; the EMA teacher is dropped, named in the result) or
  fine-tuned (the tagger), as the fairseq checkpoint
  (``EAT-base_epoch30_pt.pt`` ...) or in the Hugging Face layout (worstchan/EAT-*: a directory with
  ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``, or the ``.safetensors`` file with its
  ``config.json`` beside it). Features: ``fbank_ast.yaml`` (their ``feature_extract.py``: the same 16 kHz Kaldi
  fbank); normalisation: ``(fbank + 4.268) / (2 x 4.569)``, one value for every bin.

A tagger needs its class names in output order: ``--class_labels class_labels_indices.csv`` (AudioSet's
``index,mid,display_name``), or a labels.txt with one name per line.

The weights are mapped tensor by tensor (``maskspec.models.published``), loaded strictly into the network the
configuration describes, and the file written atomically and read back. Exit status 0 on success, 1 on an
unusable checkpoint or metadata (the message names the file and key), 2 on bad options.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

PROG = "maskspec-import"
logger = logging.getLogger(PROG)

CONF_DIR = Path(__file__).resolve().parents[2] / "egs" / "TEMPLATE" / "conf"
FBANK_CONFIGS = {"maskspec-authors": "fbank_paper.yaml", "audiomae": "fbank_ast.yaml", "eat-fairseq": "fbank_ast.yaml",
                 "eat-hf": "fbank_ast.yaml"}
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
# Audio-MAE's AudioSet normalisation (main_finetune_as.py norm_stats['audioset']), applied as
# (fbank - mean) / (std * 2) in dataset.py.
AUDIOMAE_MEAN, AUDIOMAE_STD = -4.2677393, 4.5689974
# The authors' log-mel is rescaled as (log(mel + 1e-5) + 4.5) / 5 before their per-bin standardisation
# (models/models_mae.py, AugmentMelSTFT); their mean_std file holds statistics of the rescaled values.
AUTHORS_SHIFT, AUTHORS_SCALE = 4.5, 5.0


class ImportFailed(ValueError):
    """A checkpoint, statistics or labels file that cannot give a model file; the message names the file."""


def get_parser() -> argparse.ArgumentParser:
    from maskspec.models.published import FORMATS

    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        epilog="e.g.: maskspec-import --checkpoint finetuned.pth --class_labels class_labels_indices.csv "
               "--output audiomae_as2m.pt")
    p.add_argument("--checkpoint", required=True,
                   help="the published .pth/.pt file, or a Hugging Face model directory (config.json and "
                        "model.safetensors or pytorch_model.bin) or its .safetensors file")
    p.add_argument("--output", required=True, help="model file to write")
    p.add_argument("--format", default="auto", choices=("auto",) + FORMATS, help="default: recognise it")
    p.add_argument("--mean_std", default=None, help="authors' mean_std_128.npy (frame_mean, frame_std)")
    p.add_argument("--stats", default=None, help="stats.json of your own features, instead of the source's")
    p.add_argument("--class_labels", default=None,
                   help="tagger class names: class_labels_indices.csv (index,mid,display_name) or labels.txt")
    p.add_argument("--fbank_config", default=None, help="fbank.yaml instead of the format's")
    p.add_argument("--front_end", default="source", choices=("source", "ours"),
                   help="source: the source's own features and padding of short clips (default); ours: Kaldi "
                        "framing, short clips padded after normalising, as models trained here")
    p.add_argument("--num_frames", type=int, default=None,
                   help="input frames of the model (default: the format's, 992/1000 authors, 1024 Audio-MAE)")
    p.add_argument("--num_mel_bins", type=int, default=128, help="mel bins of the model (default 128)")
    p.add_argument("--num_heads", type=int, default=None, help="attention heads (default: standard ViT size)")
    p.add_argument("--decoder_num_heads", type=int, default=None, help="decoder heads (default: MAE's 16)")
    p.add_argument("--allow_pickle", default="false", choices=("true", "false"),
                   help="unpickle arbitrary objects in the checkpoint (only for files you trust; default false)")
    return p


def numpy_safe_globals() -> list:
    """numpy scalars, arrays and numeric dtypes for ``torch.load(weights_only=True)``, under numpy 2's and numpy 1's
    module names: fairseq checkpoints (EAT) keep numpy numbers in their training state (validation scores,
    meters). Nothing that runs code: the object dtype is not among them, so an object array still needs
    ``--allow_pickle``."""
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    out: list = [np.ndarray, np.dtype]
    for name in ("scalar", "_reconstruct"):
        obj = getattr(multiarray, name)
        out += [(obj, f"numpy._core.multiarray.{name}"), (obj, f"numpy.core.multiarray.{name}")]
    out += list({type(np.dtype(c)) for c in "?bhilqpBHILQPefdgFDG"})
    return out


def load_checkpoint_file(path: str, allow_pickle: bool) -> Any:
    """The object in a .pth file. Without ``allow_pickle`` only tensors, plain containers, numpy numbers and arrays
    (`numpy_safe_globals`) and the argparse Namespace that MAE-style training stores under 'args' are unpickled."""
    import torch

    if not os.path.isfile(path):
        raise ImportFailed(f"{path}: no such checkpoint")
    try:
        if allow_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals([argparse.Namespace] + numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ImportFailed(f"{path}: holds objects other than tensors ({str(e).splitlines()[0]}); if you trust "
                           f"the file, rerun with --allow_pickle true") from e
    except Exception as e:  # noqa: BLE001 - any other failure means a damaged or foreign file
        raise ImportFailed(f"{path}: cannot read (truncated or not a torch file?): {e}") from e


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays, scalars and plain containers, nothing else (np.load(allow_pickle=True) would
    run whatever the file names)."""

    _ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")}
    _ALLOWED |= {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_json_config(path: str) -> Optional[dict]:
    """A Hugging Face ``config.json`` as a dict; None when the file does not exist."""
    import json

    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise ImportFailed(f"{path}: cannot read the model configuration: {e}") from e
    if not isinstance(d, dict):
        raise ImportFailed(f"{path}: not a JSON object")
    return d


def read_safetensors(path: str) -> dict:
    """The tensors of a .safetensors file (through the safetensors package)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ImportFailed(f"{path}: cannot read as safetensors (truncated or not a safetensors file?): {e}") from e


def load_hf_layout(path: str, allow_pickle: bool) -> tuple[dict, Optional[dict], str]:
    """(state dict, config.json or None, the weights file) of a Hugging Face model directory or weights file."""
    if os.path.isdir(path):
        found = [name for name in HF_WEIGHTS if os.path.isfile(os.path.join(path, name))]
        if not found:
            sharded = [n for n in os.listdir(path) if n.endswith(".index.json")]
            raise ImportFailed(f"{path}: no {' or '.join(HF_WEIGHTS)} in this directory"
                               + (f" (sharded weights, {sharded[0]}, are not supported)" if sharded else ""))
        weights = os.path.join(path, found[0])
    else:
        weights = path
    meta = read_json_config(os.path.join(os.path.dirname(os.path.abspath(weights)), "config.json"))
    if weights.endswith(".safetensors"):
        if not os.path.isfile(weights):
            raise ImportFailed(f"{weights}: no such checkpoint")
        return read_safetensors(weights), meta, weights
    return load_checkpoint_file(weights, allow_pickle), meta, weights


def read_mean_std(path: str) -> dict:
    """The dict in an authors' ``mean_std_*.npy`` (np.save of {'frame_mean': [F], 'frame_std': [F], ...})."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"unsupported .npy version {version}")
            _, _, dtype = read_header[version](f)
            if not dtype.hasobject:
                raise ValueError("holds a plain array, not the dict get_mean_std.py saves")
            obj = _NumpyOnly(f).load()
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise ImportFailed(f"{path}: not an authors' mean/std file: {e}") from e
    d = obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    if not isinstance(d, dict) or "frame_mean" not in d or "frame_std" not in d:
        raise ImportFailed(f"{path}: expected a dict with frame_mean and frame_std")
    return d


def authors_stats(mean_std: dict, num_mel_bins: int, where: str) -> dict:
    """stats.json content equivalent to the authors' normalisation of log-mel ``L``: their
    ``((L + 4.5) / 5 - m) / s`` is ``(L - (5 m - 4.5)) / (5 s)``."""
    import numpy as np

    m = np.asarray(mean_std["frame_mean"], dtype=np.float64).reshape(-1)
    s = np.asarray(mean_std["frame_std"], dtype=np.float64).reshape(-1)
    if m.shape != (num_mel_bins,) or s.shape != (num_mel_bins,):
        raise ImportFailed(f"{where}: frame_mean/frame_std have {m.size}/{s.size} values, the model "
                           f"{num_mel_bins} mel bins")
    mean, std = AUTHORS_SCALE * m - AUTHORS_SHIFT, AUTHORS_SCALE * s
    return dict(mean=mean.tolist(), std=std.tolist(), global_mean=float(mean.mean()),
                global_std=float(np.sqrt((std ** 2).mean() + mean.var())))


def global_stats(mean: float, std: float, num_mel_bins: int) -> dict:
    """stats.json content of the AST-style normalisation ``(fbank - mean) / (2 std)`` (Audio-MAE, EAT)."""
    std = 2.0 * std
    return dict(mean=[mean] * num_mel_bins, std=[std] * num_mel_bins, global_mean=mean, global_std=std)


def audiomae_stats(num_mel_bins: int) -> dict:
    return global_stats(AUDIOMAE_MEAN, AUDIOMAE_STD, num_mel_bins)


def read_class_labels(path: str) -> list[str]:
    """Class names in output order from AudioSet's class_labels_indices.csv (index,mid,display_name; indices
    0..N-1) or from a labels.txt (one name per line). A name that occurs twice gets its mid appended."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except OSError as e:
        raise ImportFailed(f"{path}: cannot read class labels: {e}") from e
    first = text.splitlines()[0] if text.strip() else ""
    if [c.strip() for c in first.split(",")][:3] != ["index", "mid", "display_name"]:
        names = [line.strip() for line in text.splitlines()]
        for i, name in enumerate(names, 1):
            if not name:
                raise ImportFailed(f"{path}:{i}: empty class name")
        if not names:
            raise ImportFailed(f"{path}: no class names")
        return names
    rows = {}
    reader = csv.DictReader(text.splitlines())
    for row in reader:
        line = reader.line_num
        try:
            index = int(row["index"])
        except (TypeError, ValueError):
            raise ImportFailed(f"{path}:{line}: index {row.get('index')!r} is not an integer") from None
        if not row.get("display_name") or not row.get("mid"):
            raise ImportFailed(f"{path}:{line}: missing mid or display_name")
        if index in rows:
            raise ImportFailed(f"{path}:{line}: index {index} given twice")
        rows[index] = (row["mid"].strip(), row["display_name"].strip())
    if sorted(rows) != list(range(len(rows))) or not rows:
        raise ImportFailed(f"{path}: indices must run 0..N-1, got {len(rows)} rows with indices "
                           f"{min(rows, default=None)}..{max(rows, default=None)}")
    names = [rows[i][1] for i in range(len(rows))]
    counts = {n: names.count(n) for n in names}
    return [f"{name} ({rows[i][0]})" if counts[name] > 1 else name for i, name in enumerate(names)]


# The sources' own front ends (docs/PRETRAINED.md): their fbank settings (egs/TEMPLATE/conf) and how they pad a
# clip shorter than the model's input (maskspec.features.front_end): the authors' tagger pads the audio with
# silence to 10 s (trainer/test.py); Audio-MAE and EAT pad the raw fbank with zeros, then normalise.
SOURCE_FRONT_ENDS = {"maskspec-authors": ("fbank_paper_centered.yaml", "waveform"),
                     "audiomae": ("fbank_ast.yaml", "fbank"), "eat": ("fbank_ast.yaml", "fbank")}
AUTHORS_CLIP_SECONDS = 10.0


def source_front_end(fmt: str, which: str, num_frames: int) -> tuple[str, Optional[dict]]:
    """(fbank yaml in egs/TEMPLATE/conf, ``front_end`` record or None) for a checkpoint of format ``fmt``:
    the source's own (``which`` "source"), or Kaldi framing with no record ("ours": the default padding)."""
    from maskspec.features.front_end import FrontEnd

    source = "eat" if fmt.startswith("eat") else fmt
    if which == "ours":
        return FBANK_CONFIGS[fmt], None
    fbank, pad = SOURCE_FRONT_ENDS[source]
    if pad == "waveform":
        return fbank, FrontEnd(name=source, pad=pad, pad_seconds=AUTHORS_CLIP_SECONDS).to_dict()
    return fbank, FrontEnd(name=source, pad=pad, pad_frames=num_frames).to_dict()


def build_fields(args) -> tuple[dict, list[str]]:
    """Keyword arguments of save_model_file for the options, and the notes to print."""
    import torch

    from maskspec.features.fbank import FbankConfig, FbankError
    from maskspec.features.normalize import StatsError, load_stats
    from maskspec.models.configs import model_config
    from maskspec.models.model_file import file_kind
    from maskspec.models.published import CheckpointImportError, convert, detect_format, unwrap_state_dict

    where = args.checkpoint
    notes = []
    try:
        if os.path.isdir(where) or where.endswith(".safetensors"):
            obj, meta, where = load_hf_layout(where, args.allow_pickle == "true")
        else:
            obj, meta = load_checkpoint_file(where, args.allow_pickle == "true"), None
        if file_kind(obj) == "model file":
            raise ImportFailed(f"{where}: already a MaskSpec model file; use it as it is")
        if meta is None and isinstance(obj, Mapping) and isinstance(obj.get("cfg"), Mapping):
            meta = obj["cfg"]  # fairseq's configuration (EAT)
        sd = unwrap_state_dict(obj, where)
        del obj
        fmt = detect_format(sd, where) if args.format == "auto" else args.format
        if fmt == "eat-hf" and meta is None:
            meta = read_json_config(os.path.join(os.path.dirname(os.path.abspath(where)), "config.json"))
        if fmt == "eat-hf" and meta is None:
            notes.append("no config.json beside the weights: heads from the standard ViT sizes, input length "
                         "1024 frames (EAT's)")
        conv = convert(sd, fmt, num_mel_bins=args.num_mel_bins, num_frames=args.num_frames,
                       num_heads=args.num_heads, decoder_num_heads=args.decoder_num_heads, where=where, meta=meta)
    except CheckpointImportError as e:
        raise ImportFailed(str(e)) from e
    del sd
    notes += conv.get("notes", [])
    cfg = model_config(conv["model_config"])
    kind = conv["kind"]
    if kind == "classifier":
        from maskspec.models.classifier import AudioClassifier

        model = AudioClassifier(cfg, conv["num_outputs"])
    else:
        from maskspec.models.bootstrap import build_pretrain_model

        torch.manual_seed(0)  # the new decoder, when none is imported: the same file every time
        model = build_pretrain_model(cfg, teacher=False)  # MaskSpecModel, or the bootstrap objective's (EAT)
    state = model.state_dict()
    if kind == "pretrain" and not conv["decoder_imported"]:
        conv["state_dict"].update({k: v for k, v in state.items() if not k.startswith("encoder.")})
        notes.append("the decoder is newly initialised (the source's does not map onto ours); fine-tuning and "
                     "embeddings use the encoder only")
    missing = sorted(set(state) - set(conv["state_dict"]))
    if missing:
        raise ImportFailed(f"{where}: the model needs {missing[0]!r}, which the checkpoint does not give")
    model.load_state_dict(conv["state_dict"], strict=True)

    fbank_name, front_end = source_front_end(fmt, args.front_end, cfg.num_frames)
    fbank_path = args.fbank_config or str(CONF_DIR / fbank_name)
    try:
        fbank = FbankConfig.from_yaml(fbank_path)
    except FbankError as e:
        raise ImportFailed(f"{e} (give --fbank_config)") from e
    if fbank.feat_dim != cfg.num_mel_bins:
        raise ImportFailed(f"{fbank_path}: gives {fbank.feat_dim} features per frame, the model takes "
                           f"{cfg.num_mel_bins}")
    if args.mean_std and (args.stats or fmt != "maskspec-authors"):
        raise ImportFailed(f"--mean_std {args.mean_std}: applies to the authors' models, without --stats "
                           f"({where} is {fmt})")
    if args.stats:
        try:
            stats = load_stats(args.stats)
        except StatsError as e:
            raise ImportFailed(str(e)) from e
        if len(stats["mean"]) != cfg.num_mel_bins:
            raise ImportFailed(f"{args.stats}: {len(stats['mean'])} mel bins, the model {cfg.num_mel_bins}")
        normalize = "per_bin"
        logger.warning("%s: normalising with the statistics of your data (%s), not those %s was trained with; "
                       "outputs will differ somewhat from the source model's", PROG, args.stats, where)
        notes.append(f"statistics from {args.stats}, not the source's")
    elif fmt == "maskspec-authors":
        if not args.mean_std:
            raise ImportFailed(f"{where}: the authors' models need their per-bin statistics: give --mean_std "
                               f"mean_std_128.npy (from their audioset/get_mean_std.py) or --stats stats.json")
        stats, normalize = authors_stats(read_mean_std(args.mean_std), cfg.num_mel_bins, args.mean_std), "per_bin"
    elif fmt in ("eat-fairseq", "eat-hf"):
        from maskspec.models.published_eat import EAT_MEAN, EAT_STD

        stats, normalize = global_stats(EAT_MEAN, EAT_STD, cfg.num_mel_bins), "global"
    else:
        stats, normalize = audiomae_stats(cfg.num_mel_bins), "global"
    classes = task_type = None
    if kind == "classifier":
        if not args.class_labels:
            raise ImportFailed(f"{where}: a tagger ({conv['num_outputs']} outputs) needs its class names: give "
                               f"--class_labels class_labels_indices.csv")
        classes, task_type = read_class_labels(args.class_labels), "multi_label"
        if len(classes) != conv["num_outputs"]:
            raise ImportFailed(f"{args.class_labels}: {len(classes)} classes but the model has "
                               f"{conv['num_outputs']} outputs")
    elif args.class_labels:
        raise ImportFailed(f"{where}: a pre-trained model has no classes; --class_labels applies to taggers")
    extra = dict(source=os.path.abspath(where), source_format=fmt, dropped=conv["dropped"],
                 decoder_imported=conv["decoder_imported"], notes=notes)
    fields = dict(kind=kind, model_config=cfg.to_dict(), state_dict=model.state_dict(), fbank_config=fbank.to_dict(),
                  stats=stats, normalize=normalize, classes=classes, task_type=task_type,
                  num_frames=cfg.num_frames, extra=extra, front_end=front_end)
    return fields, notes


def run(args) -> int:
    from maskspec.models.model_file import build_model, load_model_file, save_model_file
    from maskspec.utils.cli import UsageError

    for name in ("num_frames", "num_mel_bins", "num_heads", "decoder_num_heads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be positive, got {value}")
    fields, notes = build_fields(args)
    save_model_file(args.output, **fields)
    build_model(load_model_file(args.output))  # what was written reads back and loads strictly
    cfg = fields["model_config"]
    print(f"{PROG}: wrote {args.output} ({fields['kind']}, {fields['extra']['source_format']}, ViT "
          f"{cfg['embed_dim']}d x {cfg['depth']}, {cfg['num_mel_bins']} mel x {cfg['num_frames']} frames"
          + (f", {len(fields['classes'])} classes" if fields["classes"] else "")
          + (f"; dropped {len(fields['extra']['dropped'])} source tensors" if fields["extra"]["dropped"] else "")
          + ")")
    for note in notes:
        print(f"{PROG}: note: {note}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from maskspec.utils.cli import run_main

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return run_main(PROG, get_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

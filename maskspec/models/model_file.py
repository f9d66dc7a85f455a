"""The MaskSpec model file: one self-contained file with everything inference needs.

A model file (``exp/<tag>/model.pt``) holds the weights, the model configuration, the fbank settings, the
normalisation statistics, the class names and the task type, so that ``maskspec-infer``, the embedding tools
and the HEAR module can run on raw audio without the recipe folder that produced it.

Layout (a dict saved with ``torch.save``)::

    format="maskspec-model", version=1, maskspec_version, kind ("pretrain" | "classifier" | "ctc"),
    model_config (ModelConfig.to_dict()), state_dict, fbank_config (FbankConfig.to_dict()), stats
    (stats.json content), normalize, classes (list or None; for ctc the token list, blank first), task_type
    ("single_label" | "multi_label" | "ctc" | None),
    num_frames (input length in frames the model was trained on), extra (free-form dict; ctc: tokenizer =
    Tokenizer.to_dict(), ctc_upsample)

and, optionally, front_end (``maskspec.features.front_end.FrontEnd.to_dict()``: how a short clip is padded, for
models imported from other projects; absent in the files of models trained here and in files written before
it existed, which means the default: normalised features padded with zeros).

A newer ``version`` than this code knows is refused rather than half-read.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import torch

import maskspec
from maskspec.utils.atomic import atomic_path

FORMAT = "maskspec-model"
VERSION = 1
KINDS = ("pretrain", "classifier", "ctc")
TASK_TYPES = ("single_label", "multi_label", "ctc")
REQUIRED_KEYS = ("format", "version", "kind", "model_config", "state_dict", "fbank_config", "stats", "normalize",
                 "classes", "task_type", "num_frames")


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file."""


def _check_fields(where: str, d: Mapping[str, Any]) -> None:
    """Consistency checks shared by saving and loading; ``where`` names the file in the messages."""
    kind = d["kind"]
    if kind not in KINDS:
        raise ModelFileError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(d["model_config"], Mapping):
        raise ModelFileError(f"{where}: model_config must be a dict, got {type(d['model_config']).__name__}")
    if not isinstance(d["state_dict"], Mapping):
        raise ModelFileError(f"{where}: state_dict must be a dict, got {type(d['state_dict']).__name__}")
    if not isinstance(d["num_frames"], int) or isinstance(d["num_frames"], bool) or d["num_frames"] <= 0:
        raise ModelFileError(f"{where}: num_frames must be a positive integer, got {d['num_frames']!r}")
    if kind in ("classifier", "ctc"):
        classes = d["classes"]
        if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(c, str) for c in classes):
            raise ModelFileError(f"{where}: a {kind} model needs a non-empty list of class names (output units), "
                                 f"got {classes!r}")
        if len(set(classes)) != len(classes):
            raise ModelFileError(f"{where}: duplicate class names")
        if d["task_type"] not in TASK_TYPES or (d["task_type"] == "ctc") != (kind == "ctc"):
            raise ModelFileError(f"{where}: task_type {d['task_type']!r} does not fit kind {kind!r}")
    if d.get("front_end") is not None:
        from maskspec.features.front_end import FrontEnd, FrontEndError

        try:
            FrontEnd.from_dict(d["front_end"], f"{where}: front_end")
        except FrontEndError as e:
            raise ModelFileError(str(e)) from None
    if kind == "ctc" and not isinstance((d.get("extra") or {}).get("tokenizer"), Mapping):
        raise ModelFileError(f"{where}: a ctc model file needs extra.tokenizer (token list and sentencepiece model)")


def save_model_file(
    path: str | os.PathLike,
    *,
    kind: str,
    model_config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    fbank_config: Mapping[str, Any],
    stats: Mapping[str, Any],
    normalize: Any,
    classes: Optional[list[str]],
    task_type: Optional[str],
    num_frames: int,
    extra: Optional[Mapping[str, Any]] = None,
    front_end: Optional[Mapping[str, Any]] = None,
) -> None:
    """Write a model file atomically (nothing appears under ``path`` unless the write completes).

    ``model_config``, ``fbank_config`` and ``front_end`` may be dataclasses with ``to_dict()`` or plain dicts;
    tensors are moved to the CPU so the file loads on any machine. ``front_end`` None writes no entry (the
    default front end).
    """
    path = os.fspath(path)
    if hasattr(model_config, "to_dict"):
        model_config = model_config.to_dict()
    if hasattr(fbank_config, "to_dict"):
        fbank_config = fbank_config.to_dict()
    d = {
        "format": FORMAT,
        "version": VERSION,
        "maskspec_version": maskspec.__version__,
        "kind": kind,
        "model_config": dict(model_config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "fbank_config": dict(fbank_config) if fbank_config is not None else None,
        "stats": dict(stats) if stats is not None else None,
        "normalize": normalize,
        "classes": list(classes) if classes is not None else None,
        "task_type": task_type,
        "num_frames": num_frames,
        "extra": dict(extra or {}),
    }
    if front_end is not None:
        d["front_end"] = dict(front_end.to_dict() if hasattr(front_end, "to_dict") else front_end)
    _check_fields(path, d)
    with atomic_path(path) as tmp:
        torch.save(d, tmp)


def read_torch_file(path: str | os.PathLike, what: str = "model file", map_location: Any = "cpu") -> Any:
    """The object saved in ``path`` (a model file or a training checkpoint); ModelFileError("<path>: no such
    <what>" / "cannot read <what> ...") when it is missing or unreadable."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such {what}")
    try:
        # weights_only: our files hold tensors and plain containers, never code to execute.
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a damaged or foreign file
        raise ModelFileError(f"{path}: cannot read {what} (truncated or not a torch file?): {e}") from e


def file_kind(obj: Any) -> Optional[str]:
    """What a loaded ``.pt`` holds: "model file" (this format), "checkpoint" (a training checkpoint, its weights
    under "model"), or None. The one place that tells the two apart (model files, --init, maskspec-export)."""
    if not isinstance(obj, dict):
        return None
    if obj.get("format") == FORMAT:
        return "model file"
    return "checkpoint" if "model" in obj else None


def load_model_file(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read and check a model file; every problem is a ModelFileError naming ``path``."""
    path = os.fspath(path)
    return check_model_file(read_torch_file(path, "model file", map_location), path)


def check_model_file(d: Any, path: str) -> dict:
    """``d`` (loaded from ``path``) checked as a model file and returned; ModelFileError naming ``path``."""
    kind = file_kind(d)
    if kind != "model file":
        hint = " (a training checkpoint? export it with maskspec-export)" if kind == "checkpoint" else ""
        raise ModelFileError(f"{path}: not a MaskSpec model file{hint}")
    version = d.get("version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: bad model file version {version!r}")
    if version > VERSION:
        raise ModelFileError(f"{path}: model file version {version} was written by a newer MaskSpec "
                             f"({d.get('maskspec_version', 'unknown')}); this one ({maskspec.__version__}) reads "
                             f"up to version {VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in d]
    if missing:
        raise ModelFileError(f"{path}: model file lacks {', '.join(missing)}")
    _check_fields(path, d)
    d.setdefault("extra", {})
    return d


def build_model(model_file: Mapping[str, Any]) -> torch.nn.Module:
    """The network of a loaded model file, weights loaded strictly, in eval mode.

    kind "classifier" -> AudioClassifier(cfg, len(classes)); "ctc" -> CTCModel(cfg, len(classes),
    extra.ctc_upsample); "pretrain" -> MaskSpecModel(cfg), or BootstrapModel(cfg, teacher=False) for the
    bootstrap objective.
    """
    from maskspec.models.configs import model_config

    cfg = model_config(dict(model_file["model_config"]))
    if model_file["kind"] == "ctc":
        from maskspec.models.ctc import CTCModel

        model = CTCModel(cfg, len(model_file["classes"]), int(model_file["extra"].get("ctc_upsample", 4)))
    elif model_file["kind"] == "classifier":
        from maskspec.models.classifier import AudioClassifier

        model = AudioClassifier(cfg, len(model_file["classes"]))
    else:  # the objective's pre-training network; the bootstrap one without its teacher (not kept)
        from maskspec.models.bootstrap import build_pretrain_model

        model = build_pretrain_model(cfg, teacher=False)
    try:
        model.load_state_dict(model_file["state_dict"], strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"model file weights do not match its {model_file['kind']} config: {e}") from e
    return model.eval()

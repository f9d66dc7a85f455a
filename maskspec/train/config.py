"""Command-line + YAML configuration shared by the training CLIs.

Every option can be given on the command line (``--batch_size 64``) or in a YAML file passed with ``--config``
(``batch_size: 64``); the command line wins. Unlike plain configargparse, an unknown key in the YAML file or an
unknown command-line option is an error naming the key, option prefixes are not accepted (``--ep`` is not
``--epochs``), and booleans must be spelt true/false (also yes/no, 1/0).

Batch size and learning rate:

* ``--batch_size`` is per process (per GPU). With W processes and ``--accum_grad A`` the effective batch of one
  optimiser step is ``batch_size * W * A``.
* ``--effective_batch_size N``, when given, fixes ``accum_grad = N / (batch_size * W)`` (must divide exactly), so a
  config keeps the same optimisation whatever the number of GPUs or the memory per GPU.
* ``lr = base_lr * effective_batch / 256`` unless ``--lr`` is given (then it is used as is).

``resolve_training_args`` fills these derived values in; ``save_config`` writes every resolved value, and the
written file is itself a valid ``--config``.
"""
from __future__ import annotations

import argparse
import difflib
import os
from typing import Any, Mapping, Optional, Sequence

import configargparse
import yaml

from maskspec.utils.atomic import atomic_open

TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")
AMP_MODES = ("auto", "bf16", "fp16", "fp32")
LR_REFERENCE_BATCH = 256


def str2bool(value: Any) -> bool:
    """'true'/'false' (yes/no, 1/0, on/off; any case) -> bool; anything else is an argparse error."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def str_or_none(value: Any) -> Optional[str]:
    """'none'/'null' (any case) or '' -> None, else the string itself."""
    v = str(value)
    return None if v.strip().lower() in ("none", "null", "") else v


def int_or_none(value: Any) -> Optional[int]:
    v = str_or_none(value)
    return None if v is None else int(v)


def float_or_none(value: Any) -> Optional[float]:
    v = str_or_none(value)
    return None if v is None else float(v)


def yaml_dict(value: Any) -> dict:
    """A mapping given as YAML/JSON text ('{"depth": 2}' or '{depth: 2}'); 'none' or '' -> {}."""
    if isinstance(value, dict):
        return value
    if str_or_none(value) is None:
        return {}
    try:
        d = yaml.safe_load(str(value))
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"not valid YAML/JSON: {value!r} ({e})") from e
    if not isinstance(d, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping like '{{\"depth\": 2}}', got {value!r}")
    return d


def _value_problem(action: argparse.Action, value: Any) -> Optional[str]:
    """Why a scalar YAML value would not convert to ``action``'s type or choices (None if it does, or if the
    value is a list/mapping, which configargparse handles itself)."""
    if isinstance(value, (list, dict)) or value is None or action.nargs not in (None, "?"):
        return None
    text = str(value)
    try:
        converted = action.type(text) if callable(action.type) else text
    except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
        name = getattr(action.type, "__name__", "value")
        return str(e) if isinstance(e, argparse.ArgumentTypeError) else f"invalid {name} value {value!r}"
    if action.choices is not None and converted not in action.choices:
        return f"{value!r} is not one of {', '.join(map(str, action.choices))}"
    return None


class StrictArgumentParser(configargparse.ArgumentParser):
    """configargparse with ``--config`` (YAML), no abbreviations, and unknown YAML keys reported as such."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("config_file_parser_class", configargparse.YAMLConfigFileParser)
        kwargs.setdefault("ignore_unknown_config_file_keys", False)
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", configargparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--config", is_config_file=True, help="YAML file of options (command line wins)")

    def _known_keys(self) -> set[str]:
        return {s[2:] for a in self._actions for s in a.option_strings if s.startswith("--")}

    def _check_config_files(self, argv: Sequence[str]) -> None:
        """Name the file and line of an unknown key or a bad value before configargparse turns it into a vague
        'unrecognized' or 'invalid value' error that does not say where the value came from."""
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config", action="append", default=[])
        ns, _ = pre.parse_known_args(list(argv))
        actions = {s[2:]: a for a in self._actions for s in a.option_strings if s.startswith("--")}
        for path in ns.config:
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                node = yaml.compose(text)
                content = yaml.safe_load(text)
            except OSError as e:
                self.error(f"cannot read config file {path}: {e}")
            except yaml.YAMLError as e:
                self.error(f"config file {path} is not valid YAML: {e}")
            if content is None:
                continue
            if not isinstance(content, dict):
                self.error(f"config file {path} must be a YAML mapping of option: value")
            lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
            for key, value in content.items():
                where = f"config file {path} line {lines.get(str(key), '?')}"
                if str(key) == "config":
                    self.error(f"{where}: key 'config' is not allowed inside a config file")
                if str(key) not in actions:
                    close = difflib.get_close_matches(str(key), actions, n=1)
                    self.error(f"{where}: unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
                problem = _value_problem(actions[str(key)], value)
                if problem:
                    self.error(f"{where}: {key}: {problem}")

    def parse_args(self, args: Optional[Sequence[str]] = None, namespace=None, **kwargs):
        import sys

        argv = list(sys.argv[1:] if args is None else args)
        self._check_config_files(argv)
        return super().parse_args(argv, namespace=namespace, **kwargs)


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """The options of the shared training loop (pre-training and fine-tuning)."""
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=100, help="number of passes over the training sampler")
    g.add_argument("--batch_size", type=int, default=64, help="clips per micro-batch per process (GPU)")
    g.add_argument("--accum_grad", type=int, default=1, help="micro-batches per optimiser step")
    g.add_argument("--effective_batch_size", type=int_or_none, default=None,
                   help="if set: clips per optimiser step over all processes; fixes accum_grad")
    g.add_argument("--base_lr", type=float, default=1e-3, help="lr for an effective batch of 256 (scaled linearly)")
    g.add_argument("--lr", type=float_or_none, default=None, help="absolute peak lr; overrides base_lr scaling")
    g.add_argument("--weight_decay", type=float, default=0.05, help="AdamW weight decay (not on biases/norms/tokens)")
    g.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.95], metavar=("BETA1", "BETA2"),
                   help="AdamW betas")
    g.add_argument("--warmup_epochs", type=float, default=0.0, help="linear lr warm-up length in epochs")
    g.add_argument("--min_lr", type=float, default=0.0, help="lr at the end of the cosine decay")
    g.add_argument("--clip_grad", type=float_or_none, default=None, help="max gradient norm (none: no clipping)")
    g.add_argument("--num_workers", type=int, default=4, help="DataLoader worker processes per process")
    g.add_argument("--pin_memory", type=str2bool, default=True, help="pinned host memory for batches (CUDA only)")
    g.add_argument("--seed", type=int, default=0, help="seed of model init, sampling, crops and masks")
    g.add_argument("--log_interval", type=int, default=50, help="optimiser steps between log lines")
    g.add_argument("--save_interval_steps", type=int, default=0,
                   help="optimiser steps between mid-epoch checkpoints (0: only at epoch ends)")
    g.add_argument("--keep_checkpoints", type=int, default=3, help="checkpoints kept (newest); 0 keeps all")
    g.add_argument("--resume", type=str2bool, default=True, help="continue from the newest valid checkpoint")
    g.add_argument("--resume_changed", type=str2bool, default=False,
                   help="continue from it even when it was written under other settings (e.g. --epochs); "
                        "false: stop and name the settings that differ")
    g.add_argument("--device", type=str, default="auto", help="auto (cuda if available), cpu, cuda")
    g.add_argument("--amp", type=str, default="auto", choices=AMP_MODES,
                   help="autocast dtype: auto = bf16 on CUDA, fp32 on CPU; fp16 uses a GradScaler")
    g.add_argument("--max_steps", type=int, default=0, help="stop after this many optimiser steps (0: no limit)")
    g.add_argument("--compile", type=str2bool, default=False,
                   help="torch.compile the model for the training steps (validation stays eager)")
    g.add_argument("--tensorboard", type=str2bool, default=True, help="write TensorBoard events to exp_dir/tensorboard")


def resolve_training_args(args: argparse.Namespace, world_size: int, device_type: str) -> argparse.Namespace:
    """Fill in accum_grad, effective_batch_size, lr, amp and device from the other options (in place).

    Raises ValueError for inconsistent values.
    """
    for name in ("epochs", "batch_size", "accum_grad", "log_interval"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("num_workers", "save_interval_steps", "keep_checkpoints", "max_steps"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must not be negative, got {getattr(args, name)}")
    if args.warmup_epochs < 0 or args.min_lr < 0 or args.weight_decay < 0 or args.base_lr <= 0:
        raise ValueError("--warmup_epochs, --min_lr and --weight_decay must be >= 0 and --base_lr > 0")
    if args.lr is not None and args.lr <= 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    if args.clip_grad is not None and args.clip_grad <= 0:
        raise ValueError(f"--clip_grad must be positive or none, got {args.clip_grad}")
    per_step = args.batch_size * world_size
    if args.effective_batch_size is not None:
        if args.effective_batch_size % per_step:
            raise ValueError(f"--effective_batch_size {args.effective_batch_size} is not a multiple of "
                             f"batch_size x processes = {args.batch_size} x {world_size} = {per_step}")
        args.accum_grad = args.effective_batch_size // per_step
    args.effective_batch_size = per_step * args.accum_grad
    if args.lr is None:
        args.lr = args.base_lr * args.effective_batch_size / LR_REFERENCE_BATCH
    if args.amp == "auto":
        args.amp = "bf16" if device_type == "cuda" else "fp32"
    if args.amp == "fp16" and device_type != "cuda":
        raise ValueError("--amp fp16 needs CUDA; use bf16 or fp32 on CPU")
    args.device = device_type
    return args


def save_config(args: argparse.Namespace | dict, path: str | os.PathLike) -> None:
    """Write every option value as YAML (atomically); the file can be passed back with ``--config``."""
    values = dict(vars(args)) if not isinstance(args, dict) else dict(args)
    values.pop("config", None)  # a config file may not point to another one
    values = {k: plain(v) for k, v in sorted(values.items())}
    with atomic_open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f, default_flow_style=None, sort_keys=False)


def plain(value: Any) -> Any:
    """An option value as plain containers and scalars, which both ``yaml.safe_dump`` (config.yaml) and
    ``torch.load(weights_only=True)`` (checkpoints) accept: tuples -> lists, mapping keys -> str, paths and any
    other object -> str."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)

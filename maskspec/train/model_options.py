"""The model of a training run from its command line: ``--model`` (a size name) or the ``--init`` model's config,
then ``--model_conf``, then single-field options (``--depth``, ``--mask_ratio``, ...), later ones winning.

Command-line precedence, not model logic: the model itself is ``maskspec.models.configs.ModelConfig``.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from maskspec.models.configs import ModelConfig, model_config
from maskspec.train.config import str2bool
from maskspec.utils.fields import check_fields

# The features fix the input dimension (stats.json, fbank.yaml): never an option of its own.
DERIVED_FIELDS = ("num_mel_bins",)
_ARG_TYPES: dict[Any, Callable[[Any], Any]] = {int: int, float: float, str: str, bool: str2bool}


def model_field_options(exclude: Sequence[str] = DERIVED_FIELDS) -> list[tuple[str, Callable[[Any], Any]]]:
    """``(name, argparse type)`` of every ``ModelConfig`` field but ``exclude``, in declaration order."""
    hints = typing.get_type_hints(ModelConfig)
    return [(f.name, _ARG_TYPES[hints[f.name]]) for f in dataclasses.fields(ModelConfig) if f.name not in exclude]


def add_model_field_options(group, exclude: Sequence[str] = DERIVED_FIELDS) -> list[str]:
    """Declare ``--<field>`` (default None: from ``--model`` / ``--model_conf``) for the fields of
    ``model_field_options``; returns their names."""
    names = []
    for name, typ in model_field_options(exclude):
        group.add_argument(f"--{name}", type=typ, default=None,
                           help=f"the model's {name} (default: as --model / --model_conf give it)")
        names.append(name)
    return names


def training_model_config(base: Union[str, Mapping[str, Any]], model_conf: Mapping[str, Any],
                          options: Mapping[str, Any], num_mel_bins: int, features: str) -> ModelConfig:
    """The model of a training run (pretrain, finetune): ``base`` < ``model_conf`` < ``options``.

    ``base`` is a size name (``--model``; it takes the features' ``num_mel_bins``) or a config dict (e.g. the
    ``--init`` model's); ``model_conf`` is ``--model_conf``; ``options`` are single-field options, None where not
    given. The result must take ``num_mel_bins`` mel bins, those of the features of ``features`` (a data
    directory, named in the error).
    """
    values = model_config(base, num_mel_bins=num_mel_bins).to_dict() if isinstance(base, str) else dict(base)
    # fields only: a "size" here would be outvoted by the base's fields, unseen
    check_fields(ModelConfig, model_conf, "model config: unknown key")
    values.update(model_conf)
    values.update({name: value for name, value in options.items() if value is not None})
    cfg = model_config(values)
    if cfg.num_mel_bins != num_mel_bins:
        raise ValueError(f"the model takes {cfg.num_mel_bins} mel bins but the features of {features} have "
                         f"{num_mel_bins}")
    return cfg


def resolve_model_options(args, base: Union[str, Mapping[str, Any]], names: Sequence[str], num_mel_bins: int,
                          write_back: Optional[Sequence[str]] = None) -> ModelConfig:
    """``training_model_config`` with ``args.model_conf`` and the options ``names`` of ``args``; the resolved
    values of ``write_back`` (default: ``names``) are stored back into ``args`` so that config.yaml records them."""
    cfg = training_model_config(base, args.model_conf, {n: getattr(args, n) for n in names}, num_mel_bins,
                                args.train_data)
    for n in names if write_back is None else write_back:
        setattr(args, n, getattr(cfg, n))
    return cfg

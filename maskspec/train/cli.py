"""The inputs a training run reads beside the features: fbank.yaml and stats.json of ``--train_data`` (the
error wrapper of the command lines is ``maskspec.utils.cli.run_main``)."""
from __future__ import annotations

import logging
import os
from typing import Optional

logger = logging.getLogger("maskspec.train")


def read_fbank_config(data_dir: str, required: bool) -> Optional[dict]:
    """Resolved fbank settings of ``<data_dir>/fbank.yaml`` (written by utils/make_fbank.sh), checked field by
    field, and fit for model input (``FbankConfig.check_model_input``). A model file needs them to featurise raw
    audio; when not ``required`` a missing file is a warning."""
    from maskspec.features.fbank import FbankConfig

    path = os.path.join(data_dir, "fbank.yaml")
    if not os.path.isfile(path):
        message = (f"{path} is missing: the checkpoints and model file will not record the feature settings "
                   f"(utils/make_fbank.sh writes it next to feats.scp)")
        if required:
            raise ValueError(message)
        logger.warning("%s", message)
        return None
    return FbankConfig.from_yaml(path).check_model_input(path).to_dict()


def load_input_stats(args) -> Optional[dict]:
    """Normalisation statistics: ``--stats`` or ``<train_data>/stats.json`` (resolved into ``args.stats``);
    None when features are not normalised and no stats file exists."""
    from maskspec.features.normalize import load_stats

    args.stats = args.stats or os.path.join(args.train_data, "stats.json")
    if args.normalize != "none" or os.path.isfile(args.stats):
        return load_stats(args.stats)
    return None

"""What the training command lines (pretrain, finetune) share: the inputs read beside the features, and one
clear error line with exit status 1 instead of a traceback."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable, Optional, Sequence

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


def run_main(prog: str, build_parser: Callable, run: Callable, argv: Optional[Sequence[str]]) -> int:
    """Parse ``argv`` and call ``run(args)``; any failure becomes one line ``<prog>: error: ...`` on stderr (and
    in train.log when logging is set up) and exit status 1. Bad options exit 2, as argparse does."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear line and exit status 1
        print(f"{prog}: error: {e}", file=sys.stderr)
        for handler in logging.getLogger("maskspec").handlers:  # also into train.log, without a 2nd stderr line
            if isinstance(handler, logging.FileHandler):
                handler.handle(logging.makeLogRecord(dict(name=prog, levelno=logging.ERROR, levelname="ERROR",
                                                          msg=f"{type(e).__name__}: {e}")))
        return 1

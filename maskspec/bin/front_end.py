"""The source front end a model file records, for recipes (``egs/TEMPLATE/maskspec.sh`` stage 2 with ``--init``):
``python -m maskspec.bin.front_end --model M --fbank_config OUT``.

A model file written by ``maskspec-import`` records its source's front end (``front_end``: the MaskSpec authors',
Audio-MAE's or EAT's; ``maskspec.features.front_end``) beside its fbank settings. For such a file this prints the
source's name and writes the model's fbank settings to OUT (YAML, atomically), so that the recipe computes its
features as the source did; for any other file (a model trained here, a training checkpoint) it prints nothing
and writes nothing. Exit status 0, or 1 for a file that cannot be read (the message names it).
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Optional, Sequence

PROG = "maskspec.bin.front_end"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--model", required=True, help="model file (e.g. from maskspec-import) or training checkpoint")
    p.add_argument("--fbank_config", required=True, help="where to write the model's fbank settings (YAML)")
    return p


def run(args) -> int:
    from maskspec.features.fbank import FbankConfig
    from maskspec.features.front_end import FrontEnd
    from maskspec.models.model_file import check_model_file, file_kind, read_torch_file

    obj = read_torch_file(args.model, "model file or checkpoint")
    if file_kind(obj) != "model file" or obj.get("front_end") is None:
        return 0
    mf = check_model_file(obj, args.model)
    name = FrontEnd.from_dict(mf["front_end"], f"{args.model}: front_end").name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"{args.model}: front-end name {name!r} cannot name a feature folder")
    if mf.get("fbank_config") is None:
        raise ValueError(f"{args.model}: records the {name} front end but no fbank settings")
    FbankConfig.from_dict(dict(mf["fbank_config"]), source=f"{args.model}: fbank_config").to_yaml(args.fbank_config)
    print(name)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from maskspec.utils.cli import run_main

    return run_main(PROG, get_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

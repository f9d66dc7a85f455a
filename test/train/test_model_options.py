"""A training run's model from the command line: precedence of --model / --init, --model_conf and the
single-field options generated from ModelConfig."""
import dataclasses

import pytest

from maskspec.models.configs import ModelConfig, model_config
from maskspec.train.config import StrictArgumentParser
from maskspec.train.model_options import add_model_field_options, model_field_options, training_model_config


def test_training_model_config_layers_and_mel_check():
    # size name < --model_conf < single options (None = not given); the name takes the features' mel bins
    cfg = training_model_config("tiny", {"depth": 2, "num_frames": 64}, {"depth": 3, "drop_path": None}, 32, "D")
    assert (cfg.embed_dim, cfg.depth, cfg.num_frames, cfg.num_mel_bins, cfg.drop_path) == (192, 3, 64, 32, 0.0)
    init = model_config("tiny", num_mel_bins=64).to_dict()  # e.g. an --init model's config
    assert training_model_config(init, {}, {"num_frames": 48}, 64, "D").num_frames == 48
    with pytest.raises(ValueError, match="takes 64 mel bins but the features of data/x have 32"):
        training_model_config(init, {}, {}, 32, "data/x")
    with pytest.raises(ValueError, match="unknown key 'size'"):
        training_model_config(init, {"size": "small"}, {}, 64, "D")


def test_one_option_per_model_field_with_its_type():
    names = [name for name, _ in model_field_options()]
    assert names == [f.name for f in dataclasses.fields(ModelConfig) if f.name != "num_mel_bins"]
    p = StrictArgumentParser(prog="t")
    add_model_field_options(p)
    args = p.parse_args(["--depth", "3", "--mask_ratio", "0.5", "--norm_pix_loss", "false"])
    assert (args.depth, args.mask_ratio, args.norm_pix_loss, args.embed_dim) == (3, 0.5, False, None)
    with pytest.raises(SystemExit):
        p.parse_args(["--num_mel_bins", "64"])  # fixed by the features, never an option
    with pytest.raises(SystemExit):
        p.parse_args(["--depth", "2.5"])

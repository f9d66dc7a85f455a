"""Options: YAML + command line, strict keys and booleans, derived batch/lr values, save_config round trip."""
from __future__ import annotations

import argparse

import pytest
import yaml

from maskspec.train.config import (StrictArgumentParser, add_training_args, plain, resolve_training_args,
                                   save_config, str2bool, yaml_dict)


def make_parser() -> StrictArgumentParser:
    p = StrictArgumentParser(prog="test")
    p.add_argument("--train_data", default="data/train")
    p.add_argument("--model_conf", type=yaml_dict, default={})
    add_training_args(p)
    return p


def write(path, text):
    path.write_text(text)
    return str(path)


def test_yaml_values_and_command_line_precedence(tmp_path):
    cfg = write(tmp_path / "c.yaml", "epochs: 7\nbetas: [0.8, 0.99]\nresume: false\nmodel_conf: {depth: 2}\n"
                                     "lr: 1.0e-4\nclip_grad: none\n")
    args = make_parser().parse_args(["--config", cfg, "--epochs", "9"])
    assert args.epochs == 9 and args.betas == [0.8, 0.99] and args.resume is False
    assert args.model_conf == {"depth": 2} and args.lr == 1e-4 and args.clip_grad is None


def test_unknown_yaml_key_is_an_error_naming_it(tmp_path, capsys):
    cfg = write(tmp_path / "c.yaml", "epochs: 3\nbatchsize: 4\n")
    with pytest.raises(SystemExit) as e:
        make_parser().parse_args(["--config", cfg])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown key 'batchsize'" in err and "c.yaml line 2" in err and "did you mean 'batch_size'?" in err


@pytest.mark.parametrize("text, message", [("epochs: 3\nwarmup_epochs: five\n", "line 2: warmup_epochs: invalid float"),
                                           ("amp: fp8\n", "line 1: amp: 'fp8' is not one of auto, bf16"),
                                           ("\nresume: maybe\n", "line 2: resume: expected a boolean")])
def test_bad_yaml_value_names_file_and_line(tmp_path, capsys, text, message):
    cfg = write(tmp_path / "c.yaml", text)
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--config", cfg])
    err = capsys.readouterr().err
    assert f"config file {cfg} {message}" in err


def test_configargparse_alone_would_reject_unknown_keys_too(tmp_path, capsys):
    """The configargparse setting we rely on as a second line of defence (our pre-check bypassed)."""
    cfg = write(tmp_path / "c.yaml", "bogus_key: 1\n")
    p = make_parser()
    with pytest.raises(SystemExit):
        super(StrictArgumentParser, p).parse_args(["--config", cfg])
    assert "bogus_key" in capsys.readouterr().err


@pytest.mark.parametrize("argv, word", [(["--bogus", "1"], "--bogus"), (["--epoch", "3"], "--epoch"),
                                        (["stray"], "stray")])
def test_unknown_or_abbreviated_option_is_an_error(argv, word, capsys):
    with pytest.raises(SystemExit):
        make_parser().parse_args(argv)
    assert word in capsys.readouterr().err


@pytest.mark.parametrize("text", ["resume: maybe\n", "tensorboard: 2\n"])
def test_bad_boolean_in_yaml(tmp_path, text, capsys):
    cfg = write(tmp_path / "c.yaml", text)
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--config", cfg])
    assert "expected a boolean" in capsys.readouterr().err


def test_bad_boolean_on_command_line(capsys):
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--pin_memory", "yess"])
    assert "expected a boolean" in capsys.readouterr().err


def test_str2bool_words():
    assert all(str2bool(w) for w in ("true", "True", "YES", "1", "on"))
    assert not any(str2bool(w) for w in ("false", "False", "no", "0", "off"))
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("truthy")


def test_malformed_config_file(tmp_path, capsys):
    cfg = write(tmp_path / "c.yaml", "- a list\n- not a mapping\n")
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--config", cfg])
    assert "must be a YAML mapping" in capsys.readouterr().err


def test_effective_batch_fixes_accumulation_and_lr():
    args = make_parser().parse_args(["--batch_size", "64", "--effective_batch_size", "512"])
    resolve_training_args(args, world_size=2, device_type="cpu")
    assert args.accum_grad == 4 and args.effective_batch_size == 512
    assert args.lr == pytest.approx(1e-3 * 512 / 256) and args.amp == "fp32" and args.device == "cpu"

    args = make_parser().parse_args(["--batch_size", "8", "--accum_grad", "3", "--lr", "0.5"])
    resolve_training_args(args, world_size=1, device_type="cuda")
    assert args.effective_batch_size == 24 and args.lr == 0.5 and args.amp == "bf16"

    args = make_parser().parse_args(["--batch_size", "64", "--effective_batch_size", "100"])
    with pytest.raises(ValueError, match="not a multiple"):
        resolve_training_args(args, world_size=1, device_type="cpu")


def test_fp16_needs_cuda():
    args = make_parser().parse_args(["--amp", "fp16"])
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        resolve_training_args(args, world_size=1, device_type="cpu")


def test_plain_values_suit_yaml_and_weights_only_checkpoints(tmp_path):
    import pathlib

    import torch

    value = {"set": (1, 2.5, None), 3: {"dir": pathlib.Path("exp/a"), "dev": torch.device("cpu"), "on": True}}
    want = {"set": [1, 2.5, None], "3": {"dir": "exp/a", "dev": "cpu", "on": True}}
    assert plain(value) == want and yaml.safe_load(yaml.safe_dump(plain(value))) == want
    torch.save(plain(value), tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True) == want


def test_save_config_round_trip(tmp_path):
    cfg = write(tmp_path / "c.yaml", "epochs: 5\nbetas: [0.85, 0.9]\nmodel_conf: {depth: 2, embed_dim: 64}\n")
    p = make_parser()
    args = p.parse_args(["--config", cfg, "--batch_size", "16", "--clip_grad", "2.5", "--resume", "false"])
    resolve_training_args(args, world_size=1, device_type="cpu")
    out = tmp_path / "exp" / "config.yaml"
    save_config(args, out)
    saved = yaml.safe_load(out.read_text())
    assert "config" not in saved and saved["lr"] == args.lr and saved["model_conf"] == {"depth": 2, "embed_dim": 64}
    again = make_parser().parse_args(["--config", str(out)])
    expected = dict(vars(args))
    expected.pop("config")
    got = dict(vars(again))
    got.pop("config")
    assert got == expected
    assert not [f for f in (tmp_path / "exp").iterdir() if f.name != "config.yaml"]  # no temporary left

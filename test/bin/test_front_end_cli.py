"""maskspec.bin.front_end: the recipe's question "does this --init record a source front end?"."""
import torch

from maskspec.bin import front_end
from maskspec.features.fbank import FbankConfig
from maskspec.models.configs import model_config
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import save_model_file


def tiny_file(path, **extra):
    cfg = model_config("tiny", embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
                       decoder_num_heads=2, num_mel_bins=32, num_frames=32)
    save_model_file(path, kind="pretrain", model_config=cfg, state_dict=MaskSpecModel(cfg).state_dict(),
                    fbank_config=FbankConfig(num_mel_bins=32, framing="centered", remove_dc_offset=False),
                    stats=None, normalize="none", classes=None, task_type=None, num_frames=32, **extra)


def test_prints_the_source_and_writes_its_fbank_settings(tmp_path, capsys):
    tiny_file(tmp_path / "imported.pt", front_end=dict(name="maskspec-authors", pad="waveform", pad_seconds=10.0))
    out = tmp_path / "fbank.yaml"
    assert front_end.main(["--model", str(tmp_path / "imported.pt"), "--fbank_config", str(out)]) == 0
    assert capsys.readouterr().out == "maskspec-authors\n"
    assert FbankConfig.from_yaml(out).framing == "centered"


def test_silent_for_other_files_and_an_error_for_unreadable_ones(tmp_path, capsys):
    tiny_file(tmp_path / "ours.pt")
    torch.save(dict(model={}), tmp_path / "checkpoint.pt")
    out = tmp_path / "fbank.yaml"
    for name in ("ours.pt", "checkpoint.pt"):
        assert front_end.main(["--model", str(tmp_path / name), "--fbank_config", str(out)]) == 0
    assert capsys.readouterr().out == "" and not out.exists()
    (tmp_path / "bad.pt").write_bytes(b"not torch")
    assert front_end.main(["--model", str(tmp_path / "bad.pt"), "--fbank_config", str(out)]) == 1
    assert "bad.pt" in capsys.readouterr().err

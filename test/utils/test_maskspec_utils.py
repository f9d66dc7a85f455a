"""maskspec/utils: strict dataclass keys, JSON files with errors naming the file, the --device choice."""
import dataclasses

import pytest
import torch

from maskspec.utils.device import pick_device
from maskspec.utils.fields import check_fields
from maskspec.utils.jsonfile import read_json


@dataclasses.dataclass
class Settings:
    rate: int = 1
    name: str = "x"


class SettingsError(ValueError):
    pass


def test_check_fields_names_the_key_and_the_known_ones():
    check_fields(Settings, {"rate": 2, "name": "y"}, "settings: unknown key")
    with pytest.raises(SettingsError, match=r"^settings: unknown key 'rte' \(known: name, rate\)$"):
        check_fields(Settings, {"rate": 2, "rte": 3}, "settings: unknown key", SettingsError)


def test_read_json(tmp_path):
    (tmp_path / "a.json").write_text('{"x": [1, 2]}')
    assert read_json(tmp_path / "a.json", "thing") == {"x": [1, 2]}
    with pytest.raises(SettingsError, match=r"b.json: no such thing file \(make it\)$"):
        read_json(tmp_path / "b.json", "thing", " (make it)", SettingsError)
    (tmp_path / "c.json").write_text('{"x": ')
    with pytest.raises(ValueError, match="c.json: cannot read thing: "):
        read_json(tmp_path / "c.json", "thing")


def test_pick_device(monkeypatch):
    assert pick_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == "cpu"
    with pytest.raises(ValueError, match="--device cuda asked for, but no CUDA device is available"):
        pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda" and pick_device("cuda") == "cuda"

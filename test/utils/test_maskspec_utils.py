"""maskspec/utils: strict dataclass keys, JSON files with errors naming the file, the --device choice, random
draws with a generator."""
import dataclasses

import numpy as np
import pytest
import torch

from maskspec.utils.device import select_device
from maskspec.utils.fields import check_field_types, check_fields
from maskspec.utils.jsonfile import read_json
from maskspec.utils.rand import rand, randint, randperm


@dataclasses.dataclass
class Settings:
    rate: int = 1
    name: str = "x"
    gain: float = 1.0
    on: bool = True
    limit: int | None = None


class SettingsError(ValueError):
    pass


def test_check_fields_names_the_key_and_the_known_ones():
    check_fields(Settings, {"rate": 2, "name": "y"}, "settings: unknown key")
    with pytest.raises(SettingsError, match=r"^settings: unknown key 'rte' \(known: gain, limit, name, on, rate\)$"):
        check_fields(Settings, {"rate": 2, "rte": 3}, "settings: unknown key", SettingsError)


@pytest.mark.parametrize("field,value,kind", [("rate", "128k", "int"), ("rate", True, "int"), ("rate", 2.5, "int"),
                                              ("gain", "1.0", "float"), ("gain", False, "float"),
                                              ("on", 1, "bool"), ("name", 3, "str"), ("limit", 1.5, "int | None")])
def test_check_field_types_names_field_and_type(field, value, kind):
    with pytest.raises(SettingsError, match=rf"^settings: {field} must be {kind}, got "):
        check_field_types(Settings(**{field: value}), "settings:", SettingsError)


def test_check_field_types_coerce():
    s = Settings(rate=np.int64(3), gain=2, limit=None)
    check_field_types(s, "settings:")  # numpy and int-for-float pass, unchanged without coerce
    assert type(s.rate) is np.int64 and type(s.gain) is int
    check_field_types(s, "settings:", coerce=True)
    assert (type(s.rate), type(s.gain), s.rate, s.gain, s.limit) == (int, float, 3, 2.0, None)


def test_read_json(tmp_path):
    (tmp_path / "a.json").write_text('{"x": [1, 2]}')
    assert read_json(tmp_path / "a.json", "thing") == {"x": [1, 2]}
    with pytest.raises(SettingsError, match=r"b.json: no such thing file \(make it\)$"):
        read_json(tmp_path / "b.json", "thing", " (make it)", SettingsError)
    (tmp_path / "c.json").write_text('{"x": ')
    with pytest.raises(ValueError, match="c.json: cannot read thing: "):
        read_json(tmp_path / "c.json", "thing")


def test_select_device(monkeypatch):
    assert select_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="--device cuda asked for, but no CUDA device is available"):
        select_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto").type == "cuda" and select_device("cuda").type == "cuda"


def test_draws_come_from_the_generator_and_land_on_the_device():
    def gen():
        return torch.Generator().manual_seed(5)
    # the CPU generator's own numbers, moved: a CUDA run draws what a CPU run draws
    assert torch.equal(rand((2, 3), gen(), "cpu"), torch.rand(2, 3, generator=gen()))
    assert torch.equal(randint(1, 9, (4,), gen(), "cpu"), torch.randint(1, 9, (4,), generator=gen()))
    assert torch.equal(randperm(6, gen(), "cpu"), torch.randperm(6, generator=gen()))
    for x in (rand((2,), gen(), "meta"), randint(0, 2, (2,), gen(), "meta"), randperm(2, gen(), "meta")):
        assert x.device.type == "meta"
    torch.manual_seed(3)
    a = rand((3,), None, "cpu")
    torch.manual_seed(3)
    assert torch.equal(a, torch.rand(3))

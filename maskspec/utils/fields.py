"""Strict construction of settings dataclasses from mappings (YAML, JSON, model files): a misspelt key is an
error that names it and the accepted ones, instead of being silently dropped or failing deep inside ``cls(**d)``,
and a value of the wrong type is an error naming the field. Used by ``FbankConfig`` and ``ModelConfig``."""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np


def field_names(cls) -> set[str]:
    """Names of the fields of the dataclass ``cls``."""
    return {f.name for f in dataclasses.fields(cls)}


def check_fields(cls, keys: Iterable[str], what: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error("<what> '<key>' (known: a, b, ...)")`` for the first of ``keys`` that is not a field of
    the dataclass ``cls``; ``what`` says where the key came from, e.g. ``"model config: unknown key"``."""
    known = field_names(cls)
    for key in keys:
        if key not in known:
            raise error(f"{what} {key!r} (known: {', '.join(sorted(known))})")


def check_field_types(obj, what: str, error: type[Exception] = ValueError, coerce: bool = False) -> None:
    """Check each field of the dataclass instance ``obj`` against its annotation (``int``, ``float``, ``bool``,
    ``str``, or ``int | None``); raise ``error("<what> <field> must be <type>, got <value>")``.

    YAML gives strings for typos like "128k" and ints where floats are meant; catching them here beats an error
    deep inside torch. bool is never taken for a number. With ``coerce`` a float field's int (or numpy number)
    becomes a float and an int field's numpy integer an int, so the stored values are plain Python numbers.
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if value is None and "None" in kind:
            continue
        number = not isinstance(value, bool)
        if kind.startswith("int"):
            ok = number and isinstance(value, (int, np.integer))
            plain = int
        elif kind == "float":
            ok = number and isinstance(value, (int, float, np.number))
            plain = float
        elif kind == "bool":
            ok, plain = isinstance(value, bool), None
        else:
            ok, plain = isinstance(value, str), None
        if not ok:
            raise error(f"{what} {f.name} must be {kind}, got {value!r}")
        if coerce and plain is not None and type(value) is not plain:
            setattr(obj, f.name, plain(value))

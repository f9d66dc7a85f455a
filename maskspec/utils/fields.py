"""Strict construction of settings dataclasses from mappings (YAML, JSON, model files): a misspelt key is an
error that names it and the accepted ones, instead of being silently dropped or failing deep inside ``cls(**d)``."""
from __future__ import annotations

import dataclasses
from typing import Iterable


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

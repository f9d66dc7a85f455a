"""JSON files written by our tools (stats.json, results.json), read with errors that name the file."""
from __future__ import annotations

import json
import os
from typing import Any


def read_json(path: str | os.PathLike, what: str, missing_hint: str = "", error: type[Exception] = ValueError) -> Any:
    """The parsed content of ``path``; a missing file is ``error("<path>: no such <what> file<missing_hint>")``,
    an unreadable or invalid one ``error("<path>: cannot read <what>: <reason>")``."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file{missing_hint}") from None
    except (OSError, ValueError) as e:
        raise error(f"{path}: cannot read {what}: {e}") from e

"""Generated sections of hand-written files: a study's table between two HTML-comment markers of a README."""
from __future__ import annotations

from maskspec.utils.atomic import atomic_open


def markers(name: str) -> tuple[str, str]:
    """The begin and end lines of section ``name``: ``<!-- name:begin -->`` and ``<!-- name:end -->``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(path: str, name: str, text: str) -> None:
    """Replace what lies between section ``name``'s markers in ``path`` with ``text`` (atomically).

    The rest of the file is kept byte for byte; a file without both markers is an error naming the file, so a
    generated table never lands somewhere a person did not reserve for it."""
    begin, end = markers(name)
    with open(path, encoding="utf-8") as f:
        content = f.read()
    if begin not in content or end not in content.split(begin, 1)[1]:
        raise ValueError(f"{path}: no '{begin}' ... '{end}' section to write into")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    with atomic_open(path) as f:
        f.write(f"{head}{begin}\n{text}{end}{tail}")

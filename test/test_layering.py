"""The layers of maskspec/: each module imports only from its own package or from lower layers, and the imports
(module level and inside functions alike) form no cycle, within a package or across packages.

``LAYERS`` lists the packages from the ground floor up; packages in one row are peers and do not import each
other. A new package goes into the table (an unlisted one fails the test, so its place is decided, not guessed).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LAYERS = [
    ["maskspec"],  # the package's own __init__: the version
    ["maskspec.utils"],  # atomic writes, strict fields, JSON, device, random draws
    ["maskspec.features", "maskspec.text"],  # waveform -> model input; transcripts -> tokens
    ["maskspec.data"],  # data directories, jobs over them (extract, stats), storage, datasets
    ["maskspec.models"],
    ["maskspec.train"],
    ["maskspec.tasks"],
    ["maskspec.inference"],
    ["maskspec.bin", "maskspec.hear"],
]


def module_files(root: Path, top: str) -> dict[str, Path]:
    """{dotted module name: file} of every .py file under ``root / top`` (a package ``__init__`` is the package)."""
    out = {}
    for path in sorted((root / top).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, modules: dict[str, Path], top: str) -> set[str]:
    """The modules of ``top`` that ``name`` imports anywhere in its file; ``from P import x`` targets the module
    ``P.x`` when x is one, else ``P``'s ``__init__``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        else:
            continue
        for target in targets:
            # "import a.b.c" runs a.b.c; keep the longest prefix that is a module of ours
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and (target == top or target.startswith(top + ".")):
                found.add(target)
    return found


def package_of(module: str) -> str:
    """The layer-table entry a module belongs to: ``top`` itself, or ``top.<first part>`` (a sub-package, or a
    module directly under ``top`` such as maskspec.hear)."""
    return ".".join(module.split(".")[:2])


def ranks(layers: list[list[str]]) -> dict[str, int]:
    return {package: i for i, row in enumerate(layers) for package in row}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as [m1, m2, ..., m1], or [] when the graph is acyclic (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return []


def layering_problems(root: Path, top: str, layers: list[list[str]]) -> list[str]:
    """Unlisted packages, imports of a higher layer or of a peer package, and one cycle if there is any."""
    modules = module_files(root, top)
    graph = {name: imports(name, path, modules, top) - {name} for name, path in modules.items()}
    rank = ranks(layers)
    problems = sorted({f"{package_of(m)} is not in LAYERS" for m in modules if package_of(m) not in rank})
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            a, b = package_of(src), package_of(dst)
            if a == b or a not in rank or b not in rank:
                continue
            if rank[b] > rank[a]:
                problems.append(f"{src} imports {dst}: {b} is a higher layer than {a}")
            elif rank[b] == rank[a]:
                problems.append(f"{src} imports {dst}: {a} and {b} are peers in one layer")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems


def test_maskspec_imports_follow_the_layers_without_cycles():
    problems = layering_problems(REPO, "maskspec", LAYERS)
    assert not problems, "\n".join(problems)


def test_the_check_finds_upward_imports_peers_cycles_and_unlisted_packages(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "import os\nfrom . import b\n",
        "pkg/low/b.py": "def f():\n    from pkg.low.a import x  # inside a function still counts\n",
        "pkg/mid/__init__.py": "",
        "pkg/mid/c.py": "from pkg.low import a\nfrom pkg.high.d import y\n",
        "pkg/side/__init__.py": "",
        "pkg/side/e.py": "import pkg.mid.c\n",
        "pkg/high/__init__.py": "",
        "pkg/high/d.py": "from ..mid import c\n",
        "pkg/new/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    layers = [["pkg"], ["pkg.low"], ["pkg.mid", "pkg.side"], ["pkg.high"]]
    problems = layering_problems(tmp_path, "pkg", layers)
    assert problems[:3] == ["pkg.new is not in LAYERS",
                            "pkg.mid.c imports pkg.high.d: pkg.high is a higher layer than pkg.mid",
                            "pkg.side.e imports pkg.mid.c: pkg.side and pkg.mid are peers in one layer"]
    assert problems[3] in ("import cycle: pkg.low.a -> pkg.low.b -> pkg.low.a",
                           "import cycle: pkg.high.d -> pkg.mid.c -> pkg.high.d")
    assert len(problems) == 4
    (tmp_path / "pkg/mid/c.py").write_text("from pkg.low import a\n")
    (tmp_path / "pkg/low/b.py").write_text("import os\n")
    (tmp_path / "pkg/side/e.py").write_text("")
    assert layering_problems(tmp_path, "pkg", layers + [["pkg.new"]]) == []


def test_packages_import_in_layer_order():
    """In a fresh interpreter, importing every module of a layer loads no module of a higher layer."""
    rank = ranks(LAYERS)
    order = sorted(module_files(REPO, "maskspec"), key=lambda m: (rank.get(package_of(m), len(LAYERS)), m))
    script = f"""
import importlib, sys
order, rank = {order!r}, {rank!r}
def layer(m):
    return rank.get(".".join(m.split(".")[:2]), len(rank))
for m in order:
    importlib.import_module(m)
    above = sorted(n for n in sys.modules if n.split(".")[0] == "maskspec" and layer(n) > layer(m))
    if above:
        sys.exit(f"importing {{m}} loaded {{above}}")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

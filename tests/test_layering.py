"""Imports between lmscope's packages point down the layers of DESIGN.md, and no two packages import each other.

Every module under ``src/lmscope`` is read with ``ast`` (nothing is imported), so imports inside functions
count as much as those at the top, and relative imports (``from . import x``, ``from ..models import y``)
are resolved against the module's own package. Each module belongs to a *package*: ``lmscope/X.py`` and
``lmscope/X/**.py`` both belong to ``X`` (so the command line is ``cli`` whether it is one module or a
package), and ``lmscope/__init__.py`` to ``lmscope``. An import of package B by package A is allowed when
B sits lower in the table below, or when the edge is declared in ``SIDEWAYS``.

The checker is also run on a small planted package tree, to show that it catches what it is meant to.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

# ------------------------------------------------------------------------------------------------
# The layer map, top to bottom: a package may import the packages of the rows below its own row.
# Rows 0-2 are DESIGN.md's entry layer. checkup.py is the orchestration behind `lmscope checkup`: it runs
# several methods and builds an HTML report, so it imports `report` and belongs up here with the command
# line (which calls it), not among the methods. Row 3 is the report; row 4 holds the method packages,
# side by side (they may not import each other, except the edges in SIDEWAYS); rows 5-9 are the base in
# a fixed order; rows 10-16 are the small top-level utility modules and the package root.
# ------------------------------------------------------------------------------------------------
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),                                            # 0  python -m lmscope
    ("cli",),                                                 # 1  the command line (cli.py or cli/)
    ("checkup",),                                             # 2  orchestration of `lmscope checkup`
    ("report",),                                              # 3  plots and HTML pages
    ("spectral", "trees", "grokking", "pushdown", "priors",   # 4  one package per method family
     "evaluation", "planning", "skills", "vision"),
    ("train",),                                               # 5  training loop, fine-tuning, sweeps
    ("lm",),                                                  # 6  language-model backends + scoring
    ("sandbox",),                                             # 7  isolated execution of LM-written code
    ("models",),                                              # 8  checkpoints, hooks, the small transformer
    ("data",),                                                # 9  synthetic suites, evaluation sets
    ("outputs",),                                             # 10 the output policy (where lmscope writes)
    ("progress",),                                            # 11 progress bars
    ("cache",),                                               # 12 the cache directory
    ("_io", "_stats"),                                        # 13 atomic writes, JSON; small statistics
    ("_settings",),                                           # 14 settings dataclasses = command options
    ("errors",),                                              # 15 LmscopeError
    ("lmscope",),                                             # 16 the package root (__version__)
)

# Imports between packages of one row, declared in DESIGN.md ("grokking -> trees and pushdown -> data";
# the latter already points down). grokking computes the t-score of its runs with trees' projections.
SIDEWAYS: frozenset[tuple[str, str]] = frozenset({("grokking", "trees")})

SRC = Path(__file__).resolve().parents[1] / "src" / "lmscope"


# ------------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------------
def _module_name(path: Path, root: Path, top: str) -> tuple[str, bool]:
    """Dotted module name of a file under ``root`` (the directory of package ``top``), and whether it
    is a package's ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_init = parts[-1] == "__init__"
    if is_init:
        parts = parts[:-1]
    return ".".join([top, *parts]), is_init


def _package_of_module(name: str, root: Path, top: str) -> str:
    """The package (row entry) a dotted module name ``top.X[.…]`` belongs to."""
    parts = name.split(".")
    if parts[0] != top:
        raise ValueError(name)
    return parts[1] if len(parts) > 1 else top


def _resolve(node: ast.ImportFrom, module: str, is_init: bool) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_init:
        base = base[:-1]  # a plain module's level 1 is its package
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _exists(name: str, root: Path, top: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return name.split(".")[0] == top and ((root / rel).with_suffix(".py").is_file() or (root / rel).is_dir())


def imported_modules(path: Path, root: Path, top: str) -> list[tuple[str, int]]:
    """(absolute module under ``top``, line) for every import of ``top`` in a file, at any depth."""
    module, is_init = _module_name(path, root, top)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == top]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_init)
            if target.split(".")[0] != top:
                continue
            # `from top.pkg import sub` may name a submodule; `from top import x` a package or a name
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub if _exists(sub, root, top) else target, node.lineno))
    return out


def package_edges(root: Path, top: str = "lmscope") -> dict[tuple[str, str], list[str]]:
    """Every import from one package to another: (importer, imported) -> ["file:line", ...]."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        module, _ = _module_name(path, root, top)
        src = _package_of_module(module, root, top)
        for target, line in imported_modules(path, root, top):
            dst = _package_of_module(target, root, top)
            if dst != src:
                where = edges.setdefault((src, dst), [])
                if f"{path.relative_to(root.parent)}:{line}" not in where:
                    where.append(f"{path.relative_to(root.parent)}:{line}")
    return edges


def _cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def check_layering(root: Path, layers=LAYERS, sideways=SIDEWAYS, allowed=frozenset(),
                   top: str = "lmscope") -> list[str]:
    """Violations under ``root``: unknown packages, imports up (or sideways) the layers, package cycles.

    ``allowed``: edges exempt from both checks (the temporary allowance).
    """
    rank = {pkg: r for r, row in enumerate(layers) for pkg in row}
    edges = {e: where for e, where in package_edges(root, top).items() if e not in allowed}
    problems = []
    packages = {p for e in edges for p in e} | {_package_of_module(_module_name(p, root, top)[0], root, top)
                                                 for p in root.rglob("*.py")}
    for pkg in sorted(packages - set(rank)):
        problems.append(f"package {pkg!r} is not in the layer table")
    for (src, dst), where in sorted(edges.items()):
        if src not in rank or dst not in rank:
            continue
        if rank[dst] < rank[src] or (rank[dst] == rank[src] and (src, dst) not in sideways):
            problems.append(f"{src} -> {dst} points {'up' if rank[dst] < rank[src] else 'sideways'} "
                            f"the layers: {', '.join(where)}")
    graph: dict[str, set[str]] = {}
    for src, dst in edges:
        graph.setdefault(src, set()).add(dst)
    for comp in _cycles(graph):
        problems.append(f"import cycle between packages {' <-> '.join(comp)}")
    return problems


# ------------------------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------------------------
def test_imports_point_down_the_layers_and_packages_form_no_cycle():
    assert SRC.is_dir(), SRC
    problems = check_layering(SRC)
    assert not problems, "\n".join(problems)


def test_layer_table_names_each_package_once():
    names = [pkg for row in LAYERS for pkg in row]
    assert len(names) == len(set(names))
    rank = {pkg: r for r, row in enumerate(LAYERS) for pkg in row}
    for src, dst in SIDEWAYS:
        assert src in rank and dst in rank


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


CLEAN_TREE = {
    "fake/__init__.py": "",
    "fake/errors.py": "",
    "fake/__main__.py": "from fake.cli import main\n",
    "fake/cli/__init__.py": "from .commands import run\n",
    "fake/cli/commands.py": "def run():\n    from fake.report import page\n    from fake.trees import t\n",
    "fake/report/__init__.py": "from . import page\n",
    "fake/report/page.py": "from fake.grokking.plot import x\nfrom ..models import small\n",
    "fake/grokking/__init__.py": "",
    "fake/grokking/plot.py": "from fake.trees import t\nimport fake.models.small\n",
    "fake/trees/__init__.py": "",
    "fake/trees/t.py": "from ..models.small import Model\nfrom fake import errors\n",
    "fake/models/__init__.py": "",
    "fake/models/small.py": "from fake.data import grammar\nfrom ..errors import Error\n",
    "fake/data/__init__.py": "",
    "fake/data/grammar.py": "from fake.errors import Error\n",
}
FAKE_LAYERS = (("__main__",), ("cli",), ("report",), ("trees", "grokking"), ("models",), ("data",), ("errors",),
               ("fake",))


def test_checker_passes_a_clean_tree(tmp_path):
    root = _write(tmp_path, CLEAN_TREE) / "fake"
    assert check_layering(root, FAKE_LAYERS, frozenset({("grokking", "trees")}), top="fake") == []
    edges = package_edges(root, "fake")
    assert ("cli", "report") in edges and ("cli", "trees") in edges  # imports inside a function count
    assert ("report", "models") in edges and ("trees", "errors") in edges  # relative imports are resolved
    assert ("trees", "models") in edges and ("models", "errors") in edges


def test_checker_catches_a_planted_upward_import(tmp_path):
    # an import inside a function, written relative: models -> report is upward
    files = {**CLEAN_TREE, "fake/models/small.py": CLEAN_TREE["fake/models/small.py"]
             + "def draw():\n    from ..report import page\n    return page\n"}
    root = _write(tmp_path, files) / "fake"
    problems = check_layering(root, FAKE_LAYERS, frozenset({("grokking", "trees")}), top="fake")
    assert any(p.startswith("models -> report points up") and "models/small.py:4" in p for p in problems), problems


def test_checker_catches_a_planted_cycle_and_an_undeclared_sideways_import(tmp_path):
    files = {**CLEAN_TREE, "fake/data/grammar.py": "from fake.errors import Error\nfrom fake.models import small\n"}
    root = _write(tmp_path, files) / "fake"
    problems = check_layering(root, FAKE_LAYERS, frozenset({("grokking", "trees")}), top="fake")
    assert "import cycle between packages data <-> models" in problems, problems
    # grokking -> trees is fine only while declared
    problems = check_layering(_write(tmp_path / "b", CLEAN_TREE) / "fake", FAKE_LAYERS, frozenset(), top="fake")
    assert problems == ["grokking -> trees points sideways the layers: fake/grokking/plot.py:1"], problems


def test_checker_reports_a_package_missing_from_the_table(tmp_path):
    files = {**CLEAN_TREE, "fake/newmethod/__init__.py": "from fake.models import small\n"}
    root = _write(tmp_path, files) / "fake"
    problems = check_layering(root, FAKE_LAYERS, frozenset({("grokking", "trees")}), top="fake")
    assert problems == ["package 'newmethod' is not in the layer table"], problems


def test_checker_allowance_exempts_exactly_its_edge(tmp_path):
    files = {**CLEAN_TREE, "fake/models/small.py": "from fake.data import grammar\n\n\ndef f():\n"
             "    import fake.cli.commands\n"}
    root = _write(tmp_path, files) / "fake"
    problems = check_layering(root, FAKE_LAYERS, frozenset({("grokking", "trees")}), top="fake")
    assert any(p.startswith("models -> cli points up") for p in problems)
    assert any(p.startswith("import cycle") and "cli" in p and "models" in p for p in problems)
    assert check_layering(root, FAKE_LAYERS, frozenset({("grokking", "trees")}), allowed={("models", "cli")},
                          top="fake") == []

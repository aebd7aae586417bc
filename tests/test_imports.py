"""The package layout holds: every module imports, and the import graph between our packages follows the
layering that each package's ``__init__`` docstring states on its ``May import:`` line.

The graph is read from the source (``ast``), every ``import`` counted, the ones inside functions too (they
are dependencies just the same, only deferred). A forbidden import fails here with the file and line.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("experiments", "analysis", "lmao")

# The Polyaxon/Kubernetes modules, flat in experiments/ or (once moved) in experiments/polyaxon/.
# The experiments' command line: the top of `experiments` (the full `lmao` app is lmao.cli).
CLI_MODULES = {"cli", "cli_sweep", "__main__"}

# Who may import whom. For packages with an __init__.py this must be what its docstring says
# (test_docstrings_state_the_rules); "experiments" alone is the root package (its __version__).
BASE = {"experiments"}
ALLOWED: Dict[str, Set[str]] = {
    "experiments": set(),
    "experiments.common": BASE,
    "experiments.storage": BASE | {"experiments.common"},
    "experiments.data": BASE | {"experiments.common", "experiments.storage"},
    "experiments.training": BASE | {"experiments.common", "experiments.storage", "experiments.data"},
    "experiments.sweeps": BASE | {"experiments.common", "experiments.storage", "experiments.data",
                                  "experiments.training"},
    "experiments.polyaxon": BASE | {"experiments.common", "experiments.storage", "experiments.data",
                                    "experiments.training", "experiments.sweeps"},
    "experiments.cli": BASE | {"experiments.common", "experiments.storage", "experiments.data",
                               "experiments.training", "experiments.sweeps", "experiments.polyaxon"},
    "analysis": BASE | {"experiments.common", "experiments.storage", "experiments.data", "experiments.training",
                        "experiments.sweeps", "experiments.polyaxon"},
    "lmao": BASE | {"experiments.common", "experiments.storage", "experiments.data", "experiments.training",
                    "experiments.sweeps", "experiments.polyaxon", "experiments.cli", "analysis"},
}

# Edges that break the rules: (importing module, imported module) -> why. Each must still exist
# (test_known_exceptions_are_still_needed), so a fixed one is dropped here. None today.
KNOWN_EXCEPTIONS: Dict[Tuple[str, str], str] = {}


def source_files() -> List[Path]:
    return sorted(p for root in ROOTS for p in (REPO / root).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in source_files()}


def package_of(module: str) -> str:
    """The concern a module of ours belongs to (a key of ALLOWED)."""
    parts = module.split(".")
    if parts[0] in ("analysis", "lmao"):
        return parts[0]
    if len(parts) == 1:
        return "experiments"
    if parts[1] == "polyaxon":
        return "experiments.polyaxon"
    if parts[1] in CLI_MODULES:
        return "experiments.cli"
    return "experiments." + parts[1]


def _ours(name: str) -> Optional[str]:
    """The longest module of ours that ``name`` is or lies in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> List[Tuple[str, int, bool]]:
    """(imported module of ours, line, at module level) for every import statement in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
        for name in names:
            target = _ours(name)
            if target is not None and target != module:
                found.append((target, node.lineno, id(node) in top))
    return found


def package_edges() -> Dict[Tuple[str, str], List[str]]:
    """(importing package, imported package) -> where ("file:line: a -> b"), between different packages."""
    edges: Dict[Tuple[str, str], List[str]] = defaultdict(list)
    for module in MODULES:
        for target, line, _ in imports_of(module):
            a, b = package_of(module), package_of(target)
            if a != b and (module, target) not in KNOWN_EXCEPTIONS:
                edges[a, b].append(f"{MODULES[module].relative_to(REPO)}:{line}: {module} -> {target}")
    return edges


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """A cycle of ``graph`` as [a, b, ..., a], or None."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_every_module_belongs_to_a_package_with_rules():
    assert {package_of(m) for m in MODULES} <= set(ALLOWED)


def test_no_cycle_between_packages():
    graph: Dict[str, Set[str]] = defaultdict(set)
    for a, b in package_edges():
        graph[a].add(b)
    cycle = find_cycle(graph)
    if cycle:
        where = [line for a, b in zip(cycle, cycle[1:]) for line in package_edges()[a, b][:3]]
        pytest.fail("import cycle between packages: " + " -> ".join(cycle) + "\n" + "\n".join(where))


def test_no_cycle_between_modules_at_import_time():
    """Module-level imports (what runs on `import x`) have no cycle at all, inside a package either."""
    graph: Dict[str, Set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _, top in imports_of(module):
            # Importing a.b.c runs a and a.b first: a package's own __init__ is not a cycle with its modules.
            if top and not module.startswith(target + "."):
                graph[module].add(target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_cycle_between_modules_deferred_imports_included():
    """Not even an import inside a function closes a circle: a deferred cycle hides a real one."""
    graph: Dict[str, Set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _, _ in imports_of(module):
            if not module.startswith(target + "."):
                graph[module].add(target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_experiments_never_imports_analysis_or_lmao():
    bad = [where for (a, b), lines in package_edges().items() for where in lines
           if a.startswith("experiments") and b in ("analysis", "lmao")]
    assert not bad, "experiments must not import analysis or lmao:\n" + "\n".join(bad)


def test_packages_import_only_what_their_rules_allow():
    bad = [where for (a, b), lines in sorted(package_edges().items()) if b not in ALLOWED[a] for where in lines]
    assert not bad, "imports outside the packages' `May import:` rules:\n" + "\n".join(bad)


def test_known_exceptions_are_still_needed():
    for (module, target), why in KNOWN_EXCEPTIONS.items():
        assert any(t == target for t, _, _ in imports_of(module)), f"{module} -> {target} is gone: drop it ({why})"


def declared_rules(package: str) -> Optional[Set[str]]:
    """The packages named (as ````name````) after ``May import:``, the docstring's last sentence, of
    ``package``'s ``__init__`` (None: no such sentence)."""
    path = REPO.joinpath(*package.split("."), "__init__.py")
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    if "May import:" not in doc:
        return None
    return set(doc.split("May import:", 1)[1].split("``")[1::2])


@pytest.mark.parametrize("package", ["experiments.common", "experiments.storage", "experiments.data",
                                     "experiments.training", "experiments.sweeps", "experiments.polyaxon",
                                     "analysis", "lmao"])
def test_docstrings_state_the_rules(package):
    """Each package's ``__init__`` docstring ends with "May import: ``a``, ``b``." (or "nothing of ours"):
    the same set as ALLOWED, the root package ``experiments`` left out (everyone may read its version)."""
    declared = declared_rules(package)
    assert declared is not None, f"{package}/__init__.py: no `May import:` sentence in its docstring"
    assert declared == ALLOWED[package] - BASE, f"{package}/__init__.py states other rules than ALLOWED"

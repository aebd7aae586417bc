"""The Polyaxon boundary (experiments/polyaxon/boundary.py): the table of private Polyaxon names holds for the
installed Polyaxon, another version is refused with one clear error, and no private name is used in the
package's source without being in the table. No server is started: these run in seconds."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Set, Tuple

import pytest

from experiments.polyaxon import boundary
from experiments.polyaxon.boundary import OTHER_PRIVATE, PRIVATE, PrivateSymbol, TESTED_POLYAXON

PACKAGE = Path(boundary.__file__).resolve().parent
PRIVATE_NAME_CALLS = ("getattr", "hasattr", "setattr", "delattr")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(source: str) -> Tuple[Set[Tuple[str, str]], Set[str]]:
    """What a module's source uses of others' private names: ``(module, name)`` imported from a module with a
    private part (``from polyaxon._x import Y``, ``import polyaxon._x``), and attribute names with one leading
    underscore read on anything but ``self``/``cls`` (``sidecar._fw``, ``super()._sync_path``,
    ``getattr(run, "_sidecar")``) or defined as methods of a class with bases (overrides)."""
    tree = ast.parse(source)
    imports: Set[Tuple[str, str]] = set()
    attributes: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any(_is_private(part) for part in node.module.split(".")):
                imports |= {(node.module, alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if any(_is_private(part) for part in parts):
                    imports.add((".".join(parts[:-1]), parts[-1]))
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                attributes.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in PRIVATE_NAME_CALLS:
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                if _is_private(node.args[1].value):
                    attributes.add(node.args[1].value)
        elif isinstance(node, ast.ClassDef) and node.bases:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_private(item.name):
                    attributes.add(item.name)
    return imports, attributes


def _tabled(symbols) -> Tuple[Set[Tuple[str, str]], Set[str]]:
    modules = {(s.module, s.name.split(".")[0]) for s in symbols}
    # `from polyaxon._contexts import paths` imports the module polyaxon._contexts.paths
    modules |= {(s.module.rpartition(".")[0], s.module.rpartition(".")[2]) for s in symbols}
    return modules, {s.name.split(".")[-1] for s in symbols}


def test_table_matches_the_installed_polyaxon():
    from importlib import metadata

    assert metadata.version("polyaxon") == TESTED_POLYAXON, "the venv's Polyaxon is not the tested one"
    assert boundary.missing_private_symbols() == []
    assert boundary.missing_private_symbols(OTHER_PRIVATE) == []
    assert len({(s.module, s.name) for s in PRIVATE}) == len(PRIVATE), "a symbol is listed twice"
    assert all(s.use.strip() and s.kind in ("name", "instance") for s in PRIVATE + OTHER_PRIVATE)


@pytest.mark.parametrize("symbol", [
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent._no_such_hook", "name", "-"),
    PrivateSymbol("polyaxon._no_such_module", "Thing", "name", "-"),
    PrivateSymbol("polyaxon._sidecar.processor", "SidecarThread._no_such_attribute", "instance", "-"),
    PrivateSymbol("polyaxon._sidecar.processor", "NoSuchClass._fw", "instance", "-"),
])
def test_a_symbol_polyaxon_no_longer_has_is_reported(symbol):
    assert boundary.missing_private_symbols((symbol,)) == [symbol]


def test_another_polyaxon_version_is_refused_with_one_clear_line(monkeypatch):
    boundary.check_polyaxon_version()  # the installed one passes
    monkeypatch.setattr(boundary, "installed_polyaxon", lambda: "2.19.1")
    with pytest.raises(boundary.PolyaxonVersionError) as caught:
        boundary.check_polyaxon_version()
    message = str(caught.value)
    assert "experiments.polyaxon was tested with Polyaxon 2.18.0; installed is 2.19.1:" in message
    assert "\n" not in message
    with pytest.raises(boundary.PolyaxonVersionError, match="installed is none"):
        boundary.check_polyaxon_version(installed="")


def test_the_agent_and_a_tracked_trial_check_the_version_before_they_start(monkeypatch, tmp_path):
    from experiments.polyaxon import agent, tracking

    monkeypatch.setattr(boundary, "installed_polyaxon", lambda: "3.0.0")
    with pytest.raises(boundary.PolyaxonVersionError):
        agent.run_agent(tmp_path / "store", tmp_path / "state")
    assert not (tmp_path / "state").exists()  # refused before anything was made
    monkeypatch.setenv("POLYAXON_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr(tracking, "is_managed", lambda: False)
    monkeypatch.setattr(tracking, "api_reachable", lambda host, **kw: True)
    with pytest.raises(boundary.PolyaxonVersionError):
        tracking.make_tracker("lmao-imdb-1k", {}, tmp_path / "trial")
    # No API: nothing is tracked, so nothing to check (an unrelated trial is not refused).
    monkeypatch.delenv("POLYAXON_HOST")
    monkeypatch.setattr(tracking, "configured_host", lambda: None)
    assert isinstance(tracking.make_tracker("lmao-imdb-1k", {}, tmp_path / "trial"), tracking.NoTracker)


def test_importing_the_package_imports_no_polyaxon():
    import subprocess

    code = ("import sys, experiments.polyaxon, experiments.polyaxon.boundary, experiments.training.trial; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('polyaxon', 'haupt', 'traceml')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_every_private_name_in_the_package_is_in_the_table():
    """A new ``polyaxon._...`` import or private attribute in experiments/polyaxon/ fails here until it is
    added to boundary.PRIVATE (or OTHER_PRIVATE) with what it is used for."""
    table_imports, table_attributes = _tabled(PRIVATE + OTHER_PRIVATE)
    unlisted = []
    for path in sorted(PACKAGE.glob("*.py")):
        imports, attributes = private_uses(path.read_text(encoding="utf-8"))
        unlisted += [f"{path.name}: from {m} import {n}" for m, n in sorted(imports - table_imports)]
        unlisted += [f"{path.name}: .{a}" for a in sorted(attributes - table_attributes - own_private_names())]
    assert not unlisted, "private names used but not in experiments/polyaxon/boundary.py PRIVATE:\n" + \
        "\n".join(unlisted)


def own_private_names() -> Set[str]:
    """Private names the package defines itself (module functions and classes, methods of its own classes
    that override nothing): reading them is not leaning on Polyaxon."""
    from experiments.polyaxon.agent import _agent_classes
    from experiments.polyaxon.tracking import _temp_aware_watcher

    own: Set[str] = set()
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and _is_private(n.name)}
    agent_cls = _agent_classes()
    for cls in (agent_cls, agent_cls.EXECUTOR, _temp_aware_watcher()):
        for name in vars(cls):
            if _is_private(name) and not any(hasattr(base, name) for base in cls.__mro__[1:]):
                own.add(name)  # a helper of our own subclass, not an override
    return own


def test_the_scan_finds_each_kind_of_private_use():
    source = '''
from polyaxon._fs.watcher import FSWatcher
import polyaxon._sidecar.processor
x = sidecar._queue
y = getattr(run, "_sidecar", None)
z = self._mine
class W(FSWatcher):
    def _sync_path(self): return super()._other()
'''
    imports, attributes = private_uses(source)
    assert imports == {("polyaxon._fs.watcher", "FSWatcher"), ("polyaxon._sidecar", "processor")}
    assert attributes == {"_queue", "_sidecar", "_sync_path", "_other"}
    table_imports, table_attributes = _tabled(PRIVATE)
    assert ("polyaxon._fs.watcher", "FSWatcher") in table_imports and "_sync_path" in table_attributes
    assert "_brand_new" not in table_attributes | own_private_names()

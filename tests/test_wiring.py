"""``brainstate/_wiring.py``: the one place that configures a core.

The package wires the active core once, while ``brainstate`` loads; no other module configures
a core; a wired core hears the hook API's two published facts (the global registry, the active
manager count) as they change.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import brainstate
from brainstate import _hooks, _impl, _wiring

ROOT = pathlib.Path(brainstate.__file__).parent
CORE_SETUP = {"configure", "configure_graph", "configure_hooks", "set_global_hook_registry",
              "set_hooks_active"}


def _setup_callers() -> dict[str, list[str]]:
    """``{module path: [call, ...]}`` for every call of a core's set-up functions in the
    package outside the cores themselves (``x.configure(...)`` and friends)."""
    found: dict[str, list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("_core_py/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in CORE_SETUP):
                found.setdefault(rel, []).append(f"{ast.unparse(node.func)}:{node.lineno}")
    return found


def test_only_the_wiring_module_configures_a_core():
    callers = _setup_callers()
    # _hosted.configure names the metadata type of the hosted core: wiring calls it too
    assert set(callers) == {"_wiring.py"}, callers


def test_the_active_core_is_wired_once_while_brainstate_loads():
    assert _wiring.wired_cores()[0] is _impl.core
    init = ast.parse((ROOT / "__init__.py").read_text())
    calls = [n for n in ast.walk(init) if isinstance(n, ast.Call)
             and ast.unparse(n.func) == "_wiring.wire"]
    assert len(calls) == 1
    # before the subpackages load: random creates its default stream at import
    subpackages = next(n for n in init.body if isinstance(n, ast.ImportFrom)
                       and any(a.name == "random" for a in n.names))
    assert calls[0].lineno < subpackages.lineno


def test_configure_core_is_idempotent_unless_refreshed(monkeypatch):
    py = importlib.import_module("brainstate._core_py")
    _wiring.configure_core(py)
    calls: list = []
    monkeypatch.setattr(py, "configure", lambda **kw: calls.append(sorted(kw)))
    _wiring.configure_core(py)
    assert calls == []
    _wiring.configure_core(py, refresh=True)
    assert len(calls) == 1 and "tree_flatten" in calls[0]
    assert _wiring.wired_cores().count(py) == 1


def test_every_wired_core_hears_the_global_registry_and_the_activity(monkeypatch):
    py = importlib.import_module("brainstate._core_py")
    _wiring.configure_core(py)
    registries: list = []
    counts: list = []
    for mod in _wiring.wired_cores():
        monkeypatch.setattr(mod, "set_global_hook_registry", registries.append, raising=False)
        monkeypatch.setattr(mod, "set_hooks_active", counts.append, raising=False)
    n = len(_wiring.wired_cores())
    brainstate.GlobalHookRegistry.reset()
    assert registries[-n:] == [None] * n
    registry = brainstate.GlobalHookRegistry.instance()
    assert registries[-n:] == [registry] * n
    base = _hooks.active_count()
    handle = registry.register_hook("read", lambda ctx: None)
    try:
        assert counts[-n:] == [base + 1] * n
    finally:
        handle.remove()
    assert counts[-n:] == [base] * n


def test_the_registry_listener_is_told_the_current_registry_at_once():
    seen: list = []
    previous = _hooks.set_registry_listener(seen.append)
    try:
        assert seen == [_hooks._global]
        brainstate.GlobalHookRegistry.reset()
        registry = brainstate.GlobalHookRegistry.instance()
        assert seen[1:] == [None, registry]
    finally:
        assert _hooks.set_registry_listener(previous) == seen.append
    assert _hooks.set_registry_listener(None) is previous
    _hooks.set_registry_listener(previous)


@pytest.mark.parametrize("shortcuts", [False, True])
def test_configure_graph_switches_the_shortcuts(shortcuts, monkeypatch):
    py = importlib.import_module("brainstate._core_py")
    got: dict = {}
    monkeypatch.setattr(py, "configure_graph", lambda **kw: got.update(kw))
    _wiring.configure_graph(py, shortcuts=shortcuts)
    from brainstate.graph import _flatten

    assert (got["fast_ref"] is _flatten._FAST_REF) is shortcuts
    assert got["fast_state_ok"](brainstate.ParamState) is (
        _flatten._fast_state_ok(brainstate.ParamState) if shortcuts else False)

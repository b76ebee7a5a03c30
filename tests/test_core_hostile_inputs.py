"""Wrong inputs to the state core raise Python exceptions; they never crash the interpreter.

A typed argument of a Cython ``def`` accepts ``None`` unless declared ``not None``, a typed
attribute accepts ``None`` too, and an unchecked cast (``<tuple>x``) trusts its operand; the
core then dereferences whatever it was given. This file calls every function of the core and
every method of its classes (on a bare ``__new__`` instance and on a working one) with hostile
values: wrong types, ``None``, integers outside ``Py_ssize_t``, NaN, empty containers, objects
whose ``__eq__``/``__hash__``/``__len__``/``__iter__``/``__getattr__`` raise, bare core objects.
It also corrupts each writable attribute of the core's objects before using them, hands the
graph decoder GraphDefs with one code replaced (a GraphDef pickles as its codes, so a loaded
checkpoint can carry any of them), and runs the core after ``configure``/``configure_graph``
received hostile values.

The calls run in a child interpreter (this file run as a script): a segfault shows there as a
signal exit code instead of killing the test run. The child prints each call's label before
making it, so the parent names the call that crashed, then resumes after it to find the rest.
A call raising ``SystemError`` (a C function that failed without setting an exception, or the
reverse) or a ``BaseException`` that is not an ``Exception`` also fails the sweep.

The default sweep puts each hostile value in each position of 0-4 arguments (the others
``None``) plus a few seeded random combinations; the ``slow`` sweep adds many more.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import math
import os
import random
import re
import subprocess
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the stub of the brainstate under test (a checkout, or an installed wheel: it ships the stub)
STUB = os.path.join(os.path.dirname(importlib.util.find_spec("brainstate").origin), "_core.pyi")

# Calls known to crash the compiled core, by label: left out of the sweeps, each with an
# xfail(strict=True) test, so that a fix shows up as an XPASS. (None today; the regression tests
# below cover the ones found and fixed.)
KNOWN_CRASHES: dict[str, str] = {}

# SystemErrors the compiled core is known to raise (label patterns; an unchecked <dict> cast
# hands a non-dict to CPython's PyDict_* functions, which catch it where a macro would crash),
# each with an xfail(strict=True) test. (None today.)
KNOWN_SYSTEM_ERRORS: dict[str, str] = {}


# --- the stub ---------------------------------------------------------------------------------


def _stub_tree() -> ast.Module:
    with open(STUB, encoding="utf-8") as f:
        return ast.parse(f.read())


def stub_names() -> set[str]:
    """Module-level names the stub declares (functions, classes, constants)."""
    names = set()
    for node in _stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def stub_members() -> dict[str, set[str]]:
    """``class -> names`` the stub declares in each class body (methods and attributes)."""
    out = {}
    for node in _stub_tree().body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
            out[node.name] = names
    return out


def stub_params() -> dict[str, tuple[list[str], bool]]:
    """``qualname -> (parameter names, takes **kwargs)`` of each stub function and method."""
    out = {}

    def record(qualname: str, fn: ast.FunctionDef) -> None:
        if any(isinstance(d, ast.Name) and d.id == "property" or isinstance(d, ast.Attribute)
               and d.attr == "setter" for d in fn.decorator_list):
            return  # an attribute: swept by attribute_calls
        a = fn.args
        names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs) if p.arg != "self"]
        out[qualname] = (names, a.kwarg is not None)

    for node in _stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            record(node.name, node)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    record(f"{node.name}.{item.name}", item)
    return out


def public_names(mod: types.ModuleType) -> set[str]:
    return {n for n in dir(mod) if not n.startswith("_")
            and not isinstance(getattr(mod, n), types.ModuleType)}


# --- hostile values (used by the child) ---------------------------------------------------------


class Hostile:
    """Every protocol method raises; so does any attribute lookup that misses."""

    def _boom(self, *args, **kwargs):
        raise RuntimeError("hostile")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _boom
    __hash__ = __len__ = __iter__ = __next__ = __bool__ = _boom  # type: ignore[assignment]
    __index__ = __int__ = __float__ = __repr__ = __str__ = __format__ = _boom
    __getitem__ = __setitem__ = __delitem__ = __contains__ = __call__ = _boom

    def __getattr__(self, name):
        raise RuntimeError(f"hostile attribute {name}")


class Liar:
    """Claims three items, yields none, and has none at any index."""

    def __len__(self):
        return 3

    def __iter__(self):
        return iter(())

    def __getitem__(self, i):
        raise IndexError(i)


def own_names(c) -> list[str]:
    """The core's own functions and classes (not what it imports), sorted."""
    return sorted(n for n in dir(c) if not n.startswith("__")
                  and getattr(getattr(c, n), "__module__", None) == c.__name__)


def _bare(cls):
    return cls.__new__(cls)


def hostile_values(c, brainstate) -> list:
    """``(name, factory)`` pairs; factories make a fresh value per call."""
    from brainstate import _hooks

    vals = [
        ("None", lambda: None), ("0", lambda: 0), ("-1", lambda: -1),
        ("2**64", lambda: 2**64), ("-2**63-1", lambda: -2**63 - 1), ("2**63-1", lambda: 2**63 - 1),
        ("1.5", lambda: 1.5), ("nan", lambda: math.nan), ("''", lambda: ""), ("b''", lambda: b""),
        ("()", tuple), ("[]", list), ("{}", dict), ("object()", object), ("int", lambda: int),
        ("Hostile()", Hostile), ("(Hostile(),)", lambda: (Hostile(),)),
        ("[Hostile()]", lambda: [Hostile()]), ("{'k': Hostile()}", lambda: {"k": Hostile()}),
        ("(Hostile(),)*6", lambda: (Hostile(),) * 6), ("((None,)*6,)", lambda: ((None,) * 6,)),
        ("Liar()", Liar), ("INVALID", lambda: c.INVALID),
        ("StateCore(1.0)", lambda: c.StateCore(1.0)), ("State(1.0)", lambda: brainstate.State(1.0)),
        ("TraceFrame()", lambda: c.TraceFrame()),
        ("bare HookManager", lambda: _bare(_hooks.HookManager)),
    ]
    for name in sorted(dir(c)):
        cls = getattr(c, name)
        if isinstance(cls, type) and name in ("StateCore", "TraceFrame", "Signature",
                                              "TreefyStateCore", "DecoderCore", "ThreadContext"):
            vals.append((f"bare {name}", lambda cls=cls: _bare(cls)))
    return vals


def live_instances(c, brainstate) -> dict:
    """``class name -> [(variant, factory)]``: a bare instance and working ones."""
    live = {
        "StateCore": [("live", lambda: c.StateCore(1.0)), ("State", lambda: brainstate.State(1.0))],
        "TraceFrame": [("live", c.TraceFrame)],
        "Signature": [("live", lambda: c.make_signature(1.0))],
        "TreefyStateCore": [("live", lambda: c.TreefyStateCore(int, 1.0))],
        "DecoderCore": [("live", lambda: c.DecoderCore(None, {}, None, None, False, False))],
        "ThreadContext": [("live", c.ThreadContext)],
        "_IndexTable": [("live", lambda: c._IndexTable(4))],
        "_Invalid": [("live", lambda: c.INVALID)],
    }
    out = {}
    for name in own_names(c):
        cls = getattr(c, name)
        if isinstance(cls, type):
            out[name] = [("bare", lambda cls=cls: _bare(cls))] + live.get(
                name, [("live", cls)])
    return out


# --- the calls (enumerated in the child; deterministic, so an index names one call) -------------


def _positional_calls(label, get, values, n_random, seed_extra=""):
    yield f"{label}()", lambda: get()()
    for k in range(1, 5):
        for pos in range(k):
            for vname, make in values:
                names = ["None"] * k
                names[pos] = vname

                def call(k=k, pos=pos, make=make):
                    args = [None] * k
                    args[pos] = make()
                    get()(*args)

                yield f"{label}({', '.join(names)})", call
    rng = random.Random(f"{label}{seed_extra}")
    for _ in range(n_random):
        picks = [rng.choice(values) for _ in range(rng.randint(1, 4))]
        yield (f"{label}({', '.join(n for n, _ in picks)})",
               lambda picks=picks: get()(*[m() for _, m in picks]))


def _keyword_calls(label, get, params, values):
    names, var_kw = params
    for p in names:
        for vname, make in values:
            def call(p=p, make=make):
                kw = dict.fromkeys(names)
                kw[p] = make()
                get()(**kw)

            yield f"{label}(**{{{p}={vname}, others None}})", call
    if var_kw:  # metadata keywords (StateCore(value, **metadata))
        for vname, make in values:
            yield (f"{label}(1.0, tag={vname})",
                   lambda make=make: get()(1.0, tag=make()))


def _method_names(cls) -> list[str]:
    return sorted(m for m, raw in vars(cls).items() if callable(raw))


def _attribute_names(cls) -> list[str]:
    return sorted(a for a, raw in vars(cls).items()
                  if not callable(raw) and hasattr(type(raw), "__set__") and a != "__weakref__")


def function_calls(c, brainstate, values, n_random):
    """Every module function, class constructor and method, with hostile arguments."""
    params = stub_params()
    instances = live_instances(c, brainstate)
    for name in own_names(c):
        obj = getattr(c, name)
        if name in ("configure", "configure_graph"):
            continue  # keyword-only wiring: see configure_calls
        if name.startswith("_") and not isinstance(obj, type) and c.__name__.endswith("_py"):
            continue  # the pure twin's internals: plain Python, not the contract
        if isinstance(obj, type):
            yield from _positional_calls(name, lambda obj=obj: obj, values, n_random)
            if f"{name}.__init__" in params:
                yield from _keyword_calls(name, lambda obj=obj: obj, params[f"{name}.__init__"],
                                          values)
            for variant, make in instances[name]:
                for m in _method_names(obj):
                    label = f"{name}[{variant}].{m}"

                    def get(make=make, m=m):
                        return getattr(make(), m)

                    yield from _positional_calls(label, get, values, n_random)
                    if f"{name}.{m}" in params and m != "__init__":
                        yield from _keyword_calls(label, get, params[f"{name}.{m}"], values)
        elif callable(obj):
            yield from _positional_calls(name, lambda obj=obj: obj, values, n_random)
            if name in params:
                yield from _keyword_calls(name, lambda obj=obj: obj, params[name], values)


def _graph_fixture(brainstate):
    """A module with a shared sub-node, a cycle, a list and a dict pytree, and two states."""

    class Leaf(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = brainstate.ParamState(2.0)

    class Net(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = brainstate.State(1.0)
            self.a = Leaf()
            self.items = [self.a, {"x": 3, "s": brainstate.ShortTermState(0.5)}]
            self.me = self

    return Net()


def _uses(c, brainstate, cls_name):
    """``[(name, use(obj))]``: how the rest of the core consumes an object of ``cls_name``."""
    import brainstate.graph as g

    def in_frame(st):
        f = c.TraceFrame()
        c.push_frame(f)
        try:
            st.value
            st.value = 2.0
        finally:
            c.pop_frame(f)

    def in_module(st):
        net = _graph_fixture(brainstate)
        net.extra = st
        gd, states = g.treefy_split(net)
        g.treefy_merge(gd, states)
        g.states(net)

    generic = [("repr", repr), ("hash", hash), ("eq", lambda o: o == o),
               ("copy", copy.copy), ("deepcopy", copy.deepcopy)]
    per_class = {
        "StateCore": [
            ("value", lambda s: s.value), ("set value", lambda s: setattr(s, "value", 2.0)),
            ("gather", lambda s: c.gather([s])), ("scatter", lambda s: c.scatter([s], [2.0])),
            ("scatter written", lambda s: c.scatter([s], [2.0], [True])),
            ("read_its_value", lambda s: c.TraceFrame().read_its_value(s)),
            ("write_its_value", lambda s: c.TraceFrame().write_its_value(s)),
            ("in a frame", in_frame), ("make_ref", c.make_ref),
            ("rebuild_state", lambda s: c.rebuild_state(c.make_ref(s))),
            ("collect_states", lambda s: c.collect_states({"s": s}, 0, 2**31)),
            ("in a module", in_module),
        ],
        "TraceFrame": [
            ("read_its_value", lambda f: f.read_its_value(c.StateCore(1.0))),
            ("write_its_value", lambda f: f.write_its_value(c.StateCore(1.0))),
            ("pushed", lambda f: (c.push_frame(f), in_frame(c.StateCore(1.0)),
                                  c.StateCore(1.0).value, c.pop_frame(f))),
        ],
        "Signature": [
            ("as a state's", lambda sig: (setattr(st := c.StateCore(1.0), "_signature", sig),
                                          setattr(st, "value", 2.0), st.value)),
            ("compared", lambda sig: sig == c.make_signature(1.0)),
        ],
        "TreefyStateCore": [
            ("treefy_attrs", c.treefy_attrs), ("treefy_flatten", c.treefy_flatten),
            ("rebuild_state", c.rebuild_state),
            ("round trip", lambda t: c.treefy_unflatten(type(t), *c.treefy_flatten(t)[::-1])),
        ],
        "DecoderCore": [
            ("_make_shells", lambda d: d._make_shells(())), ("_fill", lambda d: d._fill(())),
            ("real records", lambda d: (d._make_shells(g.treefy_split(
                _graph_fixture(brainstate))[0]._records))),
        ],
        "ThreadContext": [
            ("stack_level", lambda t: c.stack_level()),
            ("frames", lambda t: (c.push_frame(f := c.TraceFrame()), c.stack_level(),
                                  c.StateCore(1.0).value, c.pop_frame(f))),
            ("tree check", lambda t: (c.push_tree_check(False), c.is_rebinding(),
                                      c.pop_tree_check())),
            ("tracer check", lambda t: (c.push_tracer_check(True), c.pop_tracer_check())),
            ("catcher", lambda t: (c.push_catcher(cat := []), c.StateCore(1.0),
                                   c.pop_catcher(cat))),
            ("new State", lambda t: brainstate.State(1.0).value),
            ("jit", lambda t: brainstate.transform.jit(lambda: brainstate.State(1.0).value)()),
        ],
    }
    return generic + per_class.get(cls_name, [])


def attribute_calls(c, brainstate, values):
    """Each writable attribute of the core's objects set to each hostile value, then used."""
    instances = live_instances(c, brainstate)
    for name in sorted(instances):
        cls = getattr(c, name)
        attrs = _attribute_names(cls)
        if not attrs:
            continue
        variants = list(instances[name])
        if name == "ThreadContext":  # this thread's real context (the sweep restores it)
            variants.append(("this thread", c.get_context))
        uses = _uses(c, brainstate, name)
        methods = [m for m in _method_names(cls) if m not in (
            "__new__", "__init__", "__setattr__", "__delattr__", "__setstate_cython__")]
        for variant, make in variants:
            for a in attrs:
                base = f"{name}[{variant}].{a}"
                yield f"{base} (get)", lambda make=make, a=a: getattr(make(), a)
                yield f"{base} (del)", lambda make=make, a=a: delattr(make(), a)
                for vname, mv in values:
                    def corrupt(make=make, a=a, mv=mv):
                        obj = make()
                        setattr(obj, a, mv())
                        return obj

                    yield f"{base} = {vname}", corrupt
                    for m in methods:
                        for args in ((), (None,), (1.0,)):
                            yield (f"{base} = {vname}; .{m}({', '.join(map(repr, args))})",
                                   lambda corrupt=corrupt, m=m, args=args:
                                   getattr(corrupt(), m)(*args))
                    for uname, use in uses:
                        yield (f"{base} = {vname}; {uname}",
                               lambda corrupt=corrupt, use=use: use(corrupt()))


def _leaf_paths(code, path=()):
    """Paths to every element of a nested tuple, containers included (outermost first)."""
    yield path
    if type(code) is tuple:
        for i, item in enumerate(code):
            yield from _leaf_paths(item, (*path, i))


def _replace(code, path, fn):
    if not path:
        return fn(code)
    i = path[0]
    return (*code[:i], _replace(code[i], path[1:], fn), *code[i + 1:])


def graphdef_calls(c, brainstate, n_values):
    """Unflatten GraphDefs whose codes have one element replaced, truncated or extended."""
    import brainstate.graph as g
    from brainstate.graph._graphdef import GraphDef

    gd, states = g.treefy_split(_graph_fixture(brainstate))
    codes = (gd._root, gd._records)
    mutations = [
        ("None", lambda x: None), ("-1", lambda x: -1), ("2**64", lambda x: 2**64),
        ("99", lambda x: 99), ("1", lambda x: 1), ("''", lambda x: ""), ("()", lambda x: ()),
        ("Hostile()", lambda x: Hostile()), ("(Hostile(),)", lambda x: (Hostile(),)),
        ("1.5", lambda x: 1.5), ("[...]", lambda x: list(x) if type(x) is tuple else [x]),
        ("dropped last", lambda x: x[:-1] if type(x) is tuple else x),
        ("plus None", lambda x: (*x, None) if type(x) is tuple else x),
    ][:n_values]
    for path in _leaf_paths(codes):
        if not path:
            continue
        for mname, fn in mutations:
            def make(path=path, fn=fn):
                root, records = _replace(codes, path, fn)
                return root, records

            label = f"GraphDef codes{list(path)} := {mname}"
            yield f"{label}; index_bound", lambda make=make: c.index_bound(*make())
            yield (f"{label}; treefy_merge",
                   lambda make=make: g.treefy_merge(GraphDef._from_codes(*make(), gd._prepass),
                                                    states))
            yield (f"{label}; treefy_merge with the original size",
                   lambda make=make: g.treefy_merge(
                       GraphDef._from_codes(*make(), gd._prepass, gd._size), states))
            yield (f"{label}; repr", lambda make=make: repr(GraphDef._from_codes(
                *make(), gd._prepass)))
    flat = g.treefy_split(_graph_fixture(brainstate))[1].to_flat()
    for key in sorted(flat, key=repr):
        for vname, mv in hostile_values(c, brainstate):
            def merge(key=key, mv=mv):
                mapping = dict(flat)
                mapping[key] = mv()
                g.treefy_merge(gd, brainstate.util.NestedDict.from_flat(mapping))

            yield f"state mapping {key} := {vname}; treefy_merge", merge


def configure_calls(c, brainstate, values):
    """``configure_graph``/``configure`` fed hostile values, then the core used (run last: the
    wiring is not restored)."""
    import brainstate.graph as g
    from brainstate import TreefyState
    from brainstate._core_constants import GRAPH_CONSTANTS

    graph_params = [p for p in stub_params()["configure_graph"][0]
                    if p not in ("constants", "ref_type")]

    def use_graph():
        net = _graph_fixture(brainstate)
        gd, states = g.treefy_split(net)
        g.treefy_merge(gd, states)
        g.states(net)

    for p in graph_params:
        for vname, mv in values:
            def call(p=p, mv=mv):
                flat = importlib.import_module("brainstate.graph._flatten")
                kw = dict(constants=GRAPH_CONSTANTS, kinds=flat.R._KIND,
                          classify=flat.R.classify, node_impls=flat.R._NODE_IMPLS,
                          plain_nodes=flat.R._PLAIN_NODES, flatten_pytree=flat.R.flatten_pytree,
                          node_children=flat.R.node_children, seq_treedef=flat.R.seq_treedef,
                          dict_treedef=flat.R.dict_treedef, treedef_kinds=flat.R._TREEDEF_KIND,
                          hashable_by_value=flat.R.hashable_by_value, fast_ref=flat._FAST_REF,
                          fast_ref_ok=flat._fast_ref_ok, fast_state=flat._FAST_STATE,
                          fast_state_ok=flat._fast_state_ok, ref_type=TreefyState,
                          rebuild_error=flat._RebuildError, missing=flat._MISSING)
                good = dict(kw)
                kw[p] = mv()
                try:
                    c.configure_graph(**kw)
                    use_graph()
                finally:
                    c.configure_graph(**good)

            yield f"configure_graph({p}={vname}, others as brainstate passes them); use", call
    params = stub_params()["configure"][0]
    for vname, mv in values:
        def call(mv=mv):
            c.configure(**{q: mv() for q in params})
            for use in (lambda: c.StateCore(1.0).value, lambda: c.make_signature(1.0),
                        lambda: setattr(c.StateCore(1.0), "value", 2.0), c.capture_site,
                        lambda: c.gather([c.StateCore(1.0)]), use_graph):
                try:
                    use()
                except Exception:
                    pass

        yield f"configure(every keyword={vname}); use the core", call


def all_calls(c, brainstate, mode):
    values = hostile_values(c, brainstate)
    slow = mode == "slow"
    yield from function_calls(c, brainstate, values, n_random=400 if slow else 6)
    # the corruption sweeps use fewer values unless slow (their count multiplies)
    few = values if slow else [v for v in values if v[0] in (
        "None", "-1", "2**64", "1.5", "''", "()", "[]", "{}", "object()", "Hostile()",
        "(Hostile(),)*6", "Liar()", "bare StateCore", "bare TraceFrame", "bare Signature")]
    yield from attribute_calls(c, brainstate, few)
    yield from graphdef_calls(c, brainstate, n_values=99 if slow else 13)
    yield from configure_calls(c, brainstate, few)


# --- the child ----------------------------------------------------------------------------------


def child_main(core_name: str, mode: str, start: str, only: str) -> None:
    import brainstate

    c = importlib.import_module(core_name)
    from brainstate import _hooks

    ctx = c.get_context()
    lists = {a: getattr(ctx, a) for a in ("state_stack", "tree_check", "jax_tracer_check",
                                          "new_state_catcher")}
    base = {a: list(v) for a, v in lists.items()}
    hooks = c.hooks_active()

    def restore() -> None:
        # undo what a call left in the global state through the core's own API (its
        # counters stay in step), so no call inherits a previous one's damage
        for a, lst in lists.items():
            if getattr(ctx, a) is not lst:
                setattr(ctx, a, lst)
        while len(lists["state_stack"]) > len(base["state_stack"]):
            f = lists["state_stack"][-1]
            if not (isinstance(f, c.TraceFrame) and c.pop_frame(f)):
                lists["state_stack"].pop()
        for a, push, pop in (("tree_check", c.push_tree_check, c.pop_tree_check),
                             ("jax_tracer_check", c.push_tracer_check, c.pop_tracer_check)):
            while len(lists[a]) > len(base[a]):
                pop()
            while len(lists[a]) < len(base[a]):
                push(False)
            lists[a][:] = base[a]
        while len(lists["new_state_catcher"]) > len(base["new_state_catcher"]):
            c.pop_catcher(lists["new_state_catcher"][-1])
        if c.hooks_active() != hooks:
            c.set_hooks_active(hooks)
        c.set_global_hook_registry(_hooks._global)

    out = sys.stdout
    calls = all_calls(c, brainstate, mode)
    n = 0
    for i, (label, call) in enumerate(calls):
        if (only and label != only) or i < int(start) or label in KNOWN_CRASHES and not only:
            continue
        out.write(f"CALL {i} {label}\n")
        out.flush()  # the last line names the call that crashed
        try:
            call()
        except SystemError as e:
            out.write(f"SYSTEMERROR {i} {label}: {e}\n")
        except Exception:
            pass
        except BaseException as e:  # noqa: B036 - the sweep reports these
            out.write(f"BASEEXCEPTION {i} {label}: {type(e).__name__}\n")
        n += 1
        try:
            restore()
        except Exception as e:
            out.write(f"RESTORE {i} {label}: {type(e).__name__}: {e}\n")
    out.write(f"SURVIVED {n}\n")
    out.flush()


# --- the parent ---------------------------------------------------------------------------------


def _child_env(core_name: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("BRAINSTATE_NO_EXTENSIONS", None)
    if core_name == "brainstate._core_py":
        env["BRAINSTATE_NO_EXTENSIONS"] = "1"
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def run_child(core_name: str, mode: str, start: int = 0, only: str = "",
              timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.abspath(__file__), core_name, mode,
                           str(start), only], env=_child_env(core_name), capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def sweep(core_name: str, mode: str, max_crashes: int = 20) -> dict:
    """Run every call, resuming after each crash. Returns the calls made, crashes (with
    whether the call alone crashes a fresh interpreter), SystemErrors and odd exceptions."""
    report = {"calls": 0, "crashes": [], "system_errors": [], "base_exceptions": [],
              "restore": []}
    start = 0
    while True:
        proc = run_child(core_name, mode, start)
        lines = proc.stdout.splitlines()
        for line in lines:
            kind, _, rest = line.partition(" ")
            key = {"SYSTEMERROR": "system_errors", "BASEEXCEPTION": "base_exceptions",
                   "RESTORE": "restore"}.get(kind)
            if key:
                report[key].append(rest)
        calls = [line for line in lines if line.startswith("CALL ")]
        if proc.returncode == 0 and lines and lines[-1].startswith("SURVIVED"):
            report["calls"] += int(lines[-1].split()[1])
            return report
        if not calls:
            raise AssertionError(f"the sweep child failed before its first call "
                                 f"({proc.returncode}):\n{proc.stderr[-3000:]}")
        _, index, label = calls[-1].split(" ", 2)
        alone = run_child(core_name, mode, only=label).returncode
        report["crashes"].append(f"{label}  [exit {proc.returncode}; alone in a fresh "
                                 f"interpreter: exit {alone}]")
        report["calls"] += len(calls)
        if len(report["crashes"]) >= max_crashes:
            return report
        start = int(index) + 1


def _check(report: dict, min_calls: int) -> None:
    report = dict(report, system_errors=[
        e for e in report["system_errors"]
        if not any(re.match(rf"\d+ {pat}", e) for pat in KNOWN_SYSTEM_ERRORS)])
    problems = [f"{k}:\n  " + "\n  ".join(v) for k in ("crashes", "system_errors",
                                                       "base_exceptions", "restore")
                if (v := report[k])]
    assert not problems, "\n".join(problems)
    assert report["calls"] >= min_calls, report["calls"]  # the sweep reached the whole core


CORES = ["brainstate._core_py", pytest.param("brainstate._core", marks=pytest.mark.c_extension)]


@pytest.mark.parametrize("core_name", CORES)
def test_hostile_arguments_never_crash_the_core(core_name):
    _check(sweep(core_name, "fast"), min_calls=50_000)


@pytest.mark.slow
@pytest.mark.stress
@pytest.mark.c_extension
def test_hostile_arguments_never_crash_the_compiled_core_many_combinations():
    # compiled core only: the pure twin cannot crash, the fast sweep covers its exceptions
    _check(sweep("brainstate._core", "slow"), min_calls=200_000)


@pytest.mark.c_extension
def test_layout_debug_of_a_bare_hook_manager_does_not_crash():
    # regression: its chain slots are NULL until __init__ runs; they read as empty chains
    label = "_hook_layout_debug(bare HookManager)"
    proc = run_child("brainstate._core", "fast", only=label, timeout=120)
    assert proc.returncode == 0, f"crashed ({proc.returncode}) at {label}"


def _decoder_records():
    import brainstate
    import brainstate.graph as g

    return g.treefy_split(_graph_fixture(brainstate))[0]._records


def _raises_a_proper_exception(call) -> None:
    with pytest.raises(Exception) as info:
        call()
    assert not isinstance(info.value, SystemError), info.value


@pytest.mark.c_extension
def test_bare_decoder_core_raises_a_proper_exception():
    import brainstate._core as c

    decoder = c.DecoderCore.__new__(c.DecoderCore)
    _raises_a_proper_exception(lambda: decoder._make_shells(_decoder_records()))


@pytest.mark.c_extension
def test_decoder_core_with_a_non_dict_table_raises_a_proper_exception():
    import brainstate._core as c

    decoder = c.DecoderCore(None, {}, None, None, False, False)
    decoder.table = []
    _raises_a_proper_exception(lambda: decoder._make_shells(_decoder_records()))


@pytest.mark.c_extension
@pytest.mark.parametrize("param", ["kinds", "fast_ref", "fast_state"])
def test_configure_graph_with_none_tables_then_use_raises_a_proper_exception(param):
    import brainstate
    import brainstate._core as c

    calls = dict(configure_calls(c, brainstate, [("None", lambda: None)]))
    # the call restores brainstate's own wiring before it returns
    _raises_a_proper_exception(calls[
        f"configure_graph({param}=None, others as brainstate passes them); use"])


# --- the stub names the module's contents --------------------------------------------------------


@pytest.mark.c_extension
def test_stub_and_compiled_core_declare_the_same_names():
    import brainstate._core as c

    assert public_names(c) == stub_names()
    for cls_name, declared in stub_members().items():
        cls = getattr(c, cls_name)
        present = {m for m in dir(cls) if not m.startswith("__")}
        assert present == {m for m in declared if not m.startswith("__")}, cls_name


def test_stub_and_pure_core_declare_the_same_names():
    import brainstate._core_py as p

    # FastRLock is the compiled core's own (the stub says so); the twin uses threading.RLock
    assert set(p.__all__) == stub_names() - {"FastRLock"}
    assert {n for n in public_names(p) if callable(getattr(p, n)) and getattr(
        getattr(p, n), "__module__", None) == p.__name__} <= set(p.__all__)


def test_the_sweep_covers_every_stub_function_and_method():
    # a name the stub adds reaches the sweep without touching this file
    import brainstate
    import brainstate._core_py as p

    labels = {label.split("(")[0].split(" ")[0]
              for label, _ in function_calls(p, brainstate, hostile_values(p, brainstate), 0)}
    for qualname in stub_params():
        cls, _, method = qualname.rpartition(".")
        if cls == "FastRLock" or qualname in ("configure", "configure_graph"):
            continue
        if cls and method == "__init__":
            assert cls in labels, qualname
        elif cls and method not in vars(getattr(p, cls)):
            continue  # declared for type checkers only (TreefyStateCore.__getattr__)
        elif cls:
            assert f"{cls}[bare].{method}" in labels, qualname
        else:
            assert qualname in labels, qualname


@pytest.mark.parametrize("call", [
    lambda c: c.push_frame(None),
    lambda c: c.pop_frame(None),
    lambda c: c.TraceFrame().read_its_value(None),
    lambda c: c.TraceFrame().write_its_value(None),
    lambda c: c.treefy_attrs(None),
    lambda c: c.treefy_flatten(None),
], ids=["push_frame", "pop_frame", "read_its_value", "write_its_value", "treefy_attrs",
        "treefy_flatten"])
def test_none_where_a_core_object_is_expected_is_a_type_error(core, call):
    # both cores, the same error: the pure twin checks what the compiled signature declares
    with pytest.raises(TypeError, match="has incorrect type"):
        call(core)


if __name__ == "__main__":
    child_main(*sys.argv[1:5])


@pytest.mark.parametrize("core_name", CORES)
@pytest.mark.parametrize("param", ["kinds", "node_impls", "plain_nodes", "treedef_kinds",
                                   "fast_ref", "fast_state"])
def test_configure_graph_refuses_a_table_of_the_wrong_type_on_both_cores(core_name, param):
    import brainstate

    core = importlib.import_module(core_name)
    calls = dict(configure_calls(core, brainstate, [("None", lambda: None)]))
    # the call restores brainstate's own wiring before it returns
    with pytest.raises(TypeError, match=f"configure_graph: {param} must be a"):
        calls[f"configure_graph({param}=None, others as brainstate passes them); use"]()

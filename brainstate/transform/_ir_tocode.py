"""Turn a jaxpr (or a function) back into readable, runnable Python source.

The source calls ``jax.lax`` / ``jax.numpy`` and starts with its own imports, so
``exec``-ing it defines a function that computes what the jaxpr computes. Each primitive is
printed by a handler; :func:`register_prim_handler` adds or replaces one. Primitives without
a dedicated handler are printed as the ``jax.lax`` function of the same name when one exists
and accepts the primitive's parameters.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> import brainstate
>>> def f(x, y):
...     return jnp.sin(x) * y + 1.0
>>> src = brainstate.transform.fn_to_python_code(f, jnp.float32(1.0), jnp.float32(2.0))
>>> print(src)
import jax
import numpy as np
<BLANKLINE>
def f(a, b):
    c = jax.lax.sin(a)
    d = c * b
    e = d + np.float32(1.0)
    return e
>>> ns = {}
>>> exec(src, ns)
>>> float(ns['f'](jnp.float32(0.0), jnp.float32(2.0)))
1.0
"""

from __future__ import annotations

import ast
import builtins
import enum
import inspect
import keyword
import math
import warnings
from typing import Any, Callable

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, DropVar, Jaxpr, JaxprEqn, Literal, Var

from brainstate.transform._ir_utils import (
    IdentityMap,
    IRError,
    IRValidationError,
    UnsupportedPrimitiveError,
    ensure_jaxpr,
    literal_value,
    scan_split,
)

__all__ = ["fn_to_python_code", "jaxpr_to_python_code", "register_prim_handler"]

# Names the generated code must not use for variables: its modules, Python keywords and
# builtins it (or a handler) may call.
_RESERVED = frozenset({"jax", "np", "jnp"}) | frozenset(keyword.kwlist) \
    | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
# Arrays with more elements are written as hex bytes instead of nested lists.
_MAX_LIST_ELEMENTS = 256


class SourcerorState:
    """Naming state of one code generation, passed to every primitive handler.

    ``str_name(var)`` gives a variable's name (``a``, ``b``, ..., ``ba``, ...), ``atom(x)`` the
    source of a variable or literal, ``targets(outvars)`` the left side of an assignment and
    ``skolem(prefix)`` a fresh helper name (``prefix_N``; variable names never contain ``_``).
    """

    __module__ = "brainstate.transform"

    def __init__(self) -> None:
        self._names = IdentityMap()
        self._count = 0
        self._skolems = 0
        self.imports: set[str] = set()

    def _next(self) -> str:
        while True:
            n, name = self._count, ""
            self._count += 1
            while True:
                name = chr(ord("a") + n % 26) + name
                n //= 26
                if n == 0:
                    break
            if name not in _RESERVED:
                return name

    def str_name(self, var: Var) -> str:
        if isinstance(var, DropVar):
            return "_"
        if var not in self._names:
            self._names[var] = self._next()
        return self._names[var]

    def name(self, var: Var, ctx: Any = None) -> ast.Name:
        return ast.Name(id=self.str_name(var), ctx=ctx or ast.Load())

    def alias(self, var: Var, source: str) -> None:
        """Make ``var`` print as ``source`` (an outer name or a constant)."""
        self._names[var] = source

    def atom(self, a: Any) -> str:
        if isinstance(a, Literal):
            return value_source(literal_value(a), self)
        return self.str_name(a)

    def targets(self, outvars: list, tuple_: bool = False) -> str:
        names = [self.str_name(v) for v in outvars]
        if len(names) == 1 and not tuple_:
            return names[0]
        return ", ".join(names) + ("," if len(names) == 1 else "") if names else "_"

    def skolem(self, prefix: str) -> str:
        self._skolems += 1
        return f"{prefix}_{self._skolems}"


# --- values ------------------------------------------------------------------------------------


def _float_source(x: float | np.floating) -> str:
    if math.isfinite(x):
        return repr(float(x))
    return f"float({repr(float(x))!r})"  # float('nan'), float('inf'), float('-inf')


def _scalar_source(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, (int, np.integer)):
        return repr(int(x))
    if isinstance(x, (complex, np.complexfloating)):
        return f"complex({_float_source(x.real)}, {_float_source(x.imag)})"
    return _float_source(float(x))


def _dtype_source(dtype: Any) -> str:
    return f"np.dtype({np.dtype(dtype).name!r})"


def _array_source(arr: np.ndarray) -> str:
    dt = arr.dtype
    if arr.ndim == 0:
        if hasattr(np, dt.name) and dt.name != "bool":
            return f"np.{dt.name}({_scalar_source(arr.item())})"
        if dt == np.bool_:
            return f"np.bool_({_scalar_source(arr.item())})"
        return f"np.asarray({_scalar_source(arr.item())}, dtype={_dtype_source(dt)})"
    if arr.size <= _MAX_LIST_ELEMENTS and dt.kind in "biufc":
        def nested(x: Any) -> str:
            if isinstance(x, list):
                return "[" + ", ".join(nested(i) for i in x) + "]"
            return _scalar_source(x)
        return f"np.asarray({nested(arr.tolist())}, dtype={_dtype_source(dt)})"
    hexed = np.ascontiguousarray(arr).tobytes().hex()
    return (f"np.frombuffer(bytes.fromhex({hexed!r}), dtype={_dtype_source(dt)})"
            f".reshape({tuple(arr.shape)!r})")


def _public_path(cls: type, state: SourcerorState | None) -> str:
    for mod_name, mod in (("jax.lax", jax.lax), ("jax.numpy", jax.numpy), ("jax", jax)):
        for attr in dir(mod):
            if getattr(mod, attr, None) is cls:
                return f"{mod_name}.{attr}"
    if state is not None:
        state.imports.add(f"import {cls.__module__}")
    return f"{cls.__module__}.{cls.__qualname__}"


def value_source(value: Any, state: SourcerorState | None = None) -> str:
    """Python source that evaluates to ``value`` (scalars, arrays, dtypes, tuples, enums, the
    named tuples of ``jax.lax``); anything else raises ``IRError``."""
    if value is None or isinstance(value, str):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{_public_path(type(value), state)}.{value.name}"
    if isinstance(value, (bool, int, float, complex)):
        return _scalar_source(value)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return _dtype_source(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        fields = ", ".join(f"{k}={value_source(getattr(value, k), state)}" for k in value._fields)
        return f"{_public_path(type(value), state)}({fields})"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(value_source(v, state) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, slice):
        return f"slice({value.start!r}, {value.stop!r}, {value.step!r})"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _array_source(np.asarray(value))
    raise IRError(f"cannot write a value of type {type(value).__name__} ({value!r}) as Python "
                  "source.")


# --- handlers ----------------------------------------------------------------------------------

prim_to_python: dict[str, Callable] = {}


def register_prim_handler(prim_name: str, handler: Callable) -> None:
    """Set the code printer of a primitive.

    Parameters
    ----------
    prim_name : str
        The primitive's name (``eqn.primitive.name``, e.g. ``'cumlogsumexp'``).
    handler : callable
        ``handler(state, eqn)`` returning the statement(s) that compute ``eqn``'s outputs:
        a string of Python source, an ``ast.stmt``, or a list of them. Use
        ``state.atom(eqn.invars[i])`` for the inputs' source, ``state.targets(eqn.outvars)``
        for the assignment target and ``state.skolem(prefix)`` for helper names.

    Raises
    ------
    TypeError
        When ``prim_name`` is not a non-empty string or ``handler`` is not callable.

    Warns
    -----
    UserWarning
        When a handler for ``prim_name`` already exists (it is replaced).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> def logaddexp_rows(state, eqn):
    ...     x = state.atom(eqn.invars[0])
    ...     return f"{state.targets(eqn.outvars)} = jax.lax.cumlogsumexp({x}, axis=0)"
    >>> brainstate.transform.register_prim_handler('cumlogsumexp', logaddexp_rows)
    >>> src = brainstate.transform.fn_to_python_code(jax.lax.cumlogsumexp, jnp.ones(3))
    >>> 'jax.lax.cumlogsumexp(a, axis=0)' in src
    True
    """
    if not isinstance(prim_name, str) or not prim_name:
        raise TypeError(f"register_prim_handler: prim_name must be a non-empty str, got "
                        f"{prim_name!r}.")
    if not callable(handler):
        raise TypeError(f"register_prim_handler: handler for {prim_name!r} must be callable "
                        f"(state, eqn) -> source, got {type(handler).__name__}.")
    if prim_name in prim_to_python:
        warnings.warn(f"Overwriting the code printer of primitive {prim_name!r}.", UserWarning,
                      stacklevel=2)
    prim_to_python[prim_name] = handler


def register_prim_as(prim_name: str) -> Callable:
    """Decorator form of :func:`register_prim_handler`."""

    def deco(fn: Callable) -> Callable:
        register_prim_handler(prim_name, fn)
        return fn

    return deco


def _assign(state: SourcerorState, eqn: JaxprEqn, rhs: str) -> str:
    return f"{state.targets(eqn.outvars, eqn.primitive.multiple_results)} = {rhs}"


def _args(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    return [state.atom(a) for a in eqn.invars]


def _binop(op: str) -> Callable:
    def handler(state: SourcerorState, eqn: JaxprEqn) -> str:
        x, y = _args(state, eqn)
        return _assign(state, eqn, f"{x} {op} {y}")
    return handler


def normal_fn(fn_name: str, params: tuple | None = None) -> Callable:
    """A handler printing ``fn_name(*inputs, **params)``: every equation parameter as a
    keyword (``params=None``), or only the named ones.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> from brainstate.transform._ir_tocode import normal_fn, prim_to_python
    >>> brainstate.transform.register_prim_handler('rev', normal_fn('jax.lax.rev'))
    >>> 'jax.lax.rev(a, dimensions=(0,))' in brainstate.transform.fn_to_python_code(
    ...     lambda x: jax.lax.rev(x, (0,)), jnp.ones(3))
    True
    >>> del prim_to_python['rev']
    """

    def handler(state: SourcerorState, eqn: JaxprEqn) -> str:
        keys = eqn.params if params is None else params
        kw = [f"{k}={value_source(eqn.params[k], state)}" for k in keys]
        return _assign(state, eqn, f"{fn_name}({', '.join(_args(state, eqn) + kw)})")
    return handler


def _reduce(fn_name: str, with_dtype: bool) -> Callable:
    def handler(state: SourcerorState, eqn: JaxprEqn) -> str:
        (x,) = _args(state, eqn)
        kw = f"axis={value_source(tuple(eqn.params['axes']), state)}"
        if with_dtype:
            out_aval: Any = eqn.outvars[0].aval  # a ShapedArray (typed as the AbstractValue base)
            kw += f", dtype={_dtype_source(out_aval.dtype)}"
        return _assign(state, eqn, f"{fn_name}({x}, {kw})")
    return handler


def _argreduce(fn_name: str) -> Callable:
    def handler(state: SourcerorState, eqn: JaxprEqn) -> str:
        (x,) = _args(state, eqn)
        axis, dt = eqn.params["axes"][0], _dtype_source(eqn.params["index_dtype"])
        return _assign(state, eqn, f"{fn_name}({x}, {axis}, {dt})")
    return handler


def _identity(state: SourcerorState, eqn: JaxprEqn) -> str:
    return _assign(state, eqn, _args(state, eqn)[0])


def _convert(state: SourcerorState, eqn: JaxprEqn) -> str:
    (x,) = _args(state, eqn)
    return _assign(state, eqn, f"jax.lax.convert_element_type({x}, "
                               f"{_dtype_source(eqn.params['new_dtype'])})")


def _iota(state: SourcerorState, eqn: JaxprEqn) -> str:
    p = eqn.params
    return _assign(state, eqn, f"jax.lax.broadcasted_iota({_dtype_source(p['dtype'])}, "
                               f"{tuple(p['shape'])!r}, {p['dimension']})")


def _concatenate(state: SourcerorState, eqn: JaxprEqn) -> str:
    return _assign(state, eqn, f"jax.lax.concatenate([{', '.join(_args(state, eqn))}], "
                               f"{eqn.params['dimension']})")


def _stack(state: SourcerorState, eqn: JaxprEqn) -> str:
    return _assign(state, eqn, f"jax.lax.stack([{', '.join(_args(state, eqn))}], "
                               f"axis={eqn.params['axis']})")


def _dynamic_slice(state: SourcerorState, eqn: JaxprEqn) -> str:
    x, *idx = _args(state, eqn)
    return _assign(state, eqn, f"jax.lax.dynamic_slice({x}, ({', '.join(idx)},), "
                               f"{tuple(eqn.params['slice_sizes'])!r})")


def _dynamic_update_slice(state: SourcerorState, eqn: JaxprEqn) -> str:
    x, upd, *idx = _args(state, eqn)
    return _assign(state, eqn, f"jax.lax.dynamic_update_slice({x}, {upd}, ({', '.join(idx)},))")


def _sort(state: SourcerorState, eqn: JaxprEqn) -> str:
    p = eqn.params
    ops = ", ".join(_args(state, eqn))
    return _assign(state, eqn, f"jax.lax.sort(({ops},), dimension={p['dimension']}, "
                               f"is_stable={p['is_stable']}, num_keys={p['num_keys']})")


# --- nested jaxprs -----------------------------------------------------------------------------


def _unpack(state: SourcerorState, vars_: list, source: str) -> list[str]:
    """``a, b = source`` (nothing for no variables)."""
    return [f"{state.targets(list(vars_), True)} = {source}"] if vars_ else []


def _ret(state: SourcerorState, atoms: list, tuple_: bool) -> str:
    items = [state.atom(a) for a in atoms]
    if len(items) == 1 and not tuple_:
        return f"return {items[0]}"
    return "return (" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _def(state: SourcerorState, jaxpr: Jaxpr, consts: list, name: str, params: list[str],
         prologue: list[str], ret: str | None = None, tuple_: bool = True) -> list[str]:
    """Lines of ``def name(params): prologue; <eqns>; return <outputs>``. ``consts`` are the
    values of ``jaxpr.constvars`` (written into the body)."""
    lines = list(prologue)
    for v, c in zip(jaxpr.constvars, consts):
        lines.append(f"{state.str_name(v)} = {value_source(np.asarray(c), state)}")
    lines += _eqns_lines(state, jaxpr.eqns)
    lines.append(ret if ret is not None else _ret(state, jaxpr.outvars, tuple_))
    return [f"def {name}({', '.join(params)}):"] + ["    " + ln for ln in lines]


def _sub(param: Any) -> tuple[Jaxpr, list]:
    return (param.jaxpr, list(param.consts)) if isinstance(param, ClosedJaxpr) else (param, [])


def _call_body(state: SourcerorState, eqn: JaxprEqn, key: str, wrap: str | None,
               prefix: str) -> list[str]:
    """A nested ``def`` for the called jaxpr, then ``outs = [wrap(]fn[)](*inputs)``."""
    jaxpr, consts = _sub(eqn.params[key])
    name = state.skolem(prefix)
    params = [state.str_name(v) for v in jaxpr.invars]
    lines = _def(state, jaxpr, consts, name, params, [])
    fn = f"{wrap}({name})" if wrap else name
    tmp = state.skolem("out")
    lines.append(f"{tmp} = {fn}({', '.join(_args(state, eqn))})")
    return lines + _unpack(state, eqn.outvars, tmp)


def _jit(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    name = eqn.params.get("name", "")
    prefix = name if isinstance(name, str) and name.isidentifier() else "jitted"
    return _call_body(state, eqn, "jaxpr", "jax.jit", prefix)


def _closed_call(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    return _call_body(state, eqn, "call_jaxpr", None, "fn")


def _remat(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    wrap = f"lambda f: jax.checkpoint(f, prevent_cse={bool(eqn.params.get('prevent_cse', True))})"
    return _call_body(state, eqn, "jaxpr", f"({wrap})", "ckpt")


def _custom_call(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    key = "call_jaxpr" if "call_jaxpr" in eqn.params else "fun_jaxpr"
    return _call_body(state, eqn, key, None, "custom")


def _cond(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    idx, *ops = _args(state, eqn)
    lines, names = [], []
    for br in eqn.params["branches"]:
        jaxpr, consts = _sub(br)
        names.append(state.skolem("branch"))
        params = [state.str_name(v) for v in jaxpr.invars]
        lines += _def(state, jaxpr, consts, names[-1], params, [])
    tmp = state.skolem("out")
    lines.append(f"{tmp} = jax.lax.switch({idx}, ({', '.join(names)},), {', '.join(ops)})")
    return lines + _unpack(state, eqn.outvars, tmp)


def _alias_consts(state: SourcerorState, inner: list, outer: list) -> None:
    # Loop bodies are closures: their constant inputs read the enclosing function's names.
    for v, a in zip(inner, outer):
        state.alias(v, state.atom(a))


def _while(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    p = eqn.params
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cj, cc = _sub(p["cond_jaxpr"])
    bj, bc = _sub(p["body_jaxpr"])
    _alias_consts(state, cj.invars[:nc], eqn.invars[:nc])
    _alias_consts(state, bj.invars[:nb], eqn.invars[nc:nc + nb])
    cname, bname, carry = state.skolem("cond"), state.skolem("body"), state.skolem("carry")
    lines = _def(state, cj, cc, cname, [carry],
                 _unpack(state, cj.invars[nc:], carry), tuple_=False)
    lines += _def(state, bj, bc, bname, [carry], _unpack(state, bj.invars[nb:], carry))
    init = [state.atom(a) for a in eqn.invars[nc + nb:]]
    tmp = state.skolem("out")
    lines.append(f"{tmp} = jax.lax.while_loop({cname}, {bname}, ({', '.join(init)},))")
    return lines + _unpack(state, eqn.outvars, tmp)


def _scan(state: SourcerorState, eqn: JaxprEqn) -> list[str]:
    p = eqn.params
    nk, nc = scan_split(p)
    jaxpr, consts = _sub(p["jaxpr"])
    _alias_consts(state, jaxpr.invars[:nk], eqn.invars[:nk])
    name, carry, xs = state.skolem("body"), state.skolem("carry"), state.skolem("xs")
    prologue = _unpack(state, jaxpr.invars[nk:nk + nc], carry) \
        + _unpack(state, jaxpr.invars[nk + nc:], xs)
    outs = [state.atom(a) for a in jaxpr.outvars]
    ret = f"return ({', '.join(outs[:nc])},), ({', '.join(outs[nc:])},)"
    lines = _def(state, jaxpr, consts, name, [carry, xs], prologue, ret=ret.replace("(,)", "()"))
    init = ", ".join(state.atom(a) for a in eqn.invars[nk:nk + nc])
    xs_src = ", ".join(state.atom(a) for a in eqn.invars[nk + nc:])
    tmp = state.skolem("out")
    call = (f"jax.lax.scan({name}, ({init},), ({xs_src},), length={p['length']}, "
            f"reverse={bool(p['reverse'])}, unroll={value_source(p['unroll'], state)})")
    lines.append(f"{tmp} = {call.replace('(,)', '()')}")
    return lines + _unpack(state, eqn.outvars[:nc], f"{tmp}[0]") \
        + _unpack(state, eqn.outvars[nc:], f"{tmp}[1]")


for _name, _op in (("add", "+"), ("sub", "-"), ("mul", "*"), ("add_any", "+"), ("lt", "<"),
                   ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="), ("ne", "!=")):
    prim_to_python[_name] = _binop(_op)
for _name, _fn, _dt in (("reduce_sum", "jax.numpy.sum", True),
                        ("reduce_prod", "jax.numpy.prod", True),
                        ("reduce_max", "jax.numpy.max", False),
                        ("reduce_min", "jax.numpy.min", False),
                        ("reduce_and", "jax.numpy.all", False),
                        ("reduce_or", "jax.numpy.any", False)):
    prim_to_python[_name] = _reduce(_fn, _dt)
prim_to_python.update({
    "argmax": _argreduce("jax.lax.argmax"),
    "argmin": _argreduce("jax.lax.argmin"),
    "copy": _identity,
    "copy_p": _identity,
    "convert_element_type": _convert,
    "iota": _iota,
    "concatenate": _concatenate,
    "stack": _stack,
    "dynamic_slice": _dynamic_slice,
    "dynamic_update_slice": _dynamic_update_slice,
    "sort": _sort,
    "jit": _jit,
    "pjit": _jit,
    "closed_call": _closed_call,
    "core_call": _closed_call,
    "remat2": _remat,
    "checkpoint": _remat,
    "custom_jvp_call": _custom_call,
    "custom_vjp_call": _custom_call,
    "custom_vjp_call_jaxpr": _custom_call,
    "cond": _cond,
    "while": _while,
    "scan": _scan,
})

# Primitive names whose ``jax.lax`` function is named differently.
_LAX_NAMES = {"not": "bitwise_not", "and": "bitwise_and", "or": "bitwise_or",
              "xor": "bitwise_xor"}
# Parameters the ``jax.lax`` functions compute themselves (dropped when not accepted).
_DERIVED_PARAMS = frozenset({"sharding", "out_sharding", "update_jaxpr", "update_consts"})


def _is_default(param: inspect.Parameter, value: Any) -> bool:
    default = param.default
    if default is inspect.Parameter.empty or param.kind is param.POSITIONAL_OR_KEYWORD \
            and param.default is inspect.Parameter.empty:
        return False
    try:
        return type(default) is type(value) and bool(default == value)
    except Exception:  # arrays and other values without a plain truth value
        return False


def _generic(state: SourcerorState, eqn: JaxprEqn) -> str:
    """``jax.lax.<name>(*inputs, **params)`` when that function takes the params."""
    name = eqn.primitive.name
    fn = getattr(jax.lax, _LAX_NAMES.get(name, name), None)
    if not callable(fn) or isinstance(fn, type):
        raise UnsupportedPrimitiveError(
            f"No code printer for primitive {name!r}. Register one with "
            f"brainstate.transform.register_prim_handler({name!r}, handler).")
    accepted = inspect.signature(fn).parameters
    kw = []
    for k, v in eqn.params.items():
        if k in accepted:
            if _is_default(accepted[k], v):  # keep the printed call short
                continue
            kw.append(f"{k}={value_source(v, state)}")
        elif not (v is None or k in _DERIVED_PARAMS):
            raise UnsupportedPrimitiveError(
                f"No code printer for primitive {name!r}: jax.lax.{fn.__name__} does not take "
                f"its parameter {k!r}. Register one with "
                f"brainstate.transform.register_prim_handler({name!r}, handler).")
    return _assign(state, eqn, f"jax.lax.{fn.__name__}({', '.join(_args(state, eqn) + kw)})")


def _as_lines(out: Any, prim: str) -> list[str]:
    if isinstance(out, str):
        return out.splitlines()
    if isinstance(out, ast.AST):
        return ast.unparse(ast.fix_missing_locations(out)).splitlines()
    if isinstance(out, (list, tuple)):
        return [ln for item in out for ln in _as_lines(item, prim)]
    raise IRError(f"The code printer of primitive {prim!r} returned {type(out).__name__}; "
                  "expected a str of Python source, an ast.stmt, or a list of them.")


def _eqns_lines(state: SourcerorState, eqns: Any) -> list[str]:
    lines: list[str] = []
    for eqn in eqns:
        name = eqn.primitive.name
        handler = prim_to_python.get(name, _generic)
        lines += _as_lines(handler(state, eqn), name)
    return lines


# --- entry points ------------------------------------------------------------------------------

def _source(jaxpr: Jaxpr, consts: list, closed: bool, fn_name: str,
            state: SourcerorState) -> str:
    from brainstate.transform._ir_optim import constant_fold
    jaxpr = constant_fold(jaxpr)
    params = [state.str_name(v) for v in jaxpr.invars]
    # A bare jaxpr's constants are leading parameters (as in jax.core.eval_jaxpr). Only before
    # JAX 0.12: since then a jaxpr without const values has no constvars (they are its leading
    # invars, so parameters already) and every jaxpr counts as closed.
    if not closed:
        params = [state.str_name(v) for v in jaxpr.constvars] + params
        jaxpr = jaxpr.replace(constvars=[])
    lines = _def(state, jaxpr, consts, fn_name, params, [], tuple_=False)
    header = ["import jax", "import numpy as np"] + sorted(state.imports)
    src = "\n".join(header) + "\n\n" + "\n".join(lines) + "\n"
    try:
        compile(src, "<generated>", "exec")
    except SyntaxError as e:  # a handler printed invalid source
        raise IRError(f"Generated source does not parse ({e}); a primitive printer is "
                      f"wrong:\n{src}") from e
    return src


def _check_name(fn_name: Any) -> str:
    if not isinstance(fn_name, str) or not fn_name.isidentifier() or keyword.iskeyword(fn_name):
        raise IRValidationError(f"fn_name must be a Python identifier, got {fn_name!r}.")
    return fn_name


def jaxpr_to_python_code(jaxpr: Jaxpr | ClosedJaxpr,
                         fn_name: str = "generated_function") -> str:
    """Python source of a function computing what ``jaxpr`` computes.

    Parameters
    ----------
    jaxpr : Jaxpr or ClosedJaxpr
        The program. A ``ClosedJaxpr``'s constants are written into the source; a bare
        ``Jaxpr``'s constant variables become the leading parameters.
    fn_name : str
        Name of the generated function.

    Returns
    -------
    str
        Source beginning with ``import jax`` / ``import numpy as np`` and defining
        ``fn_name``. It returns one value for a one-output jaxpr, else a tuple.

    Raises
    ------
    UnsupportedPrimitiveError
        For a primitive with no printer (see :func:`register_prim_handler`).
    IRValidationError
        (a ``ValueError``) for a non-jaxpr input or an invalid ``fn_name``.

    Notes
    -----
    Constant subexpressions are folded first (``constant_fold``). ``cond`` prints as
    ``jax.lax.switch``, ``while`` as ``jax.lax.while_loop``, ``scan`` as ``jax.lax.scan``,
    ``jit`` as a nested ``jax.jit``; custom-derivative calls print their primal function only.
    Differs from upstream: ``cond``/``while``, closed jaxprs, constants and integer division
    are handled; unused inputs stay parameters; literals keep their dtype; a primitive without
    printer is tried as the ``jax.lax`` function of the same name.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> closed = jax.make_jaxpr(lambda x: jax.lax.cond(x > 0, jnp.sin, jnp.cos, x))(1.0)
    >>> src = brainstate.transform.jaxpr_to_python_code(closed, 'g')
    >>> 'jax.lax.switch' in src
    True
    >>> ns = {}
    >>> exec(src, ns)
    >>> bool(jnp.allclose(ns['g'](-1.0), jnp.cos(-1.0)))
    True
    """
    inner, consts, closed = ensure_jaxpr(jaxpr, "jaxpr_to_python_code")
    return _source(inner, consts, closed, _check_name(fn_name), SourcerorState())


def fn_to_python_code(fn: Callable, *args: Any, **kwargs: Any) -> str:
    """Python source of ``fn`` as traced for ``args``/``kwargs``.

    Parameters
    ----------
    fn : callable
        A JAX function; it may read and write brainstate ``State`` s.
    *args, **kwargs
        Example arguments (only shapes and dtypes matter).

    Returns
    -------
    str
        Source defining a function named like ``fn`` (``generated_function`` for a lambda).
        It takes the leaves of ``args`` and ``kwargs``; when they are not one array per
        argument it is wrapped to flatten ``(args, kwargs)`` itself. When ``fn`` uses states,
        the generated function takes the argument leaves then the values of the states ``fn``
        reads, and returns the output leaves then the new values of the states it writes (a
        comment at the top lists them).

    Raises
    ------
    TypeError
        When ``fn`` is not callable.
    UnsupportedPrimitiveError
        For a primitive with no printer.

    Notes
    -----
    Differs from upstream: functions using states are traced by this package's
    ``StatefulFunction`` (upstream bakes states in as constants and fails on writes).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> acc = brainstate.State(jnp.zeros(2))
    >>> def step(x):
    ...     acc.value = acc.value + x
    ...     return acc.value.sum()
    >>> src = brainstate.transform.fn_to_python_code(step, jnp.ones(2))
    >>> ns = {}
    >>> exec(src, ns)
    >>> total, new_acc = ns['step'](jnp.ones(2), jnp.zeros(2))
    >>> float(total), new_acc.tolist()
    (2.0, [1.0, 1.0])
    """
    if not callable(fn):
        raise TypeError(f"fn_to_python_code needs a callable, got {type(fn).__name__}.")
    from brainstate.transform._make_jaxpr import StatefulFunction

    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        name = "generated_function"
    sf = StatefulFunction(fn, return_only_write=True)
    closed = sf.get_jaxpr(*args, **kwargs)
    states = sf.get_states(*args, **kwargs)
    writes = sf.get_write_states(*args, **kwargs)
    state = SourcerorState()
    src = _source(closed.jaxpr, list(closed.consts), True, name, state)
    n_leaves = len(jax.tree_util.tree_leaves((args, kwargs)))
    if not states and (kwargs or n_leaves != len(args)):
        src = _wrap_leaves(src, name, state)
    if states:
        from brainstate._messages import describe_state
        note = ["# Inputs: the argument leaves, then the values of the states read:"]
        note += [f"#   {describe_state(s)}" for s in states]
        note += ["# Outputs: the result leaves, then the new values of the states written:"]
        note += [f"#   {describe_state(s)}" for s in writes]
        src = "\n".join(note) + "\n" + src
    return src


def _wrap_leaves(src: str, name: str, state: SourcerorState) -> str:
    inner = state.skolem(name)
    body = src.split("\n\n", 1)
    head, fn = body[0], body[1].replace(f"def {name}(", f"def {inner}(", 1)
    fn_lines = ["    " + ln for ln in fn.rstrip("\n").splitlines()]
    wrapper = [f"def {name}(*args, **kwargs):"] + fn_lines + \
        [f"    return {inner}(*jax.tree_util.tree_leaves((args, kwargs)))"]
    return head + "\n\n" + "\n".join(wrapper) + "\n"

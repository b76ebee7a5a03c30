# cython: language_level=3, embedsignature=True
"""Compiled core of brainstate: the work done on every state access.

Twin of the package ``brainstate/_core_py/`` (the reference): same names, same behaviour, same
messages (errors are built by the injected ``make_error``), one twin module per included file.
``brainstate/_core.pyi`` is the contract. Imports nothing of brainstate and nothing of jax:
``brainstate/_wiring.py`` hands it the callables it needs (``configure``, ``configure_hooks``),
and brainstate.graph's registry for the graph walks (``_core_refs.pxi`` to
``_core_decoder.pxi``) through ``configure_graph``.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject
from cpython.type cimport PyType_IsSubtype
from cpython.ref cimport Py_XDECREF
from cpython.unicode cimport PyUnicode_Tailmatch
from cpython.dict cimport PyDict_GetItem, PyDict_Size, PyDict_Next

import sys
import threading

cdef extern from "Python.h":
    ctypedef struct PyFrameObject
    ctypedef struct PyCodeObject
    PyFrameObject* PyEval_GetFrame()
    PyCodeObject* PyFrame_GetCode(PyFrameObject* frame)
    PyFrameObject* PyFrame_GetBack(PyFrameObject* frame)
    int PyFrame_GetLasti(PyFrameObject* frame)
    const Py_ssize_t PY_SSIZE_T_MAX
    int _generic_setattr "PyObject_GenericSetAttr"(object, object, PyObject*) except -1

CORE_ABI = 5


# The parts, in definition order (cdef classes and cdef declarations before their users where
# Cython needs them). Each names its pure twin, a module of brainstate/_core_py/.
include "_core_context.pxi"
include "_core_signature.pxi"
include "_core_state.pxi"
include "_core_hooks.pxi"
include "_core_calls.pxi"
include "_core_refs.pxi"
include "_core_walk_common.pxi"
include "_core_states_walk.pxi"
include "_core_encoder.pxi"
include "_core_decoder.pxi"

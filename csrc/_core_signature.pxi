# Signatures and checked tree writes (included by _core.pyx).
# Twin: brainstate/_core_py/_signature.py.

# --- signatures -----------------------------------------------------------------------------

cdef class Signature:
    """The abstract signature of a value: tree structure plus (shape, dtype) per leaf.

    A single-array value keeps ``treedef=None`` and is compared without flattening.
    """

    cdef readonly object treedef
    cdef readonly tuple specs
    cdef readonly object shape
    cdef readonly object dtype
    cdef object _walk           # C-only: None = not compiled yet, False = not walkable, or the
                                # root _WalkNode of the treedef (see _compile_walk)
    cdef list _avals            # per leaf: an aval known to match its spec (identity cache)

    def __init__(self, treedef, tuple specs, shape=None, dtype=None):
        self.treedef = treedef
        self.specs = specs
        self.shape = shape
        self.dtype = dtype

    cdef tuple _full(self):
        if self.treedef is None:
            return (None, ((self.shape, self.dtype),))
        return (self.treedef, self.specs)

    def __eq__(self, other):
        if not isinstance(other, Signature):
            return NotImplemented
        cdef Signature o = <Signature>other
        if self.treedef is None or o.treedef is None:
            # PyTreeDef.__eq__ raises TypeError on None; one single-array form and one full
            # form never match (a full form never describes exactly one array leaf)
            return (self.treedef is None and o.treedef is None
                    and self.shape == o.shape and self.dtype == o.dtype)
        return self.treedef == o.treedef and self.specs == o.specs

    def __hash__(self):
        return hash(self._full())

    def __repr__(self):
        if self.treedef is None:
            return f"Signature(shape={self.shape}, dtype={self.dtype})"
        return f"Signature(treedef={self.treedef}, leaves={list(self.specs)})"

    def __reduce__(self):
        return (Signature, (self.treedef, self.specs, self.shape, self.dtype))


# mirrors _core_py._signature._analyse
cdef Signature _analyse(object value, bint* has_tracer):
    """Signature of ``value``; sets ``has_tracer`` when a leaf is a JAX tracer."""
    has_tracer[0] = False
    if type(value) is _array_type:
        aval = _aval_of(value)
        return Signature(None, (), aval.shape, aval.dtype)
    leaves, treedef = _tree_flatten(value)
    cdef list specs = []
    for leaf in <list>leaves:
        if type(leaf) is _array_type:  # jax arrays: already canonical, skip the Python call
            aval = _aval_of(leaf)
            specs.append((aval.shape, aval.dtype))
            continue
        if isinstance(leaf, _tracer_type):
            has_tracer[0] = True
        specs.append(_leaf_spec(leaf))
    if len(specs) == 1 and type(specs[0]) is tuple and treedef.num_nodes == 1:
        # a bare array-like leaf: the single form, equal to what a jax array gives
        return Signature(None, (), specs[0][0], specs[0][1])
    return Signature(treedef, tuple(specs))


# mirrors _core_py._signature._matches for a tree signature; 1 = match, -1 = mismatch
cdef int _matches_tree(Signature sig, object value, bint* has_tracer) except -2:
    # Compares leaf by leaf against the stored specs instead of building a Signature.
    cdef list leaves
    cdef tuple specs = sig.specs
    cdef Py_ssize_t i, n
    has_tracer[0] = False
    if type(value) is _array_type:
        return -1  # a tree signature never equals the single-array form
    root = sig._walk
    if root is None:
        root = _compile_walk(sig)
    if root is not False:
        if _walk_node(<_WalkNode>root, value, sig, has_tracer) == 1:
            return 1
        has_tracer[0] = False  # the flatten below decides (and phrases nothing: same verdict)
    leaves_obj, treedef = _tree_flatten(value)
    leaves = <list>leaves_obj
    n = len(leaves)
    if n != len(specs) or not (treedef == sig.treedef):
        return -1
    for i in range(n):
        leaf = leaves[i]
        spec = specs[i]
        if type(leaf) is _array_type and type(spec) is tuple:
            aval = _aval_of(leaf)
            if not (aval.shape == (<tuple>spec)[0] and _same_dtype(aval.dtype, (<tuple>spec)[1])):
                return -1
            continue
        if isinstance(leaf, _tracer_type):
            has_tracer[0] = True
        if not (_leaf_spec(leaf) == spec):
            return -1
    return 1


# --- checked tree writes without JAX's flatten -------------------------------------------------
#
# Flattening a dict of 10 arrays costs ~6 us, most of a checked tree write. A tree signature
# made only of plain containers is compiled once into _WalkNodes, and a write walks the new
# value along them. The walk only ever confirms a match: anything it is not sure of (another
# container type, a dict subclass, a namedtuple, a leaf type JAX might treat as a node, any
# difference) sends the write to the flatten path above, which gives the verdict and, through
# the slow path, the words. So the walk can make a write faster, never change its outcome.

cdef enum:
    _W_LEAF = 0
    _W_NONE = 1
    _W_DICT = 2
    _W_LIST = 3
    _W_TUPLE = 4


cdef class _WalkNode:
    """One node of a compiled tree signature (C-only, built by ``_compile_walk``)."""

    cdef int kind
    cdef Py_ssize_t index       # a leaf's position in Signature.specs
    cdef tuple keys             # a dict's keys in JAX's (sorted) order, all exact str
    cdef tuple children         # _WalkNodes, in JAX's flatten order


cdef object _compile_walk(Signature sig):
    """The root _WalkNode of ``sig`` (cached on it), or False when it cannot be walked."""
    cdef list count = [0]
    root = None
    try:
        root = _compile_node(sig.treedef, count, 0)
    except (AttributeError, TypeError, ValueError):  # a PyTreeDef API this code does not know
        root = None
    if root is None or count[0] != len(sig.specs) or count[0] != sig.treedef.num_leaves:
        sig._walk = False
        return False
    sig._avals = [None] * count[0]
    sig._walk = root
    return root


cdef int _MAX_WALK_DEPTH = 256  # deeper signatures are flattened: C recursion stays bounded


cdef object _compile_node(object treedef, list count, int depth):
    # None when the node (or one below it) is not a plain container: the walk would have to
    # reproduce a custom flatten (namedtuple, OrderedDict, defaultdict, registered classes)
    if depth > _MAX_WALK_DEPTH:
        return None
    cdef _WalkNode node = _WalkNode.__new__(_WalkNode)
    data = treedef.node_data()
    if data is None:
        node.kind = _W_LEAF
        node.index = count[0]
        count[0] += 1
        return node
    node_type, aux = data
    if node_type is type(None):
        node.kind = _W_NONE
        return node
    if node_type is dict:
        # JAX sorts the keys; exact str keys sort one way whatever the insertion order
        # (mixed or exotic keys are left to JAX, which may refuse to sort them)
        for k in aux:
            if type(k) is not str:
                return None
        node.kind = _W_DICT
        node.keys = tuple(aux)
    elif node_type is list:
        node.kind = _W_LIST
    elif node_type is tuple:
        node.kind = _W_TUPLE
    else:
        return None
    cdef list children = []
    for child_def in treedef.children():
        child = _compile_node(child_def, count, depth + 1)
        if child is None:
            return None
        children.append(child)
    node.children = tuple(children)
    if node.kind == _W_DICT and len(node.keys) != len(node.children):
        return None
    return node


cdef int _walk_node(_WalkNode node, object x, Signature sig, bint* has_tracer) except -2:
    # 1 = x flattens to this node's structure with matching leaves; 0 = not sure (flatten).
    cdef tuple children = node.children
    cdef Py_ssize_t i, n
    cdef Py_ssize_t pos = 0
    cdef PyObject* k
    cdef PyObject* item
    cdef int kind = node.kind
    if kind == _W_LEAF:
        return _walk_leaf(node.index, x, sig, has_tracer)
    if kind == _W_NONE:
        return 1 if x is None else 0
    if kind == _W_DICT:
        if type(x) is not dict:  # a subclass is a leaf to JAX unless registered: flatten
            return 0
        n = len(children)
        if PyDict_Size(x) != n:
            return 0
        # only exact str keys: a key that merely compares equal to a stored one could sort
        # (or compare) differently in JAX's flatten
        while PyDict_Next(x, &pos, &k, NULL):
            if type(<object>k) is not str:
                return 0
        for i in range(n):
            item = PyDict_GetItem(x, (<tuple>node.keys)[i])  # borrowed; str keys cannot raise
            if item == NULL:
                return 0
            if _walk_node(<_WalkNode>children[i], <object>item, sig, has_tracer) != 1:
                return 0
        return 1
    n = len(children)
    if kind == _W_LIST:
        if type(x) is not list or len(<list>x) != n:
            return 0
        for i in range(n):
            if _walk_node(<_WalkNode>children[i], (<list>x)[i], sig, has_tracer) != 1:
                return 0
        return 1
    # _W_TUPLE; a namedtuple is another node
    if type(x) is not tuple or len(<tuple>x) != n:
        return 0
    for i in range(n):
        if _walk_node(<_WalkNode>children[i], (<tuple>x)[i], sig, has_tracer) != 1:
            return 0
    return 1


cdef int _walk_leaf(Py_ssize_t i, object leaf, Signature sig, bint* has_tracer) except -2:
    # Only types JAX always treats as leaves; anything else may be a registered node (a
    # Quantity has .shape and .dtype too) and goes to the flatten.
    spec = sig.specs[i]
    t = type(leaf)
    if t is _array_type:
        if type(spec) is not tuple:
            return 0
        aval = _aval_of(leaf)
        if aval is (<list>sig._avals)[i]:  # avals are immutable and shared: see _check
            return 1
        if aval.shape == (<tuple>spec)[0] and _same_dtype(aval.dtype, (<tuple>spec)[1]):
            (<list>sig._avals)[i] = aval
            return 1
        return 0
    if not (t is float or t is int or t is bool or t is complex or t is _np_ndarray):
        if not isinstance(leaf, _tracer_type):
            return 0
        has_tracer[0] = True
    return 1 if _leaf_spec(leaf) == spec else 0


def make_signature(value):
    """The abstract signature of ``value``."""
    cdef bint t
    return _analyse(value, &t)


# mirrors _core_py._signature._same_structure
cdef bint _same_structure(Signature a, Signature b) except -1:
    # the single-array form stands for the leaf treedef
    if a.treedef is None:
        return b.treedef is None or (b.treedef.num_nodes == 1 and b.treedef.num_leaves == 1)
    if b.treedef is None:
        return a.treedef.num_nodes == 1 and a.treedef.num_leaves == 1
    return a.treedef == b.treedef


cdef inline bint _same_dtype(object a, object b):
    return a is b or a == b


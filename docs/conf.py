"""Sphinx configuration of the brainstate documentation site.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (from the repo root,
with the package installed). Every code example on the pages runs in the test suite
(``tests/test_docs.py``); the API reference is generated from the docstrings, whose examples
run in ``tests/test_docstrings.py``.
"""

from __future__ import annotations

import brainstate

project = "brainstate"
author = "the brainstate authors"
copyright = "the brainstate authors, Apache-2.0"
release = brainstate.__version__
version = release.split("+")[0]

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "check_rendered.py"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The docstrings are numpy-style; signatures keep their annotations, descriptions keep theirs.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}

# A signature annotation such as ``type`` or ``name`` also names attributes of several
# classes (``GraphDef.type``, ``State.name``); Sphinx then finds more than one target for the
# annotation and warns. The reference is left unlinked, which is right for a builtin.
suppress_warnings = ["ref.python"]

html_theme = "furo"
html_title = f"brainstate {version}"
html_static_path: list[str] = []
html_show_sourcelink = False

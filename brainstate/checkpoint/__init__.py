"""Checkpoints: save a model's states and restore them into a model built by the same code.

:func:`save` and :func:`load` work on modules and state collections (``_api``); the file layer
underneath (:func:`write_checkpoint`, :func:`read_checkpoint`) stores named arrays of any JAX
dtype in a safetensors-compatible file (``_format``).
"""

from brainstate.checkpoint._api import CheckpointMismatchError, LoadResult, load, save
from brainstate.checkpoint._format import (
    FORMAT_VERSION,
    CheckpointFormatError,
    CheckpointRecord,
    read_checkpoint,
    write_checkpoint,
)

__all__ = [
    "save",
    "load",
    "LoadResult",
    "CheckpointMismatchError",
    "FORMAT_VERSION",
    "CheckpointFormatError",
    "CheckpointRecord",
    "read_checkpoint",
    "write_checkpoint",
]

for _name in ("save", "load"):
    globals()[_name].__module__ = "brainstate.checkpoint"
del _name

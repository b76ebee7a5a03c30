"""Checkpoints: save and restore a model's states (file layer in ``_format``)."""

from brainstate.checkpoint._format import (
    FORMAT_VERSION,
    CheckpointFormatError,
    CheckpointRecord,
    read_checkpoint,
    write_checkpoint,
)

__all__ = [
    "FORMAT_VERSION",
    "CheckpointFormatError",
    "CheckpointRecord",
    "read_checkpoint",
    "write_checkpoint",
]

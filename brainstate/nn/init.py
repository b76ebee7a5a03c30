"""Initializers (``nn.init``): arrays drawn from ``brainstate.random`` for parameters and states."""

from __future__ import annotations

__all__: list[str] = []

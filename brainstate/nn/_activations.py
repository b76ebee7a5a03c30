"""Activation functions (``nn.relu`` ... ``nn.sparse_sigmoid``)."""

from __future__ import annotations

__all__: list[str] = []

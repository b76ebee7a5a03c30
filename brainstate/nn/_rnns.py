"""Recurrent cells: ``RNNCell``, ``ValinaRNNCell``, ``GRUCell``, ``MGUCell``, ``LSTMCell``, ``URLSTMCell``."""

from __future__ import annotations

__all__: list[str] = []

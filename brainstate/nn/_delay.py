"""Delays held in state: ``Delay``, ``DelayAccess``, ``StateWithDelay``, ``InterpolationRegistry``."""

from __future__ import annotations

__all__: list[str] = []

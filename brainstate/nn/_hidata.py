"""``HiData``: hierarchical data containers."""

from __future__ import annotations

__all__: list[str] = []

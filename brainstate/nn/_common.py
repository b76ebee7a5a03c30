"""Container and wrapper modules: ``Sequential``, ``ElementWiseBlock``, ``EnvironContext``, ``Vmap``, ``Map``."""

from __future__ import annotations

__all__: list[str] = []

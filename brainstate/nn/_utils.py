"""Model utilities: ``count_parameters``, ``clip_grad_norm``."""

from __future__ import annotations

__all__: list[str] = []

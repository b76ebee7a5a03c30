"""Linear layers: ``Linear``, ``ScaledWSLinear``, ``SignedWLinear``, ``SparseLinear``, ``AllToAll``, ``OneToOne``, ``LoRA``."""

from __future__ import annotations

__all__: list[str] = []

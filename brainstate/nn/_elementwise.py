"""Element-wise modules: the module forms of the activation functions (``ReLU`` ... ``SpikeBitwise``)."""

from __future__ import annotations

__all__: list[str] = []

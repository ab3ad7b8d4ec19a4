"""heatmap: plan heat networks that carry excess heat to the people and plants who can use it."""

from __future__ import annotations

__version__ = "0.1.0"

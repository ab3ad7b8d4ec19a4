"""Bundled reference tables and scenarios, installed as the package data ``heatmap.data`` (see heatmap.settings)."""

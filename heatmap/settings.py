"""Global settings of the heatmap package (not of a scenario).

Scenario assumptions (temperatures, limits, costs, economics) live in the scenario file and are reported
in every summary; this module only holds where the package finds its own files and caches.

Attributes
----------
layers_dir : pathlib.Path
    Folder of the declarative layer definitions read by the web map and the QGIS style writer.
data_dir : pathlib.Path
    Folder of the bundled reference data (pipe catalogue, demand tables) and scenarios.
web_assets_dir : pathlib.Path
    Folder where ``npm ci`` installs the web-map assets (Leaflet) that the map inlines.
cache_dir : pathlib.Path
    Folder for cached OpenStreetMap downloads (overridable with the ``HEATMAP_CACHE_DIR`` variable).
osm_timeout_s : float
    Seconds before a live OpenStreetMap request gives up.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent

layers_dir: Path = _ROOT / "layers"
data_dir: Path = _ROOT / "data"
web_assets_dir: Path = Path(__file__).resolve().parent / "_assets" / "node_modules"
cache_dir: Path = Path(os.environ.get("HEATMAP_CACHE_DIR", Path.home() / ".cache" / "heatmap"))
osm_timeout_s: float = 8.0

"""Global settings of the heatmap package (not of a scenario).

Scenario assumptions (temperatures, limits, costs, economics) live in the scenario file and are reported
in every summary; this module only holds where the package finds its own files and caches.

The package's own files are package data, found with :mod:`importlib.resources` wherever heatmap is
installed: the project's top-level ``layers/`` and ``data/`` folders install as ``heatmap.layer_definitions``
and ``heatmap.data`` (an editable install points at the folders of the checkout), the Leaflet files as
``heatmap/_assets/node_modules`` (see ``[tool.setuptools]`` in pyproject.toml).

Attributes
----------
layers_dir : pathlib.Path
    Folder of the declarative layer definitions read by the web map and the QGIS style writer.
data_dir : pathlib.Path
    Folder of the bundled reference data (pipe catalogue, demand tables) and scenarios
    (``data_dir / "scenarios" / "helsinki_centre.yaml"`` is the bundled scenario).
web_assets_dir : pathlib.Path
    Folder where ``npm ci`` installs the web-map assets (Leaflet) that the map inlines.
cache_dir : pathlib.Path
    Folder for cached OpenStreetMap downloads (overridable with the ``HEATMAP_CACHE_DIR`` variable).
osm_timeout_s : float
    Seconds before a live OpenStreetMap request gives up.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def _package_folder(package: str) -> Path:
    """Return the folder of an installed package (heatmap reads its data as files: it is not run zipped)."""
    folder = files(package)
    if not isinstance(folder, Path):
        raise ImportError(f"heatmap reads its package data as files; install it unzipped ({package} is in {folder})")
    return folder


layers_dir: Path = _package_folder("heatmap.layer_definitions")
data_dir: Path = _package_folder("heatmap.data")
web_assets_dir: Path = _package_folder("heatmap") / "_assets" / "node_modules"
cache_dir: Path = Path(os.environ.get("HEATMAP_CACHE_DIR", Path.home() / ".cache" / "heatmap"))
osm_timeout_s: float = 8.0

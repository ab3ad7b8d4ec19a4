"""Checks every output folder passes: README.txt lists its files, GeoJSON of each layer, tidy and safe CSVs."""

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from heatmap.io.exports import README
from heatmap.io.output_folder import MARKER
from heatmap.io.tables import FORMULA_STARTS


def readme_entries(folder: Path) -> list[str]:
    """The paths README.txt lists: the first line of each block after the title and the introduction."""
    blocks = (folder / README).read_text(encoding="utf-8").split("\n\n")
    entries = [block.splitlines()[0] for block in blocks[2:] if block.strip()]
    assert all(not e.startswith(" ") for e in entries), entries
    return [e.split(" (", 1)[0] for e in entries]


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def assert_readme_lists_exactly_the_files(folder: Path) -> None:
    listed = readme_entries(folder)
    assert len(listed) == len(set(listed))
    assert set(listed) == files_in(folder)
    text = (folder / README).read_text(encoding="utf-8")
    assert "(no description)" not in text
    marker = json.loads((folder / MARKER).read_text())
    assert README in marker["files"]


def csv_cells(folder: Path):
    for path in sorted(folder.rglob("*.csv")):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        yield path, [str(c) for c in table.columns], table


def assert_no_formula_cells(folder: Path) -> int:
    checked = 0
    for path, columns, table in csv_cells(folder):
        for text in [*columns, *table.to_numpy().ravel().tolist()]:
            if text.startswith(FORMULA_STARTS):
                try:
                    float(text)
                except ValueError:
                    pytest.fail(f"{path}: cell {text!r} would run as a formula")
            # one value a cell: no Python list, tuple, dict or set written as text
            assert not (text[:1] and text[:1] in "[{(" and text[-1:] in "]})"), f"{path}: {text!r}"
            checked += 1
    return checked


def assert_geojson_matches_gpkg(folder: Path) -> int:
    """Every vector layer of every GeoPackage has its GeoJSON, in EPSG:4326, with the same features."""
    n = 0
    for gpkg in folder.rglob("*.gpkg"):
        for name, geometry_type in pyogrio.list_layers(gpkg):
            if geometry_type is None:  # layer_styles, a table
                assert not (gpkg.parent / "geojson" / f"{name}.geojson").exists()
                continue
            layer = gpd.read_file(gpkg, layer=name)
            path = gpkg.parent / "geojson" / f"{name}.geojson"
            back = gpd.read_file(path)
            assert back.crs.to_epsg() == 4326 and len(back) == len(layer), path
            raw = json.loads(path.read_text(encoding="utf-8"))
            assert "crs" not in raw and raw["type"] == "FeatureCollection"  # RFC 7946: WGS84 only, no crs member
            if len(layer):
                expected = layer.geometry.to_crs(4326).to_numpy()
                # coordinates rounded to 1e-7 degrees (about 1 cm)
                assert shapely.equals_exact(back.geometry.to_numpy(), expected, tolerance=2e-7).all(), path
                shared = [c for c in layer.columns if c != "geometry" and c in back.columns]
                assert len(shared) >= len(layer.columns) - 1 - 2, (path, set(layer.columns) - set(back.columns))
            n += 1
    return n

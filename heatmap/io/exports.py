"""Exports for officials and GIS staff: GeoJSON of every layer, tables with coordinates, a README of each folder.

Every output folder heatmap writes (:func:`heatmap.io.output_folder.write_atomically`) is finished by
:func:`finish_folder`, after the command wrote its own files and before the folder is swapped in:

- each vector layer of each GeoPackage is written again as GeoJSON (RFC 7946: EPSG:4326, longitude before
  latitude, coordinates rounded to :data:`GEOJSON_DECIMALS` decimals, about 1 cm) into ``geojson/`` beside it,
  read back from the GeoPackage so that both hold the same features;
- ``README.txt`` lists every file of the folder (subfolders included) with a line on what it holds; for a
  GeoPackage each layer with its title and feature count, for a GeoJSON its feature count (as written), for a
  CSV its rows and columns. It is written last, from what is in the folder, so it describes what is really there.

The tables written for spreadsheets (:func:`consumers_table`, :func:`pipe_quantities`) are tidy: one value a
cell, units in the column names, geometry as longitude/latitude and WKT in EPSG:4326.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import logging
import sqlite3
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from heatmap import __version__
from heatmap.io import forked

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

logger = logging.getLogger(__name__)

README = "README.txt"
GEOJSON_FOLDER = "geojson"
GEOJSON_DECIMALS = 7
"""Decimals of the GeoJSON coordinates in degrees (1e-7° is about 1 cm; RFC 7946 leaves it to the writer)."""
_GDAL_DECIMALS = 9
"""Decimals GDAL writes (its ``xy_coordinate_resolution``): the coordinates come rounded to
:data:`GEOJSON_DECIMALS`, but for a feature that rounding would collapse (a pipe of a few millimetres)."""
WKT_DECIMALS = 7
"""Decimals of the WKT and longitude/latitude columns of the tables, degrees."""

FILE_DESCRIPTIONS: dict[str, str] = {
    "README.txt": "this list of the folder's files",
    ".heatmap-output": "marker: this folder was written by heatmap (JSON: version, time, the run's files)",
    "plan.gpkg": "the plan's layers in EPSG:3067, each styled for QGIS (drag the file into QGIS)",
    "demand.gpkg": "the buildings' demand and the potential areas in the metric CRS, each styled for QGIS",
    "matches.gpkg": "the ranked source–sink pairs as lines, styled for QGIS",
    "pair_lines.gpkg": "the straight lines between the chosen pairs' sites",
    "map.html": "interactive web map (opens offline in a browser): layers, popups with units, legend",
    "report.html": "the plan for a city board on one page that prints on A4: key figures and the prices they rest "
    "on, the network, costs, pipes by DN, losses, buildings left out and why, every assumption",
    "heat_density.qml": "QGIS style of heat_density.tif (its classes, the web map's)",
    "overview.png": "the concepts side by side: cost of heat, excess-heat share and CO₂",
    "summary.json": "totals, checks, exclusions with reasons and every assumption with its value and origin",
    "consumers.csv": "one row per consumer of plan.gpkg: its attributes, a point inside it (lon_deg, lat_deg) and "
    "its geometry as WKT, in EPSG:4326",
    "pipe_quantities.csv": "bill of quantities: route (trench) and pipe length, number of pipes and cost by DN and "
    "kind (route length summed = figures.route_length_m of summary.json)",
    "trade.csv": "the heat trade of the year of operation, per company and hour",
    "operating_hours.csv": "the hours of the year simulated on the network, one row each",
    "operating_consumers.csv": "every consumer in every simulated hour",
    "operating_sources.csv": "every source in every simulated hour",
    "heat_density.tif": "heat density raster, MWh per hectare and year (GeoTIFF, 0 = no demand)",
    "heat_profile.csv": "the buildings' summed hourly heat load over the year, kW",
    "left_out_buildings.csv": "every building given no demand, with the reason, a point inside it (lon_deg, lat_deg) "
    "and its geometry as WKT, in EPSG:4326",
    "buildings.csv": "one row per heated building of demand.gpkg with its demand, a point inside it "
    "(lon_deg, lat_deg) and its geometry as WKT, in EPSG:4326",
    "matches.csv": "every source–sink pair with its route, energy matched and € per MWh, ranked",
    "comparison.csv": "the concepts side by side: energy, costs, emissions",
    "units.csv": "every unit (source, boiler, storage) of every concept over the year",
    "impact.csv": "regional impact of each concept: energy, CO₂, money",
    "calibration.csv": "the demand model checked against the given annual figures",
    "dispatch_*.csv": "hourly least-cost dispatch of one concept over the year, kW",
    "dispatch_*.png": "plot of one concept's dispatch over the year",
    "duration_*.png": "heat-load duration curve of one concept and who covers it",
    "variants.csv": "every finished variant of the ensemble: its inputs and each concept's key figures, one row per "
    "variant and concept",
    "distribution.csv": "each concept's key figures over the ensemble's variants: mean, std, min, p5…p95, max",
    "cheapest.csv": "how often each concept has the lowest total cost among the ensemble's variants",
    "sensitivity.csv": "each input's Spearman rank correlation with each key figure and its linear swing (the "
    "figure's change over the input's range), per concept",
    "failures.csv": "every variant of the ensemble that failed, with its inputs and error",
    "tornado.png": "which input moves each concept's NPV most: the linear swing over the input's range, with its "
    "rank correlation",
}
"""One line on each file heatmap writes, by name (``*`` matches any text)."""

BESIDE_DESCRIPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "report.html": (
        ("plan.gpkg", FILE_DESCRIPTIONS["report.html"]),
        (
            "overview.png",
            "the concept study for a city board on pages that print on A4 (self-contained): the demand and the year, "
            "the concepts side by side (cost of heat, costs, investment, excess-heat share, CO₂, regional impact), "
            "each unit's heat, the sources, each concept's dispatch and duration plots, the planned network (where "
            "there is one) and the ranked matches of a study, every assumption with its origin",
        ),
        (
            "matches.csv",
            "the matching for a city board on pages that print on A4: key figures, the ranked pairs, the pairs left "
            "out and why, the chosen pairs planned (where any), every assumption with its origin",
        ),
        (
            "demand.gpkg",
            "the demand map for a city board on pages that print on A4: key figures, the heat density drawn in its "
            "classes with the potential areas, the classes with their counts, the buildings left out and why, the "
            "check against statistics, every assumption with its origin",
        ),
        ("comparison.png", "the plans compared on one page that prints on A4: the table and the chart"),
    ),
    "comparison.csv": (
        ("overview.png", FILE_DESCRIPTIONS["comparison.csv"]),
        ("comparison.png", "the plans side by side: one row per plan with its key figures, from its own summary.json"),
    ),
}
"""Descriptions of a file name several commands write, by a file beside it that tells which command wrote it (the
first found applies; none found: :data:`FILE_DESCRIPTIONS`)."""

LAYER_DESCRIPTIONS: dict[str, str] = {
    "layer_styles": "QGIS styles of the layers (QGIS applies them when the layer is opened)",
    "pair_lines": "straight lines between the sites of the chosen source–sink pairs",
}
"""Tables of a GeoPackage that are no map layer of ``layers/`` (which give the other layers' titles)."""

_NO_DESCRIPTION = "(no description)"


def file_description(relative: str, folder: Path | None = None) -> str:
    """Return the one-line description of an output file, by its name (``(no description)`` if unknown).

    Given the output ``folder``, a name several commands write is described by the file beside it
    (:data:`BESIDE_DESCRIPTIONS`).
    """
    name = relative.rsplit("/", 1)[-1]
    if folder is not None:
        here = (Path(folder) / relative).parent
        for beside, text in BESIDE_DESCRIPTIONS.get(name, ()):
            if (here / beside).is_file():
                return text
    for pattern, text in FILE_DESCRIPTIONS.items():
        if fnmatch.fnmatchcase(name, pattern):
            return text
    return _NO_DESCRIPTION


def _layer_titles() -> dict[str, str]:
    from heatmap.maps.layers import load_layer_specs

    return {name: spec.title for name, spec in load_layer_specs().items()}


class GpkgTable(NamedTuple):
    """A table of a GeoPackage (:func:`gpkg_contents`)."""

    name: str
    kind: str
    """``features`` or ``attributes``."""
    title: str | None
    rows: int
    columns: int
    """Its columns, the feature id and geometry included."""


def gpkg_contents(path: Path) -> list[GpkgTable]:
    """Return each table of a GeoPackage: name, data type, title, rows and columns."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
        rows = con.execute("SELECT table_name, data_type, identifier FROM gpkg_contents ORDER BY rowid").fetchall()
        out = []
        for name, kind, title in rows:
            quoted = '"' + str(name).replace('"', '""') + '"'
            (count,) = con.execute(f"SELECT count(*) FROM {quoted}").fetchone()
            columns = len(con.execute(f"PRAGMA table_info({quoted})").fetchall())
            title = None if title in (None, "", name) else str(title)
            out.append(GpkgTable(str(name), str(kind), title, int(count), columns))
    return out


GEOJSON_PROCESSES = 2
"""Processes writing a folder's GeoJSON beside the command (:func:`start_geojson_layers`)."""
_PENDING: dict[Path, tuple[Any, list[Any], Path]] = {}
"""Output folders whose GeoJSON is being written in forked processes: folder → (pool, futures, its GeoPackage)."""


def start_geojson_layers(folder: Path, gpkg: Path) -> bool:
    """Start writing the GeoJSON of ``gpkg``'s layers (:func:`write_geojson_layers`) in processes forked from this one.

    The layers are dealt out to :data:`GEOJSON_PROCESSES` processes by the values they hold, features × columns
    (the largest first, to the least loaded): GDAL's time to write a layer grows with both. The command goes on
    writing its other files meanwhile; :func:`finish_folder` waits for them (or, where the command failed,
    :func:`abandon_geojson`). Where no process can be forked (:func:`heatmap.io.forked.why_not_fork`) nothing starts
    and :func:`finish_folder` writes the GeoJSON itself. Returns whether it started.
    """
    why_not = forked.why_not_fork()
    if why_not:
        logger.debug("GeoJSON written after the other files: %s", why_not)
        return False
    values = {t.name: (t.rows + 1.0) * t.columns for t in gpkg_contents(gpkg) if t.kind == "features"}
    if not values:
        return False
    batches = forked.deal_out(values, GEOJSON_PROCESSES)
    pool = forked.process_pool(len(batches))
    futures = [pool.submit(write_geojson_layers, folder, gpkgs=[gpkg], layers=b) for b in batches]
    _PENDING[folder] = (pool, futures, gpkg)
    return True


def abandon_geojson(folder: Path) -> None:
    """Wait for a GeoJSON writing started for ``folder`` (a command that failed: the folder is to be removed)."""
    pending = _PENDING.pop(folder, None)
    if pending is not None:
        pending[0].shutdown(wait=True, cancel_futures=True)


def write_geojson_layers(
    folder: Path, *, gpkgs: Iterable[Path] | None = None, layers: Iterable[str] | None = None
) -> dict[Path, int]:
    """Write every vector layer of every GeoPackage under ``folder`` as GeoJSON into ``geojson/`` beside it.

    Each layer is read back from its GeoPackage and written as ``geojson/<layer>.geojson`` (RFC 7946:
    EPSG:4326, coordinates rounded to :data:`GEOJSON_DECIMALS` decimals), so both hold the same features.

    Parameters
    ----------
    folder
        The output folder being written.
    gpkgs
        Its GeoPackages to export (default: every one under ``folder``).
    layers
        Only the layers of these names (default: every one).

    Returns
    -------
    dict
        Each GeoJSON file written → its number of features.

    Raises
    ------
    RuntimeError
        If two GeoPackages of one folder hold a layer of the same name (their GeoJSON would collide).
    """
    import pyogrio

    written: dict[Path, int] = {}
    wanted = None if layers is None else set(layers)
    for gpkg in sorted(folder.rglob("*.gpkg") if gpkgs is None else gpkgs):
        if GEOJSON_FOLDER in gpkg.relative_to(folder).parts:
            continue
        target = gpkg.parent / GEOJSON_FOLDER
        for name, kind, *_ in gpkg_contents(gpkg):
            if kind != "features" or (wanted is not None and name not in wanted):
                continue
            path = target / f"{name}.geojson"
            if path.exists():
                raise RuntimeError(f"internal error: two GeoPackages in {gpkg.parent} hold a layer {name!r}")
            target.mkdir(exist_ok=True)
            frame = pyogrio.read_dataframe(gpkg, layer=name, use_arrow=True)
            if frame.crs is not None:
                frame = frame.to_crs(4326)
            frame = frame.set_geometry(_rounded(frame.geometry.to_numpy()), crs=frame.crs)
            pyogrio.write_dataframe(  # rounded above: GDAL's rounding would turn a line of a few mm into a point
                frame,
                path,
                driver="GeoJSON",
                layer=name,
                use_arrow=True,  # the same bytes as without, about 10 % sooner
                layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": _GDAL_DECIMALS, "WRITE_BBOX": "YES"},
            )
            written[path] = len(frame)
    logger.info("Wrote %d GeoJSON layers under %s", len(written), folder)
    return written


def _rounded(geometry: np.ndarray) -> np.ndarray:
    """Round coordinates to :data:`GEOJSON_DECIMALS` decimals; a geometry that would collapse keeps its own."""
    import shapely

    rounded = shapely.transform(geometry, lambda xy: np.round(xy, GEOJSON_DECIMALS))
    collapsed = ((shapely.length(rounded) == 0) & (shapely.length(geometry) > 0)) | (
        (shapely.area(rounded) == 0) & (shapely.area(geometry) > 0)
    )
    return np.where(collapsed, geometry, rounded)


def _csv_shape(path: Path) -> tuple[int, list[str]]:
    """Rows (not counting the header) and column names of a CSV written by heatmap."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = sum(1 for _ in reader)
    return rows, header


def _geojson_count(path: Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(path)["features"])


def _count(n: int, noun: str) -> str:
    return f"{n:,d} {noun}{'' if n == 1 else 's'}"


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=110, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)


def write_readme(
    folder: Path, *, title: str = "", marker: str | None = None, features: Mapping[Path, int] | None = None
) -> Path:
    """Write ``README.txt`` into ``folder``: every file in it (and its subfolders), one line on each.

    For a GeoPackage each table with its title and rows (features of a layer); for a GeoJSON its features;
    for a CSV its rows and columns. Written from what is in the folder: call it after every other file.

    Parameters
    ----------
    folder
        The output folder being written.
    title
        First line: what wrote the folder (e.g. ``heatmap plan data/scenarios/helsinki_centre.yaml``).
    marker
        The name of a file that will be written after the README (listed as if present).
    features
        The features of GeoJSON files just written, by path (as :func:`write_geojson_layers` returns them); a
        GeoJSON not given is read to count them.

    Returns
    -------
    pathlib.Path
        The README.
    """
    titles = _layer_titles()
    layer_gpkg = {  # GeoJSON (relative path) → the GeoPackage it was read from
        f"{(gpkg.parent / GEOJSON_FOLDER / name).relative_to(folder).as_posix()}.geojson": gpkg.name
        for gpkg in folder.rglob("*.gpkg")
        for name, kind, *_ in gpkg_contents(gpkg)
        if kind == "features"
    }
    files = sorted(
        {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        | {README}
        | ({marker} if marker else set())
    )
    lines = [
        f"Written by heatmap {__version__}" + (f": {title}" if title else ""),
        "",
        "The files of this folder (paths relative to it), what each holds. Coordinates: EPSG:3067 (metres) in the",
        "GeoPackages and GeoTIFF, EPSG:4326 (degrees, longitude first) in the GeoJSON files and the CSV columns",
        "lon_deg, lat_deg and wkt. Units are in the column names (_m metres, _kw kW, _mwh MWh, _eur euro, _c °C).",
        "",
    ]
    for rel in files:
        path = folder / rel
        head = rel
        detail: list[str] = []
        if rel.endswith(".gpkg") and path.is_file():
            description = file_description(rel, folder)
            for name, kind, layer_title, count, _ in gpkg_contents(path):
                what = titles.get(name) or layer_title or LAYER_DESCRIPTIONS.get(name, _NO_DESCRIPTION)
                unit = "feature" if kind == "features" else "row"
                detail += _wrap(f"layer {name} ({_count(count, unit)}): {what}", "      ")
        elif rel.endswith(".geojson") and path.is_file():
            layer = Path(rel).stem
            what = titles.get(layer) or LAYER_DESCRIPTIONS.get(layer, _NO_DESCRIPTION)
            known = (features or {}).get(path)
            head = f"{rel} ({_count(_geojson_count(path) if known is None else known, 'feature')})"
            description = f"layer {layer} of {layer_gpkg.get(rel, 'a GeoPackage')} in EPSG:4326: {what}"
        elif rel.endswith(".csv") and path.is_file():
            rows, columns = _csv_shape(path)
            head = f"{rel} ({_count(rows, 'row')})"
            description = file_description(rel, folder)
            detail += _wrap("columns: " + ", ".join(columns), "      ")
        else:
            description = file_description(rel, folder)
        lines += [head, *_wrap(description, "    "), *detail, ""]
    path = folder / README
    path.write_text("\n".join(lines), encoding="utf-8")
    unknown = sum(_NO_DESCRIPTION in line for line in lines)
    logger.info("Wrote %s: %d files%s", path, len(files), f", {unknown} without description" if unknown else "")
    return path


def finish_folder(folder: Path, *, title: str = "", marker: str | None = None) -> None:
    """Add the exports every output folder gets: GeoJSON of each GeoPackage layer, then ``README.txt``."""
    pending = _PENDING.pop(folder, None)
    written: dict[Path, int] = {}
    if pending is not None:  # started beside the command's other files (start_geojson_layers)
        pool, futures, _ = pending
        try:
            for future in futures:
                written |= future.result()
        finally:
            pool.shutdown()
    others = [g for g in sorted(folder.rglob("*.gpkg")) if pending is None or g != pending[2]]
    written |= write_geojson_layers(folder, gpkgs=others)
    write_readme(folder, title=title, marker=marker, features=written)


def _lon_lat_wkt(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Longitude, latitude of a point inside each geometry and its WKT, in EPSG:4326 (empty where none)."""
    import pandas as pd
    import shapely

    geometry = frame.geometry.to_crs(4326).to_numpy() if frame.crs is not None else frame.geometry.to_numpy()
    present = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry))
    points = np.full(len(geometry), None, dtype=object)
    points[present] = shapely.point_on_surface(geometry[present])
    rounded = shapely.set_precision(geometry, 10.0**-WKT_DECIMALS, mode="pointwise")
    wkt = np.full(len(geometry), None, dtype=object)
    wkt[present] = shapely.to_wkt(rounded[present], rounding_precision=WKT_DECIMALS, trim=True)
    return pd.DataFrame(
        {
            "lon_deg": np.round(shapely.get_x(points), WKT_DECIMALS),
            "lat_deg": np.round(shapely.get_y(points), WKT_DECIMALS),
            "wkt": wkt,
        },
        index=frame.index,
    )


def with_coordinates(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return the table of ``frame`` without its geometry column, with ``lon_deg``, ``lat_deg`` and ``wkt``.

    ``lon_deg``, ``lat_deg``: a point inside each feature (its representative point), in EPSG:4326;
    ``wkt``: the whole geometry as WKT in EPSG:4326 (empty where a feature has none).
    """
    import pandas as pd

    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    return pd.concat([table, _lon_lat_wkt(frame)], axis=1)


def consumers_table(consumers: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per consumer of the plan: its attributes and coordinates (see :func:`with_coordinates`)."""
    return with_coordinates(consumers)


def pipe_quantities(pipes: pd.DataFrame) -> pd.DataFrame:
    """Bill of quantities of the plan's pipes: lengths, counts and cost by DN and kind.

    Parameters
    ----------
    pipes
        The plan's pipes: one row per pipe with ``circuit`` (supply/return), ``dn``, ``kind``, ``length_m``,
        ``cost_eur`` (each pipe half its trench's cost) and, where present, ``status``.

    Returns
    -------
    pandas.DataFrame
        One row per DN and kind (and status, where the pipes have one), DN ascending: ``route_length_m``
        (trench length, the supply circuit's), ``pipe_length_m`` (supply and return), ``n_pipes`` and
        ``cost_eur``. The route lengths add up to the plan's route length.
    """
    import pandas as pd

    keys = ["dn", "kind", *(["status"] if "status" in pipes.columns else [])]
    supply = pipes[pipes.circuit == "supply"]
    route = supply.groupby(keys, dropna=False).length_m.sum().rename("route_length_m")
    grouped = pipes.groupby(keys, dropna=False)
    table = pd.concat(
        [
            route,
            grouped.length_m.sum().rename("pipe_length_m"),
            grouped.size().rename("n_pipes"),
            grouped.cost_eur.sum().rename("cost_eur"),
        ],
        axis=1,
    )
    table["route_length_m"] = table.route_length_m.fillna(0.0)
    return table.reset_index().sort_values(keys, kind="stable").reset_index(drop=True)

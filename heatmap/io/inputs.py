"""Read heat sources and consumers from GeoPackage, GeoJSON, Shapefile, CSV or PostGIS, check and project them.

Every input may come in any CRS; it is projected to the plan's one metric CRS (EPSG:3067 in Finland, else
the local UTM zone). CSV files carry ``lon`` and ``lat`` columns in degrees (EPSG:4326). Every check names
the file, the row's id and what to fix.

Columns: each field is read from the column of its own name unless the scenario maps it to another one
(``sources.columns: {t_supply_c: supply_temperature_c}``); a column that resembles a field which the file
lacks is refused with the mapping to write, never silently ignored. The column that fed each field is
recorded in the result's ``attrs["columns"]``. Numbers must be finite and plausible (:data:`PLAUSIBLE_MAX`);
an empty cell of an optional column means "not given", and the documented default applies. Positions in
messages are file line numbers for CSV files and scenario rows ("line N") and 1-based feature numbers for
vector files ("feature N").

Consumer rule: a consumer carries ``annual_demand_mwh``; its ``peak_load_kw`` is taken from the file when
given, else derived as ``annual_demand_mwh × 1000 / demand.full_load_hours_h`` (recorded in the consumer's
``demand_method``).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from heatmap._errors import InputDataError
from heatmap.economics import HOURS_PER_YEAR
from heatmap.io import crs as working_crs
from heatmap.io.postgis import PostgisUrl
from heatmap.io.tables import refuse_repeated_columns
from heatmap.scenario import MAX_CAPACITY_KW

logger = logging.getLogger(__name__)

VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet"}
MAX_PLAUSIBLE_T_C = 200.0
"""Temperatures above this are taken for kelvin given where °C is expected."""
PLAUSIBLE_MAX = {"capacity_kw": MAX_CAPACITY_KW, "annual_demand_mwh": 1e6, "peak_load_kw": 1e6}
"""Largest plausible value of a numeric column (10 GW, 1 TWh/a, 1 GW): larger ones are taken for a unit error."""
MIN_FULL_LOAD_HOURS_H = 500.0
"""Fewer full-load hours (annual demand ÷ given peak load) than this are warned of: a peak in W or MW given as kW,
or an annual demand in kWh or GWh given as MWh. (More than a year's hours is refused: the peak below the mean.)"""
SOURCE_FIELDS = ("name", "capacity_kw", "t_supply_c", "company", "role", "heat_price_eur_per_mwh")
"""Fields a source file may give; each read from the column of that name or the one ``sources.columns`` maps."""
SOURCE_ROLES = ("excess_heat", "backup")
"""A source's role in operation: excess heat runs first, backup covers what is left (empty: excess_heat)."""
CONSUMER_FIELDS = (
    "name",
    "building_type",
    "annual_demand_mwh",
    "peak_load_kw",
    "min_supply_c",
    "company",
    "t_feed_in_c",
    "connect",
)
"""Fields a consumer file may give; each read from the column of that name or the one ``consumers.columns`` maps."""
_UNIT_TOKENS = frozenset({"c", "k", "f", "w", "kw", "mw", "gw", "kwh", "mwh", "gwh", "twh", "mj", "gj"})


def metric_crs_for(lon: float, lat: float, *, given: str | None = None) -> CRS:
    """Choose the plan's metric CRS for a study area centred at ``lon``, ``lat`` (degrees).

    Parameters
    ----------
    lon, lat
        Centre of the study area in EPSG:4326.
    given
        The scenario's ``study_area.crs``, if set: used once checked to be projected, in metres and true to
        scale at the study area (:func:`heatmap.io.crs.check_scale`, the one check every command makes;
        EPSG:3857 in Finland errs by ~127 %).

    Returns
    -------
    pyproj.CRS
        ``given``; else EPSG:3067 (ETRS-TM35FIN) inside Finland, else the WGS 84 UTM zone of the centre.
    """
    if given:
        problem = working_crs.crs_problem(given)
        if problem is not None:
            raise InputDataError(f"'study_area.crs' {problem}")
        working_crs.check_scale(given, lon, lat, key="'study_area.crs'", may_leave_out=True)
        return CRS.from_user_input(given)
    crs = working_crs.local_crs(lon, lat)
    logger.info("Metric CRS for (%.4f, %.4f): %s", lon, lat, crs.to_string())
    return crs


def _read_any(path: Path, *, layer: str | None, key: str | None) -> gpd.GeoDataFrame:
    from heatmap.io.paths import refuse_special

    refuse_special(
        path, f"'{key}.path'" if key else "the path in the scenario", folder_ok=path.suffix.lower() == ".gdb"
    )
    if not path.exists():
        raise InputDataError(f"{path}: file not found; check the path in the scenario")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix not in VECTOR_SUFFIXES:
        raise InputDataError(
            f"{path}: unsupported format '{suffix}'; use GeoPackage, GeoJSON, Shapefile or CSV with lon/lat"
        )
    try:
        if suffix == ".parquet":
            gdf = gpd.read_parquet(path)
        else:
            check_layer(path, layer, key)
            gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except InputDataError:
        raise
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError, OSError) as exc:
        # GDAL's first sentence, without the path already named
        reason = str(exc).split(";")[0].replace(f"'{path}' ", "").strip().rstrip(".")
        raise InputDataError(
            f"{path}: cannot be read as {suffix[1:]} ({reason}); check that the file is complete and in that format"
        ) from exc
    gdf.attrs["row_label"] = "feature"
    gdf.attrs["row_numbers"] = np.arange(1, len(gdf) + 1)
    return gdf


def check_degrees(gdf: gpd.GeoDataFrame, where: str) -> None:
    """Refuse coordinates that do not fit the layer's CRS: a mislabelled layer, whatever it holds.

    Three mistakes are caught: metres labelled as degrees (a geographic CRS, coordinates beyond ±180/±90);
    degrees labelled as metres (a projected CRS whose area of use holds every coordinate read as longitude and
    latitude: (24.9, 60.2) in EPSG:3067 is central Helsinki in degrees, and 25 m from the CRS's origin, far off
    Finland, in metres); and another projected CRS's coordinates (Helsinki's GK25, EPSG:3879, labelled EPSG:3067: they
    do not convert to longitude and latitude).
    """
    if gdf.crs is None or gdf.empty:
        return
    if gdf.crs.is_projected:
        _check_projected(gdf, where)
        return
    if not gdf.crs.is_geographic:
        return
    bounds = gdf.geometry.bounds
    out = ((bounds.minx < -180) | (bounds.maxx > 180) | (bounds.miny < -90) | (bounds.maxy > 90)).to_numpy()
    if out.any():
        x, y = bounds.minx[out].iloc[0], bounds.miny[out].iloc[0]
        raise InputDataError(
            f"{where}{_at(gdf, out)}: coordinates such as ({x:.6g}, {y:.6g}) are not degrees, yet the layer's CRS "
            f"is {gdf.crs.to_string()} (geographic); assign the CRS the coordinates are in "
            f"(QGIS: Layer ▸ Set CRS, e.g. EPSG:3067) and save it again"
        )


def _check_projected(gdf: gpd.GeoDataFrame, where: str) -> None:
    """Check the coordinates of a layer in a projected CRS (see :func:`check_degrees`)."""
    bounds = gdf.geometry.bounds
    x0, y0, x1, y1 = bounds.minx.min(), bounds.miny.min(), bounds.maxx.max(), bounds.maxy.max()
    fix = "assign the CRS the coordinates are in (QGIS: Layer ▸ Set CRS) and save it again"
    area = gdf.crs.area_of_use
    if area is not None and area.west <= x0 <= x1 <= area.east and area.south <= y0 <= y1 <= area.north:
        raise InputDataError(
            f"{where}: coordinates such as ({x0:.6g}, {y0:.6g}) look like degrees (longitude, latitude) in "
            f"{area.name.rstrip('.')}, the area {gdf.crs.to_string()} is made for, yet in that CRS (metres) they lie "
            f"near its origin, far off it; if they are degrees, {fix} (EPSG:4326)"
        )
    pts = shapely.points([[x0, y0], [x1, y1], [(x0 + x1) / 2, (y0 + y1) / 2]])
    lonlat = shapely.get_coordinates(gpd.GeoSeries(pts, crs=gdf.crs).to_crs(4326))
    if not np.isfinite(lonlat).all() or (np.abs(lonlat[:, 0]) > 180).any() or (np.abs(lonlat[:, 1]) > 90).any():
        raise InputDataError(
            f"{where}: coordinates such as ({x0:.6g}, {y0:.6g}) lie outside where {gdf.crs.to_string()} can place "
            f"them on Earth: the layer is in another CRS (Helsinki's own GK25 is EPSG:3879, TM35FIN EPSG:3067); {fix}"
        )


def check_layer(path: Path, layer: str | None, key: str | None = None, *, option: str | None = None) -> None:
    """Refuse a missing layer, and a file of several layers when none is named (it would read the first).

    ``key``: the scenario section that names the file (its ``layer`` names the layer); ``option``: the command-line
    option that names the layer instead (``--layer``). With neither, a file of several layers is read as GDAL does.
    """
    names = [str(name) for name, _ in pyogrio.list_layers(path)]
    named = option or (f"'{key}.layer'" if key else None)
    if layer is not None and layer not in names:
        raise InputDataError(
            f"{path}: has no layer '{layer}' (layers: {', '.join(names)})" + (f"; check {named}" if named else "")
        )
    if layer is None and named is not None and len(names) > 1:
        raise InputDataError(
            f"{path}: holds {len(names)} layers ({', '.join(names)}); name the one to read with {named}"
        )


SAME_SITE_M = 0.5
"""Consumers whose points (inside their footprints) lie closer than this share a site (:func:`_check_shared_sites`)."""


def _check_shared_sites(consumers: gpd.GeoDataFrame, where: str) -> None:
    """Refuse consumers that all lie at one point (a geocoding that failed); warn of those that share a site."""
    if len(consumers) < 2:
        return
    points = consumers.geometry.representative_point()
    key = pd.DataFrame({"x": np.round(points.x / SAME_SITE_M), "y": np.round(points.y / SAME_SITE_M)})
    shared = key.duplicated(keep=False).to_numpy()
    if not shared.any():
        return
    ids = consumers.consumer_id.astype(str)
    if shared.all() and len(key.drop_duplicates()) == 1:
        raise InputDataError(
            f"{where}: all {len(consumers)} consumers lie at one point ({points.iloc[0].x:.1f}, {points.iloc[0].y:.1f} "
            f"in {consumers.crs.to_string()}); a geocoding that failed? Give each consumer its own location"
        )
    logger.warning(
        "%s: %d consumers share a site with another (closer than %g m: %s); each is planned on its own, so a "
        "building given twice counts twice: check for duplicates or a geocoding to street level",
        where, int(shared.sum()), SAME_SITE_M, _rows(ids[shared]),
    )  # fmt: skip


def _check_full_load_hours(
    gdf: gpd.GeoDataFrame, annual: pd.Series, peak: pd.Series, where: str, ids: pd.Series
) -> None:
    """Refuse a given peak load below the mean load; warn of one far above it (:data:`MIN_FULL_LOAD_HOURS_H`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hours = (annual * 1000.0 / peak).to_numpy(dtype=float)
    below_mean = hours > HOURS_PER_YEAR * (1 + 1e-9)
    if below_mean.any():
        i = int(np.flatnonzero(below_mean)[0])
        raise InputDataError(
            f"{where}{_at(gdf, below_mean)}: peak_load_kw of consumers {_rows(ids[below_mean])} is below their mean "
            f"load (e.g. {ids.iloc[i]}: {peak.iloc[i]:,.6g} kW for {annual.iloc[i]:,.6g} MWh/a, a mean of "
            f"{annual.iloc[i] * 1000 / HOURS_PER_YEAR:,.6g} kW); the peak is at least the mean: check the units "
            "(peak in kW, annual demand in MWh/a)"
        )
    spiky = (hours < MIN_FULL_LOAD_HOURS_H) & (annual.to_numpy(dtype=float) > 0)
    if spiky.any():
        i = int(np.flatnonzero(spiky)[0])
        logger.warning(
            "%s%s: consumers %s have fewer than %g full-load hours (annual demand ÷ peak load; e.g. %s: %s kW for "
            "%s MWh/a, %.0f h); check the units (peak in kW, annual demand in MWh/a)",
            where, _at(gdf, spiky), _rows(ids[spiky]), MIN_FULL_LOAD_HOURS_H, ids.iloc[i],
            f"{peak.iloc[i]:,.6g}", f"{annual.iloc[i]:,.6g}", hours[i],
        )  # fmt: skip


def _lonlat_points(df: pd.DataFrame) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Points in EPSG:4326 from the ``lon`` and ``lat`` columns, and the mask of rows without valid ones."""
    lon = pd.to_numeric(df["lon"], errors="coerce")
    lat = pd.to_numeric(df["lat"], errors="coerce")
    bad = (lon.isna() | lat.isna() | ~lon.between(-180, 180) | ~lat.between(-90, 90)).to_numpy()
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326"), bad


def _read_csv(path: Path) -> gpd.GeoDataFrame:
    from heatmap.io.tables import read_csv_rows

    try:
        df = read_csv_rows(path)
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputDataError(
            f"{path}, line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the file as UTF-8 (in "
            f"LibreOffice: Save As, Text CSV, Character set: Unicode (UTF-8); in Excel: CSV UTF-8)"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(f"{path}: not a readable CSV file ({exc})") from exc
    refuse_repeated_columns(path)
    # file line of each row: pandas skips blank lines (the header is the first line that is not blank)
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    lines = np.array([i for i, line in enumerate(text, 1) if line.strip()][1:][: len(df)])
    if len(lines) < len(df):  # quoted line breaks: count rows instead
        lines = np.arange(len(df)) + 2
    missing = {"lon", "lat"} - set(df.columns)
    if missing:  # (a header of one column split by semicolons or tabs: read_csv_rows said so)
        raise InputDataError(
            f"{path}: a CSV input needs 'lon' and 'lat' columns in degrees (EPSG:4326); missing: "
            f"{', '.join(sorted(missing))}"
        )
    gdf, bad = _lonlat_points(df)
    if bad.any():
        comma = any(df[c].astype(str).str.fullmatch(r"\s*-?\d+,\d+\s*").any() for c in ("lon", "lat"))
        hint = " (a decimal comma, as in 24,93? write 24.93)" if comma else ""
        raise InputDataError(f"{path}, {_lines('line', lines[bad])}: no valid lon/lat in degrees (EPSG:4326){hint}")
    gdf.attrs["row_label"] = "line"
    gdf.attrs["row_numbers"] = lines
    return gdf


def _rows(ids: Iterable[Any], limit: int = 10) -> str:
    ids = list(ids)
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _lines(label: str, numbers: Any, limit: int = 10) -> str:
    """Name file positions: ``line 3``, ``lines 3, 6``, ``features 2, 5 and 8 more``."""
    numbers = [int(n) for n in numbers]
    return f"{label}{'s' if len(numbers) > 1 else ''} {_rows(numbers, limit)}"


def _at(gdf: gpd.GeoDataFrame, mask: Any) -> str:
    """``, line 3`` (CSV, scenario rows) or ``, feature 2`` (vector files) for the rows in ``mask``; else ''."""
    numbers = gdf.attrs.get("row_numbers")
    if numbers is None or len(numbers) != len(gdf):
        return ""
    return ", " + _lines(gdf.attrs.get("row_label", "feature"), np.asarray(numbers)[np.asarray(mask, dtype=bool)])


def _check_geometry(gdf: gpd.GeoDataFrame, where: str, ids: pd.Series, allowed: tuple[str, ...]) -> None:
    geom = gdf.geometry
    empty = (geom.isna() | geom.is_empty).to_numpy()
    if empty.any():
        raise InputDataError(
            f"{where}{_at(gdf, empty)}: features {_rows(ids[empty])} have no geometry; give each a location"
        )
    invalid = ~geom.is_valid.to_numpy()
    if invalid.any():
        reasons = shapely.is_valid_reason(geom[invalid].values)
        raise InputDataError(
            f"{where}{_at(gdf, invalid)}: features {_rows(ids[invalid])} have invalid geometry ({reasons[0]}); "
            f"repair them (QGIS: Vector ▸ Geometry Tools ▸ Fix Geometries)"
        )
    kinds = set(geom.geom_type)
    if not kinds <= set(allowed):
        wrong = (~geom.geom_type.isin(allowed)).to_numpy()
        raise InputDataError(
            f"{where}{_at(gdf, wrong)}: geometry types {sorted(kinds - set(allowed))} are not allowed here; use "
            f"{', '.join(allowed)}"
        )
    if "Point" in kinds and kinds & {"Polygon", "MultiPolygon"}:
        points = (geom.geom_type == "Point").to_numpy()
        raise InputDataError(
            f"{where}{_at(gdf, points)}: points among polygons; give every feature as a point or every one as a "
            "footprint"
        )


def _numeric(
    gdf: gpd.GeoDataFrame, column: str, where: str, ids: pd.Series, *, required: bool, field: str | None = None
) -> pd.Series:
    """Read a numeric column; empty cells are NaN (not given).

    Text, infinity, negatives and implausibly large values are refused with the features named.
    """
    field = field or column
    if column not in gdf.columns:
        if required:
            raise InputDataError(f"{where}: column '{column}' is missing (columns: {', '.join(map(str, gdf.columns))})")
        return pd.Series(np.nan, index=gdf.index)
    raw = gdf[column]
    values = pd.to_numeric(raw, errors="coerce")
    named = f"'{column}'" if column == field else f"'{column}' (for {field})"
    bad = (values.isna() & raw.notna()).to_numpy()
    if bad.any():
        text = raw[bad].astype(str).str.strip()
        comma = text.str.fullmatch(r"[-+]?\d+,\d+")
        hint = (
            f"; write a point as the decimal separator ({text[comma].iloc[0].replace(',', '.')}, not "
            f"{text[comma].iloc[0]})"
            if comma.any()
            else ""
        )
        raise InputDataError(f"{where}{_at(gdf, bad)}: {named} is not a number for features {_rows(ids[bad])}{hint}")
    empty = values.isna().to_numpy()
    if required and empty.any():
        raise InputDataError(f"{where}{_at(gdf, empty)}: {named} is empty for features {_rows(ids[empty])}")
    infinite = np.isinf(values.to_numpy(dtype=float))
    if infinite.any():
        raise InputDataError(
            f"{where}{_at(gdf, infinite)}: {named} is infinite for features {_rows(ids[infinite])}; give a finite "
            f"number"
        )
    negative = (values < 0).to_numpy()
    if negative.any():
        raise InputDataError(
            f"{where}{_at(gdf, negative)}: {named} is negative for features {_rows(ids[negative])}; it must be ≥ 0"
        )
    upper = PLAUSIBLE_MAX.get(field)
    huge = (values > upper).to_numpy() if upper is not None else np.zeros(len(values), bool)
    if huge.any():
        raise InputDataError(
            f"{where}{_at(gdf, huge)}: {named} of features {_rows(ids[huge])} is above the plausible {upper:g}; "
            f"check the unit ({field.rsplit('_', 1)[-1]})"
        )
    return values.astype(float)


def _tokens(name: str) -> list[str]:
    return [t for t in str(name).lower().replace("-", "_").replace(" ", "_").split("_") if t]


def _resembling(field: str, columns: list[str]) -> str | None:
    """Find the column most like ``field``: close in spelling, or sharing a word of four letters or more."""
    words = {t for t in _tokens(field) if len(t) >= 4 and t not in _UNIT_TOKENS}
    best, score = None, 0.0
    for col in columns:
        ratio = difflib.SequenceMatcher(None, str(col).lower(), field).ratio()
        shared = words & set(_tokens(col))
        if (ratio >= 0.7 or shared) and ratio + len(shared) > score:
            best, score = col, ratio + len(shared)
    return best


def _columns(
    gdf: gpd.GeoDataFrame,
    where: str,
    what: str,
    fields: tuple[str, ...],
    checked: tuple[str, ...],
    columns: Mapping[str, str] | Any | None,
) -> dict[str, str]:
    """Map each field to the file column that feeds it; refuse a column that resembles a field the file lacks."""
    given = dict(columns) if columns is not None else {}
    mapping = {f: str(given.get(f) or f) for f in fields}
    names = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    if gdf.attrs.get("inline"):
        return {f: f for f in fields if f in names}
    for f, col in mapping.items():
        if col != f and col not in names:
            raise InputDataError(
                f"{where}: column '{col}' (mapped by '{what}.columns.{f}') is not in the file (columns: "
                f"{', '.join(names)})"
            )
    free = [c for c in names if c not in mapping.values() and c not in ("id", "lon", "lat")]
    for f in checked:
        if mapping[f] in names:
            continue
        like = _resembling(f, free)
        if like is None:
            continue
        col = like
        unit, col_unit = _tokens(f)[-1], _tokens(col)[-1]
        if col_unit in _UNIT_TOKENS and col_unit != unit:
            raise InputDataError(
                f"{where}: column '{col}' looks like '{f}' in another unit ({col_unit}, not {unit}); give a column "
                f"'{f}' in {unit}, or leave the column out"
            )
        raise InputDataError(
            f"{where}: column '{col}' looks like '{f}', which the file lacks (so it would be left out); map it with "
            f"'{what}.columns: {{{f}: {col}}}' in the scenario, or rename the column"
        )
    return {f: col for f, col in mapping.items() if col in names}


def read_features(
    path: Path | PostgisUrl | None,
    *,
    inline: list | None = None,
    id_column: str,
    layer: str | None = None,
    what: str,
    allowed_geometry: tuple[str, ...] = ("Point",),
    key: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a point or polygon input, check ids and geometries, keep its own CRS.

    Parameters
    ----------
    path
        The file (GPKG, GeoJSON, SHP, FlatGeobuf, GeoParquet, or CSV with lon/lat), or a PostgreSQL database
        (:class:`heatmap.io.postgis.PostgisUrl`) whose table ``layer`` names; ``None`` with ``inline``.
    inline
        Rows given in the scenario (mappings or the scenario's inline rows, each with ``lon`` and ``lat``),
        used when ``path`` is ``None``.
    id_column
        The column holding unique ids; it becomes the ``id`` column.
    layer
        The layer to read from a multi-layer file; the table (``schema.name``) of a database.
    what
        What the features are ("sources", "consumers"), for messages.
    allowed_geometry
        Geometry types accepted.
    key
        The scenario section that names the file (``sources``, ``consumers``), for messages; default
        ``what`` for sources and consumers, else none.

    Returns
    -------
    geopandas.GeoDataFrame
        The features with a unique string ``id`` column, in the file's CRS; ``attrs`` hold ``where`` (for
        messages), ``row_label`` and ``row_numbers`` (file line or feature number of each row) and
        ``id_column``.
    """
    if key is None and what in ("sources", "consumers"):
        key = what
    if isinstance(path, PostgisUrl):
        from heatmap.io.postgis import read_table

        gdf = read_table(path, layer, what=what, key=key)
        where = gdf.attrs["where"]  # the URL (without its password) and the table
    elif path is not None:
        gdf = _read_any(Path(path), layer=layer, key=key)
        where = str(path)
    else:
        rows = list(inline or [])
        df = pd.DataFrame([r.model_dump(exclude_none=True) if hasattr(r, "model_dump") else dict(r) for r in rows])
        where = f"scenario '{what}.inline'"
        if df.empty or not {"lon", "lat"} <= set(df.columns):
            raise InputDataError(f"{where}: each row needs 'lon' and 'lat' in degrees")
        gdf, bad = _lonlat_points(df)
        if bad.any():
            raise InputDataError(f"{where}: rows {_rows(np.flatnonzero(bad) + 1)} have no valid lon/lat in degrees")
        lines = [getattr(r, "_line", None) for r in rows]
        gdf.attrs.update(inline=True, row_label="line")
        if all(isinstance(n, int) for n in lines):
            gdf.attrs["row_numbers"] = np.array(lines)
    if gdf.empty:
        raise InputDataError(f"{where}: holds no {what}")
    if gdf.crs is None:
        raise InputDataError(
            f"{where}: the layer has no CRS; assign the right one (QGIS: Layer ▸ Set CRS, or "
            f"ogr2ogr -a_srs EPSG:3067) and save it again"
            + (
                "; in PostGIS: SELECT UpdateGeometrySRID('schema', 'table', 'geometry column', 3067)"
                if isinstance(path, PostgisUrl)
                else ""
            )
        )
    if id_column not in gdf.columns:
        fix = f"name it with '{key}.id_column'" if key else f"give the file an '{id_column}' column"
        raise InputDataError(
            f"{where}: id column '{id_column}' is missing; {fix} (columns: {', '.join(map(str, gdf.columns))})"
        )
    gdf = gdf.reset_index(drop=True)
    ids = gdf[id_column]
    text = ids.astype(str).str.strip()  # an id is compared without spaces around it ('B1 ' is B1)
    missing = (ids.isna() | (text == "")).to_numpy()
    if missing.any():
        raise InputDataError(f"{where}{_at(gdf, missing)}: {what} without '{id_column}'; give each an id")
    ids = text
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputDataError(
            f"{where}{_at(gdf, dup)}: duplicate ids {_rows(sorted(set(ids[dup])))}; every {what[:-1]} needs its own id"
        )
    _check_geometry(gdf, where, ids, allowed_geometry)
    check_degrees(gdf, where)
    attrs = dict(gdf.attrs)
    gdf = gdf.drop(columns=[id_column]).assign(id=ids.values)
    gdf.attrs.update(attrs, where=where, id_column=id_column)
    logger.info("Read %d %s from %s", len(gdf), what, where)
    return gdf


def prepare_sources(
    gdf: gpd.GeoDataFrame,
    *,
    crs: CRS,
    default_t_supply_c: float,
    columns: Mapping[str, str] | Any | None = None,
) -> gpd.GeoDataFrame:
    """Check heat sources and project them to the plan's CRS.

    Parameters
    ----------
    gdf
        Output of :func:`read_features` for sources.
    crs
        The plan's metric CRS.
    default_t_supply_c
        Supply temperature of sources that give none (``temperatures.supply_c``).
    columns
        The file column of each field of :data:`SOURCE_FIELDS` where it differs (``sources.columns``).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``source_id``, ``name``, ``capacity_kw``, ``t_supply_c``, ``company`` (its id where empty),
        ``role`` (:data:`SOURCE_ROLES`; ``excess_heat`` where empty), ``heat_price_eur_per_mwh`` (NaN where
        empty), geometry (points); ``attrs["columns"]`` names the file column that fed each field.
    """
    where = gdf.attrs.get("where", "sources")
    ids = gdf["id"]
    cols = _columns(gdf, where, "sources", SOURCE_FIELDS, ("capacity_kw", "t_supply_c"), columns)
    capacity = _numeric(gdf, cols.get("capacity_kw", "capacity_kw"), where, ids, required=True, field="capacity_kw")
    zero = (capacity <= 0).to_numpy()
    if zero.any():
        raise InputDataError(f"{where}{_at(gdf, zero)}: 'capacity_kw' must be positive for sources {_rows(ids[zero])}")
    t_col = cols.get("t_supply_c", "t_supply_c")
    t_supply = _numeric(gdf, t_col, where, ids, required=False, field="t_supply_c")
    _check_temperature(t_supply, gdf, where, ids, t_col)
    empty = t_supply.isna().to_numpy()
    if empty.any() and not empty.all():  # a column of some temperatures: one left empty may be an oversight
        logger.warning(
            "%s%s: sources %s give no '%s'; they supply at temperatures.supply_c, %g °C",
            where, _at(gdf, empty), _rows(ids[empty]), t_col, default_t_supply_c,
        )  # fmt: skip
    t_supply = t_supply.fillna(default_t_supply_c)
    role = _text(gdf, cols, "role").replace("", "excess_heat")
    wrong = ~role.isin(SOURCE_ROLES).to_numpy()
    if wrong.any():
        raise InputDataError(
            f"{where}{_at(gdf, wrong)}: 'role' of sources {_rows(ids[wrong])} is {role[wrong].iloc[0]!r}; give "
            f"{' or '.join(SOURCE_ROLES)}"
        )
    price_col = cols.get("heat_price_eur_per_mwh", "heat_price_eur_per_mwh")
    price = _numeric(gdf, price_col, where, ids, required=False, field="heat_price_eur_per_mwh")
    out = gpd.GeoDataFrame(
        {
            "source_id": ids.values,
            "name": gdf[cols["name"]].fillna("").astype(str).values if "name" in cols else ids.values,
            "capacity_kw": capacity.values,
            "t_supply_c": t_supply.values,
            "company": _text(gdf, cols, "company").where(lambda s: s != "", ids.astype(str)).values,
            "role": role.values,
            "heat_price_eur_per_mwh": price.values,
        },
        geometry=_project(gdf, crs, where, ids),
        crs=crs,
    )
    out.attrs.update(columns=_fed(gdf, cols), where=where)
    logger.info("Prepared %d sources, %.0f kW capacity", len(out), out.capacity_kw.sum())
    return out


def _text(gdf: gpd.GeoDataFrame, cols: dict[str, str], field: str) -> pd.Series:
    """Read a text field, stripped; empty where the file lacks the column or the cell."""
    if field not in cols:
        return pd.Series("", index=gdf.index)
    values = gdf[cols[field]]
    if pd.api.types.is_float_dtype(values):  # codes read as numbers (a column with an empty cell is float)
        values = values.map(lambda v: "" if pd.isna(v) else (f"{v:.0f}" if float(v).is_integer() else str(v)))
    return values.fillna("").astype(str).str.strip()


CONNECT = ("required", "optional", "excluded")
"""The planner's choice per consumer (column ``connect``); empty: by ``design.optional_below_mwh_per_a``."""


def _connect(gdf: gpd.GeoDataFrame, cols: dict[str, str], where: str, ids: pd.Series) -> pd.Series:
    """Read the ``connect`` field (lower case; empty where not given); refuse any other value."""
    value = _text(gdf, cols, "connect").str.lower()
    bad = ~value.isin(("", *CONNECT))
    if bad.any():
        got = _text(gdf, cols, "connect")[bad].iloc[0]
        raise InputDataError(
            f"{where}: consumers {_rows(ids[bad])}: '{cols['connect']}' must be one of {', '.join(CONNECT)} or empty "
            f"(got {got[:60]!r})"
        )
    return value


def _fed(gdf: gpd.GeoDataFrame, cols: dict[str, str]) -> dict[str, str]:
    """Which file column fed each field (the id included)."""
    return {"id": str(gdf.attrs.get("id_column", "id")), **cols}


def _project(gdf: gpd.GeoDataFrame, crs: CRS, where: str, ids: pd.Series) -> np.ndarray:
    """Project the features to the plan's CRS; features it cannot represent (far outside its area) are named."""
    projected = gdf.geometry.to_crs(crs).values
    bad = ~np.isfinite(shapely.get_coordinates(projected)).all(axis=1)
    if bad.any():
        index = np.unique(shapely.get_coordinates(projected, return_index=True)[1][bad])
        mask = np.zeros(len(gdf), bool)
        mask[index] = True
        raise InputDataError(
            f"{where}{_at(gdf, mask)}: features {_rows(ids.iloc[index])} cannot be placed in {crs.to_string()} "
            f"(far outside the study area?); check their coordinates and CRS"
        )
    return projected


def _check_temperature(values: pd.Series, gdf: gpd.GeoDataFrame, where: str, ids: pd.Series, column: str) -> None:
    hot = (values > MAX_PLAUSIBLE_T_C).to_numpy()
    if hot.any():
        raise InputDataError(
            f"{where}{_at(gdf, hot)}: '{column}' of {_rows(ids[hot])} is above {MAX_PLAUSIBLE_T_C:.0f}; give °C, "
            f"not kelvin"
        )


def prepare_consumers(
    gdf: gpd.GeoDataFrame,
    *,
    crs: CRS,
    full_load_hours_h: float,
    default_min_supply_c: float,
    columns: Mapping[str, str] | Any | None = None,
) -> gpd.GeoDataFrame:
    """Check consumers with given demand, derive missing peak loads and project them.

    Parameters
    ----------
    gdf
        Output of :func:`read_features` for consumers, with ``annual_demand_mwh`` (and optionally
        ``peak_load_kw``, ``name``, ``building_type``, ``min_supply_c``).
    crs
        The plan's metric CRS.
    full_load_hours_h
        Full-load hours deriving a missing peak load from the annual demand.
    default_min_supply_c
        Lowest acceptable supply temperature of consumers whose ``min_supply_c`` is empty or missing.
    columns
        The file column of each field of :data:`CONSUMER_FIELDS` where it differs (``consumers.columns``).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``consumer_id``, ``name``, ``building_type``, ``annual_demand_mwh``, ``peak_load_kw``,
        ``min_supply_c``, ``demand_method``, ``company`` (its id where empty), ``t_feed_in_c`` (a prosumer's
        feed-in temperature, NaN where empty), geometry (points or footprints); ``attrs["columns"]`` names the
        file column that fed each field.
    """
    where = gdf.attrs.get("where", "consumers")
    ids = gdf["id"]
    checked = ("annual_demand_mwh", "peak_load_kw", "min_supply_c")
    cols = _columns(gdf, where, "consumers", CONSUMER_FIELDS, checked, columns)
    annual = _numeric(
        gdf, cols.get("annual_demand_mwh", "annual_demand_mwh"), where, ids, required=True, field="annual_demand_mwh"
    )
    peak = _numeric(gdf, cols.get("peak_load_kw", "peak_load_kw"), where, ids, required=False, field="peak_load_kw")
    t_col = cols.get("min_supply_c", "min_supply_c")
    min_supply = _numeric(gdf, t_col, where, ids, required=False, field="min_supply_c")
    _check_temperature(min_supply, gdf, where, ids, t_col)
    min_supply = min_supply.fillna(default_min_supply_c)
    feed_col = cols.get("t_feed_in_c", "t_feed_in_c")
    t_feed_in = _numeric(gdf, feed_col, where, ids, required=False, field="t_feed_in_c")
    _check_temperature(t_feed_in, gdf, where, ids, feed_col)
    connect = _connect(gdf, cols, where, ids)
    derived = peak.isna()
    _check_full_load_hours(gdf, annual.where(~derived), peak, where, ids)
    peak = peak.where(~derived, annual * 1000.0 / full_load_hours_h)
    method = np.where(
        derived,
        f"given annual demand; peak = annual / {full_load_hours_h:g} full-load hours",
        "given annual demand and peak load",
    )
    out = gpd.GeoDataFrame(
        {
            "consumer_id": ids.values,
            "name": gdf[cols["name"]].fillna("").astype(str).values if "name" in cols else "",
            "building_type": gdf[cols["building_type"]].fillna("").astype(str).values
            if "building_type" in cols
            else "",
            "annual_demand_mwh": annual.values,
            "peak_load_kw": peak.values,
            "min_supply_c": min_supply.values,
            "demand_method": method,
            "company": _text(gdf, cols, "company").where(lambda s: s != "", ids.astype(str)).values,
            "t_feed_in_c": t_feed_in.values,
            "connect": connect.values,
        },
        geometry=_project(gdf, crs, where, ids),
        crs=crs,
    )
    out.attrs["columns"] = _fed(gdf, cols)
    _check_shared_sites(out, where)
    logger.info("Prepared %d consumers, %.0f MWh/a", len(out), out.annual_demand_mwh.sum())
    return out


def read_plants(path: str | Path) -> pd.DataFrame:
    """Read a plants file (``name``, ``lat``, ``lon`` in decimal degrees), indexed by name."""
    return read_table(path, ["lat", "lon"], index="name", what="plants file", numeric=["lat", "lon"])


def read_table(
    path: str | Path,
    required: Iterable[str] = (),
    *,
    index: str | list[str] | None = None,
    what: str = "table",
    numeric: Iterable[str] = (),
) -> pd.DataFrame:
    """Read a small CSV table of settings (``#`` lines are comments), such as the fuel or preset table.

    Errors name the file and what to fix: the file missing or unreadable, the columns missing, and the file
    lines of keys given more than once.

    Parameters
    ----------
    path
        The CSV file.
    required
        Columns the table must have (besides ``index``).
    index
        Column(s) that name the rows: each key must be given once; the table is indexed by them.
    what
        What the table is, for messages (``fuel table``, ``plants file``, …).
    numeric
        Columns whose cells must be numbers where given (blank: missing); read as floats.

    Returns
    -------
    pandas.DataFrame
    """
    from heatmap.io.tables import csv_file_lines, read_csv_table

    path = Path(path)
    keys = [] if index is None else [index] if isinstance(index, str) else list(index)
    table = read_csv_table(path, required=(*keys, *required), what=what)
    for col in numeric:
        if col not in table:
            continue
        values = pd.to_numeric(table[col], errors="coerce")
        bad = (values.isna() & table[col].notna() & (table[col].astype(str).str.strip() != "")).to_numpy()
        if bad.any():
            lines = csv_file_lines(path, len(table))[bad]
            raise InputDataError(
                f"{path}, line {lines[0]}: {col} {table[col][bad].iloc[0]!r} is not a number"
                + (f" (and lines {', '.join(map(str, lines[1:6]))})" if bad.sum() > 1 else "")
                + ("; give decimal degrees (e.g. 63.8521)" if col in ("lon", "lat") else "; give a number")
            )
        table[col] = values
    if keys:
        repeated = table.duplicated(keys, keep=False).to_numpy()
        if repeated.any():
            lines = csv_file_lines(path, len(table))[repeated]
            shown = table.loc[repeated, keys].astype(str).agg(", ".join, axis=1).unique()
            raise InputDataError(
                f"{path}: {', '.join(keys)} {', '.join(shown[:5])} given more than once (lines "
                f"{', '.join(map(str, lines[:10]))}); give each once"
            )
        table = table.set_index(index)
    logger.info("Read %s %s: %d rows", what, path, len(table))
    return table

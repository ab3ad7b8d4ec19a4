"""Read heat sources and consumers from GeoPackage, GeoJSON, Shapefile or CSV, check them and project them.

Every input may come in any CRS; it is projected to the plan's one metric CRS (EPSG:3067 in Finland, else
the local UTM zone). CSV files carry ``lon`` and ``lat`` columns in degrees (EPSG:4326). Every check names
the file, the row's id and what to fix.

Consumer rule: a consumer carries ``annual_demand_mwh``; its ``peak_load_kw`` is taken from the file when
given, else derived as ``annual_demand_mwh × 1000 / demand.full_load_hours_h`` (recorded in the consumer's
``demand_method``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from heatmap._errors import InputDataError

logger = logging.getLogger(__name__)

FINLAND_BBOX_DEG = (19.0, 59.5, 31.6, 70.1)
"""(west, south, east, north) inside which the Finnish national grid EPSG:3067 is used."""

VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet"}
MAX_PLAUSIBLE_T_C = 200.0
"""Temperatures above this are taken for kelvin given where °C is expected."""


def metric_crs_for(lon: float, lat: float, *, given: str | None = None) -> CRS:
    """Choose the plan's metric CRS for a study area centred at ``lon``, ``lat`` (degrees).

    Parameters
    ----------
    lon, lat
        Centre of the study area in EPSG:4326.
    given
        The scenario's ``study_area.crs``, if set: used as it is, once checked to be projected.

    Returns
    -------
    pyproj.CRS
        ``given``; else EPSG:3067 (ETRS-TM35FIN) inside Finland, else the WGS 84 UTM zone of the centre.
    """
    if given:
        crs = CRS.from_user_input(given)
        if not crs.is_projected:
            raise InputDataError(f"'study_area.crs' {crs.to_string()} is geographic; give a metric (projected) CRS")
        return crs
    w, s, e, n = FINLAND_BBOX_DEG
    if w <= lon <= e and s <= lat <= n:
        crs = CRS.from_epsg(3067)
    else:
        zone = int((lon + 180) // 6) + 1
        crs = CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)
    logger.info("Metric CRS for (%.4f, %.4f): %s", lon, lat, crs.to_string())
    return crs


def _read_any(path: Path, *, layer: str | None) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputDataError(f"{path}: file not found; check the path in the scenario")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise InputDataError(f"{path}: not a readable CSV file ({exc})") from exc
        missing = {"lon", "lat"} - set(df.columns)
        if missing:
            raise InputDataError(
                f"{path}: a CSV input needs 'lon' and 'lat' columns in degrees (EPSG:4326); missing: "
                f"{', '.join(sorted(missing))}"
            )
        lon = pd.to_numeric(df["lon"], errors="coerce")
        lat = pd.to_numeric(df["lat"], errors="coerce")
        bad = df.index[lon.isna() | lat.isna() | ~lon.between(-180, 180) | ~lat.between(-90, 90)]
        if len(bad):
            raise InputDataError(
                f"{path}: rows {_rows(bad + 2)} have no valid lon/lat in degrees (line numbers of the file)"
            )
        return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    if suffix not in VECTOR_SUFFIXES:
        raise InputDataError(
            f"{path}: unsupported format '{suffix}'; use GeoPackage, GeoJSON, Shapefile or CSV with lon/lat"
        )
    try:
        if suffix == ".parquet":
            return gpd.read_parquet(path)
        return gpd.read_file(path, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError, OSError) as exc:
        # GDAL's first sentence, without the path already named
        reason = str(exc).split(";")[0].replace(f"'{path}' ", "").strip().rstrip(".")
        raise InputDataError(
            f"{path}: cannot be read as {suffix[1:]} ({reason}); check that the file is complete and in that format"
        ) from exc


def _rows(ids: pd.Index | np.ndarray | list, limit: int = 10) -> str:
    ids = list(ids)
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _check_geometry(gdf: gpd.GeoDataFrame, where: str, ids: pd.Series, allowed: tuple[str, ...]) -> None:
    geom = gdf.geometry
    empty = geom.isna() | geom.is_empty
    if empty.any():
        raise InputDataError(f"{where}: features {_rows(ids[empty])} have no geometry; give each a location")
    invalid = ~geom.is_valid
    if invalid.any():
        reasons = shapely.is_valid_reason(geom[invalid].values)
        raise InputDataError(
            f"{where}: features {_rows(ids[invalid])} have invalid geometry ({reasons[0]}); repair them "
            f"(QGIS: Vector ▸ Geometry Tools ▸ Fix Geometries)"
        )
    kinds = set(geom.geom_type)
    if not kinds <= set(allowed):
        raise InputDataError(
            f"{where}: geometry types {sorted(kinds - set(allowed))} are not allowed here; use {', '.join(allowed)}"
        )
    if "Point" in kinds and kinds & {"Polygon", "MultiPolygon"}:
        raise InputDataError(f"{where}: mixes points and polygons; give all consumers as points or all as footprints")


def _numeric(gdf: gpd.GeoDataFrame, column: str, where: str, ids: pd.Series, *, required: bool) -> pd.Series:
    if column not in gdf.columns:
        if required:
            raise InputDataError(f"{where}: column '{column}' is missing (columns: {', '.join(map(str, gdf.columns))})")
        return pd.Series(np.nan, index=gdf.index)
    raw = gdf[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        raise InputDataError(f"{where}: '{column}' is not a number for features {_rows(ids[bad])}")
    if required and values.isna().any():
        raise InputDataError(f"{where}: '{column}' is empty for features {_rows(ids[values.isna()])}")
    negative = values < 0
    if negative.any():
        raise InputDataError(f"{where}: '{column}' is negative for features {_rows(ids[negative])}; it must be ≥ 0")
    return values.astype(float)


def read_features(
    path: Path | None,
    *,
    inline: list[dict] | None = None,
    id_column: str,
    layer: str | None = None,
    what: str,
    allowed_geometry: tuple[str, ...] = ("Point",),
) -> gpd.GeoDataFrame:
    """Read a point or polygon input, check ids and geometries, keep its own CRS.

    Parameters
    ----------
    path
        The file (GPKG, GeoJSON, SHP, FlatGeobuf, GeoParquet, or CSV with lon/lat); ``None`` with ``inline``.
    inline
        Rows given in the scenario (each with ``lon`` and ``lat``), used when ``path`` is ``None``.
    id_column
        The column holding unique ids; it becomes the ``id`` column.
    layer
        The layer to read from a multi-layer file.
    what
        What the features are ("sources", "consumers"), for messages.
    allowed_geometry
        Geometry types accepted.

    Returns
    -------
    geopandas.GeoDataFrame
        The features with a unique string ``id`` column, in the file's CRS.
    """
    if path is not None:
        gdf = _read_any(path, layer=layer)
        where = str(path)
    else:
        df = pd.DataFrame(inline or [])
        where = f"scenario '{what}.inline'"
        if df.empty or not {"lon", "lat"} <= set(df.columns):
            raise InputDataError(f"{where}: each row needs 'lon' and 'lat' in degrees")
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
    if gdf.empty:
        raise InputDataError(f"{where}: holds no {what}")
    if gdf.crs is None:
        raise InputDataError(
            f"{where}: the layer has no CRS; assign the right one (QGIS: Layer ▸ Set CRS, or "
            f"ogr2ogr -a_srs EPSG:3067) and save it again"
        )
    if id_column not in gdf.columns:
        raise InputDataError(
            f"{where}: id column '{id_column}' is missing; name it with '{what}.id_column' "
            f"(columns: {', '.join(map(str, gdf.columns))})"
        )
    ids = gdf[id_column]
    if ids.isna().any():
        raise InputDataError(f"{where}: rows {_rows(gdf.index[ids.isna()] + 1)} have no '{id_column}'")
    ids = ids.astype(str)
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise InputDataError(f"{where}: duplicate ids {_rows(sorted(set(dup)))}; every {what[:-1]} needs its own id")
    gdf = gdf.reset_index(drop=True)
    ids = ids.reset_index(drop=True)
    _check_geometry(gdf, where, ids, allowed_geometry)
    gdf = gdf.drop(columns=[id_column]).assign(id=ids.values)
    gdf.attrs["where"] = where
    logger.info("Read %d %s from %s", len(gdf), what, where)
    return gdf


def prepare_sources(gdf: gpd.GeoDataFrame, *, crs: CRS, default_t_supply_c: float) -> gpd.GeoDataFrame:
    """Check heat sources and project them to the plan's CRS.

    Parameters
    ----------
    gdf
        Output of :func:`read_features` for sources.
    crs
        The plan's metric CRS.
    default_t_supply_c
        Supply temperature of sources that give none (``temperatures.supply_c``).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``source_id``, ``name``, ``capacity_kw``, ``t_supply_c``, geometry (points).
    """
    where = gdf.attrs.get("where", "sources")
    ids = gdf["id"]
    capacity = _numeric(gdf, "capacity_kw", where, ids, required=True)
    zero = capacity <= 0
    if zero.any():
        raise InputDataError(f"{where}: 'capacity_kw' must be positive for sources {_rows(ids[zero])}")
    t_supply = _numeric(gdf, "t_supply_c", where, ids, required=False).fillna(default_t_supply_c)
    _check_temperature(t_supply, where, ids, "t_supply_c")
    out = gpd.GeoDataFrame(
        {
            "source_id": ids.values,
            "name": gdf["name"].astype(str).values if "name" in gdf else ids.values,
            "capacity_kw": capacity.values,
            "t_supply_c": t_supply.values,
        },
        geometry=_project(gdf, crs, where, ids),
        crs=crs,
    )
    logger.info("Prepared %d sources, %.0f kW capacity", len(out), out.capacity_kw.sum())
    return out


def _project(gdf: gpd.GeoDataFrame, crs: CRS, where: str, ids: pd.Series) -> np.ndarray:
    """Project the features to the plan's CRS; features it cannot represent (far outside its area) are named."""
    projected = gdf.geometry.to_crs(crs).values
    bad = ~np.isfinite(shapely.get_coordinates(projected)).all(axis=1)
    if bad.any():
        index = np.unique(shapely.get_coordinates(projected, return_index=True)[1][bad])
        raise InputDataError(
            f"{where}: features {_rows(ids.iloc[index])} cannot be placed in {crs.to_string()} (far outside the "
            f"study area?); check their coordinates and CRS"
        )
    return projected


def _check_temperature(values: pd.Series, where: str, ids: pd.Series, column: str) -> None:
    hot = values > MAX_PLAUSIBLE_T_C
    if hot.any():
        raise InputDataError(
            f"{where}: '{column}' of {_rows(ids[hot])} is above {MAX_PLAUSIBLE_T_C:.0f}; give °C, not kelvin"
        )


def prepare_consumers(
    gdf: gpd.GeoDataFrame, *, crs: CRS, full_load_hours_h: float, default_min_supply_c: float
) -> gpd.GeoDataFrame:
    """Check consumers with given demand, derive missing peak loads and project them.

    Parameters
    ----------
    gdf
        Output of :func:`read_features` for consumers, with ``annual_demand_mwh`` (and optionally
        ``peak_load_kw``, ``name``, ``building_type``).
    crs
        The plan's metric CRS.
    full_load_hours_h
        Full-load hours deriving a missing peak load from the annual demand.
    default_min_supply_c
        Lowest acceptable supply temperature of consumers whose ``min_supply_c`` is empty or missing.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``consumer_id``, ``name``, ``building_type``, ``annual_demand_mwh``, ``peak_load_kw``,
        ``min_supply_c``, ``demand_method``, geometry (points or footprints).
    """
    where = gdf.attrs.get("where", "consumers")
    ids = gdf["id"]
    annual = _numeric(gdf, "annual_demand_mwh", where, ids, required=True)
    peak = _numeric(gdf, "peak_load_kw", where, ids, required=False)
    min_supply = _numeric(gdf, "min_supply_c", where, ids, required=False).fillna(default_min_supply_c)
    _check_temperature(min_supply, where, ids, "min_supply_c")
    derived = peak.isna()
    peak = peak.where(~derived, annual * 1000.0 / full_load_hours_h)
    method = np.where(
        derived,
        f"given annual demand; peak = annual / {full_load_hours_h:g} full-load hours",
        "given annual demand and peak load",
    )
    out = gpd.GeoDataFrame(
        {
            "consumer_id": ids.values,
            "name": gdf["name"].fillna("").astype(str).values if "name" in gdf else "",
            "building_type": gdf["building_type"].astype(str).values if "building_type" in gdf else "",
            "annual_demand_mwh": annual.values,
            "peak_load_kw": peak.values,
            "min_supply_c": min_supply.values,
            "demand_method": method,
        },
        geometry=_project(gdf, crs, where, ids),
        crs=crs,
    )
    logger.info("Prepared %d consumers, %.0f MWh/a", len(out), out.annual_demand_mwh.sum())
    return out

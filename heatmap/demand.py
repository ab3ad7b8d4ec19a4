"""First heat-demand estimate for buildings from their OpenStreetMap footprints and tags.

The rule, for each building:

1. **Type**: the first of the ``amenity``, ``shop``, ``office`` and ``building`` tags found in the
   building-types table (``data/osm_building_types.csv``); ``building=yes`` gets ``demand.default_type``.
   Types mapped to ``unheated`` (roofs, sheds, garages, …) are not consumers.
2. **Floors**: ``building:levels``, else ``height / demand.floor_height_m`` (rounded, at least 1), else
   ``demand.default_floors``.
3. **Heated floor area** = footprint area (m², in the metric CRS) × floors.
4. **Era** from ``start_date`` (year): ≤1920 → ``-1920``, 1921–1959 → ``1950s``, 1960–1979 → ``1970s``,
   1980–1999 → ``1990s``, 2000–2009 → ``2000s``, 2010–2017 → ``2010s``, ≥2018 → ``2018-``;
   else ``demand.default_era``.
5. **Annual demand** = space heat + hot water, with space heat = floor area × specific space-heat
   demand[era, type] × degree_days / reference_degree_days / 1000 and hot water = floor area × domestic
   hot water[type] / 1000 → MWh/a. Where ``demand.metered_column`` names a column holding a value, that
   metered annual demand is kept (split into space heat and hot water in the estimate's proportion).
6. **Peak load** (``demand.peak_method``): ``full_load_hours``: annual demand × 1000 /
   ``demand.full_load_hours_h``; or ``design_temperature`` (degree-day method): space heat × 1000 ×
   (base − design outdoor temperature) / (24 h × degree days) + hot water × 1000 / 8760 h → kW. The hourly
   profile of :mod:`heatmap.profiles` peaks at the same value in the hour at the design temperature.

Each building's ``demand_method`` records which tags were used and which defaults filled gaps.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from heatmap._errors import InputDataError
from heatmap.scenario import Demand

logger = logging.getLogger(__name__)

ERA_BINS = [
    (1920, "-1920"),
    (1959, "1950s"),
    (1979, "1970s"),
    (1999, "1990s"),
    (2009, "2000s"),
    (2017, "2010s"),
]
LAST_ERA = "2018-"
TYPE_TAGS = ("amenity", "shop", "office", "building")


def _read_table(path: Path, index_col: str | list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise InputDataError(f"{path}: demand table not found")
    return pd.read_csv(path, comment="#", index_col=index_col)


def _year(start_date: pd.Series) -> pd.Series:
    return pd.to_numeric(start_date.astype(str).str.extract(r"(\d{4})")[0], errors="coerce")


def era_of_year(year: pd.Series) -> pd.Series:
    """Map construction years to the eras of the specific-demand table (NaN stays NaN)."""
    edges = [b for b, _ in ERA_BINS]
    labels = np.array([lab for _, lab in ERA_BINS] + [LAST_ERA], dtype=object)
    idx = np.searchsorted(edges, year.to_numpy(dtype=float), side="left")
    out = pd.Series(labels[np.minimum(idx, len(labels) - 1)], index=year.index, dtype=object)
    return out.where(year.notna())


def _building_type(buildings: pd.DataFrame, table: pd.DataFrame, default_type: str) -> tuple[pd.Series, pd.Series]:
    lookup = table["demand_type"]
    result = pd.Series(np.nan, index=buildings.index, dtype=object)
    source = pd.Series("", index=buildings.index, dtype=object)
    for tag in TYPE_TAGS:
        if tag not in buildings.columns:
            continue
        values = buildings[tag].astype("string")
        exact = pd.Series(
            lookup.reindex(pd.MultiIndex.from_arrays([[tag] * len(values), values.fillna("")])).to_numpy(),
            index=buildings.index,
        )
        wildcard = lookup.get((tag, "*"))
        if wildcard is not None:
            exact = exact.where(exact.notna() | values.isna(), wildcard)
        take = result.isna() & exact.notna()
        result[take] = exact[take]
        source[take] = tag + "=" + values[take].astype(str)
    is_yes = result.isna()
    result[is_yes] = default_type
    source[is_yes] = "default type"
    return result, source


def estimate_building_demand(buildings: gpd.GeoDataFrame, settings: Demand) -> gpd.GeoDataFrame:
    """Estimate annual heat demand and peak load of buildings from footprints and OSM tags.

    Parameters
    ----------
    buildings
        Building footprints in a metric CRS, with OSM tag columns where known (``building``,
        ``building:levels``, ``height``, ``start_date``, ``amenity``, ``shop``, ``office``, ``name``) and a
        unique ``id``.
    settings
        The scenario's demand settings.

    Returns
    -------
    geopandas.GeoDataFrame
        The heated buildings with ``consumer_id``, ``name``, ``building_type``, ``era``, ``floors``,
        ``floor_area_m2``, ``space_heat_mwh``, ``dhw_mwh``, ``annual_demand_mwh``, ``peak_load_kw`` and
        ``demand_method``; unheated
        buildings are left out.
    """
    if buildings.crs is None or not buildings.crs.is_projected:
        raise InputDataError("buildings must be in a metric (projected) CRS before estimating demand")
    specific = _read_table(settings.specific_demand_table, "era")
    dhw = _read_table(settings.dhw_table, "demand_type")["dhw_kwh_per_m2"]
    types = _read_table(settings.building_types_table, ["tag", "value"])
    for name, value, table in (
        ("default_type", settings.default_type, specific.columns),
        ("default_era", settings.default_era, specific.index),
    ):
        if value not in table:
            raise InputDataError(f"'demand.{name}' is {value!r}; allowed: {', '.join(map(str, table))}")

    btype, type_source = _building_type(buildings, types, settings.default_type)
    heated = (btype != "unheated").to_numpy()
    b = buildings.loc[heated]
    btype, type_source = btype[heated], type_source[heated]

    levels = pd.to_numeric(b.get("building:levels"), errors="coerce") if "building:levels" in b else None
    height = pd.to_numeric(b.get("height"), errors="coerce") if "height" in b else None
    floors = pd.Series(np.nan, index=b.index)
    floors_source = pd.Series("default floors", index=b.index, dtype=object)
    if height is not None:
        from_height = np.maximum(np.round(height / settings.floor_height_m), 1)
        floors = floors.where(floors.notna(), from_height)
        floors_source[from_height.notna()] = "height"
    if levels is not None:
        ok = levels > 0
        floors[ok] = levels[ok]
        floors_source[ok] = "building:levels"
    floors = floors.fillna(settings.default_floors)

    year = _year(b["start_date"]) if "start_date" in b else pd.Series(np.nan, index=b.index)
    era = era_of_year(year)
    era_source = np.where(era.notna(), "start_date", "default era")
    era = era.fillna(settings.default_era)

    area = b.geometry.area * floors
    spec = specific.stack().reindex(pd.MultiIndex.from_arrays([era, btype])).to_numpy(dtype=float)
    dd_factor = settings.degree_days / settings.reference_degree_days
    space = area.to_numpy() * spec * dd_factor / 1000.0
    hot_water = area.to_numpy() * np.nan_to_num(dhw.reindex(btype).to_numpy(dtype=float)) / 1000.0
    method = (
        "OSM footprint; type from "
        + type_source.astype(str)
        + "; floors from "
        + floors_source
        + "; era from "
        + pd.Series(era_source, index=b.index)
        + f"; degree days {settings.degree_days:g}/{settings.reference_degree_days:g}"
    )
    if settings.metered_column and settings.metered_column in b:
        metered = pd.to_numeric(b[settings.metered_column], errors="coerce").to_numpy()
        has = np.isfinite(metered) & (metered >= 0)
        scale = np.divide(metered, space + hot_water, out=np.ones_like(metered), where=has & (space + hot_water > 0))
        space, hot_water = np.where(has, space * scale, space), np.where(has, hot_water * scale, hot_water)
        method = method.where(~has, f"metered ({settings.metered_column})")
    annual = space + hot_water
    if settings.peak_method == "design_temperature":
        heating_k = settings.base_temperature_c - settings.design_temperature_c
        peak = space * 1000.0 * heating_k / (24.0 * settings.degree_days) + hot_water * 1000.0 / 8760.0
        method += f"; peak at {settings.design_temperature_c:g} °C (degree-day method)"
    else:
        peak = annual * 1000.0 / settings.full_load_hours_h
        method += f"; peak = annual / {settings.full_load_hours_h:g} h"
    out = gpd.GeoDataFrame(
        {
            "consumer_id": b["id"].astype(str).values,
            "name": b["name"].fillna("").astype(str).values if "name" in b else "",
            "building_type": btype.values,
            "era": era.values,
            "floors": floors.values,
            "floor_area_m2": area.values,
            "space_heat_mwh": space,
            "dhw_mwh": hot_water,
            "annual_demand_mwh": annual,
            "peak_load_kw": peak,
            "demand_method": method.values,
        },
        geometry=b.geometry.values,
        crs=buildings.crs,
    )
    logger.info(
        "Estimated demand of %d heated buildings (%d unheated left out): %.0f MWh/a",
        len(out),
        int((~heated).sum()),
        out.annual_demand_mwh.sum(),
    )
    return out

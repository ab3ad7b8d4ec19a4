"""The ``heatmap demand`` job: buildings → demand → heat-density raster → potential areas → files.

Buildings come from an OSM PBF (their footprints and tags, read with pyrosm) or from a file of footprints
with OSM-like tag columns and an ``id`` (GeoPackage, GeoJSON, Shapefile, GeoParquet). In one process every
building's estimate is kept and written; on Dask (:mod:`heatmap.demand.region`) only the raster and the areas
are, since a region's millions of buildings are better kept in their own GeoParquet.

Written atomically into the output folder:

- ``demand.gpkg``: ``buildings`` with their demand and how it was estimated (one process only) and
  ``potential_areas``, each styled for QGIS;
- ``left_out_buildings.csv``: every building given no demand, with the reason (one process only; on Dask the
  summary counts them by reason, with examples);
- ``heat_density.tif``: MWh per hectare and year on the grid, with its QGIS style ``heat_density.qml`` beside it;
- ``map.html``: the heat density with its legend, the potential areas and (up to
  :data:`MAX_MAP_BUILDINGS`) the buildings, offline;
- ``heat_profile.csv``: the buildings' summed hourly load over the year, when an outdoor-temperature series
  is given (one process only);
- ``summary.json``: totals, the buildings left out by reason, the share of buildings whose type, era or floors
  were defaulted, the estimate per type beside published Finnish figures, and every setting used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from heatmap import __version__
from heatmap._errors import InputDataError
from heatmap.demand import buildings as demand
from heatmap.demand import density, profiles
from heatmap.io import inputs, streets
from heatmap.io.outputs import assumptions_text, write_atomically, write_gpkg, write_json
from heatmap.io.tables import write_csv
from heatmap.maps.layers import load_layer_specs
from heatmap.scenario import Scenario

logger = logging.getLogger(__name__)

#: The description of demand.gpkg's buildings layer (styled as a plan's consumers).
BUILDINGS_DESCRIPTION = (
    "Heated buildings with their estimated annual demand (space heat and hot water), peak load and how each was "
    "estimated."
)
DEMAND_FILES = ("demand.gpkg", "heat_density.tif", "heat_density.qml", "map.html", "summary.json")
MAX_MAP_BUILDINGS = 50_000
"""Most buildings drawn on the web map; beyond, the map shows the raster and the areas only."""


@dataclass
class DemandMap:
    """What the demand job found.

    Attributes
    ----------
    buildings : geopandas.GeoDataFrame or None
        Every heated building with its estimate (``None`` when run on Dask).
    density : heatmap.demand.density.HeatDensity
    areas : geopandas.GeoDataFrame
        Potential district-heating areas.
    profile_kw : pandas.Series or None
        Summed hourly load, when an outdoor-temperature series was given.
    scenario : heatmap.scenario.Scenario
    source : pathlib.Path
    report : heatmap.demand.buildings.DemandReport
        Buildings left out and why, defaults used, sums per type.
    left_out : pandas.DataFrame or None
        The buildings left out, one row each (``None`` when run on Dask).
    """

    buildings: gpd.GeoDataFrame | None
    density: density.HeatDensity
    areas: gpd.GeoDataFrame
    profile_kw: pd.Series | None
    scenario: Scenario
    source: Path
    report: demand.DemandReport = dataclasses.field(default_factory=demand.DemandReport)
    left_out: pd.DataFrame | None = None


def _metric_crs(scn: Scenario, gdf: gpd.GeoDataFrame) -> CRS:
    centre = gdf.geometry.iloc[: min(len(gdf), 10_000)].to_crs(4326).union_all().centroid
    return inputs.metric_crs_for(centre.x, centre.y, given=scn.study_area.crs)


def read_buildings(path: Path) -> gpd.GeoDataFrame:
    """Read building footprints with tags from an OSM PBF or a file (with an ``id`` column, any CRS)."""
    path = Path(path)
    if path.name.endswith(".pbf"):
        return streets.buildings_from_pbf(path)
    return inputs.read_features(
        path, id_column="id", what="buildings", allowed_geometry=("Polygon", "MultiPolygon", "Point")
    )


def demand_map(
    path: str | Path,
    scn: Scenario,
    *,
    outdoor_temperature: pd.Series | None = None,
    use_dask: bool = False,
) -> DemandMap:
    """Estimate the demand of the buildings in ``path``, map it on the grid and find the potential areas.

    Parameters
    ----------
    path
        OSM PBF, or footprints with OSM-like tags and ``id`` (GPKG, GeoJSON, SHP, GeoParquet).
    scn
        Settings: ``demand``, ``density``, ``economics`` and ``study_area.crs`` are used.
    outdoor_temperature
        Hourly outdoor temperature of a year for the summed load profile (one process only).
    use_dask
        Run partitioned on the active Dask client (see :func:`heatmap.demand.region.dask_client`).

    Returns
    -------
    DemandMap
    """
    path = Path(path)
    d = scn.density
    if scn.path is None:
        logger.warning(
            "No scenario file: the documented demand defaults apply (degree days %g); give the plan's scenario "
            "for the demand that 'heatmap plan' gives the same buildings",
            scn.demand.degree_days,
        )
    if use_dask:
        from heatmap.demand import region

        metered = (scn.demand.metered_column,) if scn.demand.metered_column else ()
        frame = region.read_buildings(path, extra_columns=metered)
        crs = _metric_crs(scn, frame.get_partition(0).compute())
        grid, report = region.demand_of_region(frame.to_crs(crs), scn.demand, cell_size_m=d.cell_size_m)
        buildings, profile, left_out = None, None, None
    else:
        raw = read_buildings(path)
        est = demand.estimate_demand(raw.to_crs(_metric_crs(scn, raw)), scn.demand)
        buildings, report, left_out = est.buildings, est.report, est.left_out
        if buildings.empty:
            counts = ", ".join(f"{v} {demand.LEFT_OUT_REASONS[k]}" for k, v in report.left_out.items() if v)
            raise InputDataError(f"{path}: no heated building found ({counts})")
        grid = density.heat_density_from_buildings(buildings, cell_size_m=d.cell_size_m)
        profile = None
        if outdoor_temperature is not None:
            load = profiles.hourly_load_kw(
                buildings.space_heat_mwh.sum(),
                buildings.dhw_mwh.sum(),
                outdoor_temperature.to_numpy(),
                base_temperature_c=scn.demand.base_temperature_c,
            )
            profile = pd.Series(load, index=outdoor_temperature.index, name="load_kw")
    areas = density.potential_areas(
        grid,
        min_cell_density_mwh_per_ha=d.min_cell_density_mwh_per_ha,
        min_area_demand_gwh_per_a=d.min_area_demand_gwh_per_a,
        cost_c1_eur_per_m=d.cost_c1_eur_per_m,
        cost_c2_eur_per_m2=d.cost_c2_eur_per_m2,
        discount_rate=scn.economics.discount_rate,
        lifetime_a=scn.economics.lifetime_a,
    )
    logger.info("Demand map of %s: %.1f GWh/a, %d potential areas", path, grid.total_demand_mwh / 1000, len(areas))
    return DemandMap(buildings, grid, areas, profile, scn, path, report, left_out)


def demand_summary(result: DemandMap) -> dict[str, Any]:
    """Totals of the demand map and every setting used (demand, density, economics, study area)."""
    b, grid, areas = result.buildings, result.density, result.areas
    used = ("name", "study_area.crs", "demand.", "density.", "economics.discount_rate", "economics.lifetime_a")
    summary: dict[str, Any] = {
        "heatmap_version": __version__,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "buildings_file": str(result.source),
        "annual_demand_gwh": grid.total_demand_mwh / 1000,
        "raster": {
            "cell_size_m": grid.cell_size_m,
            "rows": grid.shape[0],
            "cols": grid.shape[1],
            "cells_with_demand": int(np.count_nonzero(grid.demand_mwh)),
            "max_density_mwh_per_ha": float(grid.density_mwh_per_ha.max()),
            "crs": grid.crs.to_string(),
        },
        "potential_areas": {
            "count": len(areas),
            "annual_demand_gwh": float(areas.annual_demand_gwh.sum()),
            "area_ha": float(areas.area_ha.sum()),
            "distribution_capex_eur": float(areas.distribution_capex_eur.sum()),
        },
        "assumptions": [r for r in result.scenario.assumptions() if r["key"].startswith(used)],
    }
    summary["buildings"] = result.report.to_dict()
    summary["plausibility"] = demand.plausibility(result.report, result.scenario.demand.statistics_table)
    summary["demand_settings_from"] = (
        str(result.scenario.path) if result.scenario.path else "the documented defaults (no scenario file)"
    )
    if b is not None:
        summary["buildings"].update(
            {
                "space_heat_gwh": float(b.space_heat_mwh.sum() / 1000),
                "dhw_gwh": float(b.dhw_mwh.sum() / 1000),
                "peak_load_mw_undiversified": float(b.peak_load_kw.sum() / 1000),
                "metered": int(b.demand_method.str.startswith("metered").sum()),
            }
        )
    if result.profile_kw is not None:
        summary["profile"] = {
            "hours": len(result.profile_kw),
            "peak_kw": float(result.profile_kw.max()),
            "peak_time": str(result.profile_kw.idxmax()),
            "sum_gwh": float(result.profile_kw.sum() / 1e6),
        }
    return summary


def write_demand_map(result: DemandMap, out_dir: str | Path) -> dict[str, Path]:
    """Write the demand map's files atomically into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    result
        Output of :func:`demand_map`.
    out_dir
        The output folder (created if missing).

    Returns
    -------
    dict
        File name → path written.
    """
    from heatmap.maps import qgis_style, webmap

    all_specs = load_layer_specs()
    # The buildings look like a plan's consumers; both layers are drawn on this map.
    specs = {
        "buildings": dataclasses.replace(all_specs["consumers"], description=BUILDINGS_DESCRIPTION),
        "potential_areas": dataclasses.replace(all_specs["potential_areas"], web_map=True),
    }
    layers = {"buildings": result.buildings} if result.buildings is not None else {}
    layers["potential_areas"] = result.areas
    names = DEMAND_FILES + (("heat_profile.csv",) if result.profile_kw is not None else ())
    names += ("left_out_buildings.csv",) if result.left_out is not None else ()

    summary = demand_summary(result)
    name = next((a["value"] for a in summary.get("assumptions") or [] if a.get("key") == "name"), None)
    abstract = f"Buildings of {result.source.name}. Scenario: {name}. {assumptions_text(summary)}"

    def write(tmp: Path) -> None:
        gpkg = tmp / "demand.gpkg"
        qgis_style.write_layer_styles(gpkg, write_gpkg(layers, gpkg, specs=specs, abstract=abstract), specs=specs)
        density.write_heat_density_tif(result.density, tmp / "heat_density.tif")
        qgis_style.write_raster_style(tmp / "heat_density.tif", all_specs["heat_density"])
        image = webmap.ImageLayer(
            all_specs["heat_density"], *density.density_image(result.density, all_specs["heat_density"])
        )
        map_layers = {"potential_areas": result.areas}  # a region's buildings are too many for a web page
        if result.buildings is not None and len(result.buildings) <= MAX_MAP_BUILDINGS:
            map_layers = {"buildings": result.buildings, **map_layers}
        webmap.write_map(
            map_layers, tmp / "map.html", specs=specs, title=f"Heat demand: {result.source.name}", images=[image]
        )
        if result.profile_kw is not None:
            write_csv(
                result.profile_kw.rename_axis("time").to_frame(),
                tmp / "heat_profile.csv",
                float_format="%.3f",
                index=True,
            )
        if result.left_out is not None:
            write_csv(result.left_out, tmp / "left_out_buildings.csv", float_format="%.1f")
        write_json(summary, tmp / "summary.json")

    written = write_atomically(Path(out_dir), names, write)
    logger.info("Wrote %s to %s", ", ".join(written), out_dir)
    return written

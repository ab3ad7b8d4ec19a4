"""The ``heatmap demand`` job: buildings → demand → heat-density raster → potential areas → files.

Buildings come from an OSM PBF (their footprints and tags, read with pyrosm) or from a file of footprints
with OSM-like tag columns and an ``id`` (GeoPackage, GeoJSON, Shapefile, GeoParquet). In one process every
building's estimate is kept and written; on Dask (:mod:`heatmap.demand.region`) only the raster and the areas
are, since a region's millions of buildings are better kept in their own GeoParquet.

Written atomically into the output folder:

- ``demand.gpkg``: ``buildings`` with their demand and how it was estimated (one process only) and
  ``potential_areas``, each styled for QGIS;
- ``left_out_buildings.csv``: every building given no demand, with the reason and where it is (a point inside
  it as ``lon_deg``, ``lat_deg`` and its footprint as ``wkt``, EPSG:4326; one process only: on Dask the summary
  counts them by reason, with examples);
- ``buildings.csv``: every heated building of ``demand.gpkg`` with its demand and where it is (as above);
- ``heat_density.tif``: MWh per hectare and year on the grid, with its QGIS style ``heat_density.qml`` beside it;
- ``map.html``: the heat density cell by cell on its true grid (up to
  :data:`heatmap.demand.density.MAX_MAP_CELLS` cells with demand, else as an image), the potential areas and
  (up to :data:`MAX_MAP_BUILDINGS`) the buildings, offline; each theme in its own colour ramp, its classes
  from the data (:func:`heatmap.maps.classes.data_classes`), the same in the GeoPackage's QGIS styles;
- ``report.html``: the key figures, the heat density drawn in its classes with the potential areas, each theme's
  classes with how many cells, buildings and areas fall in each, the buildings left out and why, the check against
  statistics and every setting, on one self-contained page that prints on A4;
- ``heat_profile.csv``: the buildings' summed hourly load over the year, when an outdoor-temperature series
  is given (one process only);
- ``summary.json``: totals, the buildings left out by reason, the share of buildings whose type, era or floors
  were defaulted, the estimate per type beside published Finnish figures, and every setting used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
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
PLAUSIBLE_CELL_M = (10.0, 1000.0)
"""Raster cell sizes taken without a warning, m."""

DEMAND_FILES = ("demand.gpkg", "heat_density.tif", "heat_density.qml", "map.html", "report.html", "summary.json")
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
    left_out: gpd.GeoDataFrame | None = None


DEMAND_STAGES = ("buildings read", "demand estimated", "heat density", "potential areas")
"""The steps :func:`demand_map` reports to its ``progress`` callback, in order."""


def _metric_crs(scn: Scenario, gdf: gpd.GeoDataFrame) -> CRS:
    centre = gdf.geometry.iloc[: min(len(gdf), 10_000)].to_crs(4326).union_all().centroid
    return inputs.metric_crs_for(centre.x, centre.y, given=scn.study_area.crs)


def read_buildings(path: Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read building footprints with tags from an OSM PBF or a file (with an ``id`` column, any CRS).

    ``layer``: the layer to read (:func:`check_layer`).
    """
    path = Path(path)
    if path.name.endswith(".pbf"):
        return streets.buildings_from_pbf(path)
    check_layer(path, layer)
    return inputs.read_features(
        path, id_column="id", what="buildings", layer=layer, allowed_geometry=("Polygon", "MultiPolygon", "Point")
    )


def check_layer(path: Path, layer: str | None) -> None:
    """Refuse a layer the buildings file lacks, and a file of several layers where none is named (``--layer``).

    Files of one table (CSV, GeoParquet) and files that cannot be read pass: reading them says why.
    """
    import pyogrio

    if path.suffix.lower() not in inputs.VECTOR_SUFFIXES - {".parquet"} or not path.exists():
        return
    with contextlib.suppress(pyogrio.errors.DataSourceError, OSError):
        inputs.check_layer(path, layer, option="--layer")


def demand_map(
    path: str | Path,
    scn: Scenario,
    *,
    outdoor_temperature: pd.Series | None = None,
    use_dask: bool = False,
    progress: Callable[[str], None] | None = None,
    layer: str | None = None,
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
    progress
        Called with the name of each step done (:data:`DEMAND_STAGES`).
    layer
        The layer of ``path`` to read, where it holds several.

    Returns
    -------
    DemandMap
    """
    path = Path(path)
    d = scn.density
    done = progress or (lambda stage: None)
    if not PLAUSIBLE_CELL_M[0] <= d.cell_size_m <= PLAUSIBLE_CELL_M[1]:
        logger.warning(
            "density.cell_size_m is %g m: the heat density and the potential areas' thresholds "
            "(density.min_cell_density_mwh_per_ha) are made for cells of a hectare (100 m, Hotmaps); a cell under "
            "%g m holds part of a building (its whole demand at its centre), one over %g m a whole district",
            d.cell_size_m, *PLAUSIBLE_CELL_M,
        )  # fmt: skip
    if scn.path is None:  # said in the summary too (demand_settings_from)
        logger.info(
            "No scenario file: the documented demand defaults apply (degree days %g); give the plan's scenario "
            "for the demand that 'heatmap plan' gives the same buildings",
            scn.demand.degree_days,
        )
    if use_dask:
        from heatmap.demand import region

        metered = (scn.demand.metered_column,) if scn.demand.metered_column else ()
        check_layer(path, layer)
        frame = region.read_buildings(path, extra_columns=metered, layer=layer)
        crs = _metric_crs(scn, frame.get_partition(0).compute())
        done(DEMAND_STAGES[0])
        grid, report = region.demand_of_region(frame.to_crs(crs), scn.demand, cell_size_m=d.cell_size_m)
        done(DEMAND_STAGES[1])
        done(DEMAND_STAGES[2])
        buildings, profile, left_out = None, None, None
    else:
        raw = read_buildings(path, layer=layer)
        done(DEMAND_STAGES[0])
        est = demand.estimate_demand(raw.to_crs(_metric_crs(scn, raw)), scn.demand)
        buildings, report, left_out = est.buildings, est.report, est.left_out
        if buildings.empty:
            counts = ", ".join(f"{v} {demand.LEFT_OUT_REASONS[k]}" for k, v in report.left_out.items() if v)
            raise InputDataError(f"{path}: no heated building found ({counts})")
        done(DEMAND_STAGES[1])
        grid = density.heat_density_from_buildings(buildings, cell_size_m=d.cell_size_m)
        done(DEMAND_STAGES[2])
        profile = None
        if outdoor_temperature is not None:
            load = profiles.hourly_load_kw(
                buildings.space_heat_mwh.sum(),
                buildings.dhw_mwh.sum(),
                outdoor_temperature,
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
    done(DEMAND_STAGES[3])
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
    from heatmap.io.exports import with_coordinates
    from heatmap.maps import qgis_style, report, webmap
    from heatmap.maps.classes import data_classes

    all_specs = load_layer_specs()
    cells = density.density_cells(result.density)
    # Each theme keeps its ramp; its class bounds come from the data mapped.
    specs = {
        "buildings": data_classes(
            dataclasses.replace(all_specs["buildings"], web_map=True, description=BUILDINGS_DESCRIPTION),
            result.buildings.annual_demand_mwh if result.buildings is not None else np.array([]),
        ),
        "potential_areas": data_classes(
            dataclasses.replace(all_specs["potential_areas"], web_map=True), result.areas.annual_demand_gwh
        ),
        "heat_density": data_classes(
            dataclasses.replace(all_specs["heat_density"], web_map=True), cells.density_mwh_per_ha
        ),
    }
    layers = {"buildings": result.buildings} if result.buildings is not None else {}
    layers["potential_areas"] = result.areas
    names = DEMAND_FILES + (("heat_profile.csv",) if result.profile_kw is not None else ())
    names += ("left_out_buildings.csv", "buildings.csv") if result.left_out is not None else ()

    summary = demand_summary(result)
    name = next((a["value"] for a in summary.get("assumptions") or [] if a.get("key") == "name"), None)
    abstract = f"Buildings of {result.source.name}. Scenario: {name}. {assumptions_text(summary)}"

    def write(tmp: Path) -> None:
        gpkg = tmp / "demand.gpkg"
        qgis_style.write_layer_styles(gpkg, write_gpkg(layers, gpkg, specs=specs, abstract=abstract), specs=specs)
        density.write_heat_density_tif(result.density, tmp / "heat_density.tif")
        qgis_style.write_raster_style(tmp / "heat_density.tif", specs["heat_density"])
        map_layers: dict[str, gpd.GeoDataFrame] = {"potential_areas": result.areas}
        images = []
        if len(cells) <= density.MAX_MAP_CELLS:  # each cell drawn on its true grid
            map_layers["heat_density"] = cells
        else:  # a region's cells are too many for a web page: an image, its cell edges within a pixel
            image = density.density_image(result.density, specs["heat_density"])
            images.append(webmap.ImageLayer(specs["heat_density"], *image))
        if result.buildings is not None and len(result.buildings) <= MAX_MAP_BUILDINGS:
            map_layers["buildings"] = result.buildings  # a region's buildings are too many for a web page
        webmap.write_map(
            map_layers, tmp / "map.html", specs=specs, title=f"Heat demand: {result.source.name}", images=images
        )
        if result.profile_kw is not None:
            write_csv(
                result.profile_kw.rename_axis("time").to_frame(),
                tmp / "heat_profile.csv",
                float_format="%.3f",
                index=True,
            )
        if result.left_out is not None:
            write_csv(with_coordinates(result.left_out), tmp / "left_out_buildings.csv", float_format="%.10g")
        if result.buildings is not None:
            write_csv(with_coordinates(result.buildings), tmp / "buildings.csv", float_format="%.10g")
        write_json(demand_summary(result), tmp / "summary.json")
        grid = result.density
        left, top = grid.transform.c, grid.transform.f
        rows, cols = grid.shape
        html = report.demand_report_html(
            json.loads((tmp / "summary.json").read_text(encoding="utf-8")),  # the report states what it holds
            density_mwh_per_ha=grid.density_mwh_per_ha,
            extent=(left, left + cols * grid.cell_size_m, top - rows * grid.cell_size_m, top),
            areas=result.areas,
            specs=specs,
            values={
                "heat_density": cells.density_mwh_per_ha,
                "potential_areas": result.areas.annual_demand_gwh,
                **({"buildings": result.buildings.annual_demand_mwh} if result.buildings is not None else {}),
            },
        )
        (tmp / "report.html").write_text(html, encoding="utf-8")

    title = f"heatmap demand, buildings {result.source.name}"
    written = write_atomically(Path(out_dir), names, write, title=title)
    logger.info("Wrote %s to %s", ", ".join(written), out_dir)
    return written


_MAX_SHOWN_IDS = 2


def format_demand_summary(summary: dict[str, Any], written: dict[str, Path] | None = None) -> str:
    """Render the demand summary for the terminal: one screen, every figure with its unit.

    Parameters
    ----------
    summary
        :func:`demand_summary` (everything else is in ``summary.json``).
    written
        File name → path written, to name the output folder.

    Returns
    -------
    str
        The text, about 20 lines.
    """
    b = summary.get("buildings", {})
    r = summary.get("raster", {})
    a = summary.get("potential_areas", {})
    lines = [f"Heat demand of {summary.get('buildings_file')}", ""]
    heated, read = b.get("heated"), b.get("buildings_read")
    line = f"  buildings        {heated:,d} heated" if isinstance(heated, int) else "  buildings        (on Dask)"
    if isinstance(read, int):
        line += f" of {read:,d} read"
    lines.append(line)
    left_out = {k: v for k, v in (b.get("left_out") or {}).items() if v}
    if left_out:
        reasons = b.get("left_out_reasons") or {}
        examples = b.get("left_out_examples") or {}
        where = "each in left_out_buildings.csv" if "space_heat_gwh" in b else "by reason; without --dask: a list"
        lines.append(f"  left out         {sum(left_out.values()):,d} ({where}):")
        for k, v in left_out.items():
            ids = ", ".join(examples.get(k, [])[:_MAX_SHOWN_IDS])
            lines.append(f"    {v:>6,d}  {reasons.get(k, k)}" + (f" (e.g. {ids})" if ids else ""))
    lines.append(f"  annual demand    {summary.get('annual_demand_gwh', float('nan')):,.1f} GWh/a")
    if "space_heat_gwh" in b:
        lines.append(
            f"    space heat {b['space_heat_gwh']:,.1f} GWh/a, hot water {b['dhw_gwh']:,.1f} GWh/a; "
            f"peak {b['peak_load_mw_undiversified']:,.1f} MW (undiversified)"
        )
    shares = b.get("defaulted_share") or {}
    if shares:
        lines.append(
            "  defaulted        " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares.items()) + " of the buildings"
        )
    unlisted = b.get("unlisted_building_tags") or {}
    if unlisted:
        shown = ", ".join(f"{k} {v}" for k, v in list(unlisted.items())[:5]) + (", …" if len(unlisted) > 5 else "")
        lines.append(
            f"  unlisted tags    building={shown} (not in the building-types table: typed by land use or footprint)"
        )
    if r:
        lines.append(
            f"  heat density     {r.get('rows')} × {r.get('cols')} cells of {r.get('cell_size_m', 0):g} m "
            f"({r.get('crs')}), {r.get('cells_with_demand', 0):,d} with demand, densest "
            f"{r.get('max_density_mwh_per_ha', float('nan')):,.0f} MWh/ha/a"
        )
    lines.append(
        f"  potential areas  {a.get('count', 0):,d}: {a.get('annual_demand_gwh', 0):,.1f} GWh/a on "
        f"{a.get('area_ha', 0):,.0f} ha, distribution grid {a.get('distribution_capex_eur', 0) / 1e6:,.1f} M€"
    )
    profile = summary.get("profile")
    if profile:
        lines.append(
            f"  hourly profile   {profile['hours']:,d} h, peak {profile['peak_kw'] / 1000:,.1f} MW at "
            f"{profile['peak_time'][:16]}, {profile['sum_gwh']:,.1f} GWh"
        )
    far = [
        f"{p['demand_type']} {p['ratio_mean_heat_mwh_per_building']:.1f}×"
        for p in summary.get("plausibility") or []
        if isinstance(p.get("ratio_mean_heat_mwh_per_building"), int | float)
        and not 1 / 1.5 <= p["ratio_mean_heat_mwh_per_building"] <= 1.5
    ]
    if far:
        lines.append("  note: mean demand per building beyond 1.5× the published figure: " + ", ".join(far))
    lines.append(f"  settings from    {summary.get('demand_settings_from')}")
    if str(summary.get("demand_settings_from", "")).startswith("the documented defaults"):
        lines.append("    (give the plan's scenario as --scenario for the demand 'heatmap plan' gives)")
    if written:
        folder = next(iter(written.values())).parent
        lines += ["", f"Written to {folder}: {', '.join(written)} (README.txt lists every file)"]
    return "\n".join(lines)

"""Write a plan: ``plan.gpkg`` (styled for QGIS), ``map.html`` (offline web map) and ``summary.json``.

Everything is written into a temporary folder inside the output folder and moved into place only when all
files are complete, so an interrupted run leaves the previous results as they were. A temporary folder
left behind by a killed run is removed by the next run writing to the same folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from heatmap import __version__
from heatmap._errors import OutputError
from heatmap.layers import load_layer_specs

logger = logging.getLogger(__name__)

GPKG_LAYERS = ("sources", "consumers", "pipes", "junctions", "streets")
"""Layers of ``plan.gpkg``, in this order."""
OUTPUT_FILES = ("plan.gpkg", "map.html", "summary.json")


def plan_layers(plan) -> dict[str, gpd.GeoDataFrame]:
    """Return the plan's output layers by name (see :data:`GPKG_LAYERS`)."""
    return {name: getattr(plan, name) for name in GPKG_LAYERS}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def plan_summary(plan, *, partial: bool = False) -> dict[str, Any]:
    """Everything a reader needs to judge the plan: totals, checks, exclusions and every assumption.

    The same scenario gives the same summary, apart from ``created_utc`` (stage timings are logged instead).

    Parameters
    ----------
    plan
        A :class:`heatmap.plan.Plan`.
    partial
        Whether the plan is written although checks failed.

    Returns
    -------
    dict
        JSON-ready summary.
    """
    c = plan.consumers
    dn_length = plan.pipes[plan.pipes.circuit == "supply"].groupby("dn").length_m.sum().round(1)
    status = "ok" if plan.ok else ("partial: checks failed" if partial else "checks failed")
    summary = {
        "heatmap_version": __version__,
        "created_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "scenario": plan.scenario.name,
        "scenario_file": plan.scenario.path,
        "crs": plan.crs.to_string(),
        "status": status,
        "counts": {
            "sources": len(plan.sources),
            "consumers": len(c),
            "consumers_connected": int(c.connected.sum()),
            "pipes": len(plan.pipes),
            "route_edges": int((plan.pipes.circuit == "supply").sum()),
        },
        "excluded_consumers": plan.excluded,
        "figures": plan.figures,
        "design_load_kw": float(c.q_design_kw.sum()),
        "peak_load_undiversified_kw": float(c.peak_load_kw[c.connected].sum()),
        "energy_balance": plan.energy_balance,
        "route_length_by_dn_m": {f"DN{k}": v for k, v in dn_length.items()},
        "violations": plan.violations.to_dict(orient="records"),
        "resize_rounds": plan.rounds,
        "assumptions": plan.scenario.assumptions(),
    }
    return _jsonable(summary)


def format_summary(summary: dict[str, Any]) -> str:
    """Render a summary as text for the command line."""
    f = summary["figures"]
    n = summary["counts"]
    eb = summary["energy_balance"]
    ex = summary["excluded_consumers"]
    lines = [
        f"Scenario: {summary['scenario']}",
        f"Status:   {summary['status']}",
        f"CRS:      {summary['crs']}",
        "",
        f"Consumers connected        {n['consumers_connected']:>12,d} of {n['consumers']:,d}",
        *(
            f"  excluded, {k.replace('_', ' ')}: {len(v)}"
            + (f" ({', '.join(v[:5])}{' …' if len(v) > 5 else ''})" if v else "")
            for k, v in ex.items()
        ),
        f"Route length               {f['route_length_m'] / 1000:>12,.2f} km",
        f"Heat delivered             {f['heat_delivered_mwh_per_a']:>12,.0f} MWh/a",
        f"Design load (diversified)  {summary['design_load_kw']:>12,.0f} kW",
        f"Heat losses                {f['heat_losses_mwh_per_a']:>12,.0f} MWh/a ({100 * f['heat_losses_share']:.1f} %)",
        f"Pumping                    {f['pumping_power_kw']:>12,.0f} kW, {f['pumping_energy_mwh_per_a']:,.0f} MWh/a",
        f"Linear heat density        {f['linear_heat_density_mwh_per_m_a']:>12,.2f} MWh/m/a",
        f"Capex                      {f['capex_eur'] / 1e6:>12,.2f} M€",
        f"LCOH                       {f['lcoh_eur_per_mwh']:>12,.1f} €/MWh",
        f"NPV                        {f['npv_eur'] / 1e6:>12,.2f} M€",
        f"Energy balance residual    {eb['residual_relative']:>12.1e} (|Q_src − Q_cons − Q_loss| / Q_src)",
        "",
        f"Checks: {'all hold' if not summary['violations'] else str(len(summary['violations'])) + ' violated'}",
        *(
            f"  {v['check']}: {v['element']} = {v['value']:.4g} (limit {v['limit']:.4g})"
            for v in summary["violations"][:20]
        ),
        "",
        "Assumptions (value, from scenario or default):",
        *(f"  {a['key']} = {a['value']}  [{a['source']}]" for a in summary["assumptions"]),
    ]
    return "\n".join(lines)


_EMPTY_GEOMETRY = {"point": "Point", "line": "LineString", "polygon": "Polygon", "polygon_or_point": "Point"}


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], path: Path, *, specs: dict | None = None) -> dict[str, str]:
    """Write the layers in order, titled from their definitions; return each layer's geometry type.

    Parameters
    ----------
    layers
        Layer name → features.
    path
        The GeoPackage (version 1.3, for older readers).
    specs
        Layer name → definition; default :func:`heatmap.layers.load_layer_specs`.

    Returns
    -------
    dict
        Layer name → geometry type written (for :func:`heatmap.qgis_style.write_layer_styles`).
    """
    specs = specs or load_layer_specs()
    geometry_types = {}
    for name, gdf in layers.items():
        kinds = set(gdf.geom_type.dropna())
        multi = "MultiPolygon" in kinds
        gdf.to_file(
            path,
            layer=name,
            driver="GPKG",
            engine="pyogrio",
            promote_to_multi=multi,
            dataset_options={"VERSION": "1.3"},
            layer_options={"IDENTIFIER": specs[name].title, "DESCRIPTION": f"heatmap {__version__}: {name}"},
        )
        geometry_types[name] = "MultiPolygon" if multi else next(iter(kinds), _EMPTY_GEOMETRY[specs[name].geometry])
    return geometry_types


_TMP_PREFIX = ".heatmap-tmp-"


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Remove temporary folders left by killed runs (their writer process no longer exists)."""
    for tmp in out_dir.glob(f"{_TMP_PREFIX}*"):
        pid = tmp.name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_plan(plan, out_dir: Path, *, partial: bool = False, tiles: str | None = None) -> dict[str, Path]:
    """Write the plan's GeoPackage, web map and summary atomically into ``out_dir``.

    Parameters
    ----------
    plan
        A :class:`heatmap.plan.Plan`.
    out_dir
        The output folder (created if missing).
    partial
        Mark the plan as partial (written although checks failed).
    tiles
        A tile URL template for the web map (online use); ``None`` draws no base map.

    Returns
    -------
    dict
        File name → path written.
    """
    from heatmap import qgis_style, webmap

    def write(tmp: Path) -> None:
        layers = plan_layers(plan)
        qgis_style.write_layer_styles(tmp / "plan.gpkg", write_gpkg(layers, tmp / "plan.gpkg"))
        webmap.write_map(layers, tmp / "map.html", title=plan.scenario.name, tiles=tiles)
        write_json(plan_summary(plan, partial=partial), tmp / "summary.json")

    written = write_atomically(out_dir, OUTPUT_FILES, write)
    logger.info("Wrote %s to %s", ", ".join(written), out_dir)
    return written


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write a summary as indented UTF-8 JSON (NaN and infinity as null)."""
    path.write_text(json.dumps(_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False), encoding="utf-8")


def write_atomically(out_dir: Path, names: tuple[str, ...], write: Callable[[Path], None]) -> dict[str, Path]:
    """Have ``write`` fill a temporary folder inside ``out_dir``, then move the files ``names`` into place.

    Parameters
    ----------
    out_dir
        The output folder (created if missing).
    names
        The files ``write`` makes; all of them are moved, only once ``write`` has returned.
    write
        Called with the temporary folder.

    Returns
    -------
    dict
        File name → path written.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=out_dir))
    except OSError as exc:
        raise OutputError(
            f"cannot write to the output folder {out_dir} ({exc.strerror}); choose another --out"
        ) from exc
    try:
        write(tmp)
        written = {}
        for name in names:
            os.replace(tmp / name, out_dir / name)
            written[name] = out_dir / name
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return written

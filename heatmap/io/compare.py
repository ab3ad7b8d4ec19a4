"""Scenarios side by side: finished plans compared in one table, one chart, one map and one report.

``heatmap compare`` plans each scenario it is given (or reads a finished plan's output folder) and writes:

- ``comparison.csv``: one row per scenario with its key figures (from each plan's ``summary.json``);
- ``comparison.png``: the figures that decide, one panel each (capex, LCOH, NPV, route length, losses, buildings
  connected), a bar per scenario;
- ``map.html``: one offline web map with each scenario's route (its supply pipes by DN) and sources as layers of
  their own, switched in the layer control;
- ``report.html``: the table and the chart on one self-contained page that prints on A4.

The plans compared are read back from their folders (``summary.json`` and ``plan.gpkg``), so a comparison shows
exactly what each plan wrote.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from heatmap._errors import InputDataError
from heatmap.maps.layers import load_layer_specs

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

logger = logging.getLogger(__name__)

FILES = ("comparison.csv", "comparison.png", "map.html", "report.html")
"""The files :func:`write_comparison` writes beside the plans it planned."""

COLUMNS = {
    "status": ("Status", ""),
    "consumers_connected": ("Buildings connected", ",.0f"),
    "consumers": ("Buildings planned for", ",.0f"),
    "heat_delivered_mwh_per_a": ("Heat delivered (MWh/a)", ",.0f"),
    "route_length_km": ("Route length (km)", ",.2f"),
    "heat_losses_pct": ("Heat losses (% of heat fed in)", ",.1f"),
    "pumping_power_kw": ("Pumping (kW)", ",.0f"),
    "capex_meur": ("Investment (M€)", ",.2f"),
    "lcoh_eur_per_mwh": ("Levelised cost of heat (€/MWh)", ",.1f"),
    "npv_meur": ("Net present value (M€)", ",.2f"),
    "design_method": ("Route chosen by", ""),
}
"""Columns of ``comparison.csv`` (after ``scenario``): their headings in the report and number formats."""

CHART = (
    ("capex_meur", "Investment (M€)"),
    ("lcoh_eur_per_mwh", "Levelised cost of heat (€/MWh)"),
    ("npv_meur", "Net present value (M€)"),
    ("route_length_km", "Route length (km)"),
    ("heat_losses_pct", "Heat losses (%)"),
    ("consumers_connected", "Buildings connected"),
)
"""The panels of ``comparison.png``."""


@dataclass(frozen=True)
class FinishedPlan:
    """A plan as its output folder holds it."""

    name: str
    folder: Path
    summary: dict[str, Any]
    pipes: gpd.GeoDataFrame
    sources: gpd.GeoDataFrame


def read_finished(folder: Path) -> FinishedPlan:
    """Read a finished plan from its output folder (``summary.json`` and ``plan.gpkg``, as ``heatmap plan`` wrote).

    Raises
    ------
    heatmap._errors.InputDataError
        Naming the folder and the file it lacks, where it holds no finished plan.
    """
    import geopandas as gpd

    folder = Path(folder)
    for name in ("summary.json", "plan.gpkg"):
        if not (folder / name).is_file():
            raise InputDataError(
                f"{folder}: no {name} here; give the output folder of a finished 'heatmap plan' (or its scenario file)"
            )
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        pipes = gpd.read_file(folder / "plan.gpkg", layer="pipes", engine="pyogrio")
        sources = gpd.read_file(folder / "plan.gpkg", layer="sources", engine="pyogrio")
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{folder}: its plan cannot be read ({str(exc).splitlines()[0][:200]})") from exc
    if not isinstance(summary, dict) or "figures" not in summary:
        raise InputDataError(f"{folder / 'summary.json'}: not the summary of a plan (no 'figures')")
    plan = FinishedPlan(str(summary.get("scenario") or folder.name), folder, summary, pipes, sources)
    logger.info("Read the plan %r from %s: %d pipes", plan.name, folder, len(pipes))
    return plan


def comparison_table(plans: list[FinishedPlan]) -> pd.DataFrame:
    """Return one row per plan with its key figures (:data:`COLUMNS`), in the order given."""
    import pandas as pd

    rows = []
    for p in plans:
        s, f = p.summary, p.summary.get("figures") or {}
        n = s.get("counts") or {}
        rows.append(
            {
                "scenario": p.name,
                "status": s.get("status"),
                "consumers_connected": n.get("consumers_connected"),
                "consumers": n.get("consumers"),
                "heat_delivered_mwh_per_a": f.get("heat_delivered_mwh_per_a"),
                "route_length_km": _scaled(f.get("route_length_m"), 1e-3),
                "heat_losses_pct": _scaled(f.get("heat_losses_share"), 100),
                "pumping_power_kw": f.get("pumping_power_kw"),
                "capex_meur": _scaled(f.get("capex_eur"), 1e-6),
                "lcoh_eur_per_mwh": f.get("lcoh_eur_per_mwh"),
                "npv_meur": _scaled(f.get("npv_eur"), 1e-6),
                "design_method": (s.get("network_design") or {}).get("method"),
            }
        )
    table = pd.DataFrame(rows, columns=["scenario", *COLUMNS])
    logger.info("Comparison of %d plans", len(table))
    return table


def _scaled(value: Any, factor: float) -> float:
    return float(value) * factor if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")


def plot_comparison(table: pd.DataFrame, path: Path) -> None:
    """Draw the figures that decide, one panel each, a bar per scenario (:data:`CHART`), into a PNG."""
    from matplotlib.figure import Figure

    names = table.scenario.astype(str).tolist()
    fig = Figure(figsize=(11, 2.2 + 0.35 * len(names) * 2), layout="constrained")
    axes = fig.subplots(2, 3, sharey=True).ravel()
    y = np.arange(len(names))[::-1]
    colours = [f"C{i % 10}" for i in range(len(names))]
    for ax, (col, title) in zip(axes, CHART, strict=True):
        values = table[col].to_numpy(dtype=float)
        ax.barh(y, np.nan_to_num(values), color=colours)
        for yi, v in zip(y, values, strict=True):
            ax.annotate("–" if np.isnan(v) else f"{v:,.1f}", (0 if np.isnan(v) else v, yi), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.25)
        ax.axvline(0, color="black", lw=0.5)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[::3]:
        ax.set_yticks(y, [_short(n) for n in names], fontsize=8)
    fig.suptitle("The scenarios side by side", fontsize=11)
    fig.savefig(path, dpi=130)


def _short(name: str, width: int = 34) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(name, width)[:2])


def apart(plans: list[FinishedPlan]) -> list[FinishedPlan]:
    """Return the plans, those of one name told apart by their folder's name (``tiny (tiny_2)``)."""
    names = [p.name for p in plans]
    return [dataclasses.replace(p, name=f"{p.name} ({p.folder.name})") if names.count(p.name) > 1 else p for p in plans]


def write_comparison_files(plans: list[FinishedPlan], folder: Path, *, title: str) -> pd.DataFrame:
    """Write :data:`FILES` into ``folder`` (inside the caller's atomic output folder); return the table.

    Plans of one name are told apart by their folders' names (:func:`apart`) in the table, the chart and the map.
    """
    from heatmap.io.tables import write_csv
    from heatmap.maps import webmap

    plans = apart(plans)
    table = comparison_table(plans)
    write_csv(table, folder / "comparison.csv", float_format="%.6g")
    plot_comparison(table, folder / "comparison.png")
    layers, specs = _map_layers(plans)
    webmap.write_map(layers, folder / "map.html", specs=specs, title=title)
    (folder / "report.html").write_text(_report(table, folder / "comparison.png", title=title), encoding="utf-8")
    return table


def _map_layers(plans: list[FinishedPlan]) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """Each plan's supply pipes (by DN) and sources as layers of their own."""
    base = load_layer_specs()
    layers, specs = {}, {}
    for i, p in enumerate(plans):
        key = f"{i + 1}_{re.sub(r'[^a-z0-9]+', '_', p.name.lower()).strip('_')[:40]}"
        supply = p.pipes[p.pipes.circuit == "supply"] if "circuit" in p.pipes else p.pipes
        for kind, gdf in (("pipes", supply), ("sources", p.sources)):
            name = f"{kind}_{key}"
            layers[name] = gdf
            specs[name] = dataclasses.replace(
                base[kind],
                name=name,
                title=f"{p.name}: {'route (pipes by DN)' if kind == 'pipes' else 'heat sources'}",
                pair=None,
                color_by=None,
                dash=None,
            )
    return layers, specs


def _report(table: pd.DataFrame, chart: Path, *, title: str) -> str:
    from jinja2 import Environment, StrictUndefined

    from heatmap.maps.report import number

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    template = env.from_string((files("heatmap.maps") / "templates" / "compare.html.j2").read_text(encoding="utf-8"))
    return template.render(
        title=title,
        columns=COLUMNS,
        rows=table.to_dict(orient="records"),
        chart="data:image/png;base64," + base64.b64encode(chart.read_bytes()).decode("ascii"),
    )

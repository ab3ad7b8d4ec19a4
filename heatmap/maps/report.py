"""The plan as a report for a city board: one self-contained HTML page, ``report.html``, that prints on A4.

What a board member reads without opening anything else: the status and key figures (with the prices the money
rests on), a drawing of the network (pipes by DN, the buildings connected and those left out, the sources by
name), the cost breakdown, the pipe length by DN, the heat losses, the year of operation where the plan has one,
the buildings left out and why (the ``left_out`` layer), the checks that failed and every assumption with its
origin. The page holds no link to anything outside it (the drawing is an inline PNG), so it can be mailed and
archived; its print style keeps tables whole on A4 pages (``@page`` A4, rows and figures never split).

The page is a Jinja2 template (``templates/report.html.j2``), filled from the plan's summary (``summary.json``,
:func:`heatmap.io.outputs.plan_summary`) and its layers.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import textwrap
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from heatmap.maps.layers import LayerSpec, load_layer_specs

if TYPE_CHECKING:
    import geopandas as gpd

logger = logging.getLogger(__name__)

DPI = 200
"""Resolution of the network drawing (dots per inch)."""

MAX_IDS = 30
"""Building ids listed per reason at most (the rest: summary.json)."""


def number(value: Any, fmt: str = ",.0f", unit: str = "", scale: float = 1.0) -> str:
    """Format a number with its unit; "–" where it is missing or not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    text = format(value / scale, fmt)
    return f"{text} {unit}".strip()


def network_png(layers: dict[str, gpd.GeoDataFrame], specs: dict[str, LayerSpec]) -> str:
    """Draw the network as a PNG data URI: supply pipes coloured by DN, buildings connected and left out, sources.

    The colours and DN classes are the web map's and the QGIS style's (``layers/pipes.yaml``). A PNG at
    :data:`DPI` prints sharply on A4 (matplotlib's SVG writer fails once pandapower has replaced its graphics
    context class, as importing ``pandapower.plotting`` does).
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(6.7, 5.2), layout="constrained")
    ax = fig.add_subplot()
    pipes = layers["pipes"]
    supply = pipes[pipes.circuit == "supply"] if "circuit" in pipes else pipes
    spec = specs["pipes"]
    colours = spec.colors_for(supply[spec.color.field] if spec.color.field else None)
    widths = np.where(supply["kind"].to_numpy() == "service", 0.5, 1.4) if "kind" in supply else 1.4
    xy, line_of = shapely.get_coordinates(supply.geometry.values, return_index=True)
    lines = np.split(xy, np.flatnonzero(np.diff(line_of)) + 1)  # one array of vertices per pipe
    ax.add_collection(LineCollection(lines, colors=list(colours), linewidths=widths, capstyle="round"))
    ax.autoscale_view()
    handles = [Line2D([], [], color=c, lw=2, label=label) for c, label in spec.legend]
    cons = layers["consumers"]
    pts = cons.geometry.representative_point()
    on = cons["connected"].astype(bool).to_numpy() if "connected" in cons else np.ones(len(cons), bool)
    ax.scatter(pts.x[on], pts.y[on], s=6, color="#252525", zorder=3)
    handles.append(Line2D([], [], ls="", marker="o", ms=3, color="#252525", label="building connected"))
    left = [pts[~on]]
    if "left_out" in layers and len(layers["left_out"]):
        left.append(layers["left_out"].geometry.representative_point())
    out_x = np.concatenate([p.x.to_numpy() for p in left])
    out_y = np.concatenate([p.y.to_numpy() for p in left])
    if len(out_x):
        ax.scatter(out_x, out_y, s=8, facecolors="none", edgecolors="#d95f02", lw=0.7, zorder=3)
        handles.append(Line2D([], [], ls="", marker="o", ms=4, mfc="none", mec="#d95f02", label="building left out"))
    src = layers["sources"]
    sp = src.geometry.representative_point()
    ax.scatter(sp.x, sp.y, s=70, marker="*", color="#e31a1c", edgecolors="white", lw=0.5, zorder=4)
    for x, y, name in zip(sp.x, sp.y, _source_names(src).values(), strict=True):
        label = "\n".join(textwrap.wrap(name, 30)[:3])
        ax.annotate(label, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=6.5, color="#99000d")
    handles.append(Line2D([], [], ls="", marker="*", ms=8, color="#e31a1c", label="heat source"))
    ax.legend(handles=handles, fontsize=6.5, loc="best", framealpha=0.85)
    ax.set_aspect("equal")
    ax.set_axis_off()
    x0, x1 = ax.get_xlim()
    bar = 10 ** math.floor(math.log10(max((x1 - x0) / 4, 1.0)))
    ax.plot([x0, x0 + bar], [ax.get_ylim()[0]] * 2, color="black", lw=2)
    ax.annotate(f"{bar:,.0f} m", (x0, ax.get_ylim()[0]), xytext=(0, 3), textcoords="offset points", fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def duration_png(hourly: Any, names: dict[str, str]) -> str:
    """Draw the year's load-duration curve and who covers it as a PNG data URI.

    The network's draw over all its hours, sorted from the highest, with each source's heat fed in and the
    prosumers' sales stacked under it in the same order (``hourly``: :class:`heatmap.energy.trade.Year`).
    """
    from matplotlib.figure import Figure

    draw = hourly.draw_by_tree.sum(axis=1).to_numpy() / 1000
    order = np.argsort(-draw, kind="stable")
    parts = hourly.source_kw.copy()
    if hourly.sale_kw.shape[1]:
        parts["prosumers' sales"] = hourly.sale_kw.sum(axis=1).to_numpy()
    parts = parts.loc[:, parts.max() > 1e-6] / 1000
    hours = np.arange(1, len(draw) + 1)
    fig = Figure(figsize=(6.7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.stackplot(
        hours,
        [parts[c].to_numpy()[order] for c in parts.columns],
        labels=[textwrap.shorten(names.get(str(c), str(c)), 45) for c in parts.columns],
        alpha=0.85,
    )
    ax.plot(hours, draw[order], color="black", lw=1.2, label="the network's draw")
    ax.set_xlim(1, len(draw))
    ax.set_xlabel("Hours of the year, sorted from the highest draw")
    ax.set_ylabel("Heat (MW)")
    ax.legend(fontsize=6.5, loc="upper right")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def environment() -> Any:
    """Return the Jinja2 environment of the report templates (``templates/``, read from the installed package).

    HTML escaping on, a missing variable an error, and the filter ``num`` (:func:`number`).
    """
    from jinja2 import Environment, FunctionLoader, StrictUndefined

    def load(name: str) -> str:
        return (files("heatmap.maps") / "templates" / name).read_text(encoding="utf-8")

    env = Environment(
        loader=FunctionLoader(load), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["num"] = number
    return env


def plan_context(summary: dict[str, Any], layers: dict[str, gpd.GeoDataFrame], hourly: Any = None) -> dict[str, Any]:
    """Return what the plan's sections of a report show (``templates/_plan.html.j2``), from its summary and layers.

    Parameters
    ----------
    summary
        The plan's summary (:func:`heatmap.io.outputs.plan_summary`, or its ``summary.json`` read back).
    layers
        The plan's layers: ``pipes``, ``consumers``, ``sources`` and, where any, ``left_out``.
    hourly
        The year of operation hour by hour (:class:`heatmap.energy.trade.Year`), where the plan has one: its
        load-duration curve is drawn.
    """
    pipes = layers["pipes"]
    by_dn = (
        pipes.groupby("dn")
        .agg(cost_eur=("cost_eur", "sum"))
        .join(pipes[pipes.circuit == "supply"].groupby("dn").agg(route_m=("length_m", "sum")))
        .reset_index()
    )
    by_kind = pipes.groupby("kind").agg(cost_eur=("cost_eur", "sum")).reset_index()
    left = layers.get("left_out")
    excluded = []
    if left is not None and len(left):
        for why, rows in left.groupby("why", sort=False):
            ids = rows.consumer_id.astype(str).tolist()
            excluded.append({"reason": why, "count": len(ids), "ids": ids[:MAX_IDS]})
    prices: dict[str, dict[str, Any]] = {}  # each price or setting the money rests on, once
    for group in ((summary.get("economics") or {}).get("price_origins") or {}).values():
        for p in group:
            prices.setdefault(p["key"], p)
    return {
        "prices": list(prices.values()),
        "s": summary,
        "f": summary.get("figures") or {},
        "drawing": network_png(layers, load_layer_specs()),
        "duration": None if hourly is None else duration_png(hourly, _source_names(layers["sources"])),
        "by_dn": by_dn.to_dict(orient="records"),
        "by_kind": by_kind.to_dict(orient="records"),
        "excluded": excluded,
        "max_ids": MAX_IDS,
        "violations": (summary.get("violations") or [])[:25],
    }


def plan_report_html(summary: dict[str, Any], layers: dict[str, gpd.GeoDataFrame], hourly: Any = None) -> str:
    """Render the plan's report (see the module docstring).

    Parameters
    ----------
    summary
        The plan's summary (:func:`heatmap.io.outputs.plan_summary`).
    layers
        The plan's layers: ``pipes``, ``consumers``, ``sources``.
    hourly
        The year of operation hour by hour (:class:`heatmap.energy.trade.Year`), where the plan has one: its
        load-duration curve is drawn.

    Returns
    -------
    str
        The HTML page.
    """
    context = plan_context(summary, layers, hourly)
    html = environment().get_template("report.html.j2").render(p=context, version=summary.get("heatmap_version"))
    logger.info("Report: %d characters, %d exclusion reasons, %d assumptions", len(html), len(context["excluded"]),
                len(summary.get("assumptions") or []))  # fmt: skip
    return html


def _source_names(sources: gpd.GeoDataFrame) -> dict[str, str]:
    """Each source's name by id (its id where it has none)."""
    names = sources["name"] if "name" in sources else sources.source_id
    return dict(zip(sources.source_id.astype(str), names.fillna(sources.source_id).astype(str), strict=True))


def write_plan_report(
    summary: dict[str, Any], layers: dict[str, gpd.GeoDataFrame], path: Path, *, hourly: Any = None
) -> None:
    """Write :func:`plan_report_html` to ``path`` (inside the caller's atomic output folder)."""
    Path(path).write_text(plan_report_html(summary, layers, hourly), encoding="utf-8")

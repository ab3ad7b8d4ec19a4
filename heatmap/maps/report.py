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
import pandas as pd
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
    from matplotlib import patheffects
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
        ax.annotate(
            label, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=6.5, color="#99000d", zorder=5,
            path_effects=[patheffects.withStroke(linewidth=2, foreground="white")],  # legible over the pipes
        )  # fmt: skip
    handles.append(Line2D([], [], ls="", marker="*", ms=8, color="#e31a1c", label="heat source"))
    _finish_drawing(ax, handles)
    return _png_uri(fig)


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
    return _png_uri(fig)


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
    env.filters["value"] = setting_value
    return env


MAX_VALUE_CHARS = 300
"""Characters of a setting's value a report shows at most (the whole value: ``summary.json``)."""


def setting_value(value: Any) -> str:
    """Show a setting's value: "–" where it has none, cut after :data:`MAX_VALUE_CHARS` characters."""
    if value is None:
        return "–"
    text = str(value)
    if len(text) <= MAX_VALUE_CHARS:
        return text
    return text[:MAX_VALUE_CHARS].rstrip() + " … (in full in summary.json)"


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


# --- the concepts (and a study), the matches ----------------------------------------------------------------

CONCEPT_ROWS = (
    ("cost_of_heat_eur_per_mwh", "Cost of heat (€/MWh delivered)", ",.1f"),
    ("total_cost_meur_per_a", "Total cost (M€/a)", ",.2f"),
    ("operating_cost_meur_per_a", "of which operating (M€/a)", ",.2f"),
    ("annualised_investment_meur_per_a", "of which investment as an annuity (M€/a)", ",.2f"),
    ("pumping_cost_meur_per_a", "of which network pumping (M€/a)", ",.3f"),
    ("investment_meur", "Investment (M€)", ",.2f"),
    ("investment_network_connection_meur", "of which network connection (M€)", ",.2f"),
    ("excess_heat_share_pct", "Excess-heat share (%)", ",.1f"),
    ("excess_heat_gwh", "Excess heat used (GWh/a)", ",.1f"),
    ("heat_pump_heat_gwh", "Heat-pump heat (GWh/a)", ",.1f"),
    ("electric_boiler_heat_gwh", "Electric-boiler heat (GWh/a)", ",.1f"),
    ("boiler_heat_gwh", "Boiler heat (GWh/a)", ",.1f"),
    ("storage_cycles", "Storage cycles (per year)", ",.1f"),
    ("electricity_gwh", "Electricity bought (GWh/a)", ",.1f"),
    ("fuel_gwh", "Fuel burnt (GWh/a)", ",.1f"),
    ("losses_gwh", "Network losses (GWh/a)", ",.1f"),
    ("co2_kt_per_a", "CO₂ (kt/a)", ",.1f"),
    ("unserved_mwh", "Heat not served (MWh/a)", ",.0f"),
)
"""The rows of the concepts' table in the report: a column of ``comparison.csv``, its heading and format."""

IMPACT_ROWS = (
    ("fuel_displaced_gwh", "Fuel displaced against the reference (GWh/a)", ",.1f"),
    ("peat_displaced_gwh", "Peat displaced (GWh/a)", ",.1f"),
    ("peat_cut_pct", "Peat cut (% of the reference's)", ",.1f"),
    ("co2_avoided_kt_per_a", "CO₂ avoided (kt/a)", ",.1f"),
    ("cost_saved_meur_per_a", "Cost saved (M€/a)", ",.2f"),
)
"""The rows of the regional impact (``impact.csv``, each concept against the reference) in the same table."""

CONCEPTS_PER_TABLE = 5
"""Concepts side by side in one table at most (more: a further table below), so each column stays readable on A4."""

MAX_PAIRS = 60
"""Ranked pairs listed in a report at most (all of them: ``matches.csv``)."""


def _png_uri(fig: Any) -> str:
    """Return a matplotlib figure as a PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _finish_drawing(ax: Any, handles: list, *, extent: tuple | None = None, **legend: Any) -> None:
    """Give a map drawing its legend, equal axes without frame and a scale bar (a power of ten metres).

    The legend lies under the drawing, never over it (inside, even at the emptiest place, it hid pipes and buildings).
    The bar lies at the bottom left of ``extent`` (xmin, xmax, ymin, …), or of the axes' limits without one.
    """
    ax.legend(
        handles=handles, fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=min(len(handles), 4),
        frameon=False, **legend,
    )  # fmt: skip
    ax.set_aspect("equal")
    ax.set_axis_off()
    (x0, x1), y0 = (ax.get_xlim(), ax.get_ylim()[0]) if extent is None else ((extent[0], extent[1]), extent[2])
    bar = 10 ** math.floor(math.log10(max((x1 - x0) / 4, 1.0)))
    ax.plot([x0, x0 + bar], [y0] * 2, color="black", lw=2)
    y_text = y0 if extent is not None else ax.get_ylim()[0]  # the limits after the bar is drawn
    ax.annotate(f"{bar:,.0f} m", (x0, y_text), xytext=(0, 3), textcoords="offset points", fontsize=7)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def concepts_report_html(
    summary: dict[str, Any],
    *,
    images: dict[str, Any],
    colours: dict[str, str],
    labels: dict[str, str],
    network: dict[str, Any] | None = None,
    matches: dict[str, Any] | None = None,
) -> str:
    """Render the report of a concept study (``heatmap concepts``, and ``heatmap study`` with its network).

    Parameters
    ----------
    summary
        The study's summary (``summary.json`` as written: :func:`heatmap.energy.concepts.concepts_summary`).
    images
        The plots, PNG files: ``overview`` (a path), ``dispatch`` and ``duration`` (concept name → path).
    colours, labels
        Each unit's colour and name by id, those of the plots.
    network
        The planned network's context (:func:`plan_context`), where the study has one: its sections follow.
    matches
        The matches' summary (:func:`heatmap.energy.matches_job.matches_summary`), for a whole study: its ranked
        pairs follow.

    Returns
    -------
    str
        The HTML page (self-contained: the plots inline).
    """
    names = [c["name"] for c in summary["concepts"]]
    units: dict[str, dict[str, Any]] = {}
    for c in summary["concepts"]:
        for u in c["figures"]["units"]:
            entry = units.setdefault(u["unit"], {"heat_mwh": {}})
            entry["heat_mwh"][c["name"]] = u["heat_mwh"]
    order = [uid for uid in labels if uid in units] + [uid for uid in units if uid not in labels]
    unit_rows = [
        {"id": uid, "name": labels.get(uid, uid), "colour": colours.get(uid, "#999999"), **units[uid]} for uid in order
    ]
    calibration = {row["source"]: row for row in summary.get("calibration") or []}
    sources = [
        {
            **x,
            "name": labels.get(x["id"], x["id"]),
            "colour": colours.get(x["id"], "#999999"),
            "published_mwh_per_a": calibration.get(x["id"], {}).get("published_mwh_per_a"),
        }
        for x in summary["sources"]
    ]
    rows = (summary.get("network") or {}).get("hour_agreement") or []
    agreement = (
        {"hours": len({r["hour"] for r in rows}), "worst_kw": max(abs(r["difference_kw"]) for r in rows)}
        if rows
        else None
    )
    y = summary["year"]
    env = environment()
    env.filters["label"] = lambda uid: labels.get(uid, uid)
    html = env.get_template("concepts.html.j2").render(
        version=summary.get("heatmap_version"),
        s=summary,
        degree_days=next((v for k, v in y.items() if k.startswith("heating_degree_days_")), None),
        groups=[names[i : i + CONCEPTS_PER_TABLE] for i in range(0, len(names), CONCEPTS_PER_TABLE)],
        rows=CONCEPT_ROWS,
        impact_rows=IMPACT_ROWS,
        comparison={row["concept"]: row for row in summary["comparison"]},
        impact={row["concept"]: row for row in summary["impact"]},
        units=unit_rows,
        sources=sources,
        overview=_data_uri(images["overview"]),
        dispatch={name: _data_uri(path) for name, path in images["dispatch"].items()},
        duration={name: _data_uri(path) for name, path in images["duration"].items()},
        net=network,
        agreement=agreement,
        matches=matches,
        names=labels,
        max_pairs=MAX_PAIRS,
    )
    logger.info("Concepts report: %d characters, %d concepts, network %s", len(html), len(names),
                "drawn" if network else "none")  # fmt: skip
    return html


def matches_png(table: gpd.GeoDataFrame, sources: gpd.GeoDataFrame, sinks: gpd.GeoDataFrame) -> str:
    """Draw the pairs that can work as lines coloured by their cost per MWh, the sources and sinks by id, as a PNG.

    ``table`` is the ranking (a line from source to sink per pair, ``feasible``, ``eur_per_mwh``), ``sources`` and
    ``sinks`` the sites (``id``), all in one metric CRS. The cheapest pairs are drawn on top.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(6.7, 5.2), layout="constrained")
    ax = fig.add_subplot()
    ok = table[table.feasible.astype(bool)].sort_values("eur_per_mwh", ascending=False)
    handles = []
    if len(ok):
        xy, line_of = shapely.get_coordinates(ok.geometry.values, return_index=True)
        lines = np.split(xy, np.flatnonzero(np.diff(line_of)) + 1)
        cost = ok.eur_per_mwh.to_numpy(dtype=float)
        norm = Normalize(vmin=float(np.nanmin(cost)), vmax=float(np.nanmax(cost)) + 1e-9)
        cmap = colormaps["viridis_r"]
        ax.add_collection(LineCollection(lines, colors=cmap(norm(cost)), linewidths=1.6, capstyle="round"))
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, pad=0.01)
        bar.set_label("Cost of the pair's heat (€/MWh)", fontsize=7)
        bar.ax.tick_params(labelsize=6.5)
    sites = ((sources, "*", "#e31a1c", "heat source"), (sinks, "s", "#2c7bb6", "heat user"))
    for frame, marker, colour, label in sites:
        points = frame.geometry.representative_point()
        ax.scatter(points.x, points.y, s=60 if marker == "*" else 28, marker=marker, color=colour,
                   edgecolors="white", lw=0.5, zorder=4)  # fmt: skip
        at = pd.DataFrame({"x": points.x.round(1), "y": points.y.round(1), "id": frame["id"].astype(str)})
        for (x, y), ids in at.groupby(["x", "y"], sort=False).id:  # the sites at one place labelled once
            text = "\n".join(textwrap.shorten(name, 30) for name in ids)
            ax.annotate(text, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=6, color=colour)
        handles.append(Line2D([], [], ls="", marker=marker, ms=6, color=colour, label=label))
    ax.autoscale_view()
    _finish_drawing(ax, handles)
    return _png_uri(fig)


def matches_report_html(
    summary: dict[str, Any], *, table: gpd.GeoDataFrame, sources: gpd.GeoDataFrame, sinks: gpd.GeoDataFrame
) -> str:
    """Render the report of a matching run (``heatmap matches``): key figures, the ranked pairs and why others fail.

    Parameters
    ----------
    summary
        The run's summary (``summary.json`` as written: :func:`heatmap.energy.matches_job.matches_summary`).
    table, sources, sinks
        The ranking (a line per pair) and the sites, in one metric CRS: drawn (:func:`matches_png`).

    Returns
    -------
    str
        The HTML page.
    """
    from heatmap import __version__

    by_reason: dict[str, list[str]] = {}
    for pair, reason in (summary.get("infeasible") or {}).items():
        by_reason.setdefault(str(reason), []).append(pair)
    html = (
        environment()
        .get_template("matches.html.j2")
        .render(
            version=__version__,
            created=summary.get("created_utc"),
            s=summary,
            drawing=matches_png(table, sources, sinks),
            infeasible=sorted(by_reason.items(), key=lambda item: -len(item[1])),
            max_pairs=MAX_PAIRS,
            max_ids=MAX_IDS,
        )
    )
    logger.info("Matches report: %d characters, %d pairs ranked", len(html), len(summary.get("ranking") or []))
    return html


# --- the demand map ----------------------------------------------------------------------------------------------


def class_counts(spec: LayerSpec, values: Any) -> list[dict[str, Any]]:
    """Return each class of a graduated layer definition with its colour, label and how many values fall in it.

    The classes are the web map's and the QGIS style's (:func:`heatmap.maps.classes.data_classes`): a value
    belongs to the first class whose upper bound it does not exceed.
    """
    numeric = np.asarray(values, dtype=float)
    numeric = numeric[np.isfinite(numeric)]
    classes = spec.color.classes
    if spec.color.kind != "graduated" or not classes:
        return [{"color": c.color, "label": c.label, "count": None} for c in classes]
    uppers = np.array([c.upper for c in classes], dtype=float)
    idx = np.searchsorted(uppers, numeric, side="left")
    counts = np.bincount(idx[idx < len(uppers)], minlength=len(uppers))
    return [{"color": c.color, "label": c.label, "count": int(n)} for c, n in zip(classes, counts, strict=True)]


def density_png(
    density_mwh_per_ha: np.ndarray, extent: tuple[float, float, float, float], spec: LayerSpec, areas: gpd.GeoDataFrame
) -> str:
    """Draw the heat density by the layer's classes and the potential areas' outlines as a PNG data URI.

    ``density_mwh_per_ha`` is the grid (row 0 the northern) in its metric CRS, ``extent`` its (left, right, bottom,
    top) in metres; cells without demand stay blank. Drawn as the GeoTIFF holds it: square cells, north up.
    """
    from matplotlib.colors import to_rgba_array
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    grid = np.asarray(density_mwh_per_ha, dtype=float)
    palette, index = np.unique(spec.colors_for(pd.Series(grid.ravel())).astype(str), return_inverse=True)
    rgba = to_rgba_array(list(palette))[index].reshape(*grid.shape, 4)  # a region's grid: each colour once
    rgba[~(grid > 0)] = 0.0
    fig = Figure(figsize=(6.7, 5.2), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rgba, extent=extent, interpolation="nearest", origin="upper")
    if len(areas):
        for line in shapely.get_parts(shapely.boundary(areas.geometry.to_numpy())):
            xy = shapely.get_coordinates(line)
            ax.plot(xy[:, 0], xy[:, 1], color="#54278f", lw=1.0)
    handles = [Patch(facecolor=c.color, edgecolor="#555555", lw=0.3, label=c.label) for c in spec.color.classes]
    if len(areas):
        handles.append(Patch(facecolor="none", edgecolor="#54278f", label="potential area"))
    _finish_drawing(ax, handles, extent=extent, title="MWh/ha", title_fontsize=7)
    return _png_uri(fig)


def demand_report_html(
    summary: dict[str, Any],
    *,
    density_mwh_per_ha: np.ndarray,
    extent: tuple[float, float, float, float],
    areas: gpd.GeoDataFrame,
    specs: dict[str, LayerSpec],
    values: dict[str, Any],
) -> str:
    """Render the report of a demand map (``heatmap demand``): key figures, the density drawn, the classes, the summary.

    Parameters
    ----------
    summary
        The demand map's summary (``summary.json`` as written: :func:`heatmap.demand.job.demand_summary`).
    density_mwh_per_ha, extent
        The heat-density grid in its metric CRS (row 0 the northern) and its (left, right, bottom, top), metres.
    areas
        The potential areas in the grid's CRS.
    specs
        The layer definitions with the classes the map and the QGIS styles use (``heat_density``, ``buildings``,
        ``potential_areas``).
    values
        The values each layer's classes count (layer name → values), e.g. each cell's density.

    Returns
    -------
    str
        The HTML page.
    """
    themes = {
        "heat_density": "Heat density of the cells with demand (MWh per hectare and year): cells",
        "buildings": "Annual demand of the heated buildings (MWh/a): buildings",
        "potential_areas": "Annual demand of the potential areas (GWh/a): areas",
    }
    classes = [
        {"title": title, "classes": class_counts(specs[name], values[name])}
        for name, title in themes.items()
        if name in specs and name in values
    ]
    b = summary.get("buildings") or {}
    reasons, examples = b.get("left_out_reasons") or {}, b.get("left_out_examples") or {}
    left = [
        {"reason": reasons.get(key, key), "count": n, "ids": examples.get(key, [])}
        for key, n in (b.get("left_out") or {}).items()
        if n
    ]
    html = (
        environment()
        .get_template("demand.html.j2")
        .render(
            version=summary.get("heatmap_version"),
            s=summary,
            b=b,
            title=Path(str(summary.get("buildings_file", ""))).name,
            drawing=density_png(density_mwh_per_ha, extent, specs["heat_density"], areas),
            classes=classes,
            left=left,
        )
    )
    logger.info("Demand report: %d characters, %d class tables", len(html), len(classes))
    return html

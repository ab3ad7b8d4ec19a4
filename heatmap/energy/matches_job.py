"""The ``heatmap matches`` job: rank every pair, plan the chosen ones, summarise and write — conducted in one place.

:func:`matches_from_scenario` conducts, as :func:`heatmap.plan.plan_from_scenario` does for a plan: the scenario's
units and hourly profiles (:func:`heatmap.energy.matching.scenario_units`), the ranking
(:func:`heatmap.energy.matching.rank_matches`) and, where the scenario chooses pairs, their plan with the network
model (:func:`heatmap.energy.match_plan.plan_matches`). :func:`write_matches` writes the run atomically;
:func:`format_run` is what the command prints. The ranking (:mod:`heatmap.energy.matching`) and the planning
(:mod:`heatmap.energy.match_plan`) never import this module, nor each other the wrong way round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from heatmap.energy import match_plan
from heatmap.energy.energy_scenario import assumptions
from heatmap.energy.matching import MatchScenario, format_matches, rank_matches, scenario_routes, scenario_units

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("matches.csv", "matches.gpkg", "summary.json", "report.html")
"""The files every matching run writes (the planned network adds ``network/…``)."""


@dataclass
class MatchesRun:
    """One matching run: the ranking of every pair and, where chosen, the planned network of the pairs."""

    scenario: MatchScenario
    table: gpd.GeoDataFrame
    """The ranking (:data:`heatmap.energy.matching.MATCH_COLUMNS`, line geometry from source to sink)."""
    sources: gpd.GeoDataFrame
    sinks: gpd.GeoDataFrame
    source_kw: dict[str, np.ndarray]
    sink_kw: dict[str, np.ndarray]
    planned: match_plan.MatchesPlan | None = None


def matches_from_scenario(scn: MatchScenario, *, planner: Callable[..., Any] | None = None) -> MatchesRun:
    """Rank the scenario's pairs and plan the chosen ones.

    Parameters
    ----------
    scn
        A validated matching scenario.
    planner
        The network model's planner (:func:`heatmap.plan.plan_from_scenario`), needed where the scenario chooses
        pairs (``plan.pairs``); the energy stages never import the plan conductor themselves.

    Returns
    -------
    MatchesRun
    """
    sources, sinks, source_kw, sink_kw = scenario_units(scn)
    table = rank_matches(
        sources,
        sinks,
        scn.settings,
        source_profiles_kw=source_kw,
        sink_profiles_kw=sink_kw,
        routes=scenario_routes(scn),
    )
    planned = None
    if scn.plan is not None:
        if planner is None:
            raise ValueError("the scenario chooses pairs to plan: pass the network model's planner")
        planned = match_plan.plan_matches(scn, table, sources, sinks, source_kw, sink_kw, planner=planner)
    logger.info(
        "Matches of %r: %d pairs ranked, %d feasible%s",
        scn.name, len(table), int(table.feasible.sum()), "" if planned is None else f", {len(planned.pairs)} planned",
    )  # fmt: skip
    return MatchesRun(scn, table, sources, sinks, source_kw, sink_kw, planned)


def matches_summary(run: MatchesRun) -> dict[str, Any]:
    """Summarise a matching run: counts, the feasible pairs in order, the reasons, every setting and unit used.

    Each unit's values as used (preset values filled in) stand beside its note; a planned network of the chosen
    pairs adds :func:`heatmap.energy.match_plan.planned_summary`.
    """
    scn, table = run.scenario, run.table
    feasible = table[table.feasible]

    def units(group: list, frame: gpd.GeoDataFrame) -> dict[str, Any]:
        used = frame.drop(columns="geometry").set_index("id").to_dict("index")
        return {u.id: {**used.get(u.id, {}), "note": u.note} for u in group}

    out = {
        "scenario": scn.name,
        "sources": len(scn.sources),
        "sinks": len(scn.sinks),
        "pairs": len(table),
        "feasible_pairs": len(feasible),
        "ranking": [
            {
                "rank": int(r.rank),
                "source_id": r.source_id,
                "sink_id": r.sink_id,
                "kind": r.kind,
                "route_length_m": round(float(r.route_length_m), 1),
                "matched_mwh_per_a": round(float(r.matched_mwh_per_a), 1),
                "eur_per_mwh": round(float(r.eur_per_mwh), 2),
            }
            for r in feasible.itertuples()
        ],
        "infeasible": {f"{r.source_id} → {r.sink_id}": r.reason for r in table[~table.feasible].itertuples()},
        "rule": "each pair judged as if alone; annual energy matched = Σ_h min(source deliverable, sink load); "
        "€/MWh = (capex × annuity factor + O&M + electricity + heat purchase) / MWh matched",
        "assumptions": {
            **assumptions(scn.settings, "settings."),
            **(assumptions(scn.plan, "plan.") if scn.plan is not None else {}),
        },
        "units": {"sources": units(scn.sources, run.sources), "sinks": units(scn.sinks, run.sinks)},
    }
    if run.planned is not None:
        out["plan"] = match_plan.planned_summary(run.planned)
    return out


def output_names(run: MatchesRun) -> tuple[str, ...]:
    """Every file :func:`write_matches` writes."""
    from heatmap.io.outputs import plan_file_names

    planned = run.planned
    if planned is None:
        return OUTPUT_FILES
    plan_files = tuple(f"network/{name}" for name in plan_file_names(planned.plan))
    return (*OUTPUT_FILES, *plan_files, *(("network/pair_lines.gpkg",) if planned.pair_lines is not None else ()))


def write_match_files(run: MatchesRun, folder: Path, *, tiles: str | None = None) -> None:
    """Write the run's files (:func:`output_names`) into an existing folder (not atomically: see write_matches)."""
    import json

    from heatmap.io.outputs import assumptions_text, write_gpkg, write_json
    from heatmap.io.tables import write_csv
    from heatmap.maps import qgis_style, report

    write_csv(run.table.drop(columns="geometry"), folder / "matches.csv", float_format="%.4f")
    layer = run.table.copy()
    layer["rank"] = layer["rank"].astype("float")
    layer.insert(3, "status", np.where(layer.feasible, layer.kind, "infeasible"))
    summary = matches_summary(run)
    abstract = f"Scenario: {summary['scenario']}. {summary['rule']}. {assumptions_text(summary)}"
    gpkg = folder / "matches.gpkg"
    qgis_style.write_layer_styles(gpkg, write_gpkg({"matches": layer}, gpkg, abstract=abstract))
    write_json(summary, folder / "summary.json")
    written = json.loads((folder / "summary.json").read_text(encoding="utf-8"))  # the report states what it holds
    html = report.matches_report_html(written, table=run.table, sources=run.sources, sinks=run.sinks)
    (folder / "report.html").write_text(html, encoding="utf-8")
    if run.planned is not None:
        match_plan.write_planned(run.planned, folder / "network", tiles=tiles)


def write_matches(
    run: MatchesRun, out_dir: Path, *, inputs: tuple | list = (), tiles: str | None = None
) -> dict[str, Path]:
    """Write ``matches.csv``, ``matches.gpkg``, ``summary.json`` and ``report.html`` atomically into ``out_dir``.

    ``matches.gpkg``: the line layer ``matches``, QGIS style embedded; ``report.html``: the key figures, the ranked
    pairs and why the others fail, on a page that prints on A4. With a planned network also, in ``network/``:
    ``plan.gpkg`` (styled for QGIS), ``map.html`` (offline web map), ``summary.json`` (the plan's full summary:
    every check, figure and assumption) and, where the plan routed on the pairs' straight lines,
    ``pair_lines.gpkg``. A plan whose checks fail is written marked partial (as ``heatmap plan --partial``). The
    folder is swapped in whole (:func:`heatmap.io.output_folder.write_atomically`).
    """
    from heatmap.io.output_folder import write_atomically

    written = write_atomically(
        out_dir,
        output_names(run),
        lambda tmp: write_match_files(run, tmp, tiles=tiles),
        inputs=inputs,
        title=f"heatmap matches, scenario {run.scenario.name}",
    )
    logger.info("Wrote %d files to %s", len(written), out_dir)
    return written


def format_run(run: MatchesRun) -> str:
    """Render the run for the terminal: the ranking, and the planned network against the screening estimate."""
    text = format_matches(run.table)
    if run.planned is not None:
        text += "\n\n" + match_plan.format_planned(match_plan.planned_summary(run.planned))
    return text

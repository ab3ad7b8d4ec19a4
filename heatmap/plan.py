"""Plan a heat network end to end: scenario → inputs → candidate graph → route → size → simulate → cost.

:func:`plan_from_scenario` runs the stages in order and returns a :class:`Plan` holding every table the
outputs need, the checks' verdict and each stage's time. Writing the plan is :mod:`heatmap.outputs`.

Design load: each consumer draws its peak load times the simultaneity factor of all consumers of its
network (the diversified simultaneous peak), so trunk pipes see the flow they were sized for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from heatmap import candidates, demand, economics, hydraulics, inputs, routing, sizing, streets
from heatmap._errors import InputDataError
from heatmap.scenario import Scenario

logger = logging.getLogger(__name__)

STAGES = ("load", "candidate graph", "routing", "sizing", "hydraulics", "economics")
"""The stages :func:`plan_from_scenario` reports progress for, in order."""


@dataclass
class Plan:
    """A routed, sized, simulated and costed network with everything needed to write it out."""

    scenario: Scenario
    crs: CRS
    sources: gpd.GeoDataFrame
    consumers: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    pipes: gpd.GeoDataFrame
    junctions: gpd.GeoDataFrame
    violations: pd.DataFrame
    figures: dict[str, float]
    energy_balance: dict[str, float]
    rounds: list[dict]
    excluded: dict[str, list[str]]
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every check holds."""
        return self.violations.empty


class _Timer:
    """Time the plan's stages; report finished stages to a progress callback."""

    def __init__(self, progress: Callable[[str], None] | None):
        self.timings: dict[str, float] = {}
        self._progress = progress

    @contextmanager
    def stage(self, name: str, *, accumulate: bool = False) -> Iterator[None]:
        """Time a stage; ``accumulate`` adds to earlier runs of it (a sub-stage repeated in rounds)."""
        t0 = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) * accumulate + time.perf_counter() - t0
        if self._progress is not None and name in STAGES:
            self._progress(name)


def _load(scn: Scenario) -> tuple[CRS, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, list[str]]:
    src_raw = inputs.read_features(
        scn.sources.path, inline=scn.sources.inline, id_column=scn.sources.id_column, what="sources"
    )
    if scn.study_area.bbox is not None:
        w, s, e, n = scn.study_area.bbox
        lon, lat = (w + e) / 2, (s + n) / 2
    else:
        centre = src_raw.to_crs(4326).geometry.union_all().centroid
        lon, lat = centre.x, centre.y
    crs = inputs.metric_crs_for(lon, lat, given=scn.study_area.crs)
    src = inputs.prepare_sources(src_raw, crs=crs, default_t_supply_c=scn.temperatures.supply_c)

    st = scn.streets
    if st.source == "pbf":
        G = streets.graph_from_pbf(st.path, network_type=st.network_type)
    elif st.source == "xml":
        G = streets.graph_from_xml(st.path)
    elif st.source == "graphml":
        G = streets.graph_from_graphml(st.path)
    elif st.source == "place":
        G = streets.graph_from_osm_live(place=st.place, network_type=st.network_type)
    elif st.source == "bbox":
        G = streets.graph_from_osm_live(bbox=tuple(scn.study_area.bbox), network_type=st.network_type)
    else:
        area = inputs.read_features(
            st.path, id_column="id", what="study areas", allowed_geometry=("Polygon", "MultiPolygon")
        )
        G = streets.graph_from_osm_live(polygon=area.to_crs(4326).union_all(), network_type=st.network_type)
    street_gdf = streets.street_edges(G, crs)

    if scn.study_area.bbox is not None:
        area = gpd.GeoSeries([shapely.box(*scn.study_area.bbox)], crs=4326).to_crs(crs).iloc[0]
        street_gdf = street_gdf[street_gdf.intersects(area)].reset_index(drop=True)
        street_gdf["edge_id"] = np.arange(len(street_gdf))
        area_name = "the study area 'study_area.bbox'"
    else:
        area = shapely.box(*street_gdf.total_bounds).buffer(st.max_service_length_m)
        area_name = f"the extent of the street data (plus {st.max_service_length_m:g} m)"
    outside = src[~src.within(area)]
    if len(outside):
        raise InputDataError(
            f"{src_raw.attrs.get('where', 'sources')}: sources {', '.join(outside.source_id)} lie outside "
            f"{area_name}; check their coordinates and CRS"
        )

    if scn.consumers.osm_buildings:
        buildings = streets.buildings_from_pbf(st.path).to_crs(crs)
        cons = demand.estimate_building_demand(buildings, scn.demand)
    else:
        raw = inputs.read_features(
            scn.consumers.path,
            inline=scn.consumers.inline,
            id_column=scn.consumers.id_column,
            layer=scn.consumers.layer,
            what="consumers",
            allowed_geometry=("Point", "Polygon", "MultiPolygon"),
        )
        cons = inputs.prepare_consumers(
            raw,
            crs=crs,
            full_load_hours_h=scn.demand.full_load_hours_h,
            default_min_supply_c=scn.temperatures.min_consumer_supply_c,
        )
        out = cons[~cons.intersects(area)]
        if len(out):
            raise InputDataError(
                f"{raw.attrs['where']}: consumers {inputs._rows(out.consumer_id)} lie outside {area_name}; "
                f"check their coordinates and CRS"
            )
    clash = set(src.source_id) & set(cons.consumer_id)
    if clash:
        raise InputDataError(f"ids {inputs._rows(sorted(clash))} name both a source and a consumer; make them unique")
    small = cons.annual_demand_mwh < scn.consumers.min_annual_demand_mwh
    too_small = cons.consumer_id[small].tolist()
    cons = cons[~small].reset_index(drop=True)
    if cons.empty:
        raise InputDataError("no consumer is left to plan for (check 'consumers.min_annual_demand_mwh')")
    return crs, src, cons, street_gdf, too_small


def plan_from_scenario(scn: Scenario, *, progress: Callable[[str], None] | None = None) -> Plan:
    """Plan the network a scenario describes.

    Parameters
    ----------
    scn
        A validated scenario.
    progress
        Called with each stage's name when it finishes (see :data:`STAGES`).

    Returns
    -------
    Plan
    """
    timer = _Timer(progress)
    with timer.stage("load"):
        crs, src, cons, street_gdf, too_small = _load(scn)

    with timer.stage("candidate graph"):
        cand = candidates.build_candidates(street_gdf, src, cons, max_service_length_m=scn.streets.max_service_length_m)
        G = candidates.candidate_graph(cand.edges)

    with timer.stage("routing"):
        term = cand.terminals.set_index("terminal_id")
        far = term[~term.reachable]
        far_sources = far.index[far.role == "source"].tolist()
        if far_sources:
            raise InputDataError(
                f"sources {', '.join(far_sources)} are farther than {scn.streets.max_service_length_m:g} m "
                f"('streets.max_service_length_m') from every street; move them or raise the setting"
            )
        reach = term[term.reachable]
        src_nodes = reach.node[reach.role == "source"].astype(int).to_dict()
        con_nodes = reach.node[reach.role == "consumer"].astype(int).to_dict()
        tree = routing.route_network(G, src_nodes, con_nodes)

    with timer.stage("sizing"):
        t = scn.temperatures
        water = _water(t.supply_c, t.return_c)
        edges = tree.edges.merge(cand.edges[["edge_id", "length_m", "kind"]], on="edge_id", how="left")
        unreachable = set(tree.unreachable)
        routed_consumers = [c for c in con_nodes if c not in unreachable]
        cons_routed = cons.set_index("consumer_id").loc[routed_consumers]
        consumer_node = [con_nodes[c] for c in routed_consumers]
        node_load = pd.Series(cons_routed.peak_load_kw.to_numpy(), index=consumer_node)
        catalogue = sizing.load_catalogue(
            scn.network.catalogue,
            insulation_series=scn.network.insulation_series,
            cost_column=scn.network.cost_column,
        )
        lim = scn.limits
        hydraulic = {"rho": water["rho"], "nu_m2_per_s": water["nu"], "roughness_m": scn.network.roughness_mm / 1000}

        def size(flow_factor: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
            """Downstream totals, simultaneity, design mass flows and sizes, each consumer's flow scaled."""
            down = routing.downstream_totals(tree, node_load * flow_factor)
            glf = sizing.simultaneity_factor(down.n_consumers.to_numpy(), scn.network.simultaneity)
            mdot = glf * down.peak_load_kw.to_numpy() * 1000 / (water["cp"] * (t.supply_c - t.return_c))
            dn = sizing.size_pipes(
                mdot,
                catalogue,
                **hydraulic,
                max_velocity_m_per_s=lim.max_velocity_m_per_s * (1 - scn.network.sizing_margin),
                max_pressure_gradient_pa_per_m=lim.max_pressure_gradient_pa_per_m * (1 - scn.network.sizing_margin),
            )
            return down, glf, mdot, dn

        down, glf, mdot_design, dn = size(np.ones(len(node_load)))
        # Heat lost on the way cools the supply water, so a consumer needs more flow for its load: size again
        # with each consumer's flow scaled by (T_supply − T_return) / (T_at_consumer − T_return).
        t_at = sizing.supply_temperature_c(
            edges,
            mdot_design,
            catalogue.u_w_per_mk.reindex(dn).to_numpy(),
            t_supply_c=t.supply_c,
            t_ground_c=t.ground_c,
            cp_j_per_kgk=water["cp"],
        )
        t_consumer = pd.Series(t_at, index=edges.to_node.to_numpy()).reindex(consumer_node).to_numpy()
        flow_factor = (t.supply_c - t.return_c) / np.maximum(t_consumer - t.return_c, 1.0)
        _, _, mdot_design, edges["dn"] = size(flow_factor)
        edges["design_load_kw"] = glf * down.peak_load_kw.to_numpy()
        edges["n_consumers_downstream"] = down.n_consumers.to_numpy()
        edges["dn"], lift = sizing.fit_pump_lift(
            edges,
            mdot_design,
            catalogue,
            **hydraulic,
            min_consumer_dp_bar=lim.min_consumer_dp_bar,
            min_lift_bar=scn.network.initial_pump_lift_bar,
            max_lift_bar=scn.network.max_pump_lift_bar,
        )

    with timer.stage("hydraulics"):
        sim, violations, rounds, edges = _simulate_and_resize(
            scn, timer, tree, edges, catalogue, cons_routed, con_nodes, src, src_nodes, cand, lift
        )

    with timer.stage("economics"):
        edges["cost_eur"] = catalogue.cost_eur_per_m.reindex(edges.dn).to_numpy() * edges.length_m.to_numpy()
        figures = economics.key_figures(edges, cons_routed, sim.pipes, sim.sources, scn.economics)
        plan = _assemble(
            scn,
            crs,
            src,
            cons,
            street_gdf,
            cand,
            tree,
            edges,
            sim,
            violations,
            rounds,
            figures,
            catalogue,
            too_small,
        )
    plan.timings_s = timer.timings
    logger.info(
        "Planned %r: %d consumers connected, %d violations; stage times %s",
        scn.name,
        int(plan.consumers.connected.sum()),
        len(violations),
        ", ".join(f"{k} {v:.2f} s" for k, v in timer.timings.items()),
    )
    return plan


def _water(t_supply_c: float, t_return_c: float) -> dict[str, float]:
    """Water properties at the mean network temperature, from pandapipes' fluid library."""
    import pandapipes as pp

    fluid = pp.call_lib("water")
    t_k = (t_supply_c + t_return_c) / 2 + hydraulics.KELVIN
    rho = float(fluid.get_density(t_k))
    return {
        "rho": rho,
        "nu": float(fluid.get_viscosity(t_k)) / rho,
        "cp": float(fluid.get_heat_capacity(t_k)),
    }


def _simulate_and_resize(scn, timer, tree, edges, catalogue, cons_routed, con_nodes, src, src_nodes, cand, lift):
    lim = scn.limits
    t = scn.temperatures
    limits = hydraulics.Limits(
        lim.max_velocity_m_per_s,
        lim.max_pressure_gradient_pa_per_m,
        lim.min_consumer_dp_bar,
        t.min_consumer_supply_c,
        cons_routed.min_supply_c.to_dict() if "min_supply_c" in cons_routed else {},
    )
    tree_of_node = pd.concat(
        [
            edges.set_index("to_node").tree,
            pd.Series(list(tree.root_of_tree), index=list(tree.root_of_tree.values())),
        ]
    )
    tree_of_node = tree_of_node[~tree_of_node.index.duplicated()]
    cons_node = [con_nodes[c] for c in cons_routed.index]
    cons_tree = tree_of_node.reindex(cons_node).to_numpy()
    n_in_tree = pd.Series(cons_tree).value_counts()
    glf_tree = sizing.simultaneity_factor(n_in_tree.reindex(cons_tree).to_numpy(), scn.network.simultaneity)
    consumers = pd.DataFrame(
        {
            "consumer_id": cons_routed.index.to_numpy(),
            "node": cons_node,
            "q_design_w": cons_routed.peak_load_kw.to_numpy() * glf_tree * 1000,
            "tree": cons_tree,
        }
    )
    in_tree = [sid for sid, n in src_nodes.items() if n in tree_of_node.index]
    s = src.set_index("source_id").loc[in_tree]
    sources = pd.DataFrame(
        {
            "source_id": in_tree,
            "node": [src_nodes[sid] for sid in in_tree],
            "t_supply_c": s.t_supply_c.to_numpy(),
            "capacity_kw": s.capacity_kw.to_numpy(),
            "tree": [tree_of_node[src_nodes[sid]] for sid in in_tree],
        }
    )
    used_nodes = np.unique(np.concatenate([edges.from_node, edges.to_node]))
    xy = shapely.get_coordinates(cand.nodes.geometry.values[used_nodes])
    node_xy = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=used_nodes)
    dns = catalogue.index.to_numpy()
    capacity_kw = src.set_index("source_id").capacity_kw
    rounds = []
    sims: dict[int, hydraulics.Simulation] = {}
    stale = set(lift)  # networks to (re)simulate: all at first, then those whose sizes or pump lift changed
    for round_no in range(lim.max_resize_rounds + 1):
        design = hydraulics.NetworkDesign(_pipe_table(edges, catalogue), consumers, sources, node_xy)
        cond = hydraulics.Conditions(
            t.return_c, t.ground_c, scn.network.p_return_bar, scn.network.roughness_mm, dict(lift)
        )
        for tr in sorted(stale):
            part = design.network(tr)
            with timer.stage("pandapipes build", accumulate=True):
                net = hydraulics.build_net(part, cond)
            with timer.stage("pandapipes solve", accumulate=True):
                sims[tr] = hydraulics.run_net(net, part)
        with timer.stage("checks", accumulate=True):
            sim = hydraulics.combine([sims[tr] for tr in sorted(sims)])
            violations = hydraulics.check_simulation(sim, limits, capacity_kw)
        rounds.append(
            {
                "round": round_no,
                "networks_simulated": len(stale),
                "violations": len(violations),
                "pump_lift_bar": {int(k): round(v, 4) for k, v in lift.items()},
                "checks_failed": sorted(set(violations.check)),
            }
        )
        if violations.empty or round_no == lim.max_resize_rounds:
            break
        before_dn, before_lift = edges.dn.to_numpy().copy(), dict(lift)
        failed = [tr for tr, s in sims.items() if not s.converged]
        for tr in failed:  # a network that did not converge first gets more pump lift
            lift[tr] = min(lift[tr] * 1.5, scn.network.max_pump_lift_bar)
        if not failed:
            edges = _resize(edges, sim, violations, consumers, lift, dns, lim, scn.network.max_pump_lift_bar)
        stale = set(edges.tree[edges.dn.to_numpy() != before_dn]) | {k for k in lift if lift[k] != before_lift[k]}
        if not stale:
            break
    return sim, violations, rounds, edges


def _pipe_table(edges: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    cat = catalogue.reindex(edges.dn)
    return pd.DataFrame(
        {
            "edge_id": edges.edge_id,
            "from_node": edges.from_node,
            "to_node": edges.to_node,
            "length_m": edges.length_m,
            "dn": edges.dn,
            "d_inner_m": cat.d_inner_m.to_numpy(),
            "d_outer_m": cat.d_outer_m.to_numpy(),
            "u_w_per_mk": cat.u_w_per_mk.to_numpy(),
            "tree": edges.tree,
        }
    )


def _resize(edges, sim, violations, consumers, lift, dns, lim, max_lift_bar) -> pd.DataFrame:
    """One resize step: offending pipes one size up; pump lift raised for consumers short of pressure.

    Where the largest lift is not enough, the steepest pipes on the paths to those consumers go one size up.
    ``lift`` is updated in place; the edges with their new sizes are returned.
    """
    dn = edges.dn.to_numpy().copy()
    up = edges.edge_id.isin(violations.edge_id.dropna()).to_numpy() & (dn < dns[-1])
    low_dp = sim.consumers[sim.consumers.dp_bar < lim.min_consumer_dp_bar]
    if len(low_dp):
        low = consumers.set_index("consumer_id").reindex(low_dp.consumer_id)
        deficit = pd.Series(lim.min_consumer_dp_bar - low_dp.dp_bar.to_numpy(), index=low.tree.to_numpy())
        capped = []
        for tr, d in deficit.groupby(level=0).max().items():
            wanted = lift[tr] + d + sizing.PUMP_LIFT_MARGIN_BAR
            if wanted > max_lift_bar:
                capped.append(tr)
            lift[tr] = min(wanted, max_lift_bar)
        starved = low.node[low.tree.isin(capped)].to_numpy()
        if len(starved):
            supply = sim.pipes[sim.pipes.circuit == "supply"].set_index("edge_id")
            r = supply.r_pa_per_m.reindex(edges.edge_id).to_numpy()
            up |= sizing.steepest_on_paths(edges, r, pd.Index(edges.to_node).get_indexer(starved), dn, dns)
    dn[up] = sizing.next_size(dn[up], dns)
    return edges.assign(dn=dn)


def _assemble(
    scn, crs, src, cons, street_gdf, cand, tree, edges, sim, violations, rounds, figures, catalogue, too_small
) -> Plan:
    geom = cand.edges.set_index("edge_id").geometry
    e = edges.set_index("edge_id")
    res = sim.pipes.merge(
        e[["dn", "length_m", "kind", "cost_eur", "design_load_kw", "n_consumers_downstream"]],
        left_on="edge_id",
        right_index=True,
    )
    res["cost_eur"] = res.cost_eur / 2  # one trench for the pair: half its cost on each pipe
    line = geom.reindex(res.edge_id).to_numpy()
    # Draw every pipe in its flow direction (supply: from source; return: towards it).
    start = shapely.get_coordinates(shapely.get_point(line, 0))
    fx = cand.nodes.geometry.values[e.from_node.reindex(res.edge_id).to_numpy()]
    flip_supply = shapely.distance(shapely.points(start), fx) > 1e-6
    flip = np.where(res.circuit.to_numpy() == "supply", flip_supply, ~flip_supply)
    line = np.where(flip, shapely.reverse(line), line)
    pipes = gpd.GeoDataFrame(
        {
            "pipe_id": np.arange(len(res)),
            "edge_id": res.edge_id.to_numpy(),
            "circuit": res.circuit.to_numpy(),
            "kind": res.kind.to_numpy(),
            "dn": res.dn.to_numpy().astype(int),
            "d_inner_mm": catalogue.d_inner_m.reindex(res.dn).to_numpy() * 1000,
            "length_m": res.length_m.to_numpy(),
            "n_consumers_downstream": res.n_consumers_downstream.to_numpy().astype(int),
            "design_load_kw": res.design_load_kw.to_numpy(),
            **{
                c: res[c].to_numpy()
                for c in (
                    "mdot_kg_per_s",
                    "v_m_per_s",
                    "r_pa_per_m",
                    "dp_bar",
                    "t_in_c",
                    "t_out_c",
                    "q_loss_kw",
                    "cost_eur",
                )
            },
        },
        geometry=line,
        crs=crs,
    )
    nodes_geom = cand.nodes.geometry.values
    j = sim.junctions
    junctions = gpd.GeoDataFrame(
        {
            "junction_id": np.arange(len(j)),
            "node_id": j.node.to_numpy(),
            "circuit": j.circuit.to_numpy(),
            "p_bar": j.p_bar.to_numpy(),
            "t_c": j.t_c.to_numpy(),
        },
        geometry=nodes_geom[j.node.to_numpy().astype(int)],
        crs=crs,
    )
    service = cand.edges[cand.edges.kind == "service"].set_index("terminal_id")
    routed = set(edges.edge_id)
    sc = sim.consumers.set_index("consumer_id")
    consumers = cons.copy()
    consumers["connected"] = consumers.consumer_id.isin(sc.index)
    svc = service.reindex(consumers.consumer_id)
    svc_edge_ok = svc.edge_id.isin(routed).to_numpy()
    consumers["service_length_m"] = np.where(svc_edge_ok, svc.length_m.to_numpy(), np.nan)
    svc_cost = e.cost_eur.reindex(svc.edge_id.where(svc_edge_ok)).to_numpy()
    consumers["service_cost_eur"] = svc_cost
    for col, src_col in (("q_design_kw", "q_kw"), ("dp_bar", "dp_bar"), ("t_supply_c", "t_supply_c")):
        consumers[col] = sc[src_col].reindex(consumers.consumer_id).to_numpy()
    ss = sim.sources.set_index("source_id")
    sources = src.copy()
    for col in ("q_supplied_kw", "mdot_kg_per_s", "pump_lift_bar", "pump_power_kw"):
        sources[col] = ss[col].reindex(sources.source_id).to_numpy()
    streets_out = street_gdf.copy()
    streets_out["in_plan"] = streets_out.edge_id.isin(
        set(cand.edges.street_edge_id[cand.edges.edge_id.isin(routed) & (cand.edges.kind == "street")])
    )
    term = cand.terminals.set_index("terminal_id")
    excluded = {
        "too_far_from_street": sorted(term.index[(~term.reachable) & (term.role == "consumer")]),
        "no_path_to_source": tree.unreachable,
        "below_min_annual_demand": sorted(too_small),
    }
    excluded.update(cons.attrs.get("left_out_ids", {}))  # OSM buildings given no demand, by reason (heatmap.demand)
    return Plan(
        scn,
        crs,
        sources,
        consumers,
        streets_out,
        pipes,
        junctions,
        violations,
        figures,
        sim.energy_balance,
        rounds,
        excluded,
    )

"""Network design rules: per-source temperatures, service pipes at their building's own peak, trimmed pump
lifts and consumers with (almost) no load."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli

from heatmap.io import synthetic
from heatmap.network import hydraulics, sizing
from heatmap.plan import plan_from_scenario
from heatmap.scenario import scenario_from_file


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    folder = tmp_path_factory.mktemp("town2")
    synthetic.write_synthetic_scenario(synthetic.synthetic_town(300, seed=11, n_sources=2), folder)
    return folder


def scenario_with(town, tmp_path, *, t_supply_c=None, consumers=None):
    """The town's scenario with the sources' supply temperatures (by id) or the consumers edited."""
    data = yaml.safe_load((town / "scenario.yaml").read_text())
    for section in ("streets", "sources", "consumers"):
        data[section]["path"] = str(town / data[section]["path"])
    if t_supply_c:
        src = gpd.read_file(town / "sources.geojson")
        src["t_supply_c"] = src.id.map(t_supply_c).fillna(src.t_supply_c)
        src.to_file(tmp_path / "sources.geojson", engine="pyogrio")
        data["sources"]["path"] = str(tmp_path / "sources.geojson")
    if consumers is not None:
        consumers(gpd.read_file(town / "consumers.gpkg")).to_file(tmp_path / "consumers.gpkg", engine="pyogrio")
        data["consumers"]["path"] = str(tmp_path / "consumers.gpkg")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def two_temperature_plan(town, tmp_path_factory):
    path = scenario_with(town, tmp_path_factory.mktemp("scn"), t_supply_c={"S2": 78.0})
    return plan_from_scenario(scenario_from_file(path))


def test_each_source_network_runs_at_its_own_supply_temperature(two_temperature_plan):
    plan = two_temperature_plan
    assert plan.ok, plan.violations
    supply = plan.pipes[plan.pipes.circuit == "supply"]
    for sid, t in (("S1", 85.0), ("S2", 78.0)):
        part = supply[supply.source_id == sid]
        assert part.t_in_c.max() == pytest.approx(t, abs=1e-6)  # leaves the source at its own temperature
        assert (part.t_out_c <= part.t_in_c + 1e-9).all()  # and only cools on its way
    # Every consumer of S2's network gets at most 78 °C and at least the 70 °C it needs.
    c = plan.consumers[plan.consumers.connected]
    s2_nodes = set(supply[supply.source_id == "S2"].to_node)
    junction = plan.junctions[plan.junctions.circuit == "supply"].set_index("node_id")
    assert (junction.t_c.reindex(list(s2_nodes)) <= 78.0 + 1e-6).all()
    assert (c.t_supply_c >= 70.0).all()


def test_design_flows_use_the_temperature_difference_of_each_source():
    # Two one-pipe networks from two sources, 100 kW each, no heat loss (U' = 0): ṁ = Q / (c_p ΔT) exactly.
    edges = pd.DataFrame(
        {
            "edge_id": [0, 1],
            "from_node": [0, 2],
            "to_node": [1, 3],
            "depth": [1, 1],
            "tree": [0, 1],
            "length_m": [100.0, 100.0],
            "kind": ["service", "service"],
        }
    )
    cat = pd.DataFrame(
        {"d_inner_m": [0.05, 0.1], "d_outer_m": [0.06, 0.11], "u_w_per_mk": [0.0, 0.0], "cost_eur_per_m": [1, 2]},
        index=pd.Index([50, 100], name="dn"),
    )
    water = sizing.Water(rho_kg_per_m3=975.0, nu_m2_per_s=4e-7, cp_j_per_kgk=4190.0)
    sized = sizing.design_network(
        edges,
        pd.Series([100.0, 100.0], index=[1, 3]),
        {0: 85.0, 1: 65.0},
        catalogue=cat,
        water=water,
        t_return_c=45.0,
        t_ground_c=8.0,
        simultaneity="winter",
        max_velocity_m_per_s=2.0,
        max_pressure_gradient_pa_per_m=500.0,
        roughness_m=4.5e-5,
        lift_rule=sizing.PumpLiftRule(0.5, 1.1, 0.05, 0.5, 10.0),
    )
    assert sized.edges.mdot_design_kg_per_s.tolist() == pytest.approx([1e5 / (4190 * 40), 1e5 / (4190 * 20)])
    assert sized.edges.t_supply_c.tolist() == [85.0, 65.0]


@pytest.mark.parametrize(
    ("t_supply_c", "expect"),
    [
        (60.0, "sources.geojson: source S2 supplies 60 °C, colder than the 70 °C"),
        (45.0, "sources.geojson: source S2 supplies 45 °C, at or below the return"),
    ],
)
def test_a_source_too_cold_for_the_network_is_refused_before_routing(town, tmp_path, t_supply_c, expect):
    result = run_cli("plan", scenario_with(town, tmp_path, t_supply_c={"S2": t_supply_c}), "--out", tmp_path / "o")
    code, out = result.exit_code, result.output
    assert code == 2 and expect in out, out
    assert "Traceback" not in out and not (tmp_path / "o").exists()


def test_no_consumer_left_names_the_file_and_why(town, tmp_path):
    excluded = scenario_with(town, tmp_path, consumers=lambda c: c.assign(connect="excluded"))
    result = run_cli("plan", excluded, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    n = len(gpd.read_file(town / "consumers.gpkg"))
    assert f"consumers.gpkg: no consumer is left to plan for ({n} excluded;" in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_service_pipe_at_its_own_peak_by_hand():
    # One consumer of 200 kW own peak, simulated at 100 kW (diversified); its service pipe DN40, 30 m.
    cp, t_sup, t_ret = 4190.0, 80.0, 45.0
    sim = hydraulics.Simulation(
        pipes=pd.DataFrame(),
        junctions=pd.DataFrame(),
        consumers=pd.DataFrame(
            {"consumer_id": ["H"], "mdot_kg_per_s": [1e5 / (cp * 35)], "dp_bar": [0.9], "t_supply_c": [t_sup]}
        ),
        sources=pd.DataFrame(),
    )
    consumers = pd.DataFrame({"consumer_id": ["H"], "node": [7], "peak_w": [2e5]})
    pipes = pd.DataFrame({"edge_id": [3], "to_node": [7], "length_m": [30.0], "d_inner_m": [0.0431]})
    water = sizing.Water(975.0, 4e-7, cp)
    own = hydraulics.service_at_own_peak(sim, consumers, pipes, water=water, roughness_m=4.5e-5, t_return_c=t_ret)
    mdot = 2e5 / (cp * (t_sup - t_ret))
    assert own.mdot_kg_per_s[0] == pytest.approx(mdot)
    assert own.v_m_per_s[0] == pytest.approx(mdot / (975.0 * np.pi * 0.0431**2 / 4))
    props = {"rho": 975.0, "nu_m2_per_s": 4e-7, "roughness_m": 4.5e-5}
    _, r_own = sizing.pressure_gradient_pa_per_m(np.array([mdot]), 0.0431, **props)
    _, r_sim = sizing.pressure_gradient_pa_per_m(np.array([mdot / 2]), 0.0431, **props)
    # Turbulent flow: doubling the flow roughly quadruples the gradient.
    assert 3.3 < r_own[0] / r_sim[0] < 4.0
    assert own.dp_bar[0] == pytest.approx(0.9 - 2 * (r_own[0] - r_sim[0]) * 30 / 1e5)
    # Fittings: 10 % on the friction drop of the whole path. The path's friction drop is lift − Δp, so with a
    # 3 bar lift the building keeps Δp − 0.1 · (3 − Δp).
    fitted = hydraulics.service_at_own_peak(
        sim, consumers, pipes, water=water, roughness_m=4.5e-5, t_return_c=t_ret, lift_bar=3.0, local_loss_factor=1.1
    )
    dp = own.dp_bar[0]
    assert fitted.dp_bar[0] == pytest.approx(dp - 0.1 * (3.0 - dp))


def test_service_pipes_are_checked_at_each_buildings_own_peak(two_temperature_plan):
    plan = two_temperature_plan
    c = plan.consumers[plan.consumers.connected]
    assert (c.dp_own_peak_bar <= c.dp_bar + 1e-12).all()
    assert (c.dp_own_peak_bar >= plan.scenario.limits.min_consumer_dp_bar - 1e-9).all()
    assert (c.service_v_own_peak_m_per_s <= plan.scenario.limits.max_velocity_m_per_s).all()
    # At its own peak a service pipe carries more than in the diversified simulation.
    service = plan.pipes[(plan.pipes.kind == "service") & (plan.pipes.circuit == "supply")].dropna(
        subset=["consumer_id"]
    )
    v_sim = service.set_index("consumer_id").v_m_per_s.reindex(c.consumer_id).to_numpy()
    assert (c.service_v_own_peak_m_per_s.to_numpy() > v_sim).all()


def test_pump_lift_is_trimmed_to_what_the_critical_consumer_needs(two_temperature_plan):
    plan = two_temperature_plan
    scn = plan.scenario
    need = scn.limits.min_consumer_dp_bar + scn.network.pump_lift_margin_bar
    c = plan.consumers[plan.consumers.connected]
    supply = plan.pipes[(plan.pipes.circuit == "supply") & plan.pipes.consumer_id.notna()]
    source_of = supply.set_index("consumer_id").source_id
    critical = c.groupby(source_of.reindex(c.consumer_id).to_numpy()).dp_own_peak_bar.min()
    assert critical.to_numpy() == pytest.approx([need, need], abs=1e-4)
    assert plan.rounds[-1]["action"] == "pump lift trimmed"
    # Pumping power follows the trimmed lift: P = V̇ · Δp.
    s = plan.sources.set_index("source_id")
    assert (s.pump_lift_bar < scn.network.max_pump_lift_bar).all()
    rho = 975.0  # water at ~65 °C; the check is on the product, to 1 %
    assert s.pump_power_kw.to_numpy() == pytest.approx(
        (s.mdot_kg_per_s / rho * s.pump_lift_bar * 1e5 / 1000).to_numpy(), rel=0.01
    )
    assert plan.figures["pumping_power_kw"] == pytest.approx(s.pump_power_kw.sum() / scn.economics.pump_efficiency)


def test_consumers_with_almost_no_load_are_left_out_with_their_reason(town, tmp_path):
    def tiny(gdf):
        gdf.loc[0, "annual_demand_mwh"] = 0.0
        gdf.loc[1, "annual_demand_mwh"] = 0.001  # 0.5 W at 2,000 full-load hours
        gdf.loc[[0, 1], "peak_load_kw"] = np.nan
        return gdf

    path = scenario_with(town, tmp_path, consumers=tiny)
    ids = gpd.read_file(tmp_path / "consumers.gpkg").id[:2].tolist()
    plan = plan_from_scenario(scenario_from_file(path))
    assert plan.excluded["zero_demand"] == ids[:1]  # nothing to deliver: that reason first
    assert plan.excluded["below_min_peak_load"] == ids[1:]
    assert plan.ok, plan.violations


def test_shared_supply_areas_feed_one_network_from_both_sources(town, tmp_path):
    path = scenario_with(town, tmp_path, t_supply_c={"S2": 80.0})
    text = path.read_text() + "network: {supply_areas: shared}\n"
    path.write_text(text)
    plan = plan_from_scenario(scenario_from_file(path))
    assert plan.ok, plan.violations
    assert_drawn_equals_simulated_one_network(plan)
    s = plan.sources.set_index("source_id")
    # Both sources supply heat into the one network, each at the same share of its capacity (the one holding
    # the pressure also covers the losses), and the energy balance closes over the network.
    assert (s.q_supplied_kw > 0).all()
    load = plan.consumers.q_design_kw.sum()
    share = load / s.capacity_kw.sum()
    root = plan.pipes.source_id.iloc[0]  # the source holding the pressure
    (feed,) = set(s.index) - {root}
    # The feed-in injects a fixed mass flow: its share of capacity at the design ΔT (80 − 45 K); the heat it
    # adds then follows the return temperature that actually reaches it.
    cp = sizing.water_properties(85.0, 45.0).cp_j_per_kgk
    assert s.mdot_kg_per_s[feed] == pytest.approx(share * s.capacity_kw[feed] * 1000 / (cp * 35.0), rel=1e-6)
    assert s.q_supplied_kw[feed] == pytest.approx(share * s.capacity_kw[feed], rel=0.1)
    assert s.q_supplied_kw.sum() == pytest.approx(load + plan.pipes.q_loss_kw.sum(), rel=1e-3)
    assert plan.energy_balance["residual_relative"] < 1e-3
    # Water from the 85 °C and the 80 °C source mixes: every consumer gets at most 85 °C.
    c = plan.consumers[plan.consumers.connected]
    assert (c.t_supply_c <= 85.0 + 1e-6).all() and (c.t_supply_c >= 70.0).all()


def assert_drawn_equals_simulated_one_network(plan):
    from plan_invariants import assert_drawn_equals_simulated

    assert plan.pipes.source_id.nunique() == 1  # one network, drawn under its pressure-holding source
    assert_drawn_equals_simulated(plan)


def test_a_mapped_column_feeds_the_plan_and_the_summary_names_it(town, tmp_path):
    from heatmap.io.outputs import plan_summary

    src = gpd.read_file(town / "sources.geojson").rename(columns={"t_supply_c": "supply_temperature_c"})
    src["supply_temperature_c"] = [88.0, 76.0]
    src.to_file(tmp_path / "plants.geojson", engine="pyogrio")
    data = yaml.safe_load(scenario_with(town, tmp_path).read_text())
    data["sources"] = {"path": str(tmp_path / "plants.geojson"), "columns": {"t_supply_c": "supply_temperature_c"}}
    path = tmp_path / "mapped.yaml"
    path.write_text(yaml.safe_dump(data))
    plan = plan_from_scenario(scenario_from_file(path))
    assert plan.sources.set_index("source_id").t_supply_c.to_dict() == {"S1": 88.0, "S2": 76.0}
    summary = plan_summary(plan)
    assert summary["input_columns"]["sources"]["t_supply_c"] == "supply_temperature_c"
    assert summary["input_columns"]["consumers"]["annual_demand_mwh"] == "annual_demand_mwh"

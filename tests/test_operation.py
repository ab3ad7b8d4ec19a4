"""A year of operation of a planned network: the hours that matter, prosumers, and the money between companies."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli
from kip_derived import derived
from plan_invariants import assert_drawn_equals_simulated

from heatmap import settings
from heatmap.energy import trade
from heatmap.io import outputs
from heatmap.plan import plan_from_scenario
from heatmap.scenario import scenario_from_dict

KIP = derived("network")  # the bundled KIP study's network, as a scenario file
KIP_DATA = yaml.safe_load(KIP.read_text())


def kip_data(changes: dict) -> dict:
    """The bundled KIP network's parsed YAML with changes (``{"a.b.0.c": value}``; ``None`` drops the key)."""
    data = copy.deepcopy(KIP_DATA)
    for path, value in changes.items():
        *parents, key = path.split(".")
        node = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is None:
            node.pop(key)
        else:
            node[key] = value
    return data


def kip_plan(**changes):
    return plan_from_scenario(scenario_from_dict(kip_data(changes), base_dir=KIP.parent, path=KIP))


@pytest.fixture(scope="module")
def kip():
    return kip_plan()


def test_bundled_kip_network_holds_at_every_hour_that_matters(kip):
    """The bundled KIP screening network (no streets): every check holds at the design peak and every hour."""
    assert kip.ok, kip.violations
    assert kip.consumers.connected.all()
    assert_drawn_equals_simulated(kip)
    assert kip.figures["heat_delivered_mwh_per_a"] == pytest.approx(
        sum(c["annual_demand_mwh"] for c in KIP_DATA["consumers"]["inline"])
    )
    assert set(kip.pipes.surface) <= {"open_terrain", "service"}
    hours = {h["hour"]: h for h in kip.operation.table}
    assert list(hours)[0] == "design peak"
    names = "; ".join(hours)
    for wanted in ("highest load", "summer, least load", "prosumers sell most"):
        assert wanted in names
    for h in kip.operation.hours:
        eb = h.simulation.energy_balance
        assert eb["residual_relative"] <= 1e-3
        assert h.simulation.converged
        assert h.hour.time.month in (6, 7, 8) or "summer" not in h.hour.name
    summer = next(h for h in kip.operation.hours if "summer" in h.hour.name)
    assert "park_backup_boiler" not in summer.hour.source_kw.index  # excess heat alone in summer


def test_prosumer_selling_reverses_the_flow_in_its_connection(kip):
    """Buying at the design peak, selling in its hour: the water in its service pipe runs the other way."""
    selling = next(h for h in kip.operation.hours if "prosumers sell" in h.hour.name)
    assert selling.hour.sale_kw["kip_h2_electrolyser"] > 0
    edge = _service_pipe(kip, "kip_h2_electrolyser").edge_id
    assert not _supply(kip.operation.design.simulation, edge).flow_reversed
    assert _supply(selling.simulation, edge).flow_reversed
    fed = selling.simulation.sources.set_index("source_id").q_supplied_kw["kip_h2_electrolyser"]
    assert fed == pytest.approx(selling.hour.sale_kw["kip_h2_electrolyser"], rel=0.02)


def _service_pipe(plan, consumer_id):
    p = plan.pipes
    return p[(p.kind == "service") & (p.consumer_id == consumer_id) & (p.circuit == "supply")].iloc[0]


def _supply(sim, edge):
    p = sim.pipes
    return p[(p.edge_id == edge) & (p.circuit == "supply")].iloc[0]


def test_the_years_heat_and_money_add_up(kip):
    op = kip.operation
    t = op.totals
    # Every kW drawn or lost is fed in by a source or a prosumer, or unserved.
    assert t["drawn_mwh"] + t["losses_mwh"] == pytest.approx(
        t["fed_in_by_sources_mwh"] + t["sold_by_prosumers_mwh"] + t["unserved_mwh"], rel=1e-9
    )
    companies = op.trade.set_index("company")
    assert companies.bought_mwh.sum() == pytest.approx(t["drawn_mwh"], rel=1e-9)
    assert companies.sold_mwh.sum() == pytest.approx(t["fed_in_by_sources_mwh"] + t["sold_by_prosumers_mwh"])
    assert companies.net_eur.sum() == pytest.approx(0.0, abs=1e-3)  # every euro paid is received
    # Hand check at the scenario's prices: Boliden is paid its own 10 €/MWh, Keliber pays 45 €/MWh.
    assert companies.received_eur["Boliden"] == pytest.approx(10 * companies.sold_mwh["Boliden"])
    assert companies.paid_eur["Keliber"] == pytest.approx(45 * companies.bought_mwh["Keliber"])
    assert companies.received_eur["KIP Hydrogen (hypothetical)"] == pytest.approx(
        20 * companies.sold_mwh["KIP Hydrogen (hypothetical)"]
    )
    # The town's connection is the operator's own site: no money for it.
    others = companies.drop(index="Kokkolan Energia")
    assert companies.received_eur["Kokkolan Energia"] == pytest.approx(others.paid_eur.sum())
    assert companies.bought_mwh["Keliber"] == pytest.approx(15_000, rel=1e-3)


def test_a_prosumers_connection_is_sized_for_its_sale():
    with_sale = kip_plan()
    without = kip_plan(**{"operation": None, "temperatures.supply_curve": None})
    assert without.operation is None
    assert _service_pipe(with_sale, "kip_h2_electrolyser").dn > _service_pipe(without, "kip_h2_electrolyser").dn


def test_a_summer_hour_too_cold_at_the_port_is_a_violation_of_that_hour_unless_it_bypasses():
    """At the curve's summer 75 °C the port's long branch cools below its 70 °C in the summer's least load."""
    port = next(c for c in KIP_DATA["consumers"]["inline"] if c["id"] == "port")
    assert port["min_supply_c"] == 70
    plan = kip_plan(**{"operation.bypass": False})
    assert not plan.ok
    v = plan.violations
    cold = v[v.check == "consumer_supply_temperature"]
    assert set(cold.element) == {"port"}
    assert all("summer" in h for h in cold.hour)
    assert (v.hour == "design peak").sum() == 0
    # With the substations' bypass the port passes more flow in that hour, holds 70 °C and returns warmer.
    bypassing = kip_plan()
    assert bypassing.ok, bypassing.violations
    summer = next(h for h in bypassing.operation.hours if "summer" in h.hour.name)
    assert list(summer.bypass_mdot_kg_per_s.index) == ["port"]
    port_now = summer.simulation.consumers.set_index("consumer_id").loc["port"]
    port_before = next(h for h in plan.operation.hours if "summer" in h.hour.name)
    port_before = port_before.simulation.consumers.set_index("consumer_id").loc["port"]
    assert 70 <= port_now.t_supply_c and port_now.t_return_c > 45 + 1
    assert port_now.mdot_kg_per_s >= 1.5 * port_before.mdot_kg_per_s * (1 - 1e-9)  # at least one bypass step
    assert port_now.q_kw == pytest.approx(port_before.q_kw, rel=1e-6)  # the same load, more flow
    assert summer.simulation.energy_balance["residual_relative"] <= 1e-3


def test_pipes_carry_the_merit_order_not_the_design_shares():
    """A backup larger than the excess heat: at the design peak both run at one share, in the year the excess heat
    runs first at full capacity, and the pipes from it must carry that."""
    plan = kip_plan(**{"sources.inline.1.capacity_kw": 30000})
    assert plan.ok, plan.violations
    highest = next(h for h in plan.operation.hours if "highest" in h.hour.name)
    assert highest.hour.source_kw["boliden_acid_heat"] == pytest.approx(15020, rel=0.05)
    assert highest.violations.empty


def test_company_codes_read_as_numbers_stay_codes():
    import geopandas as gpd
    from pyproj import CRS
    from shapely.geometry import Point

    from heatmap.io import inputs

    raw = gpd.GeoDataFrame(
        {"id": ["a", "b"], "annual_demand_mwh": [10.0, 20.0], "company": [900.0, None]},
        geometry=[Point(23.05, 63.86), Point(23.06, 63.86)],
        crs=4326,
    )
    cons = inputs.prepare_consumers(raw, crs=CRS(3067), full_load_hours_h=2000, default_min_supply_c=70)
    assert cons.company.tolist() == ["900", "b"]


def _own(net: pd.DataFrame) -> trade.SiteLoads:
    """Site loads given entirely as own profiles."""
    return trade.SiteLoads(net.index, np.zeros(len(net)), pd.Series(dtype=float), pd.Series(dtype=float), net)


def test_merit_order_curtailment_and_unserved_by_hand():
    """Two sites, an excess-heat source (10 kW) and a backup (5 kW), 1 kW of losses, three hours."""
    index = pd.date_range("2023-01-01", periods=3, freq="h")
    net = pd.DataFrame({"a": [4.0, 12.0, 1.0], "p": [1.0, 2.0, -8.0]}, index=index)
    sources = pd.DataFrame(
        {"source_id": ["x", "b"], "tree": [0, 0], "capacity_kw": [10.0, 5.0], "role": ["excess_heat", "backup"]}
    )
    year = trade.source_hours(
        _own(net), pd.Series({"a": 0, "p": 0}), sources, pd.Series({0: 1.0}), min_source_share=0.2
    )
    # hour 0: 4 + 1 + 1 = 6 from x; hour 1: 12 + 2 + 1 = 15 = x 10 + b 5; hour 2: gross 1 + 1 = 2, the prosumer
    # may sell 0.8 × 2 = 1.6 of its 8 (6.4 curtailed), x gives 0.4.
    assert year.source_kw.x.tolist() == pytest.approx([6.0, 10.0, 0.4])
    assert year.source_kw.b.tolist() == pytest.approx([0.0, 5.0, 0.0])
    assert year.sale_kw.p.tolist() == pytest.approx([0.0, 0.0, 1.6])
    assert year.curtailed_kw.tolist() == pytest.approx([0.0, 0.0, 6.4])
    short = trade.source_hours(
        _own(net * 2), pd.Series({"a": 0, "p": 0}), sources, pd.Series({0: 1.0}), min_source_share=0.2
    )
    assert short.unserved_kw.tolist() == pytest.approx([0.0, 28 + 1 - 15, 0.0])
    money = trade.company_trade(
        year,
        pd.DataFrame({"consumer_id": ["a", "p"], "company": ["A", "P"]}),
        pd.DataFrame({"source_id": ["x", "b"], "company": ["X", "OP"], "heat_price_eur_per_mwh": [10.0, np.nan]}),
        heat_price_eur_per_mwh=50.0,
        feed_in_price_eur_per_mwh=20.0,
        operator="OP",
    ).set_index("company")
    assert money.paid_eur["A"] == pytest.approx(17 / 1000 * 50)
    assert money.received_eur["X"] == pytest.approx(16.4 / 1000 * 10)
    assert money.received_eur["P"] == pytest.approx(1.6 / 1000 * 20)
    assert money.paid_eur["P"] == pytest.approx(3 / 1000 * 50)
    # The operator's own backup sells 5 kWh with no money; it receives what A and P pay and pays what X and P get.
    assert money.sold_mwh["OP"] == pytest.approx(5 / 1000)
    assert money.received_eur["OP"] == pytest.approx(money.paid_eur["A"] + money.paid_eur["P"])
    assert money.paid_eur["OP"] == pytest.approx(money.received_eur["X"] + money.received_eur["P"])
    assert money.net_eur.sum() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"operation.site_profiles": "nobody.csv"}, "columns nobody name no consumer of the plan"),
        ({"consumers.inline.4.t_feed_in_c": None}, "sell heat in some hours but have no t_feed_in_c"),
        ({"consumers.inline.4.t_feed_in_c": 45}, "kip_h2_electrolyser feed in at a t_feed_in_c at or below the return"),
        ({"consumers.inline.0.annual_demand_mwh": 50000}, "column town_dh draws 94,193 MWh over the year but"),
        ({"sources.inline.0.role": "baseload"}, "'sources.inline[0].role' is 'baseload'; allowed: excess_heat, backup"),
        ({"operation.operator": "Kokkolan energia"}, "but 'Kokkolan Energia' is"),
        ({"operation.heat_price_eur_per_mwh": None}, "operation.heat_price_eur_per_mwh"),
    ],
)
def test_bad_operation_input_is_named(tmp_path, change, message):
    (tmp_path / "nobody.csv").write_text("time,nobody\n2023-01-01T00:00,1\n")
    data = kip_data(change)
    op = data["operation"]
    op["outdoor_temperature"]["csv"] = str((KIP.parent / op["outdoor_temperature"]["csv"]).resolve())
    if op["site_profiles"] != "nobody.csv":
        op["site_profiles"] = str((KIP.parent / op["site_profiles"]).resolve())
    scenario = tmp_path / "kip.yaml"
    scenario.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = run_cli("plan", scenario, "--out", tmp_path / "out")
    assert result.returncode == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_degree_hour_loads_add_up_to_the_annual_demand():
    index = pd.date_range("2023-01-01", periods=8760, freq="h")
    outdoor = pd.Series(5 + 15 * np.sin(np.arange(8760) * 2 * np.pi / 8760 - np.pi / 2), index=index)
    consumers = pd.DataFrame({"consumer_id": ["a", "b", "c"], "annual_demand_mwh": [100.0, 250.0, 40.0]})
    own = pd.DataFrame({"c": np.full(8760, 40_000 / 8760)}, index=index)
    loads = trade.site_loads(consumers, outdoor, base_temperature_c=17, hot_water_share=0.2, profiles=own)
    assert loads.annual_draw_mwh().to_dict() == pytest.approx({"a": 100.0, "b": 250.0, "c": 40.0})
    groups = loads.draw_by_group(pd.Series({"a": 0, "b": 1, "c": 1}))
    assert groups.sum().to_numpy() / 1000 == pytest.approx([100.0, 290.0])
    hour = index[20]
    assert loads.net_at(hour).sum() == pytest.approx(groups.loc[hour].sum())
    # Hot water is flat: in the warmest hour (no degree-hours) site a draws 20 MWh / 8760 h.
    warm = outdoor.idxmax()
    assert loads.net_at(warm)["a"] == pytest.approx(20_000 / 8760)


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    """A synthetic town whose hourly loads at the coldest hour exceed its diversified design load."""
    from heatmap.io.synthetic import synthetic_town, write_synthetic_scenario
    from heatmap.scenario import scenario_from_file

    path = write_synthetic_scenario(synthetic_town(400, seed=3), tmp_path_factory.mktemp("town") / "town")
    csv = settings.data_dir / "kip" / "kokkola_temperature_synthetic.csv"
    with path.open("a", encoding="utf-8") as f:
        f.write(
            f"\noperation:\n  year: 2023\n  outdoor_temperature: {{csv: {csv}, column: t_out_c}}\n"
            "  heat_price_eur_per_mwh: 50\n  feed_in_price_eur_per_mwh: 20\n"
        )
    return plan_from_scenario(scenario_from_file(path))


def test_pipes_carry_the_highest_hour_and_pumps_follow_the_load(town):
    design = town.operation.design
    highest = next(h for h in town.operation.hours if "highest load" in h.hour.name)
    assert highest.simulation.consumers.q_kw.sum() > design.simulation.consumers.q_kw.sum()  # above the design
    assert not set(highest.violations.check) & {"velocity", "pressure_gradient", "consumer_dp", "converged"}
    # The pumps lift more than at the design peak, and the critical consumer keeps its minimum (fittings counted).
    lim = town.scenario.limits
    for tree, lift in highest.pump_lift_bar.items():
        assert lift >= design.pump_lift_bar[tree] - 1e-9
    assert max(v - design.pump_lift_bar[k] for k, v in highest.pump_lift_bar.items()) > 0
    # Pumping P = V̇·Δp of the pressure-holding pump: more flow and more lift than at the design peak.
    rows = {r["hour"]: r for r in town.operation.table}
    assert rows[highest.hour.name]["pumping_kw"] > rows["design peak"]["pumping_kw"] > 0
    pump = highest.simulation.sources.iloc[0]
    assert pump.pump_power_kw == pytest.approx(pump.mdot_kg_per_s / 1000 * pump.pump_lift_bar * 1e5 / 1000, rel=0.05)
    assert highest.simulation.energy_balance["residual_relative"] <= lim.energy_balance_tolerance
    # Each network's first pipe is sized for the whole hour's load, above the diversified design load.
    supply = town.pipes[town.pipes.circuit == "supply"]
    first_pipe_kw = supply.groupby("source_id").design_load_kw.max().sum()
    assert first_pipe_kw == pytest.approx(highest.simulation.consumers.q_kw.sum(), rel=1e-6)


def test_a_real_town_holds_at_its_hours_with_bypass_and_not_without(tmp_path):
    """The bundled Helsinki centre (OSM buildings, two separate networks) over the KIP synthetic year.

    In the summer hour of least load the buildings draw hot water only: without the substations' bypass one
    network does not converge (water reaching a consumer colder than its return temperature) and others arrive
    too cold; with it every check holds.
    """
    from conftest import write_scenario

    from heatmap.scenario import scenario_from_file

    csv = settings.data_dir / "kip" / "kokkola_temperature_synthetic.csv"
    operation = (
        f"operation:\n  year: 2023\n  outdoor_temperature: {{csv: {csv}, column: t_out_c}}\n"
        "  heat_price_eur_per_mwh: 50\n  feed_in_price_eur_per_mwh: 20\n"
    )
    with_bypass = plan_from_scenario(scenario_from_file(write_scenario(tmp_path, operation)))
    assert with_bypass.ok, with_bypass.violations
    summer = next(h for h in with_bypass.operation.hours if "summer" in h.hour.name)
    assert summer.simulation.converged and len(summer.bypass_mdot_kg_per_s) > 0
    assert summer.simulation.energy_balance["residual_relative"] <= 1e-3
    companies = with_bypass.operation.trade
    assert companies.net_eur.sum() == pytest.approx(0.0, abs=1e-3)
    assert companies.bought_mwh.sum() == pytest.approx(with_bypass.operation.totals["drawn_mwh"], rel=1e-9)

    (tmp_path / "off").mkdir()
    without = plan_from_scenario(scenario_from_file(write_scenario(tmp_path / "off", operation + "  bypass: false\n")))
    failed = set(without.violations[without.violations.hour.str.contains("summer")].check)
    assert failed & {"converged", "consumer_supply_temperature"}


# --- the plan's money follows its year -------------------------------------------------------------------------


def _small_money_plan(**operation):
    """One excess-heat plant (12 €/MWh), a park company and the operator's own site, over the KIP synthetic year."""
    csv = settings.data_dir / "kip" / "kokkola_temperature_synthetic.csv"
    data = {
        "name": "plant, a park company and the operator's own site",
        "streets": {"source": "none", "max_service_length_m": 50},
        "links": {"site_to_site": True, "site_link_max_length_m": 4000, "site_link_surface": "open_terrain"},
        "sources": {
            "inline": [
                {"id": "plant", "lon": 23.054, "lat": 63.8631, "capacity_kw": 5000, "t_supply_c": 100,
                 "company": "Plant Oy", "heat_price_eur_per_mwh": 12},
            ]
        },
        "consumers": {
            "inline": [
                {"id": "a", "lon": 23.0529, "lat": 63.8521, "annual_demand_mwh": 3000, "peak_load_kw": 1000,
                 "company": "A Oy"},
                {"id": "own", "lon": 23.049, "lat": 63.858, "annual_demand_mwh": 2000, "peak_load_kw": 800,
                 "company": "OP"},
            ]
        },
        "temperatures": {"supply_c": 100, "return_c": 50, "ground_c": 6, "min_consumer_supply_c": 85},
        "network": {"simultaneity": "none"},
        "economics": {"discount_rate": 0.05, "lifetime_a": 20, "electricity_price_eur_per_mwh": 100,
                      "om_fraction_per_a": 0.02, "pump_efficiency": 0.5, "pump_full_load_hours_h": 1000},
        "operation": {"year": 2023, "outdoor_temperature": {"csv": str(csv), "column": "t_out_c"},
                      "heat_price_eur_per_mwh": 50, "feed_in_price_eur_per_mwh": 20, "operator": "OP", **operation},
    }  # fmt: skip
    return plan_from_scenario(scenario_from_dict(data, base_dir=KIP.parent))


def test_the_plans_money_follows_its_year_by_hand():
    """Revenue 3,000 MWh × 50 + own 2,000 MWh × 30; purchase (5,000 MWh + losses) × the plant's 12 €/MWh."""
    plan = _small_money_plan(own_sites_heat_value_eur_per_mwh=30)
    assert plan.ok, plan.violations
    f, t = plan.figures, plan.operation.totals
    assert t["unserved_mwh"] == 0 and t["drawn_mwh"] == pytest.approx(5000, rel=1e-9)
    losses = f["heat_losses_mwh_per_a"]
    assert t["losses_mwh"] == pytest.approx(losses, rel=1e-9) and losses > 0
    revenue = 3000 * 50 + 2000 * 30
    purchase = (5000 + losses) * 12
    assert f["revenue_eur_per_a"] == pytest.approx(revenue, rel=1e-9)
    assert f["revenue_from_consumers_eur_per_a"] == pytest.approx(150_000, rel=1e-9)
    assert f["own_sites_heat_value_eur_per_a"] == pytest.approx(60_000, rel=1e-9)
    assert f["heat_purchase_cost_eur_per_a"] == pytest.approx(purchase, rel=1e-9)
    capex = f["capex_eur"]
    af = 0.05 * 1.05**20 / (1.05**20 - 1)
    pumping = f["pumping_power_kw"] * 1000 / 1000 * 100  # kW × 1,000 h → MWh × 100 €/MWh
    running = 0.02 * capex + pumping + purchase
    assert f["lcoh_eur_per_mwh"] == pytest.approx((capex * af + running) / 5000, rel=1e-9)
    assert f["npv_eur"] == pytest.approx(-capex + (revenue - running) / af, rel=1e-9)
    assert plan.money["money_from"] == "year of operation"
    assert not [d for d in plan.money["on_defaults"] if d["price"]]  # every price given
    # Without a value for the own site's heat, it counts 0, and the summary and terminal say so.
    unvalued = _small_money_plan()
    assert unvalued.figures["revenue_eur_per_a"] == pytest.approx(150_000, rel=1e-9)
    text = outputs.format_summary(outputs.plan_summary(unvalued))
    assert "NPV rests on operation.own_sites_heat_value_eur_per_mwh, not given" in text
    assert "own sites' 2,000 MWh/a are valued at 0 €/MWh" in text


def test_revenue_purchase_and_npv_reproduce_from_trade_csv(tmp_path):
    """From the written trade.csv and the summary's capex, costs and annuity factor alone, to 1e-6."""
    plan = kip_plan(**{"operation.own_sites_heat_value_eur_per_mwh": 30})
    outputs.write_plan_files(plan, tmp_path)
    table = pd.read_csv(tmp_path / "trade.csv").set_index("company")
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    f = summary["figures"]
    value = next(a["value"] for a in summary["assumptions"] if a["key"] == "operation.own_sites_heat_value_eur_per_mwh")
    operator = table.loc["Kokkolan Energia"]
    others = table.drop(index="Kokkolan Energia")
    revenue = others.paid_eur.sum() + operator.bought_mwh * value
    purchase = others.received_eur.sum()
    assert revenue == pytest.approx(operator.received_eur + operator.bought_mwh * value, rel=1e-9)
    assert f["revenue_eur_per_a"] == pytest.approx(revenue, rel=1e-6)
    assert f["heat_purchase_cost_eur_per_a"] == pytest.approx(purchase, rel=1e-6)
    running = f["om_cost_eur_per_a"] + f["pumping_cost_eur_per_a"] + purchase
    assert f["npv_eur"] == pytest.approx(-f["capex_eur"] + (revenue - running) / f["annuity_factor"], rel=1e-6)
    lcoh = (f["capex_eur"] * f["annuity_factor"] + running) / table.bought_mwh.sum()
    assert f["lcoh_eur_per_mwh"] == pytest.approx(lcoh, rel=1e-6)
    assert summary["economics"]["money_from"] == "year of operation"


def test_bundled_kip_networks_money_measured(kip):
    """At the study's prices: the park companies pay 45 €/MWh, Boliden gets 10 and the electrolyser 20 €/MWh, and the
    town's heat (the operator's own site) is worth the 34 €/MWh of the wood-chip heat it displaces."""
    f = kip.figures
    bought = kip.operation.trade.set_index("company").bought_mwh
    sold = kip.operation.trade.set_index("company").sold_mwh
    park = bought.drop(index="Kokkolan Energia").sum()
    assert park == pytest.approx(15_000 + 8_000 + 2_000 + 971, rel=1e-3)
    assert f["revenue_eur_per_a"] == pytest.approx(45 * park + 34 * bought["Kokkolan Energia"], rel=1e-6)
    assert f["heat_purchase_cost_eur_per_a"] == pytest.approx(
        10 * sold["Boliden"] + 20 * sold["KIP Hydrogen (hypothetical)"], rel=1e-6
    )
    assert 0 < f["npv_eur"] < 160e6  # no longer the 160.8 M€ of the default 80 €/MWh
    flagged = {d["key"] for d in kip.money["on_defaults"]}
    assert "operation.own_sites_heat_value_eur_per_mwh" not in flagged  # given by the study
    assert "economics.electricity_price_eur_per_mwh" not in flagged  # the study's year's mean
    assert "economics.heat_price_eur_per_mwh" not in flagged  # not used with a year


def test_networks_solved_in_forked_processes_equal_networks_one_after_the_other(tmp_path, monkeypatch, caplog):
    """network.processes: the bundled Helsinki plan (two networks) with its year, the same results either way."""
    import logging

    from conftest import write_scenario

    from heatmap.io import forked
    from heatmap.scenario import scenario_from_file

    csv = settings.data_dir / "kip" / "kokkola_temperature_synthetic.csv"
    operation = (
        f"operation:\n  year: 2023\n  outdoor_temperature: {{csv: {csv}, column: t_out_c}}\n"
        "  heat_price_eur_per_mwh: 50\n  feed_in_price_eur_per_mwh: 20\n"
    )
    monkeypatch.setattr(forked, "MIN_PIPES", 0)  # the bundled plan is smaller than where they pay
    plans = {}
    for processes in (1, 2):
        (tmp_path / str(processes)).mkdir()
        path = write_scenario(tmp_path / str(processes), operation, network__processes=processes)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="heatmap.network.hydraulics"):
            plans[processes] = plan_from_scenario(scenario_from_file(path))
        forked = caplog.text.count("Solved 2 networks in 2 processes")
        assert (forked >= 3) if processes == 2 else forked == 0  # the design case and each hour
    serial, forked = plans[1], plans[2]
    assert serial.ok and forked.ok
    pd.testing.assert_frame_equal(serial.pipes, forked.pipes)
    pd.testing.assert_frame_equal(serial.consumers, forked.consumers)
    assert serial.figures == forked.figures
    for a, b in zip(serial.operation.hours, forked.operation.hours, strict=True):
        assert a.hour.name == b.hour.name and a.pump_lift_bar == b.pump_lift_bar
        for table in ("sources", "consumers", "pipes"):
            pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
        pd.testing.assert_frame_equal(a.simulation.pipes, b.simulation.pipes)
    assert serial.operation.table == forked.operation.table

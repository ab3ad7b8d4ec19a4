import logging
from pathlib import Path
from unittest.mock import ANY

import pandas as pd
import pytest

from heatmap import economics
from heatmap._errors import ScenarioError
from heatmap.scenario import Economics, json_schema, scenario_from_dict, scenario_from_file


def test_key_figures_by_hand():
    econ = Economics(
        discount_rate=0.05,
        lifetime_a=20,
        heat_price_eur_per_mwh=80,
        heat_cost_eur_per_mwh=10,
        electricity_price_eur_per_mwh=100,
        om_fraction_per_a=0.01,
        pump_efficiency=0.5,
        pump_full_load_hours_h=1000,
    )
    edges = pd.DataFrame({"length_m": [100.0, 300.0], "cost_eur": [50_000.0, 150_000.0]})
    consumers = pd.DataFrame({"annual_demand_mwh": [1000.0, 1000.0]})
    pipes = pd.DataFrame({"q_loss_kw": [5.0, 5.0]})
    sources = pd.DataFrame({"pump_power_kw": [2.0]})
    f = economics.key_figures(edges, consumers, pipes, sources, econ)
    af = 0.05 * 1.05**20 / (1.05**20 - 1)
    losses = 10 * 8760 / 1000
    running = 2000 + 4 * 1000 / 1000 * 100 + (2000 + losses) * 10
    assert f["capex_eur"] == 200_000
    assert f["heat_losses_mwh_per_a"] == pytest.approx(87.6)
    assert f["heat_losses_share"] == pytest.approx(87.6 / 2087.6)
    assert f["pumping_power_kw"] == pytest.approx(4.0)
    assert f["linear_heat_density_mwh_per_m_a"] == pytest.approx(5.0)
    assert f["lcoh_eur_per_mwh"] == pytest.approx((200_000 * af + running) / 2000)
    assert f["npv_eur"] == pytest.approx(-200_000 + (2000 * 80 - running) / af)


def _plan_yaml(economics: str) -> str:
    return f"streets: {{path: x.pbf}}\nsources: {{path: s.csv}}\nconsumers: {{path: c.csv}}\neconomics:\n{economics}"


def test_old_key_interest_rate_is_read_as_discount_rate_with_a_warning(tmp_path, caplog):
    path = tmp_path / "old.yaml"
    path.write_text(_plan_yaml("  lifetime_a: 25\n  interest_rate: 0.04\n"), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="heatmap.scenario"):
        scn = scenario_from_file(path)
    assert scn.economics.discount_rate == 0.04
    assert "economics.discount_rate" in scn.given
    rows = {a["key"]: a for a in scn.assumptions()}
    assert rows["economics.discount_rate"]["source"] == "scenario" and "economics.interest_rate" not in rows
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    text = warned[0].getMessage()
    assert "line 6" in text and "'economics.interest_rate' is the old name of 'economics.discount_rate'" in text
    assert scn.renamed_keys == [
        {"old": "economics.interest_rate", "new": "economics.discount_rate", "line": 6, "message": ANY}
    ]


def test_both_discount_rate_keys_are_an_error_naming_both(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text(_plan_yaml("  interest_rate: 0.04\n  discount_rate: 0.05\n"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"line 5: 'economics.interest_rate' and 'economics.discount_rate' are bo"):
        scenario_from_file(path)


def test_a_bad_value_under_the_old_key_names_the_key_as_written(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(_plan_yaml("  interest_rate: 0.9\n"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"line 5: 'economics.interest_rate' \(now 'economics.discount_rate'\) is"):
        scenario_from_file(path)


def test_one_default_discount_rate_and_lifetime_in_all_three_schemas():
    """Plan, concept study and matching: 3 % over 30 a (Hotmaps excess-heat module), the same field names."""
    from heatmap.energy.energy_scenario import Economics as StudyEconomics
    from heatmap.energy.matching import MatchingSettings

    plan = Economics()
    for econ in (plan, StudyEconomics(), MatchingSettings()):
        assert (econ.discount_rate, econ.lifetime_a) == (0.03, 30)
    assert "Hotmaps" in type(plan).model_fields["discount_rate"].description
    schema = json_schema()["$defs"]["Economics"]["properties"]
    assert schema["interest_rate"]["deprecated"] is True and "discount_rate" in schema


def _origins(economics_section: dict, operation: dict | None = None) -> dict:
    data = {"streets": {"path": "x.pbf"}, "sources": {"path": "s.csv"}, "consumers": {"path": "c.csv"}}
    data["economics"] = economics_section
    if operation is not None:
        data["operation"] = operation
    scn = scenario_from_dict(data, base_dir=Path("/tmp"))
    year = None
    if operation is not None:
        year = economics.TradeMoney(1000.0, 50.0, operation.get("own_sites_heat_value_eur_per_mwh"), 300.0, 70.0, 0.0)
    return economics.money_origins(scn, year)


def test_a_defaulted_price_is_flagged_naming_the_setting_and_a_given_one_is_not():
    defaulted = _origins({"discount_rate": 0.04})
    keys = {d["key"]: d for d in defaulted["on_defaults"]}
    assert keys["economics.heat_price_eur_per_mwh"]["message"] == (
        "NPV rests on the default economics.heat_price_eur_per_mwh = 80 €/MWh; give it in the scenario"
    )
    assert keys["economics.heat_cost_eur_per_mwh"]["figures"] == ["NPV", "LCOH"]
    assert "economics.discount_rate" not in keys  # given
    npv = {r["key"]: r["source"] for r in defaulted["price_origins"]["npv_eur"]}
    assert npv["economics.heat_price_eur_per_mwh"] == "default" and npv["economics.discount_rate"] == "scenario"
    given = _origins({"heat_price_eur_per_mwh": 60, "heat_cost_eur_per_mwh": 5, "electricity_price_eur_per_mwh": 70})
    flagged = {d["key"] for d in given["on_defaults"]}
    assert not flagged & {"economics.heat_price_eur_per_mwh", "economics.heat_cost_eur_per_mwh"}
    assert {"economics.discount_rate", "economics.lifetime_a"} <= flagged  # not given here: flagged, not as prices
    assert not any(d["price"] for d in given["on_defaults"])


def test_with_a_year_the_money_rests_on_the_operations_prices_and_names_a_missing_own_sites_value():
    op = {
        "year": 2023,
        "outdoor_temperature": {"csv": "t.csv", "column": "t"},
        "heat_price_eur_per_mwh": 45,
        "feed_in_price_eur_per_mwh": 20,
    }
    unvalued = _origins({"heat_price_eur_per_mwh": 80}, op)
    assert unvalued["money_from"] == "year of operation"
    revenue = {r["key"]: r for r in unvalued["price_origins"]["revenue_eur_per_a"]}
    assert set(revenue) == {"operation.heat_price_eur_per_mwh", "operation.own_sites_heat_value_eur_per_mwh"}
    missing = next(d for d in unvalued["on_defaults"] if d["key"] == "operation.own_sites_heat_value_eur_per_mwh")
    assert missing["value"] is None and "own sites' 50 MWh/a are valued at 0 €/MWh; give it" in missing["message"]
    assert any("economics.heat_price_eur_per_mwh is given but not used" in n for n in unvalued["notes"])
    valued = _origins({}, {**op, "own_sites_heat_value_eur_per_mwh": 30})
    assert "operation.own_sites_heat_value_eur_per_mwh" not in {d["key"] for d in valued["on_defaults"]}
    assert "economics.heat_price_eur_per_mwh" not in {d["key"] for d in valued["on_defaults"]}  # not used


def test_the_terminal_names_each_default_price():
    from heatmap.io.outputs import format_summary

    scn = scenario_from_dict(
        {"streets": {"path": "x.pbf"}, "sources": {"path": "s.csv"}, "consumers": {"path": "c.csv"},
         "economics": {"interest_rate": 0.04, "heat_cost_eur_per_mwh": 12}},
        base_dir=Path("/tmp"),
    )  # fmt: skip
    figures = {"revenue_eur_per_a": 2.5e6, "heat_purchase_cost_eur_per_a": 0.4e6}
    text = format_summary({"economics": economics.money_origins(scn, None), "figures": figures})
    assert "revenue 2.50 M€/a, heat purchase 0.40 M€/a, from economics prices" in text
    assert "NPV rests on the default economics.heat_price_eur_per_mwh = 80 €/MWh; give it in the scenario" in text
    assert "economics.heat_cost_eur_per_mwh" not in text  # given
    assert "economics.discount_rate" not in text  # given, under its old name


def test_consumer_shares_by_hand():
    # Source 0 → junction 1 (trunk, 60 k€, 6 kW lost) → consumers A (node 2, 100 kW) and B (node 3, 300 kW) by their
    # service pipes (10 k€ / 1 kW and 20 k€ / 3 kW). A pays its service and a quarter of the trunk, B the rest.
    econ = Economics(discount_rate=0.0, lifetime_a=20, om_fraction_per_a=0.01)
    edges = pd.DataFrame(
        {
            "edge_id": [0, 1, 2],
            "from_node": [0, 1, 1],
            "to_node": [1, 2, 3],
            "depth": [1, 2, 2],
            "cost_eur": [60_000.0, 10_000.0, 20_000.0],
        }
    )
    loss_kw = pd.Series([6.0, 1.0, 3.0], index=[0, 1, 2])
    consumers = pd.DataFrame(
        {"consumer_id": ["A", "B"], "node": [2, 3], "peak_load_kw": [100.0, 300.0], "annual_demand_mwh": [200.0, 600.0]}
    )
    figures = {
        "heat_losses_mwh_per_a": 87.6,  # the 10 kW all year
        "annuity_factor": 0.05,
        "pumping_cost_eur_per_a": 400.0,
        "pumping_energy_mwh_per_a": 5.0,
        "heat_purchase_cost_eur_per_a": 8876.0,
    }
    s = economics.consumer_shares(edges, loss_kw, consumers, figures, econ)
    assert s.loc["A", "capex_share_eur"] == pytest.approx(10_000 + 15_000)
    assert s.loc["B", "capex_share_eur"] == pytest.approx(20_000 + 45_000)
    assert s.loc["A", "trunk_share_eur"] == pytest.approx(15_000)
    assert s.loc["A", "loss_share_mwh_per_a"] == pytest.approx((1 + 1.5) * 8.76)  # its pipe + a quarter of 6 kW
    heat_a = (200 + 2.5 * 8.76) / (800 + 87.6)
    assert s.loc["A", "pumping_share_eur_per_a"] == pytest.approx(100)  # 400 €/a by its quarter of the peak loads
    assert s.loc["A", "pumping_share_mwh_per_a"] == pytest.approx(1.25)
    assert s.loc["A", "annual_cost_share_eur_per_a"] == pytest.approx(25_000 * 0.06 + 100 + 8876 * heat_a)
    assert s.loc["A", "lcoh_eur_per_mwh"] == pytest.approx(s.loc["A", "annual_cost_share_eur_per_a"] / 200)


def test_consumer_shares_add_up_to_the_plan_totals(bundled_plan):
    c = bundled_plan.consumers[bundled_plan.consumers.connected]
    f = bundled_plan.figures
    assert c.capex_share_eur.sum() == pytest.approx(f["capex_eur"], rel=1e-9)
    assert c.loss_share_mwh_per_a.sum() == pytest.approx(f["heat_losses_mwh_per_a"], rel=1e-9)
    assert c.annual_cost_share_eur_per_a.sum() == pytest.approx(f["annual_cost_eur_per_a"], rel=1e-9)
    assert c.pumping_share_eur_per_a.sum() == pytest.approx(f["pumping_cost_eur_per_a"], rel=1e-9)
    assert c.pumping_share_mwh_per_a.sum() == pytest.approx(f["pumping_energy_mwh_per_a"], rel=1e-9)
    assert (c.trunk_share_eur >= -1e-6).all() and (c.service_cost_eur > 0).all()
    assert (c.trunk_share_eur + c.service_cost_eur).to_numpy() == pytest.approx(c.capex_share_eur.to_numpy())
    # the plan's LCOH is the consumers' cost over their heat (no year of operation: heat sold = delivered)
    assert c.annual_cost_share_eur_per_a.sum() / c.annual_demand_mwh.sum() == pytest.approx(f["lcoh_eur_per_mwh"])

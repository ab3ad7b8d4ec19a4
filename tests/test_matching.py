"""Source–sink matching: a hand-made case ranked by hand, profiles and simultaneity, ``heatmap matches`` end to end."""

import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli
from kip_derived import derived
from shapely.geometry import Point

from heatmap import settings
from heatmap._errors import InputDataError
from heatmap.economics import annuity_factor
from heatmap.energy.matching import HOURS, MATCH_COLUMNS, HeatPumpRule, MatchingSettings, rank_matches
from heatmap.plan import plan_from_scenario

KIP_MATCHES = Path(__file__).parent / "data" / "matching_scenario.yaml"  # a standalone matching scenario
KIP_STUDY_MATCHES = derived("matches")  # the bundled KIP study's matches, as a scenario file
CRS = "EPSG:3067"
E0, N0 = 330_000.0, 7_080_000.0  # somewhere in Kokkola, EPSG:3067


def _points(rows: list[dict]) -> gpd.GeoDataFrame:
    geometry = [Point(E0 + r.pop("x"), N0 + r.pop("y")) for r in rows]
    return gpd.GeoDataFrame(rows, geometry=geometry, crs=CRS)


def hand_case():
    """Three sources × two sinks: a near hot pair, a far hot source, a cold source needing a heat pump."""
    sources = _points(
        [
            {"id": "near_hot", "x": 0, "y": 0, "t_c": 120.0, "peak_kw": 1000.0, "annual_mwh": 8760.0},
            {"id": "far_hot", "x": 20_000, "y": 0, "t_c": 120.0, "peak_kw": 1000.0, "annual_mwh": 8760.0},
            {"id": "cold", "x": 0, "y": 200, "t_c": 30.0, "peak_kw": 1000.0, "annual_mwh": 8760.0},
        ]
    )
    sinks = _points(
        [
            {"id": "plant", "x": 1000, "y": 0, "t_c": 80.0, "t_return_c": 50.0, "peak_kw": 500.0, "annual_mwh": 4380},
            {"id": "town", "x": 0, "y": 3000, "t_c": 80.0, "t_return_c": 50.0, "peak_kw": 500.0, "annual_mwh": 4380},
        ]
    )
    config = MatchingSettings(
        detour_factor=1.3,
        min_route_length_m=100,
        max_route_length_m=10_000,
        approach_k=5,
        heat_pump=HeatPumpRule(allowed=True, eta=0.5, cost_eur_per_kw=500, om_eur_per_mwh=0, max_lift_k=80),
        electricity_price_eur_per_mwh=50,
        hx_cost_eur_per_kw=10,
        om_share_of_capex_per_a=0.01,
        discount_rate=0.05,
        lifetime_a=20,
    )
    return sources, sinks, config


@pytest.fixture(scope="module")
def hand_table():
    return rank_matches(*hand_case()).set_index(["source_id", "sink_id"], drop=False)


def test_hand_case_ranking_order(hand_table):
    t = hand_table.sort_values("rank")
    feasible = t[t.feasible]
    # near hot → plant: 1.3 km of DN65 only. cold → plant: a heat pump but short. near hot → town: 3.9 km.
    assert list(zip(feasible.source_id, feasible.sink_id, strict=True)) == [
        ("near_hot", "plant"),
        ("cold", "plant"),
        ("near_hot", "town"),
        ("cold", "town"),
    ]
    assert feasible["rank"].tolist() == [1, 2, 3, 4]
    assert feasible.eur_per_mwh.is_monotonic_increasing
    assert list(hand_table.kind[hand_table.source_id == "cold"]) == ["heat_pump", "heat_pump"]
    assert set(hand_table.kind[hand_table.source_id != "cold"]) == {"direct"}


def test_hand_case_cost_per_mwh_by_hand(hand_table):
    r = hand_table.loc[("near_hot", "plant")]
    # 500 kW at 80/50 °C: ṁ ≈ 500 / (4.19 · 30) ≈ 3.98 kg/s → DN50 runs at ~1.75 m/s (> 1.5), DN65 at ~1.05 m/s.
    assert r.dn == 65
    assert r.mdot_kg_per_s == pytest.approx(500 / (4.19 * 30), rel=0.01)
    assert r.route_length_m == pytest.approx(1000 * 1.3)
    cost_per_m = pd.read_csv(settings.data_dir / "pipes_en253.csv", comment="#").set_index("dn").cost_eur_per_m[65]
    capex = cost_per_m * 1300 + 10 * 500  # pipe pair + heat exchanger
    annual = capex * annuity_factor(0.05, 20) + 0.01 * capex
    assert r.capex_eur == pytest.approx(capex)
    assert r.matched_mwh_per_a == pytest.approx(4380)  # both flat: min(8760, 4380)
    assert r.simultaneity == pytest.approx(1.0)
    assert r.eur_per_mwh == pytest.approx(annual / 4380, rel=1e-9)
    assert r.eur_per_mwh == pytest.approx(22.13, abs=0.01)  # 822.4 €/m × 1300 m + 5000 € → 96,931 €/a / 4380 MWh


def test_hand_case_heat_pump_pair_by_hand(hand_table):
    r = hand_table.loc[("cold", "plant")]
    cop = 0.5 * (80 + 273.15) / (80 - 30)  # 3.5315
    assert r.cop == pytest.approx(cop)
    assert r.electricity_mwh_per_a == pytest.approx(4380 / cop)
    assert r.source_heat_mwh_per_a == pytest.approx(4380 * (1 - 1 / cop))
    assert r.heat_pump_capex_eur == pytest.approx(500 * 500)
    assert r.electricity_cost_eur_per_a == pytest.approx(50 * 4380 / cop)
    assert r.route_length_m == pytest.approx(np.hypot(1000, 200) * 1.3)


def test_hand_case_infeasible_pairs_keep_their_reason(hand_table):
    far = hand_table[hand_table.source_id == "far_hot"]
    assert not far.feasible.any() and far["rank"].isna().all()
    assert all(reason.startswith("too far: route") for reason in far.reason)
    assert hand_table.feasible.sum() == 4 and len(hand_table) == 6
    assert hand_table[hand_table.feasible].reason.eq("").all()
    assert list(hand_table.columns) == [*MATCH_COLUMNS, "geometry"]


def test_too_cold_without_heat_pumps_and_lift_too_large():
    sources, sinks, config = hand_case()
    t = rank_matches(sources, sinks, config.model_copy(update={"heat_pump": HeatPumpRule(allowed=False)}))
    cold = t[t.source_id == "cold"]
    assert not cold.feasible.any() and set(cold.kind) == {"none"}
    assert all("too cold: 30 °C < sink supply 80 °C + approach 5 K" in r for r in cold.reason)
    t = rank_matches(sources, sinks, config.model_copy(update={"heat_pump": HeatPumpRule(max_lift_k=40)}))
    assert all("lift 50 K beyond" in r for r in t[t.source_id == "cold"].reason)


def test_simultaneity_of_hourly_profiles():
    sources, sinks, config = hand_case()
    summer = np.zeros(HOURS)
    summer[: HOURS // 2] = 1000.0  # the source has heat in the first half of the year only
    winter = np.zeros(HOURS)
    winter[HOURS // 4 :] = 400.0  # the plant needs heat from the second quarter on
    early = np.zeros(HOURS)
    early[:100] = 1000.0
    t = rank_matches(
        sources,
        sinks,
        config,
        source_profiles_kw={"near_hot": summer, "far_hot": early},
        sink_profiles_kw={"plant": winter},
    ).set_index(["source_id", "sink_id"])
    r = t.loc[("near_hot", "plant")]
    overlap_mwh = 400 * (HOURS // 2 - HOURS // 4) / 1000
    assert r.matched_mwh_per_a == pytest.approx(overlap_mwh)
    assert r.simultaneity == pytest.approx(overlap_mwh / min(1000 * HOURS / 2, 400 * HOURS * 3 / 4) * 1000)
    # the far source gives heat only in hours the plant needs none
    r = t.loc[("far_hot", "plant")]
    assert r.matched_mwh_per_a == 0 and not r.feasible and "nothing matched" in r.reason


def test_bad_inputs_name_the_problem():
    from heatmap._errors import InputDataError

    sources, sinks, config = hand_case()
    with pytest.raises(InputDataError, match="sinks: columns t_return_c missing"):
        rank_matches(sources, sinks.drop(columns="t_return_c"), config)
    with pytest.raises(InputDataError, match="metric"):
        rank_matches(sources.to_crs("EPSG:4326"), sinks.to_crs("EPSG:4326"), config)
    too_much = sources.assign(annual_mwh=[9000.0, 8760.0, 8760.0])
    with pytest.raises(InputDataError, match="source near_hot: annual_mwh 9000 is more than peak_kw"):
        rank_matches(too_much, sinks, config)


# ------------------------------------------------------------------------------------------ CLI, bundled ---
@pytest.fixture(scope="module")
def kip_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kip_matches") / "out"
    return run_cli("matches", KIP_MATCHES, "--out", out), out


def test_kip_matches_end_to_end(kip_run):
    result, out = kip_run
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"matches.csv", "matches.gpkg", "summary.json"}
    table = pd.read_csv(out / "matches.csv")
    assert list(table.columns) == list(MATCH_COLUMNS)
    assert len(table) == 4 * 4
    for col in table.columns:  # units in the names of the numeric columns (or a dimensionless name)
        dimensionless = ("rank", "cop", "dn", "simultaneity", "route_cost_factor")
        if col in dimensionless or table[col].dtype == object or table[col].dtype == bool:
            continue
        assert col.endswith(("_c", "_m", "_kw", "_eur", "_per_a", "_per_mwh", "_per_s", "_per_m")), col
    feasible = table[table.feasible]
    assert feasible["rank"].tolist() == list(range(1, len(feasible) + 1))
    assert feasible.eur_per_mwh.is_monotonic_increasing
    # Boliden's acid heat (105 °C) feeds the town's 90 °C network directly; its cooling water needs a heat pump
    pair = table.set_index(["source_id", "sink_id"])
    assert pair.loc[("boliden_acid_heat", "town_district_heating"), "kind"] == "direct"
    assert pair.loc[("process_cooling_water", "town_district_heating"), "kind"] == "heat_pump"
    # the acid heat cannot exceed what the plant gives (125 GWh/a calibrated)
    assert pair.loc[("boliden_acid_heat", "town_district_heating"), "matched_mwh_per_a"] <= 15020 * 0.95 * 8760 / 1000
    # an electrolyser at 60 °C cannot be lifted to Keliber's 160 °C by one pump (100 K > 80 K)
    assert "lift 100 K" in pair.loc[("electrolyser_heat", "keliber_lioh_refinery"), "reason"]


def test_kip_matches_layer(kip_run):
    _, out = kip_run
    layer = gpd.read_file(out / "matches.gpkg", layer="matches")
    assert layer.crs.to_epsg() == 3067
    assert len(layer) == 16 and set(layer.geom_type) == {"LineString"}
    assert set(layer.status) <= {"direct", "heat_pump", "infeasible"}
    table = pd.read_csv(out / "matches.csv")
    # each line runs from its source to its sink: its length is the straight distance
    assert np.allclose(layer.length.to_numpy(), table.straight_m.to_numpy(), rtol=1e-6)
    with sqlite3.connect(out / "matches.gpkg") as con:
        styles = con.execute("SELECT f_table_name, useAsDefault FROM layer_styles").fetchall()
    assert styles == [("matches", 1)]


def test_kip_matches_summary_reports_settings_and_reasons(kip_run):
    _, out = kip_run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["pairs"] == 16
    assert summary["feasible_pairs"] == len(summary["ranking"])
    assert summary["assumptions"]["settings.detour_factor"] == {"value": 1.3, "origin": "scenario"}
    assert summary["assumptions"]["settings.max_pressure_gradient_pa_per_m"]["origin"] == "default"
    assert all(summary["infeasible"].values())
    assert all(unit["note"] for unit in summary["units"]["sources"].values())
    acid = summary["units"]["sources"]["boliden_acid_heat"]
    assert acid["t_c"] == 105 and acid["hx_cost_eur_per_kw"] == 15  # filled in from the preset
    assert acid["annual_mwh"] == pytest.approx(15020 * 0.95 * 8760 / 1000)
    town = summary["units"]["sinks"]["town_district_heating"]
    assert town["annual_mwh"] == pytest.approx(360_000, rel=1e-6) and town["peak_kw"] > 360_000 / 8.76


def _scenario(tmp_path, change) -> str:
    data = yaml.safe_load(KIP_MATCHES.read_text(encoding="utf-8"))
    here = KIP_MATCHES.parent
    data["outdoor_temperature"]["csv"] = str((here / data["outdoor_temperature"]["csv"]).resolve())
    data["plants_csv"] = str((here / data["plants_csv"]).resolve())
    change(data)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


BAD = {
    "unknown key": (
        lambda d: d["settings"].update(detour=1.2),
        "unknown key 'settings.detour'; did you mean 'settings.detour_factor'?",
    ),
    "return above supply": (lambda d: d["sinks"][0].update(t_return_c=95), "'sinks[0]' t_return_c must be below t_c"),
    "detour below 1": (lambda d: d["settings"].update(detour_factor=0.5), "settings.detour_factor"),
    "no location": (lambda d: d["sources"][0].pop("plant"), "'sources[0]' give either plant"),
    "unknown plant": (lambda d: d["sinks"][1].update(plant="Nowhere Oy"), "sinks[keliber_lioh_refinery].plant"),
    "plant without coordinates": (
        lambda d: d["sinks"][1].update(plant="Yara Suomi potassium sulphate + feed phosphate plants"),
        "has no coordinates",
    ),
    "unknown preset": (lambda d: d["sources"][0].update(preset="volcano"), "preset 'volcano' unknown"),
    "eleven months": (
        lambda d: d["sources"][2].update(availability=[0.9] * 11),
        "'sources[2]' availability as a list needs 12",
    ),
    "missing temperature file": (lambda d: d["outdoor_temperature"].update(csv="nowhere.csv"), "nowhere.csv"),
    "not a number": (lambda d: d["settings"].update(detour_factor=float("nan")), "settings.detour_factor"),
    "a number in quotes": (lambda d: d["settings"].update(discount_rate="0.05"), "settings.discount_rate"),
    "lon and lat swapped": (
        lambda d: d["sinks"][0].update(lon=d["sinks"][0]["lat"], lat=d["sinks"][0]["lon"]),
        "sinks[town_district_heating] at lon 63.845, lat 23.09 lies 5,426 km from the other units",
    ),
    "a site of another town": (
        lambda d: d["sinks"][0].update(lon=24.94, lat=60.17),  # Helsinki, 410 km away: not swapped
        "sinks[town_district_heating] at lon 24.94, lat 60.17 lies",
    ),
    "shortest route above the longest": (
        lambda d: d["settings"].update(min_route_length_m=20_000, max_route_length_m=10_000),
        "min_route_length_m (20000 m) is above max_route_length_m (10000 m)",
    ),
}


def test_a_key_given_twice_in_a_matching_scenario_is_refused_with_its_lines(tmp_path):
    path = _scenario(tmp_path, lambda d: None)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "name: a second name\n", encoding="utf-8")
    result = run_cli("matches", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "name" in result.output and "line" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_matching_scenario_exits_2_naming_the_key(tmp_path, case):
    change, message = BAD[case]
    out = tmp_path / "out"
    result = run_cli("matches", _scenario(tmp_path, change), "--out", out)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------------------------ candidate routes ---
def _corridor() -> gpd.GeoDataFrame:
    """A U-shaped corridor under the near source and the plant: 480 m down, 1000 m across open ground, 480 m up."""
    from shapely.geometry import LineString

    from heatmap.network import links

    xy = [(0, -20), (0, -500), (1000, -500), (1000, -20)]
    lines = [LineString([(E0 + a[0], N0 + a[1]), (E0 + b[0], N0 + b[1])]) for a, b in zip(xy[:-1], xy[1:], strict=True)]
    drawn = gpd.GeoDataFrame(
        {"name": "", "highway": "", "surface": ["pipe_rack", "open_terrain", "pipe_rack"], "cost_factor": [1, 0.6, 1]},
        geometry=lines,
        crs=CRS,
    )
    return links.combine(None, [drawn], snap_m=1.0)


def test_routes_on_candidate_links():
    sources, sinks, config = hand_case()
    t = rank_matches(sources, sinks, config, routes=_corridor()).set_index(["source_id", "sink_id"], drop=False)
    r = t.loc[("near_hot", "plant")]
    # 20 m service + 480 + 1000 + 480 + 20 m service; weight 20 + 480 + 0.6 · 1000 + 480 + 20 = 1600 m
    assert r.route_length_m == pytest.approx(2000.0)
    assert r.route_cost_factor == pytest.approx(1600 / 2000)
    cost_per_m = pd.read_csv(settings.data_dir / "pipes_en253.csv", comment="#").set_index("dn").cost_eur_per_m[65]
    assert r.pipe_capex_eur == pytest.approx(cost_per_m * 1600)
    assert r.feasible
    cold = t.loc[("cold", "plant")]
    assert cold.route_length_m == pytest.approx(220 + 480 + 1000 + 480 + 20)
    # units with no segment within max_connection_m have no route
    for pair in [("far_hot", "plant"), ("near_hot", "town"), ("cold", "town")]:
        assert not t.loc[pair].feasible and "no route on the candidate links" in t.loc[pair].reason
        # and no price: a pipe of 0 € made such a pair cheaper than any feasible one
        assert np.isnan([t.loc[pair].pipe_capex_eur, t.loc[pair].eur_per_mwh]).all()
    # the map line follows the path: from the source, down the corridor, to the sink
    line = t.geometry[("near_hot", "plant")]
    assert line.length == pytest.approx(2000.0)
    ends = {line.coords[0], line.coords[-1]}
    assert ends == {(E0, N0), (E0 + 1000, N0)}


def test_routes_joining_no_unit_are_warned_of_and_price_no_pair(caplog):
    from shapely import affinity

    sources, sinks, config = hand_case()
    far = _corridor()
    far.geometry = far.geometry.apply(lambda g: affinity.translate(g, xoff=400_000))  # drawn 400 km off
    far.attrs["where"] = "links.gpkg"
    with caplog.at_level("WARNING", logger="heatmap"):
        t = rank_matches(sources, sinks, config, routes=far)
    assert not t.feasible.any() and t.eur_per_mwh.isna().all()
    assert any(r.getMessage().startswith("links.gpkg: no source–sink pair is joined") for r in caplog.records)


def test_the_command_prints_the_best_pairs_only():
    from heatmap.energy.matching import MAX_PRINTED_PAIRS, format_matches

    sources, sinks, config = hand_case()
    t = rank_matches(sources, sinks, config)
    many = pd.concat([t] * (MAX_PRINTED_PAIRS // len(t) + 2), ignore_index=True)
    text = format_matches(many)
    assert len(text.splitlines()) == MAX_PRINTED_PAIRS + 2  # the header, the pairs, the word on the rest
    assert text.endswith(f"… and {len(many) - MAX_PRINTED_PAIRS:,d} more pairs (all in matches.csv)")


def test_cli_routes_on_lines_drawn_in_qgis(tmp_path):
    """A star of drawn lines from every KIP unit to the park centre: every pair routes through the centre."""
    from shapely.geometry import LineString

    from heatmap.energy.matching import matching_scenario_from_file, scenario_units

    sources, sinks, _, _ = scenario_units(matching_scenario_from_file(KIP_MATCHES))
    hub = Point(sources.geometry.iloc[2].x + 150, sources.geometry.iloc[2].y + 150)  # beside the park centroid
    points = list(dict.fromkeys((p.x, p.y) for p in [*sources.geometry, *sinks.geometry]))
    star = gpd.GeoDataFrame(geometry=[LineString([xy, (hub.x, hub.y)]) for xy in points], crs=sources.crs)
    star.to_crs("EPSG:4326").to_file(tmp_path / "links.gpkg", layer="drawn")
    path = _scenario(tmp_path, lambda d: d.update(candidate_links={"path": "links.gpkg", "layer": "drawn"}))
    out = tmp_path / "out"
    result = run_cli("matches", path, "--out", out)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "matches.csv").set_index(["source_id", "sink_id"])
    r = table.loc[("boliden_acid_heat", "town_district_heating")]
    via_hub = sources.geometry.iloc[0].distance(hub) + sinks.geometry.iloc[0].distance(hub)
    assert r.route_length_m == pytest.approx(via_hub, rel=1e-3)
    assert r.route_cost_factor == pytest.approx(0.6, abs=1e-3)  # open terrain (drawn lines) + metre-long service ends
    layer = gpd.read_file(out / "matches.gpkg", layer="matches").set_index(["source_id", "sink_id"])
    assert layer.geometry[("boliden_acid_heat", "town_district_heating")].length == pytest.approx(via_hub, rel=1e-3)
    # The chosen pairs are planned on the same star: every route passes the hub, so the acid heat and the
    # electrolyser's heat pump feed one network, both at the town's 90 °C + 2 K (the pump at a 32 K lift).
    plan = json.loads((out / "summary.json").read_text(encoding="utf-8"))["plan"]
    assert plan["sinks_connected"] == 3 and plan["status"] == "ok", plan["failed_checks"]
    supply = {s["source_id"]: s for s in plan["sources"]}
    assert supply["boliden_acid_heat"]["planned_t_supply_c"] == supply["electrolyser_heat"]["planned_t_supply_c"] == 92
    assert supply["electrolyser_heat"]["planned_cop"] == pytest.approx(0.5 * (92 + 273.15) / 32)
    # the shared spokes are laid once: the planned route is shorter than the pairs' paths added up
    assert plan["route_length_m"] < plan["screening"]["route_length_m"]


# ---------------------------------------------------------------------------------------- COP ceiling ---
def test_cop_ceiling_binds_at_a_small_lift_only():
    from heatmap.energy.excess_heat import cop

    # by hand: 10 K lift to 70 °C: 0.5 · 343.15 / 10 = 17.16 → the ceiling; 50 K lift to 80 °C: 0.5 · 353.15 / 50
    assert float(cop(70.0, 60.0, eta=0.5, max_cop=np.inf)) == pytest.approx(17.1575)
    assert float(cop(70.0, 60.0, eta=0.5, max_cop=6.5)) == 6.5
    assert float(cop(80.0, 30.0, eta=0.5, max_cop=6.5)) == pytest.approx(3.5315)
    assert np.isinf(cop(60.0, 70.0, eta=0.5, max_cop=6.5))  # no lift: no heat pump runs
    from heatmap._errors import ScenarioError

    with pytest.raises(ScenarioError, match="max_cop must exceed 1"):
        cop(80.0, 30.0, eta=0.5, max_cop=1.0)


def test_matching_and_concept_heat_pumps_carry_the_ceiling():
    from heatmap.energy.energy_scenario import MAX_COP, HeatPump

    assert HeatPumpRule().max_cop == HeatPump(capacity_kw=1).max_cop == MAX_COP == 6.5
    assert "Arpagaus" in HeatPumpRule.model_fields["max_cop"].description
    assert "estimate" in HeatPumpRule.model_fields["max_cop"].description
    sources, sinks, config = hand_case()
    sources.loc[sources.id == "cold", "t_c"] = 70.0  # a 10 K lift to the sinks' 80 °C
    t = rank_matches(sources, sinks, config).set_index(["source_id", "sink_id"])
    r = t.loc[("cold", "plant")]
    assert r.kind == "heat_pump" and r.cop == 6.5  # the Carnot rule would give 0.5 · 353.15 / 10 = 17.7
    assert r.electricity_mwh_per_a == pytest.approx(r.matched_mwh_per_a / 6.5)
    lifted = rank_matches(
        sources, sinks, config.model_copy(update={"heat_pump": config.heat_pump.model_copy(update={"max_cop": 50})})
    ).set_index(["source_id", "sink_id"])
    assert lifted.loc[("cold", "plant"), "cop"] == pytest.approx(0.5 * 353.15 / 10)


# ------------------------------------------------------------------------------------- chosen pairs ---
def _units_and_table(scn):
    from heatmap.energy.matching import scenario_routes, scenario_units

    sources, sinks, src_kw, snk_kw = scenario_units(scn)
    table = rank_matches(
        sources, sinks, scn.settings, source_profiles_kw=src_kw, sink_profiles_kw=snk_kw, routes=scenario_routes(scn)
    )
    return sources, sinks, src_kw, snk_kw, table


@pytest.fixture(scope="module")
def kip_planned():
    from heatmap.energy.match_plan import plan_matches
    from heatmap.energy.matching import matching_scenario_from_file

    scn = matching_scenario_from_file(KIP_MATCHES)
    sources, sinks, src_kw, snk_kw, table = _units_and_table(scn)
    return plan_matches(scn, table, sources, sinks, src_kw, snk_kw, planner=plan_from_scenario), table


def test_kip_chosen_pairs_plan_with_every_check(kip_planned):
    from plan_invariants import assert_drawn_equals_simulated

    planned, table = kip_planned
    plan = planned.plan
    assert plan.ok, plan.violations
    assert plan.consumers.connected.all() and len(plan.consumers) == 3
    assert_drawn_equals_simulated(plan)
    # energy balance: the sinks take exactly the matched energy of their pairs; the simulation closes
    assert plan.figures["heat_delivered_mwh_per_a"] == pytest.approx(planned.pairs.matched_mwh_per_a.sum())
    assert plan.energy_balance["residual_relative"] <= 1e-3
    eb = plan.energy_balance
    assert eb["q_sources_kw"] == pytest.approx(eb["q_consumers_kw"] + eb["q_losses_kw"], rel=1e-3)
    s = plan.sources.set_index("source_id")
    assert (s.q_supplied_kw <= s.capacity_kw).all()
    # each source supplies its sinks' supply temperature + the margin: acid heat direct, electrolyser lifted
    assert s.t_supply_c["boliden_acid_heat"] == 92 and s.t_supply_c["electrolyser_heat"] == 72
    p = planned.pairs.set_index("sink_id")
    assert p.planned_cop["umicore_process_heat"] == 6.5  # 60 → 72 °C: the Carnot rule would give 14.4
    assert s.capacity_kw["electrolyser_heat"] == pytest.approx(5000 / (1 - 1 / 6.5))
    # the acid heat is fully used: the town is planned at its design load less the loss allowance
    assert p.design_kw["town_district_heating"] == pytest.approx(15020)
    assert p.planned_peak_kw["town_district_heating"] == pytest.approx(15020 * 0.97)


def test_kip_planned_route_is_the_straight_pair_lines(kip_planned):
    """Without candidate links the pipes follow the pairs' straight lines; the table's route adds the detour."""
    planned, table = kip_planned
    pairs = planned.pairs
    assert planned.plan.figures["route_length_m"] == pytest.approx(pairs.straight_m.sum(), abs=5.0)  # + service ends
    assert planned.plan.figures["route_length_m"] <= pairs.route_length_m.sum()
    assert pairs.route_length_m.to_numpy() == pytest.approx(1.3 * pairs.straight_m.to_numpy())
    # the pipes lie on the pair lines
    supply = planned.plan.pipes[planned.plan.pipes.circuit == "supply"]
    lines = planned.pair_lines.geometry.union_all()
    assert supply.geometry.distance(lines).max() < 1.0


def test_kip_matches_writes_the_planned_network(kip_run):
    result, out = kip_run
    assert result.exit_code == 0, result.output
    assert "Planned network of the 3 chosen pairs: ok, every check holds" in result.output
    assert "match table:" in result.output
    for name in ("plan.gpkg", "map.html", "summary.json", "pair_lines.gpkg"):
        assert (out / "network" / name).is_file()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    plan = summary["plan"]
    assert plan["status"] == "ok" and plan["failed_checks"] == [] and plan["sinks_connected"] == 3
    assert plan["pairs"] == [
        ["boliden_acid_heat", "town_district_heating"],
        ["electrolyser_heat", "umicore_process_heat"],
        ["electrolyser_heat", "port_buildings"],
    ]
    table = pd.read_csv(out / "matches.csv").set_index(["source_id", "sink_id"])
    chosen = table.loc[[tuple(p) for p in plan["pairs"]]]
    assert plan["screening"]["pipe_capex_eur"] == pytest.approx(chosen.pipe_capex_eur.sum())
    assert plan["screening"]["route_length_m"] == pytest.approx(chosen.route_length_m.sum())
    assert plan["pipe_capex_eur"] > 0 and plan["heat_losses_mwh_per_a"] > 0 and plan["pumping_power_kw"] > 0
    network = json.loads((out / "network" / "summary.json").read_text(encoding="utf-8"))
    assert network["status"] == "ok" and network["figures"]["capex_eur"] == pytest.approx(plan["pipe_capex_eur"])
    links_path = next(a for a in network["assumptions"] if a["key"] == "links.path")
    assert links_path["value"].startswith("network/pair_lines.gpkg")
    assert summary["assumptions"]["plan.supply_margin_k"] == {"value": 2, "origin": "scenario"}
    layers = set(gpd.list_layers(out / "network" / "plan.gpkg").name)
    assert {"pipes", "sources", "consumers"} <= layers


def _with_pairs(*pairs):
    return lambda d: d["plan"].update(pairs=[list(p) for p in pairs])


BAD_PAIRS = {
    "unknown source": (
        _with_pairs(("boliden_acid", "town_district_heating")),
        "'plan' pairs[0] [boliden_acid, town_district_heating]: no source has the id 'boliden_acid'",
    ),
    "unknown sink": (_with_pairs(("boliden_acid_heat", "town")), "no sink has the id 'town'"),
    "pair twice": (
        _with_pairs(("electrolyser_heat", "port_buildings"), ("electrolyser_heat", "port_buildings")),
        "pairs[1] [electrolyser_heat, port_buildings]: the pair is chosen twice (also pairs[0])",
    ),
    "sink twice": (
        _with_pairs(("electrolyser_heat", "port_buildings"), ("boliden_acid_heat", "port_buildings")),
        "sink port_buildings is already chosen with source electrolyser_heat",
    ),
    "infeasible pair": (
        _with_pairs(("boliden_acid_heat", "town_district_heating"), ("electrolyser_heat", "keliber_lioh_refinery")),
        "plan.pairs[1] [electrolyser_heat, keliber_lioh_refinery]: the pair is infeasible: lift 100 K beyond",
    ),
    "source beyond its capacity": (
        _with_pairs(("boliden_acid_heat", "town_district_heating"), ("boliden_acid_heat", "umicore_process_heat")),
        "source boliden_acid_heat is chosen for town_district_heating, umicore_process_heat, which together take",
    ),
    "supply beyond the network model": (
        _with_pairs(("boliden_roaster_steam", "keliber_lioh_refinery")),
        "sink supply 160 °C + margin 2 K is beyond the network model's 150 °C",
    ),
    "return beyond the network model": (
        lambda d: (_with_pairs(("boliden_roaster_steam", "keliber_lioh_refinery"))(d), d["sinks"][1].update(t_c=140)),
        "sink return 120 °C is beyond the network model's 100 °C",
    ),
    "one id for a source and a sink": (
        lambda d: (
            d["sinks"][3].update(id="boliden_acid_heat"),
            _with_pairs(("boliden_acid_heat", "town_district_heating"), ("electrolyser_heat", "boliden_acid_heat"))(d),
        ),
        "boliden_acid_heat names both a chosen source and a chosen sink",
    ),
    "not a pair": (
        _with_pairs(("boliden_acid_heat", "port_buildings", "x")),
        "'plan.pairs[0]' must be a pair [source id, sink id]",
    ),
}


@pytest.mark.parametrize("case", BAD_PAIRS, ids=list(BAD_PAIRS))
def test_bad_chosen_pairs_exit_2_naming_the_pair(tmp_path, case):
    change, message = BAD_PAIRS[case]
    out = tmp_path / "out"
    result = run_cli("matches", _scenario(tmp_path, change), "--out", out)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "line " in result.output  # the file line of the pair (or of plan:)
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_hand_made_match_scenario_plans_a_direct_and_a_heat_pump_pair(tmp_path):
    """Two sources, two sinks in EPSG:3067 near Kokkola; hot → A directly, cold → B through a heat pump."""
    from plan_invariants import assert_drawn_equals_simulated
    from pyproj import Transformer

    from heatmap.energy.match_plan import plan_matches
    from heatmap.energy.matching import matching_scenario_from_file

    to_lonlat = Transformer.from_crs(3067, 4326, always_xy=True).transform

    def at(x, y):
        lon, lat = to_lonlat(E0 + x, N0 + y)
        return {"lon": lon, "lat": lat}

    data = {
        "name": "hand-made park",
        "settings": {"heat_pump": {"eta": 0.5, "max_lift_k": 60}, "hx_cost_eur_per_kw": 10},
        "sources": [
            {"id": "hot", **at(0, 0), "t_c": 110, "peak_kw": 2000, "availability": 1.0, "note": "test"},
            {"id": "cold", **at(0, 600), "t_c": 40, "peak_kw": 1000, "availability": 1.0, "note": "test"},
        ],
        "sinks": [
            {"id": "A", **at(800, 0), "t_c": 80, "t_return_c": 50, "annual_mwh": 4000, "shape": "flat"},
            {"id": "B", **at(0, 1000), "t_c": 70, "t_return_c": 40, "annual_mwh": 2000, "shape": "flat"},
        ],
        "plan": {"pairs": [["hot", "A"], ["cold", "B"]]},
    }
    path = tmp_path / "hand.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    scn = matching_scenario_from_file(path)
    sources, sinks, src_kw, snk_kw, table = _units_and_table(scn)
    planned = plan_matches(scn, table, sources, sinks, src_kw, snk_kw, planner=plan_from_scenario)
    plan = planned.plan
    assert plan.ok, plan.violations
    assert_drawn_equals_simulated(plan)
    p = planned.pairs.set_index("sink_id")
    assert list(p.kind) == ["direct", "heat_pump"]
    # by hand: the heat pump lifts 40 → 70 + 2 °C: COP = 0.5 · 345.15 / 32 = 5.393 (below the 6.5 ceiling)
    assert p.planned_cop["B"] == pytest.approx(0.5 * 345.15 / 32)
    s = plan.sources.set_index("source_id")
    assert s.t_supply_c["hot"] == 82 and s.t_supply_c["cold"] == 72
    assert s.capacity_kw["cold"] == pytest.approx(1000 / (1 - 1 / (0.5 * 345.15 / 32)))
    assert s.capacity_kw["hot"] == 2000
    # flat sinks below their sources' heat: each is planned at its own peak and its whole annual heat
    assert p.planned_peak_kw.to_numpy() == pytest.approx([4000 / 8.76, 2000 / 8.76])
    assert plan.figures["heat_delivered_mwh_per_a"] == pytest.approx(6000)
    c = plan.consumers.set_index("consumer_id")
    assert c.min_supply_c["A"] == 80 and (c.t_supply_c >= c.min_supply_c).all()
    # one network return temperature, the highest of the chosen sinks' (50 °C)
    assert plan.scenario.temperatures.return_c == 50
    # each planned route is its straight pair line (800 m and 400 m), shorter than the table's (× 1.3)
    assert plan.figures["route_length_m"] == pytest.approx(1200, abs=3)
    assert list(p.route_length_m) == pytest.approx([1040, 520])
    # the CLI writes the same network beside the ranking
    out = tmp_path / "out"
    result = run_cli("matches", path, "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "network" / "plan.gpkg").is_file()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["plan"]["route_length_m"] == pytest.approx(plan.figures["route_length_m"])


def test_kip_default_pairs_are_the_best_per_sink_within_each_sources_heat(kip_planned):
    """The bundled choice follows the rule its YAML states: down the ranking, the first pair of each sink whose
    source still has the heat (checked as :func:`chosen_pairs` checks it) and that the network model can carry:
    the standalone matching scenario's and the bundled study's."""
    from heatmap.energy.matching import matching_scenario_from_file

    for path in (KIP_MATCHES, KIP_STUDY_MATCHES):
        scn = matching_scenario_from_file(path)
        assert _picked_by_the_rule(scn) == [tuple(p) for p in scn.plan.pairs], path


def _picked_by_the_rule(scn) -> list[tuple[str, str]]:
    from heatmap._errors import ScenarioError
    from heatmap.energy.match_plan import chosen_pairs

    sources, sinks, src_kw, snk_kw, table = _units_and_table(scn)
    picked: list[tuple[str, str]] = []
    for r in table[table.feasible].itertuples():
        if r.sink_id in {k for _, k in picked}:
            continue
        trial = scn.model_copy(
            update={"plan": scn.plan.model_copy(update={"pairs": [*picked, (r.source_id, r.sink_id)]})}
        )
        try:
            chosen_pairs(trial, table, sources, sinks, src_kw, snk_kw)
        except ScenarioError:
            continue
        picked.append((r.source_id, r.sink_id))
    return picked


def test_sources_on_one_site_feed_one_network_at_one_temperature(tmp_path):
    """Boliden's acid heat and roaster steam stand on one site: their lines join there, so they feed one network,
    and both supply the hottest of its sinks' temperatures (the town's 90 °C + 2 K), not each their own sink's."""
    out = tmp_path / "out"
    pairs = (("boliden_acid_heat", "town_district_heating"), ("boliden_roaster_steam", "umicore_process_heat"))
    result = run_cli("matches", _scenario(tmp_path, _with_pairs(*pairs)), "--out", out)
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "summary.json").read_text(encoding="utf-8"))["plan"]
    assert plan["status"] == "ok", plan["failed_checks"]
    assert {s["source_id"]: s["planned_t_supply_c"] for s in plan["sources"]} == {
        "boliden_acid_heat": 92,
        "boliden_roaster_steam": 92,
    }
    consumers = gpd.read_file(out / "network" / "plan.gpkg", layer="consumers").set_index("consumer_id")
    assert (consumers.t_supply_c >= consumers.min_supply_c).all()


def test_a_sink_profile_of_nothing_is_refused_not_blamed_on_the_source():
    sources, sinks, config = hand_case()
    sink = sinks.id.iloc[0]
    with pytest.raises(InputDataError, match=f"sink {sink}: its hourly profile is 0 in every hour"):
        rank_matches(sources, sinks, config, sink_profiles_kw={sink: np.zeros(HOURS)})


def test_a_source_and_a_sink_of_one_id_are_refused_when_read(tmp_path):
    """They were ranked as 'acid → acid' and refused only when a pair was planned."""

    def same_id(d):
        d.pop("plan", None)  # its pairs name the sink by its own id
        d["sinks"][0]["id"] = d["sources"][0]["id"]

    path = _scenario(tmp_path, same_id)
    result = run_cli("matches", path, "--out", tmp_path / "out")
    assert result.returncode == 2 and "name both a source and a sink; give each unit its own id" in result.output

"""The plan's hours on one supply curve, and operating-hours outputs that can be checked cell by cell."""

import csv
import json

import numpy as np
import pandapipes as pp
import pandas as pd
import pyogrio
import pytest
from test_operation import KIP, kip_data

from heatmap._errors import ScenarioError
from heatmap.demand.climate import year_index
from heatmap.energy import trade
from heatmap.io.outputs import OPERATION_FILES, write_plan
from heatmap.plan import plan_from_scenario
from heatmap.scenario import scenario_from_dict

T_RETURN_C = 45.0
CURVE = {"max_c": 95.0, "min_c": 75.0, "outdoor_at_max_c": -25.0, "outdoor_at_min_c": 10.0}
WATER = pp.create_empty_network(fluid="water", add_stdtypes=False).fluid  # pandapipes' water, as simulated
KIP_CURVE = {"max_c": 115.0, "min_c": 90.0, "outdoor_at_max_c": -29.0, "outdoor_at_min_c": 10.0}


def curve_by_hand(t_out_c: float, c: dict) -> float:
    """The heating curve written out: max at and below its cold point, min at and above its warm point, linear."""
    if t_out_c <= c["outdoor_at_max_c"]:
        return c["max_c"]
    if t_out_c >= c["outdoor_at_min_c"]:
        return c["min_c"]
    x = (t_out_c - c["outdoor_at_max_c"]) / (c["outdoor_at_min_c"] - c["outdoor_at_max_c"])
    return c["max_c"] + x * (c["min_c"] - c["max_c"])


def small_study(tmp_path, **temperatures) -> dict:
    """Two sources (excess heat at 80 °C, below the curve's 95 °C; a 100 °C boiler) and four consumers, one network."""
    index = year_index(2023)
    hours = np.arange(len(index))
    t_out = 2.0 - 20.0 * np.cos(2 * np.pi * hours / len(index)) + 4.0 * np.sin(2 * np.pi * hours / 24)  # −22 … +26
    pd.DataFrame({"time": index.strftime("%Y-%m-%dT%H:%M"), "t_out_c": t_out.round(2)}).to_csv(
        tmp_path / "t_out.csv", index=False
    )
    lon, lat = 23.05, 63.86
    return {
        "name": "two sources on one curve",
        "streets": {"source": "none", "max_service_length_m": 50},
        "links": {"site_to_site": True, "site_link_max_length_m": 3000, "site_link_neighbours": 3},
        "sources": {
            "inline": [
                {"id": "boiler", "lon": lon, "lat": lat, "capacity_kw": 4000, "t_supply_c": 100, "role": "backup"},
                {
                    "id": "excess",
                    "lon": lon + 0.012,
                    "lat": lat + 0.002,
                    "capacity_kw": 1200,
                    "t_supply_c": 80,
                    "role": "excess_heat",
                    "company": "Factory",
                },
            ]
        },
        "consumers": {
            "inline": [
                {"id": "a", "lon": lon + 0.004, "lat": lat - 0.003, "annual_demand_mwh": 3600, "peak_load_kw": 1350},
                {"id": "b", "lon": lon + 0.010, "lat": lat - 0.004, "annual_demand_mwh": 2700, "peak_load_kw": 1050},
                {"id": "c", "lon": lon - 0.006, "lat": lat - 0.002, "annual_demand_mwh": 1950, "peak_load_kw": 750},
                {
                    "id": "d",
                    "lon": lon + 0.002,
                    "lat": lat + 0.005,
                    "annual_demand_mwh": 1350,
                    "peak_load_kw": 520,
                    "min_supply_c": 60,
                },
            ]
        },
        "temperatures": {
            "supply_c": 100,
            "return_c": T_RETURN_C,
            "ground_c": 6,
            "min_consumer_supply_c": 65,
            **temperatures,
        },
        "limits": {"max_velocity_m_per_s": 2.0},
        "network": {"simultaneity": "none", "supply_areas": "shared"},
        "operation": {
            "year": 2023,
            "outdoor_temperature": {"csv": str(tmp_path / "t_out.csv"), "column": "t_out_c"},
            "heat_price_eur_per_mwh": 50,
            "feed_in_price_eur_per_mwh": 20,
        },
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_sources")
    plan = plan_from_scenario(scenario_from_dict(small_study(folder, supply_curve=CURVE), base_dir=folder))
    outdoor = pd.read_csv(folder / "t_out.csv", index_col="time", parse_dates=True).t_out_c
    return plan, outdoor


def test_each_hour_runs_at_the_curve_and_a_colder_source_preheats(study):
    """Hand check of the split in every hour: the excess heat's own heat lifts the water to 80 °C, a booster on."""
    plan, outdoor = study
    results = [plan.operation.design, *plan.operation.hours]
    assert plan.ok, plan.violations
    assert results[0].hour.t_supply_target_c == CURVE["max_c"]  # the design case: the coldest
    boosted_hours = 0
    for h in results:
        if h.hour.time is not None:
            assert h.hour.t_out_c == pytest.approx(outdoor[h.hour.time])
            assert h.hour.t_supply_target_c == pytest.approx(curve_by_hand(h.hour.t_out_c, CURVE), abs=1e-9)
        target = h.hour.t_supply_target_c
        f = h.sources.set_index("source_id")
        assert (f.t_supply_c == target).all()  # every source's water at the target, above it or not
        assert f.q_kw.to_numpy() == pytest.approx((f.q_own_kw + f.q_boost_kw).to_numpy(), rel=1e-12)
        for sid, t_own in (("excess", 80.0), ("boiler", 100.0)):
            if sid not in f.index:
                continue
            r = f.loc[sid]
            cp = WATER.get_heat_capacity(273.15 + (target + T_RETURN_C) / 2)
            if t_own < target:  # preheats: q_boost = ṁ c_p (target − t_own), q_own / q = (t_own − t_r)/(target − t_r)
                boosted_hours += sid == "excess"
                assert r.q_boost_kw == pytest.approx(r.mdot_kg_per_s * cp * (target - t_own) / 1000, rel=2e-2)
                assert r.q_own_kw / r.q_kw == pytest.approx((t_own - T_RETURN_C) / (target - T_RETURN_C), rel=1e-9)
            else:  # at or above the target: all its heat its own
                assert r.q_boost_kw == 0 and r.q_own_kw == r.q_kw
        # The energy balance: the sources' heat with the boosters' = consumers + losses.
        q_in = f.q_kw.sum()
        q_out = h.simulation.consumers.q_kw.sum() + h.simulation.pipes.q_loss_kw.sum()
        assert abs(q_in - q_out) / q_in <= plan.scenario.limits.energy_balance_tolerance
        # The capacity limits the source's own heat only.
        assert (f.q_own_kw <= pd.Series({"excess": 1200.0, "boiler": 4000.0}).reindex(f.index) * (1 + 1e-6)).all()
        # Every consumer's margin is its supply temperature less its own minimum.
        c = h.consumers.set_index("consumer_id")
        assert c.min_supply_c.to_dict() == {k: (60.0 if k == "d" else 65.0) for k in c.index}
        assert c.margin_k.to_numpy() == pytest.approx((c.t_supply_c - c.min_supply_c).to_numpy(), abs=1e-12)
        assert (c.t_supply_c < target).all() and (c.margin_k >= 0).all()  # cooled on the way, warm enough
    assert boosted_hours >= 2  # the design case and the winter hour at least
    summer = next(h for h in plan.operation.hours if "summer" in h.hour.name)
    assert summer.hour.t_supply_target_c == CURVE["min_c"]
    assert summer.sources.q_boost_kw.sum() == 0  # 75 °C: the excess heat's 80 °C is enough


def test_the_dispatch_limits_the_own_heat_and_counts_the_booster(study):
    """In the highest-load hour the excess heat runs at its full own capacity; its delivered heat is that over its
    own share, and the backup gives the rest."""
    plan, _ = study
    highest = next(h for h in plan.operation.hours if "highest" in h.hour.name)
    target = highest.hour.t_supply_target_c
    assert target > 80
    share = (80 - T_RETURN_C) / (target - T_RETURN_C)
    assert highest.hour.source_kw["excess"] == pytest.approx(1200 / share, rel=1e-9)  # the dispatch: heat delivered
    f = highest.sources.set_index("source_id")
    assert f.q_own_kw["excess"] == pytest.approx(1200, rel=1e-2)  # as simulated (the return arrives at ~45 °C)
    assert "boiler" in highest.hour.source_kw.index
    assert plan.operation.totals["boosted_by_sources_mwh"] > 0


def test_merit_order_with_a_capacity_factor_by_hand():
    index = pd.date_range("2023-01-01", periods=2, freq="h")
    loads = trade.SiteLoads(
        index,
        np.zeros(2),
        pd.Series(dtype=float),
        pd.Series(dtype=float),
        pd.DataFrame({"a": [20.0, 20.0]}, index=index),
    )
    sources = pd.DataFrame(
        {"source_id": ["x", "b"], "tree": [0, 0], "capacity_kw": [10.0, 50.0], "role": ["excess_heat", "backup"]}
    )
    factor = pd.DataFrame({"x": [1.0, 1.5], "b": [1.0, 1.0]}, index=index)
    year = trade.source_hours(
        loads, pd.Series({"a": 0}), sources, pd.Series({0: 0.0}), min_source_share=0.2, capacity_factor=factor
    )
    # hour 0: x gives its 10 kW, b the other 10; hour 1: x delivers 10 × 1.5 = 15 kW (its booster 5), b 5.
    assert year.source_kw.x.tolist() == pytest.approx([10.0, 15.0])
    assert year.source_kw.b.tolist() == pytest.approx([10.0, 5.0])


@pytest.mark.parametrize(
    ("curve", "drop_operation", "message"),
    [
        (CURVE, True, "'temperatures.supply_curve' needs an 'operation' section"),
        ({**CURVE, "max_c": 70.0}, False, "'temperatures.supply_curve.max_c' (70.0 °C) must be at least"),
        (
            {**CURVE, "outdoor_at_max_c": 12.0},
            False,
            "'temperatures.supply_curve.outdoor_at_max_c' (12.0 °C) must be below",
        ),
        ({**CURVE, "min_c": 45.0}, False, "'temperatures.supply_curve.min_c' (45.0 °C) must be at least 5 K above"),
        ({**CURVE, "max_c": 400.0}, False, "'temperatures.supply_curve.max_c' is 400.0; it must be at most 150"),
        ({k: v for k, v in CURVE.items() if k != "min_c"}, False, "'temperatures.supply_curve.min_c' is required"),
    ],
)
def test_a_bad_supply_curve_is_named(tmp_path, curve, drop_operation, message):
    data = small_study(tmp_path, supply_curve=curve)
    if drop_operation:
        data.pop("operation")
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scenario_from_dict(data, base_dir=tmp_path)


def test_the_curve_is_in_the_assumptions(tmp_path):
    rows = {
        r["key"]: r
        for r in scenario_from_dict(small_study(tmp_path, supply_curve=CURVE), base_dir=tmp_path).assumptions()
    }
    assert rows["temperatures.supply_curve.max_c"]["value"] == 95.0
    assert rows["temperatures.supply_curve.max_c"]["source"] == "scenario"
    assert "°C" in rows["temperatures.supply_curve.outdoor_at_min_c"]["doc"]
    plain = {r["key"]: r for r in scenario_from_dict(small_study(tmp_path), base_dir=tmp_path).assumptions()}
    assert plain["temperatures.supply_curve"]["value"] is None


# --- the bundled KIP network with a curve, written out ---------------------------------------------------------


@pytest.fixture(scope="module")
def kip_curve(tmp_path_factory):
    data = kip_data({"temperatures.supply_curve": KIP_CURVE})
    plan = plan_from_scenario(scenario_from_dict(data, base_dir=KIP.parent, path=KIP))
    out = tmp_path_factory.mktemp("kip_curve") / "out"
    write_plan(plan, out)
    return plan, out


def _rows(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_kip_with_a_curve_holds_and_the_acid_heat_is_boosted_in_winter(kip_curve):
    plan, _ = kip_curve
    assert plan.ok, plan.violations
    t_out = pd.read_csv(KIP.parent / KIP_DATA_T, comment="#", index_col="time", parse_dates=True).t_out_c
    for h in plan.operation.hours:
        assert h.hour.t_supply_target_c == pytest.approx(curve_by_hand(t_out[h.hour.time], KIP_CURVE), abs=1e-9)
        eb = h.simulation.energy_balance
        assert eb["residual_relative"] <= 1e-3
    highest = next(h for h in plan.operation.hours if "highest" in h.hour.name)
    acid = highest.sources.set_index("source_id").loc["boliden_acid_heat"]
    target = highest.hour.t_supply_target_c
    assert target > 100
    t_r = plan.scenario.temperatures.return_c
    assert acid.q_own_kw / acid.q_kw == pytest.approx((100 - t_r) / (target - t_r), rel=1e-9)
    assert acid.q_own_kw <= 15020
    summer = next(h for h in plan.operation.hours if "summer" in h.hour.name)
    assert summer.hour.t_supply_target_c == 90
    assert summer.sources.set_index("source_id").q_boost_kw.sum() == 0
    # The prosumer at 95 °C above the summer's 90 °C feeds in at its own temperature.
    feeders = summer.sources.set_index("source_id")
    assert feeders.t_supply_c["kip_h2_electrolyser"] == 95


KIP_DATA_T = kip_data({})["operation"]["outdoor_temperature"]["csv"]


def test_operating_files_hold_one_value_a_cell(kip_curve):
    plan, out = kip_curve
    for name in OPERATION_FILES:
        rows = _rows(out / name)
        assert rows, name
        for row in rows:
            for key, cell in row.items():
                assert "{" not in cell and "[" not in cell, (name, key, cell)
    hours = _rows(out / "operating_hours.csv")
    assert [r["hour"] for r in hours] == [h.hour.name for h in (plan.operation.design, *plan.operation.hours)]
    assert hours[0]["t_supply_target_c"] == "115" and hours[0]["time"] == "" and hours[0]["t_out_c"] == ""
    assert all(r["check_velocity"] == "holds" for r in hours)
    consumers = _rows(out / "operating_consumers.csv")
    assert len(consumers) == sum(len(h.consumers) for h in (plan.operation.design, *plan.operation.hours))
    for r in consumers:
        assert float(r["margin_k"]) == pytest.approx(float(r["t_supply_c"]) - float(r["min_supply_c"]), abs=1e-3)
    sources = _rows(out / "operating_sources.csv")
    for r in sources:
        assert float(r["q_kw"]) == pytest.approx(float(r["q_own_kw"]) + float(r["q_boost_kw"]), rel=1e-5)
        assert (r["pump_lift_bar"] != "") == (r["holds_pressure"] == "True")
    # The critical consumer named is the one with the least Δp of that hour.
    for row in hours:
        mine = [r for r in consumers if r["hour"] == row["hour"]]
        least = min(mine, key=lambda r: float(r["dp_bar"]))
        assert row["critical_consumer_id"] == least["consumer_id"]


def test_the_worst_pipes_and_reversed_pipes_match_the_layer(kip_curve):
    plan, out = kip_curve
    layer = pyogrio.read_dataframe(out / "plan.gpkg", layer="pipes_by_hour")
    results = [plan.operation.design, *plan.operation.hours]
    assert len(layer) == len(plan.pipes) * len(results)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    hours = {r["hour"]: r for r in _rows(out / "operating_hours.csv")}
    pipes = pyogrio.read_dataframe(out / "plan.gpkg", layer="pipes").set_index("pipe_id")
    for h, in_summary in zip(results, summary["operation"]["hours"], strict=True):
        mine = layer[layer.hour == h.hour.name].set_index("pipe_id")
        assert len(mine) == len(pipes)
        row = hours[h.hour.name]
        fastest = int(row["max_velocity_pipe_id"])
        assert mine.v_m_per_s[fastest] == pytest.approx(mine.v_m_per_s.max(), rel=1e-12)
        assert float(row["max_velocity_m_per_s"]) == pytest.approx(mine.v_m_per_s.max(), rel=1e-5)
        steepest = int(row["max_pa_per_m_pipe_id"])
        assert mine.pa_per_m[steepest] == pytest.approx(mine.pa_per_m.max(), rel=1e-12)
        reversed_ids = sorted(mine.index[mine.reversed.astype(bool)])
        assert int(row["pipes_reversed"]) == len(reversed_ids)
        assert in_summary["reversed_pipe_ids"] == reversed_ids
        # Each row's geometry is its pipe's.
        assert mine.geometry.geom_equals_exact(pipes.geometry.reindex(mine.index), tolerance=1e-6).all()
    selling = next(h for h in plan.operation.hours if "prosumers sell" in h.hour.name)
    electrolyser = plan.pipes[(plan.pipes.consumer_id == "kip_h2_electrolyser") & (plan.pipes.circuit == "supply")]
    assert set(electrolyser.pipe_id) <= set(selling.reversed_pipes())  # its service pipe flows back when it sells
    # Pumping, losses and load of the CSV are the simulation's.
    for h in results:
        row = hours[h.hour.name]
        assert float(row["load_kw"]) == pytest.approx(h.simulation.consumers.q_kw.sum(), rel=1e-5)
        assert float(row["losses_kw"]) == pytest.approx(h.simulation.pipes.q_loss_kw.sum(), rel=1e-5)


def test_without_a_curve_the_target_column_is_empty_and_sources_supply_their_own(tmp_path):
    data = kip_data({"temperatures.supply_curve": None})
    plan = plan_from_scenario(scenario_from_dict(data, base_dir=KIP.parent, path=KIP))
    write_plan(plan, tmp_path / "out")
    hours = _rows(tmp_path / "out" / "operating_hours.csv")
    assert all(r["t_supply_target_c"] == "" for r in hours)
    assert all(r["boost_kw"] == "0" for r in hours)
    for h in plan.operation.hours:
        f = h.sources.set_index("source_id")
        if "boliden_acid_heat" in f.index:
            assert f.t_supply_c["boliden_acid_heat"] == 100

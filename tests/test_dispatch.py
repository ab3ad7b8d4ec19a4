"""The hourly dispatch LP, the heat-pump COP and the sources as the dispatch sees them."""

import doctest

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap._errors import InputDataError, ScenarioError
from heatmap.demand import climate
from heatmap.demand.climate import network_losses_kw, supply_temperature_c, temperature_year
from heatmap.energy import dispatch, excess_heat
from heatmap.energy.dispatch import Producer, Storage, dispatch_figures, solve_dispatch
from heatmap.energy.excess_heat import cop, source_producer


def flat(value, hours):
    return np.full(hours, float(value))


@pytest.mark.parametrize("module", [climate, dispatch, excess_heat])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_cop_against_hand_calculation():
    # 30 → 80 °C at η = 0.5: 0.5 × 353.15 K / 50 K = 3.5315
    assert float(cop(80.0, 30.0, eta=0.5)) == pytest.approx(3.5315, abs=1e-4)
    assert float(cop(80.0, 30.0, eta=0.5)) == pytest.approx(3.5, abs=0.05)
    # no lift needed: infinite COP; η outside (0, 1] is refused
    assert np.isinf(cop(60.0, 70.0, eta=0.5))
    with pytest.raises(ScenarioError, match="η"):
        cop(80.0, 30.0, eta=1.5)


def test_every_highs_is_silent_and_on_one_thread():
    # HiGHS fixes its threads at its first run in a process: a later run asking for another number fails ('Not Set'),
    # so the dispatch, the design MILP and the region searches all take their HiGHS from new_highs, one thread each
    from heatmap._highs import new_highs

    h = new_highs()
    assert h.getOptionValue("threads")[1] == 1  # (status, value)
    assert h.getOptionValue("output_flag")[1] is False


def test_storage_arbitrage_optimum_known_by_hand():
    # cheap heat only in hour 0; demand 50 kW in each of 3 hours; a lossless 100 kWh tank
    cheap = Producer("cheap", "excess_heat", 200, np.array([200.0, 0, 0]), flat(10, 3), excess_share=1.0)
    dear = Producer("dear", "boiler", 100, flat(100, 3), flat(50, 3))
    tank = Storage("tank", capacity_kwh=100, charge_kw=100, discharge_kw=100)
    r = solve_dispatch(flat(50, 3), 0.0, [cheap, dear], [tank])
    # hand optimum: store 100 kWh in hour 0 (tank full), discharge 50 in hours 1 and 2, boiler never runs
    assert r.heat_kw["cheap"].tolist() == pytest.approx([150, 0, 0], abs=1e-6)
    assert r.heat_kw["dear"].tolist() == pytest.approx([0, 0, 0], abs=1e-6)
    assert r.objective_eur == pytest.approx(150 * 10 / 1000, rel=1e-9)
    # a 60 kWh tank: 60 stored, the boiler covers the 40 kWh the tank cannot
    tank = Storage("tank", capacity_kwh=60, charge_kw=100, discharge_kw=100)
    r = solve_dispatch(flat(50, 3), 0.0, [cheap, dear], [tank])
    assert r.heat_kw["dear"].sum() == pytest.approx(40, abs=1e-6)
    assert r.objective_eur == pytest.approx((110 * 10 + 40 * 50) / 1000, rel=1e-9)


def test_storage_losses_optimum_known_by_hand():
    # 10 %/h standing loss and 90 % charge efficiency: to deliver 50 kWh in hours 1 and 2 the tank must
    # hold e1 = 50/0.9 after hour 1's loss … by hand: charge = ((50/0.9 + 50)/0.9)/0.9 = 130.316 kWh
    cheap = Producer("cheap", "excess_heat", 300, np.array([300.0, 0, 0]), flat(10, 3))
    dear = Producer("dear", "boiler", 100, flat(100, 3), flat(50, 3))
    tank = Storage("tank", 1000, 1000, 1000, standing_loss_per_h=0.1, charge_efficiency=0.9)
    r = solve_dispatch(flat(50, 3), 0.0, [cheap, dear], [tank])
    charge = ((50 / 0.9 + 50) / 0.9) / 0.9
    assert r.charge_kw["tank"].iloc[0] == pytest.approx(charge, rel=1e-6)
    assert r.objective_eur == pytest.approx((50 + charge) * 10 / 1000, rel=1e-6)
    assert r.heat_kw["dear"].sum() == pytest.approx(0, abs=1e-6)


@pytest.fixture(scope="module")
def random_year():
    rng = np.random.default_rng(7)
    T = 500
    demand = 50_000 + 30_000 * np.sin(np.arange(T) / 24 * 2 * np.pi) + rng.uniform(0, 10_000, T)
    price = rng.uniform(-5, 150, T)
    producers = [
        Producer("acid", "excess_heat", 20_000, 20_000 * rng.uniform(0.5, 1, T), flat(10, T), excess_share=1.0),
        Producer("eboiler", "electric_boiler", 30_000, flat(30_000, T), price / 0.99, 1 / 0.99),
        Producer("peat", "boiler", 60_000, flat(60_000, T), flat(70, T), fuel_mwh_per_mwh=1 / 0.88, fuel="peat"),
        Producer("oil", "boiler", 60_000, flat(60_000, T), flat(110, T), fuel_mwh_per_mwh=1 / 0.9, fuel="oil"),
    ]
    storages = [
        Storage("tank", 400_000, 40_000, 40_000, standing_loss_per_h=0.001, charge_efficiency=0.98),
        Storage("small", 50_000, 10_000, 20_000, discharge_efficiency=0.95),
    ]
    losses = 3_000 + rng.uniform(0, 500, T)
    return solve_dispatch(demand, losses, producers, storages), demand, losses


def test_dispatch_balances_every_hour(random_year):
    r, demand, losses = random_year
    residual = r.balance_residual_kw()
    assert np.abs(residual).max() <= 1e-6 * (demand + losses).max()
    assert r.unserved_kw.max() == pytest.approx(0, abs=1e-6)
    supply = r.heat_kw.sum(axis=1) + r.discharge_kw.sum(axis=1) - r.charge_kw.sum(axis=1)
    np.testing.assert_allclose(supply, demand + losses, rtol=1e-6)


def test_storage_stays_within_bounds_and_follows_its_balance(random_year):
    r, _, _ = random_year
    tol = 1e-6
    for s in r.storages:
        e, c, d = r.content_kwh[s.name].to_numpy(), r.charge_kw[s.name].to_numpy(), r.discharge_kw[s.name].to_numpy()
        assert e.min() >= -tol and e.max() <= s.capacity_kwh * (1 + tol)
        assert c.min() >= -tol and c.max() <= s.charge_kw * (1 + tol)
        assert d.min() >= -tol and d.max() <= s.discharge_kw * (1 + tol)
        previous = np.roll(e, 1)  # cyclic: the last hour's content carries into the first
        expected = (1 - s.standing_loss_per_h) * previous + s.charge_efficiency * c - d / s.discharge_efficiency
        np.testing.assert_allclose(e, expected, atol=1e-5 * s.capacity_kwh)
    for p in r.producers:
        q = r.heat_kw[p.name].to_numpy()
        assert q.min() >= -tol and (q <= p.max_kw * (1 + tol) + tol).all()


def test_dispatch_follows_merit_order(random_year):
    r, _, _ = random_year
    # the oil boiler (dearest) only runs in hours when the peat boiler is at its limit
    oil_on = r.heat_kw["oil"] > 1e-3
    assert (r.heat_kw["peat"][oil_on] >= 60_000 - 1e-3).all()
    # cheap excess heat is used whenever it is available and not limited by the demand
    assert r.heat_kw["acid"].sum() >= 0.99 * sum(p.max_kw.sum() for p in r.producers if p.name == "acid")


def test_figures_count_energy_fuel_and_cycles(random_year):
    r, demand, losses = random_year
    f = dispatch_figures(r)
    assert f["demand_mwh"] == pytest.approx(demand.sum() / 1000)
    units = {u["unit"]: u for u in f["units"]}
    assert f["fuel_mwh_by_fuel"]["peat"] == pytest.approx(units["peat"]["heat_mwh"] / 0.88)
    assert units["eboiler"]["electricity_mwh"] == pytest.approx(units["eboiler"]["heat_mwh"] / 0.99)
    assert f["excess_heat_mwh"] == pytest.approx(units["acid"]["heat_mwh"])
    tank = {s["storage"]: s for s in f["storages"]}["tank"]
    assert tank["cycles"] == pytest.approx(tank["discharged_mwh"] / 400)
    assert tank["lost_mwh"] >= 0
    total = sum(u["heat_mwh"] for u in f["units"]) - sum(s["lost_mwh"] for s in f["storages"])
    assert total == pytest.approx(f["demand_mwh"] + f["losses_mwh"], rel=1e-6)


def test_too_small_a_concept_shows_unserved_heat():
    small = Producer("small", "boiler", 40, flat(40, 4), flat(50, 4))
    r = solve_dispatch(flat(50, 4), 5.0, [small], [])
    assert r.unserved_kw.tolist() == pytest.approx([15, 15, 15, 15])
    assert dispatch_figures(r)["unserved_mwh"] == pytest.approx(0.06)


def test_bad_units_are_refused():
    p = Producer("a", "boiler", 10, flat(10, 3), flat(1, 3))
    with pytest.raises(ScenarioError, match="unique"):
        solve_dispatch(flat(1, 3), 0, [p, p])
    with pytest.raises(ScenarioError, match="standing_loss"):
        solve_dispatch(flat(1, 3), 0, [p], [Storage("s", 10, 1, 1, standing_loss_per_h=1.5)])
    with pytest.raises(ScenarioError, match="demand"):
        solve_dispatch(np.array([1.0, np.nan, 1.0]), 0, [p])


def test_source_direct_when_hot_enough_else_through_its_heat_pump():
    supply = np.array([70.0, 90.0, 110.0])
    price = np.array([40.0, 40.0, 40.0])
    need = np.full(3, 1e6)
    direct, c = source_producer(
        "acid", capacity_kw=1000, temperature_c=100, availability=np.ones(3), heat_price_eur_per_mwh=10,
        supply_c=supply, return_c=50, need_kw=need, approach_k=5, electricity_price_eur_per_mwh=price,
    )  # fmt: skip
    # 100 °C cannot feed a 110 °C supply directly (5 K approach): it preheats, far below its cap here
    assert direct.max_kw.tolist() == [1000, 1000, 1000]
    assert direct.preheat_hours.tolist() == [False, False, True]
    cold, c = source_producer(
        "cooling", capacity_kw=1000, temperature_c=30, availability=np.full(3, 0.5), heat_price_eur_per_mwh=5,
        supply_c=supply, return_c=50, need_kw=need, approach_k=5, electricity_price_eur_per_mwh=price,
        heat_pump={"capacity_kw": 5000, "eta": 0.5},
    )  # fmt: skip
    expected_cop = 0.5 * (supply + 273.15) / (supply - 30)
    np.testing.assert_allclose(c, expected_cop)
    # the pump is limited by the source heat: output × (1 − 1/COP) = 500 kW available
    np.testing.assert_allclose(cold.max_kw * (1 - 1 / expected_cop), 500)
    np.testing.assert_allclose(cold.cost_eur_per_mwh, 5 * (1 - 1 / expected_cop) + 40 / expected_cop)
    np.testing.assert_allclose(cold.electricity_mwh_per_mwh, 1 / expected_cop)
    np.testing.assert_allclose(cold.excess_share, 1 - 1 / expected_cop)
    assert not cold.preheat_hours.any()
    # the pump's own size limits it too
    small, _ = source_producer(
        "cooling", capacity_kw=1000, temperature_c=30, availability=np.ones(3), heat_price_eur_per_mwh=5,
        supply_c=supply, return_c=50, need_kw=need, approach_k=5, electricity_price_eur_per_mwh=price,
        heat_pump={"capacity_kw": 300, "eta": 0.5},
    )  # fmt: skip
    assert small.max_kw.tolist() == [300, 300, 300]


def test_preheating_source_capped_by_the_flow_it_heats():
    """By hand: 100 °C less a 5 K approach heats the return (50 °C) to 95 °C; the supply wants 110 °C."""
    supply = np.array([70.0, 90.0, 110.0, 110.0])
    need = np.array([2000.0, 2000.0, 2000.0, 800.0])
    common = dict(
        capacity_kw=1000, availability=np.ones(4), heat_price_eur_per_mwh=10, supply_c=supply, return_c=50,
        need_kw=need, approach_k=5, electricity_price_eur_per_mwh=np.full(4, 40.0),
    )  # fmt: skip
    p, c = source_producer("acid", temperature_c=100, **common)
    f = (95 - 50) / (110 - 50)  # 0.75 of the lift from return to supply
    # direct, direct, capacity (0.75 × 2000 > 1000), the flow's share (0.75 × 800 = 600)
    np.testing.assert_allclose(p.max_kw, [1000, 1000, 1000, f * 800])
    assert p.preheat_hours.tolist() == [False, False, True, True]
    assert np.isinf(c).all() and np.all(p.excess_share == 1)
    # no hotter than the return temperature + approach: it cannot feed at all
    off, c = source_producer("cooling", temperature_c=55, **common)
    assert off.max_kw.tolist() == [0, 0, 0, 0] and np.isnan(c).all() and not off.preheat_hours.any()
    # others take 300 kW in the second hour, a 900 kW connection caps every hour
    shared, _ = source_producer("acid", temperature_c=100, taken_kw=np.array([0, 300, 0, 0]), connection_kw=900,
                                **common)  # fmt: skip
    np.testing.assert_allclose(shared.max_kw, [900, 700, 900, 600])
    # in the dispatch the preheating source gives its cap, a boiler in series lifts the rest
    boiler = Producer("boiler", "boiler", 5000, np.full(4, 5000.0), np.full(4, 50.0), fuel_mwh_per_mwh=1.1)
    r = solve_dispatch(need, 0.0, [p, boiler])
    np.testing.assert_allclose(r.heat_kw.acid, [1000, 1000, 1000, 600], atol=1e-6)
    np.testing.assert_allclose(r.heat_kw.boiler, [1000, 1000, 1000, 200], atol=1e-6)
    assert np.abs(r.balance_residual_kw()).max() < 1e-6
    acid = next(u for u in dispatch_figures(r)["units"] if u["unit"] == "acid")
    assert acid["preheat_mwh"] == pytest.approx(1.6) and acid["preheat_hours_h"] == 2


def test_availability_constant_monthly_and_hourly(tmp_path):
    index = climate.year_index(2023)
    assert len(index) == 8760 and len(climate.year_index(2024)) == 8760
    assert excess_heat.availability_hourly(0.9, index, base_dir=tmp_path).mean() == pytest.approx(0.9)
    monthly = [0.0] * 6 + [1.0] * 6
    a = excess_heat.availability_hourly(monthly, index, base_dir=tmp_path)
    assert a[index.month <= 6].max() == 0 and a[index.month > 6].min() == 1
    csv = tmp_path / "avail.csv"
    times = index.strftime("%Y-%m-%dT%H:%M")
    pd.DataFrame({"time": times, "factor": np.linspace(0, 1, 8760)}).to_csv(csv, index=False)
    a = excess_heat.availability_hourly({"csv": "avail.csv", "column": "factor"}, index, base_dir=tmp_path)
    assert a[-1] == 1.0


def _hourly_csv(path, times, values, comments=("# a comment", "# another", "")):
    body = "\n".join(f"{t},{v}" for t, v in zip(times, values, strict=True))
    path.write_text("\n".join(comments) + "\ntime,factor\n" + body + "\n")


def test_hourly_csv_errors_name_file_lines_and_wrong_times(tmp_path):
    index = climate.year_index(2023)
    times = list(index.strftime("%Y-%m-%dT%H:%M"))
    values = np.linspace(0, 1, 8760).round(4).astype(object)
    values[9] = 1.5  # row 10: after 3 comment/blank lines and the header, it is line 14 of the file
    csv = tmp_path / "avail.csv"
    _hourly_csv(csv, times, values)
    with pytest.raises(InputDataError, match=r"avail.csv: factor outside 0…1 on line 14$"):
        excess_heat.availability_hourly({"csv": "avail.csv", "column": "factor"}, index, base_dir=tmp_path)
    values[9] = 0.5
    # a series of another year with the right row count
    _hourly_csv(csv, climate.year_index(2022).strftime("%Y-%m-%dT%H:%M"), values)
    with pytest.raises(InputDataError, match=r"line 5 has time 2022-01-01 00:00 where 2023-01-01 00:00 is expected"):
        excess_heat.availability_hourly({"csv": "avail.csv", "column": "factor"}, index, base_dir=tmp_path)
    # two hours swapped
    swapped = times.copy()
    swapped[100], swapped[101] = swapped[101], swapped[100]
    _hourly_csv(csv, swapped, values)
    with pytest.raises(InputDataError, match=r"line 105 has time 2023-01-05 05:00 .*\(2 rows differ\)"):
        excess_heat.availability_hourly({"csv": "avail.csv", "column": "factor"}, index, base_dir=tmp_path)
    # one hour missing
    _hourly_csv(csv, times[:-1], values[:-1])
    with pytest.raises(InputDataError, match=r"8759 rows; give one row per hour from 2023-01-01 00:00"):
        excess_heat.availability_hourly({"csv": "avail.csv", "column": "factor"}, index, base_dir=tmp_path)
    # Finnish local time with its offsets (summer time +03:00) is read in standard time
    finnish = index.tz_localize("Etc/GMT-2").tz_convert("Europe/Helsinki").strftime("%Y-%m-%dT%H:%M%z")
    _hourly_csv(csv, [f"{t[:-2]}:{t[-2:]}" for t in finnish], values)
    a = excess_heat.availability_hourly({"csv": "avail.csv", "column": "factor"}, index, base_dir=tmp_path)
    assert a[9] == 0.5 and len(a) == 8760


def test_heat_pump_hours_logged(caplog):
    supply = np.array([70.0, 70.0, 90.0, 90.0, 90.0, 90.0, 90.0])  # 2 direct hours, 5 needing the pump
    with caplog.at_level("INFO", logger="heatmap.energy.excess_heat"):
        excess_heat.source_producer(
            "s", capacity_kw=100, temperature_c=80, availability=np.ones(7), heat_price_eur_per_mwh=0,
            supply_c=supply, return_c=45, need_kw=np.full(7, 1000.0), approach_k=5,
            electricity_price_eur_per_mwh=np.full(7, 50.0), heat_pump={"capacity_kw": 100, "eta": 0.5},
        )  # fmt: skip
    assert "direct in 2 h, heat pump in 5 h" in caplog.text


def test_temperature_year_keeps_the_monthly_normals_and_is_reproducible():
    normals = [-8.0, -8.4, -4.6, 1.4, 7.6, 13.0, 16.3, 14.5, 9.6, 3.8, -1.2, -5.0]
    kw = {"daily_std_k": [5] * 12, "diurnal_range_k": [6] * 12}
    t = temperature_year(normals, **kw)
    assert len(t) == 8760
    np.testing.assert_allclose(t.groupby(t.index.month).mean(), normals, atol=0.01)
    pd.testing.assert_series_equal(t, temperature_year(normals, **kw))
    assert not t.equals(temperature_year(normals, **kw, seed=5))


def test_price_year_has_its_mean_and_floor():
    p = climate.price_year(mean_eur_per_mwh=60, floor_eur_per_mwh=0)
    assert p.mean() == pytest.approx(60, abs=0.01) and p.min() >= 0


def test_heating_curve_and_losses():
    s = supply_temperature_c(
        np.array([-40.0, -29, 10, 20]), max_c=115, min_c=75, outdoor_at_max_c=-29, outdoor_at_min_c=10
    )
    assert s.tolist() == [115, 115, 75, 75]
    # UA 55 kW/K, mean of 115/45 = 80 °C, ground 5 °C: 75 K × 55 kW/K
    assert network_losses_kw(np.array([115.0]), return_c=45, ground_c=5, heat_loss_coefficient_w_per_k=55_000)[
        0
    ] == pytest.approx(4125)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 24),
    st.lists(st.tuples(st.floats(0, 100), st.floats(0, 200)), min_size=1, max_size=4),
    st.integers(0, 2**31 - 1),
)
def test_without_storage_the_lp_is_the_hourly_merit_order(hours, units, seed):
    # without storage the hours decouple: the optimum is to fill each hour from the cheapest unit up
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0, 300, hours)
    producers = [
        Producer(f"u{i}", "boiler", cap, cap * rng.uniform(0, 1, hours), flat(cost, hours))
        for i, (cost, cap) in enumerate(units)
    ]
    r = solve_dispatch(demand, 0.0, producers, unserved_penalty_eur_per_mwh=1000)
    expected = 0.0
    for t in range(hours):
        left = demand[t]
        for p in sorted(producers, key=lambda p: p.cost_eur_per_mwh[t]):
            q = min(left, p.max_kw[t])
            expected += q * p.cost_eur_per_mwh[t] / 1000
            left -= q
        expected += left * 1000 / 1000
    assert r.objective_eur == pytest.approx(expected, rel=1e-7, abs=1e-7)
    assert np.abs(r.balance_residual_kw()).max() <= 1e-6 * max(demand.max(), 1)


def test_preheated_flow_must_be_lifted_by_another_unit():
    """By hand: a preheater gives half the lift (f 0.5) of a 100 kW need. Alone, it heats nothing usable (the flow is
    never brought to the supply temperature: all 100 kW unserved); beside a 30 kW boiler it preheats the 60 kW that
    boiler can finish (q ≤ f · served: 30 kW, 40 kW unserved); two preheaters heat at most the flow served together."""
    supply = np.full(3, 110.0)
    common = dict(
        capacity_kw=1000, availability=np.ones(3), heat_price_eur_per_mwh=10, supply_c=supply, return_c=50,
        need_kw=np.full(3, 100.0), approach_k=0, electricity_price_eur_per_mwh=np.full(3, 40.0),
    )  # fmt: skip
    half, _ = source_producer("half", temperature_c=80, **common)  # (80 − 50) / (110 − 50)
    np.testing.assert_allclose(half.preheat_share, 0.5)
    alone = solve_dispatch(np.full(3, 100.0), 0.0, [half])
    np.testing.assert_allclose(alone.heat_kw.half, 0.0, atol=1e-6)
    np.testing.assert_allclose(alone.unserved_kw, 100.0, atol=1e-6)
    boiler = Producer("boiler", "boiler", 30, np.full(3, 30.0), np.full(3, 50.0), fuel_mwh_per_mwh=1.1)
    r = solve_dispatch(np.full(3, 100.0), 0.0, [half, boiler])
    np.testing.assert_allclose(r.heat_kw.half, 30.0, atol=1e-6)
    np.testing.assert_allclose(r.unserved_kw, 40.0, atol=1e-6)
    assert np.abs(r.balance_residual_kw()).max() < 1e-6
    # a second preheater of f 0.25 and a 100 kW boiler: q_half / 0.5 + q_quarter / 0.25 ≤ 100, the rest boiled
    quarter, _ = source_producer("quarter", temperature_c=65, **common)
    big = Producer("boiler", "boiler", 100, np.full(3, 100.0), np.full(3, 50.0), fuel_mwh_per_mwh=1.1)
    r = solve_dispatch(np.full(3, 100.0), 0.0, [half, quarter, big])
    np.testing.assert_allclose(r.heat_kw.half / 0.5 + r.heat_kw.quarter / 0.25, 100.0, atol=1e-6)
    np.testing.assert_allclose(r.heat_kw.half, 50.0, atol=1e-6)  # the cheaper lift per kW of flow first
    np.testing.assert_allclose(r.unserved_kw, 0.0, atol=1e-6)

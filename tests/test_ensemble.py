"""heatmap ensemble: the sampling, the vary file's checks, the tables, and Dask runs equal to the serial run."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli

from heatmap import settings
from heatmap.ensemble_job import (
    FIGURES,
    Ensemble,
    Variant,
    VariantResult,
    VaryFile,
    apply_values,
    ensemble_tables,
    make_variants,
    read_vary,
    run_ensemble,
    run_variant,
    sample_unit,
    study_value,
)

KIP = settings.data_dir / "scenarios" / "kip.yaml"
KIP_VARY = settings.data_dir / "scenarios" / "kip_vary.yaml"


@pytest.fixture(scope="module")
def kip():
    from heatmap.study import read_study

    return read_study(KIP)


def _vary(tmp_path, name="vary.yaml", **data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


# ----------------------------------------------------------------------------------------------- sampling ---


@pytest.mark.parametrize("samples", [1, 7, 40])
def test_latin_hypercube_is_stratified_and_fixed_by_its_seed(samples):
    u = sample_unit(3, samples, seed=11)
    assert u.shape == (samples, 3) and ((u >= 0) & (u < 1)).all()
    for column in u.T:  # one point in each of the equal strata of every input
        assert sorted(np.floor(column * samples).astype(int)) == list(range(samples))
    np.testing.assert_array_equal(u, sample_unit(3, samples, seed=11))
    if samples > 1:
        assert not np.array_equal(u, sample_unit(3, samples, seed=12))


def test_the_vary_file_of_the_kip_study_gives_the_same_variants_for_its_seed(kip):
    vary = read_vary(KIP_VARY, kip)
    a, b = make_variants(vary, kip), make_variants(read_vary(KIP_VARY, kip), kip)
    assert len(a) == vary.samples == 100 and a == b
    for inp in vary.inputs:
        x = np.array([v.values[inp.path] for v in a])
        lo, hi = inp.range if inp.range is not None else [f * study_value(kip, inp.path) for f in inp.scale]
        assert lo <= x.min() and x.max() <= hi
        strata = np.floor((x - lo) / (hi - lo) * len(a)).astype(int)  # stratified in the input's own units too
        assert sorted(strata) == list(range(len(a)))


def test_values_are_drawn_equally_often_and_whole_numbers_rounded(kip):
    vary = VaryFile.model_validate(
        {
            "method": "lhs",
            "samples": 12,
            "seed": 3,
            "inputs": [
                {"path": "economics.discount_rate", "values": [0.03, 0.05, 0.08]},
                {"path": "economics.lifetime_a", "range": [20, 30]},
            ],
        }  # fmt: skip
    )
    variants = make_variants(vary, kip)
    rates = [v.values["economics.discount_rate"] for v in variants]
    assert {r: rates.count(r) for r in rates} == {0.03: 4, 0.05: 4, 0.08: 4}
    lifetimes = {apply_values(kip, v.values).economics.lifetime_a for v in variants}
    assert all(isinstance(x, int) and 20 <= x <= 30 for x in lifetimes) and len(lifetimes) > 3


def test_a_grid_takes_every_combination_and_scale_multiplies_the_study_value(kip):
    vary = VaryFile.model_validate(
        {
            "method": "grid",
            "inputs": [
                {"path": "consumers.town_dh.annual_demand_mwh", "scale": [0.8, 1.2], "levels": 3},
                {"path": "economics.co2_price_eur_per_t", "values": [40, 80]},
            ],
        }  # fmt: skip
    )
    variants = make_variants(vary, kip)
    pairs = [(v.values["consumers.town_dh.annual_demand_mwh"], v.values["economics.co2_price_eur_per_t"])
             for v in variants]  # fmt: skip
    assert pairs == [(d, c) for d in (288000.0, 360000.0, 432000.0) for c in (40.0, 80.0)]
    assert [v.id for v in variants] == list(range(1, 7))
    varied = apply_values(kip, variants[-1].values)
    assert varied.unit("town_dh").annual_demand_mwh == pytest.approx(432000.0)
    assert varied.economics.co2_price_eur_per_t == 80.0 and kip.economics.co2_price_eur_per_t == 80.0
    assert kip.unit("town_dh").annual_demand_mwh == 360000.0  # the study itself is unchanged


def test_a_variant_without_values_is_the_study_itself(kip):
    from heatmap.study import energy_data, match_data, plan_data

    same = apply_values(kip, {})
    assert (plan_data(same), energy_data(same), match_data(same)) == (plan_data(kip), energy_data(kip), match_data(kip))
    priced = apply_values(
        kip, {"economics.fuel_prices_eur_per_mwh.wood_chips": 31.0, "year.electricity_price_scale": 2}
    )
    assert energy_data(priced)["fuel_prices_eur_per_mwh"] == {"wood_chips": 31.0}
    assert energy_data(priced)["electricity"]["price_scale"] == 2.0
    assert plan_data(priced)["economics"]["electricity_price_eur_per_mwh"] == pytest.approx(
        2 * plan_data(kip)["economics"]["electricity_price_eur_per_mwh"]
    )


def test_the_price_levers_reach_the_dispatch_inputs(kip):
    from heatmap._errors import ScenarioError
    from heatmap.energy.concepts import read_fuels, year_inputs
    from heatmap.study import energy_scenario

    base = year_inputs(energy_scenario(kip))
    scaled = year_inputs(energy_scenario(apply_values(kip, {"year.electricity_price_scale": 1.5})))
    np.testing.assert_allclose(scaled.price_eur_per_mwh, 1.5 * base.price_eur_per_mwh)
    np.testing.assert_array_equal(scaled.demand_kw, base.demand_kw)
    table = settings.data_dir / "fuels_fi.csv"
    fuels, priced = read_fuels(table), read_fuels(table, {"wood_chips": 31.0})
    assert priced.loc["wood_chips", "price_eur_per_mwh"] == 31.0
    pd.testing.assert_frame_equal(priced.drop(index="wood_chips"), fuels.drop(index="wood_chips"), check_dtype=False)
    with pytest.raises(ScenarioError, match="fuel 'unobtainium' not in the fuel table"):
        read_fuels(table, {"unobtainium": 1.0})


# --------------------------------------------------------------------------------------- vary file errors ---

BAD_VARY = [
    ({"inputs": [{"path": "economics.discount_rate", "range": [0.03, 0.08]}]}, "method"),
    ({"method": "lhs", "samples": 5, "inputs": [{"path": "economics.discount_rate", "range": [0.03, 0.08]}]},
     "needs samples and seed"),
    ({"method": "lhs", "samples": 5, "seed": 1, "inputs": [{"path": "economics.discount_rate", "range": [0.08, 0.03]}]},
     "low must be below high"),
    ({"method": "lhs", "samples": 5, "seed": 1, "inputs": [{"path": "economics.discount_rate", "rnage": [0, 1]}]},
     "rnage"),
    ({"method": "lhs", "samples": 5, "seed": 1, "inputs": [{"path": "economics.discount", "range": [0.03, 0.08]}]},
     "the study has no 'discount' at economics; known: discount_rate"),
    ({"method": "lhs", "samples": 5, "seed": 1, "inputs": [{"path": "sources.boliden.capacity_kw", "scale": [1, 2]}]},
     "sources has no unit 'boliden'; known: boliden_acid_heat"),
    ({"method": "lhs", "samples": 5, "seed": 1, "inputs": [{"path": "trade.operator", "values": [1, 2]}]},
     "trade.operator holds 'Kokkolan Energia', not a number"),
    ({"method": "lhs", "samples": 5, "seed": 1, "inputs": [{"path": "economics.discount_rate", "range": [0.03, 1.5]}]},
     "inputs[economics.discount_rate]: the study refuses economics.discount_rate = 1.5"),
    ({"method": "lhs", "samples": 5, "seed": 1,
      "inputs": [{"path": "sources.boliden_acid_heat.heat_price_eur_per_mwh", "scale": [0.5, 2]}]},
     "no value at sources.boliden_acid_heat.heat_price_eur_per_mwh to scale"),
    ({"method": "lhs", "samples": 5, "seed": 1,
      "inputs": [{"path": "economics.fuel_prices_eur_per_mwh.unobtainium", "range": [1, 2]}]},
     "'economics.fuel_prices_eur_per_mwh' fuel 'unobtainium' is not in the fuel table"),
    ({"method": "grid", "inputs": [{"path": "economics.discount_rate", "range": [0.03, 0.08]}]},
     "needs values or levels for every input"),
    ({"method": "grid", "inputs": [{"path": "economics.discount_rate", "values": [0.03]},
                                   {"path": "economics.discount_rate", "values": [0.05]}]}, "repeated"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), BAD_VARY, ids=[m[:30] for _, m in BAD_VARY])
def test_a_bad_vary_file_is_answered_naming_the_file_and_the_input(tmp_path, data, message):
    vary = _vary(tmp_path, **data)
    out = tmp_path / "out"
    result = run_cli("ensemble", KIP, "--vary", vary, "--out", out, "--serial", "-q")
    assert result.returncode == 2, result.output
    assert str(vary) in result.output and message in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_missing_vary_file_and_clashing_options_are_refused(tmp_path):
    result = run_cli("ensemble", KIP, "--vary", tmp_path / "none.yaml", "--out", tmp_path / "out", "-q")
    assert result.returncode == 2 and "none.yaml" in result.output and "not found" in result.output
    result = run_cli("ensemble", KIP, "--vary", KIP_VARY, "--out", tmp_path / "out", "--serial", "--workers", "2")
    assert result.returncode == 2 and "--serial" in result.output


def test_an_unreachable_scheduler_is_answered_and_nothing_written(tmp_path):
    out = tmp_path / "out"
    result = run_cli("ensemble", KIP, "--vary", KIP_VARY, "--out", out, "--scheduler", "tcp://127.0.0.1:9", "-q")
    assert result.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output and not out.exists()


# ------------------------------------------------------------------------------------------------ tables ---


def _synthetic(kip, n=30, seed=5):
    """An ensemble whose figures are known functions of its inputs (no study run)."""
    vary = VaryFile.model_validate(
        {
            "method": "lhs",
            "samples": n,
            "seed": seed,
            "inputs": [
                {"path": "economics.co2_price_eur_per_t", "name": "co2", "range": [40, 160]},
                {"path": "year.electricity_price_scale", "name": "el", "range": [0.5, 1.5]},
            ],
        }  # fmt: skip
    )
    variants = make_variants(vary, kip)
    results = []
    for v in variants:
        co2, el = v.values["economics.co2_price_eur_per_t"], v.values["year.electricity_price_scale"]
        figures = {
            "Reference": dict.fromkeys(FIGURES, 0.0) | {"total_cost_meur_per_a": 10 + 0.05 * co2},
            "A": dict.fromkeys(FIGURES, 1.0) | {"npv_meur": 0.5 * co2 - 20 * el, "total_cost_meur_per_a": 12 + 2 * el},
            "B": dict.fromkeys(FIGURES, 2.0) | {"npv_meur": 0.1 * co2, "total_cost_meur_per_a": 11.0 + 0.01 * co2},
        }
        results.append(VariantResult(v.id, figures) if v.id != 3 else VariantResult(v.id, error="boom"))
    return Ensemble(kip, vary, variants, results, 1.0, 1, "test")


def test_the_tables_hold_distribution_cheapest_sensitivity_and_failures(kip):
    ens = _synthetic(kip)
    t = ensemble_tables(ens)
    assert len(t["variants"]) == 3 * 29 and set(t["variants"].concept) == {"Reference", "A", "B"}
    assert t["failures"].to_dict(orient="records")[0]["error"] == "boom" and len(t["failures"]) == 1
    d = t["distribution"]
    ordered = d[["min", "p5", "p25", "p50", "p75", "p95", "max"]].to_numpy()
    assert (np.diff(ordered, axis=1) >= -1e-12).all() and (d.n == 29).all()
    cheap = t["cheapest"].set_index("concept")
    assert cheap.probability_cheapest.sum() == pytest.approx(1.0)
    v = t["variants"].pivot(index="variant", columns="concept", values="total_cost_meur_per_a")
    assert cheap.cheapest_variants.to_dict() == {c: int((v.idxmin(axis=1) == c).sum()) for c in ["Reference", "A", "B"]}
    s = t["sensitivity"].set_index(["concept", "figure", "input"])
    # the linear swing is the figure's change over the input's sampled range; the rank correlation its sign
    x = t["variants"][t["variants"].concept == "A"]
    assert s.loc[("A", "npv_meur", "co2"), "swing"] == pytest.approx(0.5 * (x.co2.max() - x.co2.min()))
    assert s.loc[("A", "npv_meur", "el"), "swing"] == pytest.approx(-20 * (x.el.max() - x.el.min()))
    assert s.loc[("A", "npv_meur", "el"), "r2"] == pytest.approx(1.0)
    assert s.loc[("B", "npv_meur", "co2"), "spearman_rho"] == pytest.approx(1.0)
    assert s.loc[("B", "npv_meur", "el"), "swing"] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(s.loc[("A", "lcoh_eur_per_mwh", "co2"), "spearman_rho"])  # a constant figure: no correlation
    assert ensemble_tables(_synthetic(kip))["variants"].equals(t["variants"])  # the same seed, the same table


# ----------------------------------------------------------------------------------- runs of the KIP study ---

VARIANTS = [
    Variant(1, {"year.electricity_price_scale": 0.8, "economics.co2_price_eur_per_t": 80.0}),
    Variant(2, {"year.electricity_price_scale": 1.3, "economics.co2_price_eur_per_t": 80.0}),
    Variant(3, {"year.electricity_price_scale": 0.8, "economics.co2_price_eur_per_t": 140.0}),
    # each value alone is accepted; together the return is above the lowest supply: this variant fails
    Variant(4, {"temperatures.return_c": 72.0, "temperatures.supply_curve.min_c": 70.0}),
]
VARY = VaryFile.model_validate(
    {
        "method": "grid",
        "inputs": [
            {"path": "year.electricity_price_scale", "values": [0.8, 1.3]},
            {"path": "economics.co2_price_eur_per_t", "values": [80, 140]},
            {"path": "temperatures.return_c", "values": [45, 72]},
            {"path": "temperatures.supply_curve.min_c", "values": [75, 70]},
        ],
    }  # fmt: skip
)


@pytest.fixture(scope="module")
def serial_figures(kip):
    """Each finished variant run as heatmap study runs the study with its values (one by one, in this process)."""
    from heatmap.ensemble_job import concept_figures
    from heatmap.study_job import run_study, study_parts

    out = {}
    for v in VARIANTS[:3]:
        study = apply_values(kip, v.values)
        out[v.id] = concept_figures(run_study(study, study_parts(study)).concepts, study)
    return out


def test_variants_on_a_local_dask_cluster_equal_the_serial_runs_and_a_failure_is_reported(kip, serial_figures):
    from distributed import Client, LocalCluster

    seen = []
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True, dashboard_address=None) as c,
        Client(c) as client,
    ):
        ens = run_ensemble(kip, VARY, VARIANTS, client=client, progress=lambda r: seen.append(r.id))
    assert sorted(seen) == [1, 2, 3, 4] and ens.workers == 2
    assert [r.id for r in ens.results] == [1, 2, 3, 4]
    failed = ens.results[3]
    assert failed.error is not None and "return_c" in failed.error and failed.figures == {}
    for r in ens.results[:3]:
        assert r.error is None
        assert r.figures == serial_figures[r.id]  # exactly: the same floats
    # sanity: dearer electricity never makes a concept with an electric boiler or heat pumps cheaper, and a
    # higher CO₂ price makes the reference (peat and oil boilers) dearer and the excess heat worth more
    low, high, co2 = (ens.results[k].figures for k in range(3))
    for concept in ("With an electric boiler", "With heat pumps"):
        assert high[concept]["total_cost_meur_per_a"] >= low[concept]["total_cost_meur_per_a"]
    assert (
        co2["Reference (boilers only)"]["total_cost_meur_per_a"]
        > low["Reference (boilers only)"]["total_cost_meur_per_a"]
    )
    assert co2["Excess heat only"]["npv_meur"] > low["Excess heat only"]["npv_meur"]
    t = ensemble_tables(ens)
    assert t["failures"].variant.tolist() == [4] and sorted(t["variants"].variant.unique()) == [1, 2, 3]


def test_a_network_planned_once_is_reused_only_for_an_equal_plan_scenario(kip, serial_figures):
    from heatmap import ensemble_job

    ensemble_job._PLANS.clear()
    first = run_variant(kip, VARIANTS[0])
    again = run_variant(kip, VARIANTS[2])  # only the CO₂ price differs: the same plan scenario
    assert (first.network_reused, again.network_reused) == (False, True)
    assert first.figures == serial_figures[1] and again.figures == serial_figures[3]


def test_the_command_writes_every_table_and_lists_the_failed_variant(tmp_path):
    vary = _vary(
        tmp_path,
        method="grid",
        inputs=[{"path": "temperatures.supply_curve.min_c", "name": "supply_min_c", "values": [75, 70]}],
    )  # at 70 °C the park network cannot keep its users' 70 °C supply: its plan fails its checks
    out = tmp_path / "out"
    result = run_cli("ensemble", KIP, "--vary", vary, "--out", out, "--serial")
    assert result.returncode == 0, result.output
    assert "2 variants (grid), 1 finished, 1 failed" in result.output and "variant 2 failed" in result.output
    names = {p.name for p in out.iterdir()}
    assert {"variants.csv", "distribution.csv", "cheapest.csv", "sensitivity.csv", "failures.csv", "tornado.png",
            "summary.json", "README.txt"} <= names  # fmt: skip
    failures = pd.read_csv(out / "failures.csv")
    assert failures[["variant", "supply_min_c"]].values.tolist() == [[2, 70]]
    assert "fails its checks" in failures.error[0]
    variants = pd.read_csv(out / "variants.csv")
    assert variants.variant.unique().tolist() == [1] and len(variants) == 5  # the reference and four concepts
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == 1 and summary["failed"][0]["variant"] == 2 and summary["method"] == "grid"
    readme = (out / "README.txt").read_text()
    assert "tornado.png" in readme and "(no description)" not in readme


def test_the_tornado_draws_the_swing_or_with_too_few_variants_the_rank_correlation(kip, tmp_path):
    from matplotlib.image import imread

    from heatmap.ensemble_job import plot_tornado

    sensitivity = ensemble_tables(_synthetic(kip))["sensitivity"]
    for name, table in (("swing.png", sensitivity), ("rho.png", sensitivity.assign(swing=float("nan")))):
        plot_tornado(table, tmp_path / name)
        image = imread(tmp_path / name)
        assert image.shape[0] > 300 and image[..., :3].std() > 0.05  # drawn: two concepts' bars, not one text

"""pandapipes results checked against hand calculations and conservation."""

import ast
import math
import re

import numpy as np
import pandapipes as pp
import pandas as pd
import pytest
from scipy.optimize import brentq

from heatmap.network import hydraulics
from heatmap.network.hydraulics import KELVIN

# One DN100 series-2 pipe pair, 400 m, feeding one 500 kW consumer.
D_INNER_M, D_OUTER_M, U_W_PER_MK = 0.1071, 0.1143, 0.2478
LENGTH_M, ROUGHNESS_MM = 400.0, 0.045
Q_W, T_SUPPLY_C, T_RETURN_C, T_GROUND_C = 500e3, 85.0, 45.0, 8.0


def colebrook_hand(re: float, rel_rough: float) -> float:
    """Solve 1/sqrt(l) = -2 log10(e/3.7 + 2.51/(Re sqrt(l))) with a bracketing root finder."""
    return brentq(
        lambda lam: 1 / math.sqrt(lam) + 2 * math.log10(rel_rough / 3.7 + 2.51 / (re * math.sqrt(lam))),
        1e-4,
        1.0,
        xtol=1e-14,
    )


def single_pipe_design(q_w=Q_W, u=U_W_PER_MK):
    pipes = pd.DataFrame(
        {
            "edge_id": [7],
            "from_node": [0],
            "to_node": [1],
            "length_m": [LENGTH_M],
            "dn": [100],
            "d_inner_m": [D_INNER_M],
            "d_outer_m": [D_OUTER_M],
            "u_w_per_mk": [u],
            "tree": [0],
        }
    )
    consumers = pd.DataFrame({"consumer_id": ["C1"], "node": [1], "q_design_w": [q_w], "tree": [0]})
    sources = pd.DataFrame(
        {
            "source_id": ["S1"],
            "node": [0],
            "t_supply_c": [T_SUPPLY_C],
            "capacity_kw": [1e3],
            "tree": [0],
        }
    )
    node_xy = pd.DataFrame({"x": [0.0, LENGTH_M], "y": [0.0, 0.0]}, index=[0, 1])
    design = hydraulics.NetworkDesign(pipes, consumers, sources, node_xy)
    cond = hydraulics.Conditions(T_RETURN_C, T_GROUND_C, 2.0, ROUGHNESS_MM, {0: 1.0})
    return design, cond


@pytest.fixture(scope="module")
def single_pipe():
    design, cond = single_pipe_design()
    return hydraulics.simulate(design, cond)


def test_single_pipe_converges_and_delivers_the_load(single_pipe):
    assert single_pipe.converged
    assert single_pipe.consumers.q_kw.iloc[0] == pytest.approx(Q_W / 1000, rel=1e-9)


def test_pressure_drop_matches_darcy_weisbach_colebrook(single_pipe):
    supply = single_pipe.pipes[single_pipe.pipes.circuit == "supply"].iloc[0]
    fluid = pp.call_lib("water")
    t_mean_k = (supply.t_in_c + supply.t_out_c) / 2 + KELVIN
    rho = float(fluid.get_density(t_mean_k))
    nu = float(fluid.get_viscosity(t_mean_k)) / rho
    v = supply.mdot_kg_per_s / (rho * math.pi * D_INNER_M**2 / 4)
    lam = colebrook_hand(v * D_INNER_M / nu, ROUGHNESS_MM / 1000 / D_INNER_M)
    dp_hand_pa = lam * LENGTH_M / D_INNER_M * rho * v**2 / 2
    assert supply.v_m_per_s == pytest.approx(v, rel=1e-3)
    assert supply.dp_bar * 1e5 == pytest.approx(dp_hand_pa, rel=0.01)


def test_outlet_temperature_matches_exponential_cooling(single_pipe):
    fluid = pp.call_lib("water")
    for pipe in single_pipe.pipes.itertuples():
        cp = float(fluid.get_heat_capacity((pipe.t_in_c + pipe.t_out_c) / 2 + KELVIN))
        expected = T_GROUND_C + (pipe.t_in_c - T_GROUND_C) * math.exp(
            -U_W_PER_MK * LENGTH_M / (pipe.mdot_kg_per_s * cp)
        )
        assert pipe.t_out_c == pytest.approx(expected, abs=0.01)
    # and the supply pipe really cools (the test would pass trivially with U = 0)
    supply = single_pipe.pipes[single_pipe.pipes.circuit == "supply"].iloc[0]
    assert supply.t_in_c - supply.t_out_c > 0.05


def test_heat_loss_equals_u_times_log_mean_temperature_difference(single_pipe):
    """Q_loss = U' L ΔT_lm, the integral of the local loss U' (T(x) − T_ground) along the pipe."""
    for pipe in single_pipe.pipes.itertuples():
        d_in, d_out = pipe.t_in_c - T_GROUND_C, pipe.t_out_c - T_GROUND_C
        lmtd = (d_in - d_out) / math.log(d_in / d_out)
        assert pipe.q_loss_kw * 1000 == pytest.approx(U_W_PER_MK * LENGTH_M * lmtd, rel=2e-3)


def test_energy_balance_closes(single_pipe):
    eb = single_pipe.energy_balance
    assert eb["residual_relative"] < 1e-3
    assert eb["q_losses_kw"] > 0
    assert eb["q_sources_kw"] == pytest.approx(eb["q_consumers_kw"] + eb["q_losses_kw"], rel=1e-3)


def test_consumer_return_temperature_and_flow_follow_the_load(single_pipe):
    c = single_pipe.consumers.iloc[0]
    fluid = pp.call_lib("water")
    cp = float(fluid.get_heat_capacity((c.t_supply_c + c.t_return_c) / 2 + KELVIN))
    assert c.t_return_c == pytest.approx(T_RETURN_C, abs=1e-6)
    assert c.mdot_kg_per_s == pytest.approx(Q_W / (cp * (c.t_supply_c - T_RETURN_C)), rel=2e-3)


def test_check_simulation_flags_low_differential_pressure_and_velocity():
    design, cond = single_pipe_design(q_w=3e6)  # far too much for DN100
    sim = hydraulics.simulate(design, cond)
    limits = hydraulics.Limits(
        max_velocity_m_per_s=1.5,
        max_pressure_gradient_pa_per_m=200,
        min_consumer_dp_bar=0.5,
        min_consumer_supply_c=70,
        energy_balance_tolerance=1e-3,
    )
    v = hydraulics.check_simulation(sim, limits, pd.Series({"S1": 1e3}))
    assert {"velocity", "pressure_gradient", "consumer_dp", "source_capacity"} <= set(v.check)
    ok = hydraulics.check_simulation(hydraulics.simulate(*single_pipe_design()), limits, pd.Series({"S1": 1e3}))
    assert ok.empty, ok


def test_bundled_network_energy_balance(bundled_plan):
    eb = bundled_plan.energy_balance
    assert eb["residual_relative"] <= 1e-3
    # losses are the sum over pipes, each positive
    assert (bundled_plan.pipes.q_loss_kw > 0).all()
    assert eb["q_losses_kw"] == pytest.approx(bundled_plan.pipes.q_loss_kw.sum())
    assert np.isclose(eb["q_consumers_kw"], bundled_plan.consumers.q_design_kw.sum())


def test_vectorised_conflict_check_agrees_with_pandapipes_own():
    from pandapipes.pf.system_index import PitEntries, PitRegistry, PitWriteMode

    from heatmap.network import _pandapipes_speedup

    assert hydraulics.use_fast_conflict_check()  # installed on this version, when asked
    assert PitRegistry._check_conflict is _pandapipes_speedup.check_conflict
    own = _pandapipes_speedup.replaced["_check_conflict"]
    rng = np.random.default_rng(1)
    raised = 0
    for _ in range(300):
        bucket = [
            PitEntries(rng.integers(0, 6, n), rng.integers(0, 3, n), np.zeros(n), list(PitWriteMode)[mode])
            for n, mode in zip(rng.integers(0, 8, 3), rng.choice(len(PitWriteMode), 3), strict=True)
        ]
        n = int(rng.integers(0, 8))
        entries = PitEntries(rng.integers(0, 6, n), rng.integers(0, 3, n), np.zeros(n), PitWriteMode.UNIQUE)
        clashes = []
        for check in (own, _pandapipes_speedup.check_conflict):
            try:
                check(PitRegistry(), entries, bucket)
                clashes.append(None)
            except ValueError as exc:
                clashes.append(ast.literal_eval(re.search(r"\{.*\}", str(exc)).group()))
        assert clashes[0] == clashes[1]
        raised += clashes[0] is not None
    assert 30 < raised < 270  # both outcomes were tried


def branched_design(loads_w, t_supply_c, lift_bar, set_mdot):
    """A source, a branching node and three consumers (one passing a set flow): a small tree."""
    pipes = pd.DataFrame(
        {
            "edge_id": [1, 2, 3, 4],
            "from_node": [0, 1, 1, 2],
            "to_node": [1, 2, 3, 4],
            "length_m": [300.0, 150.0, 200.0, 120.0],
            "dn": [100, 80, 65, 65],
            "d_inner_m": [D_INNER_M, 0.0825, 0.0703, 0.0703],
            "d_outer_m": [D_OUTER_M, 0.0889, 0.0761, 0.0761],
            "u_w_per_mk": [U_W_PER_MK, 0.2, 0.19, 0.19],
            "tree": [0, 0, 0, 0],
        }
    )
    consumers = pd.DataFrame(
        {
            "consumer_id": ["C2", "C3", "C4"],
            "node": [2, 3, 4],
            "q_design_w": loads_w,
            "tree": [0, 0, 0],
            "mdot_kg_per_s": [np.nan, np.nan, set_mdot],
        }
    )
    sources = pd.DataFrame(
        {"source_id": ["S1"], "node": [0], "t_supply_c": [t_supply_c], "capacity_kw": [2e3], "tree": [0]}
    )
    node_xy = pd.DataFrame({"x": [0.0, 300, 450, 300, 570], "y": [0.0, 0, 0, 200, 0]}, index=range(5))
    cond = hydraulics.Conditions(T_RETURN_C, T_GROUND_C, 2.0, ROUGHNESS_MM, {0: lift_bar})
    return hydraulics.NetworkDesign(pipes, consumers, sources, node_xy), cond


@pytest.mark.parametrize("feed_in", [False, True])
@pytest.mark.parametrize("delta_bar", [0.7, -0.35])
def test_a_pump_lift_change_shifts_the_supply_pressures_only_as_a_new_solve_finds(feed_in, delta_bar):
    design, cond = branched_design([300e3, 200e3, 100e3], 85.0, 1.5, 0.4)
    if feed_in:  # a second plant at the far end feeds a set flow in, its pressure free
        extra = pd.DataFrame(
            {"source_id": ["S2"], "node": [4], "t_supply_c": [80.0], "capacity_kw": [500.0], "tree": [0]}
        )
        sources = pd.concat([design.sources, extra], ignore_index=True).assign(mdot_kg_per_s=[np.nan, 1.2])
        design = hydraulics.NetworkDesign(design.pipes, design.consumers, sources, design.node_xy)
    before = hydraulics.simulate(design, cond)
    lifted = hydraulics.Conditions(T_RETURN_C, T_GROUND_C, 2.0, ROUGHNESS_MM, {0: 1.5 + delta_bar})
    again = hydraulics.simulate(design, lifted)
    shifted = hydraulics.with_pump_lift(before, delta_bar)
    assert before.converged and again.converged and shifted.converged
    for table in ("pipes", "junctions", "consumers", "sources"):
        ours, theirs = getattr(shifted, table), getattr(again, table)
        assert list(ours.columns) == list(theirs.columns)
        for col in ours.columns:
            if ours[col].dtype.kind == "f":
                np.testing.assert_allclose(ours[col], theirs[col], rtol=1e-9, atol=1e-9, err_msg=f"{table}.{col}")
            else:
                assert ours[col].tolist() == theirs[col].tolist(), f"{table}.{col}"
    supply = (shifted.junctions.circuit == "supply").to_numpy()
    rise = shifted.junctions.p_bar.to_numpy() - before.junctions.p_bar.to_numpy()
    np.testing.assert_allclose(rise[supply], delta_bar, atol=1e-12)
    assert (rise[~supply] == 0).all()
    assert shifted.sources.pump_lift_bar.to_numpy() == pytest.approx(before.sources.pump_lift_bar + delta_bar)


def test_saturation_pressure_against_the_iapws_if97_verification_values():
    from heatmap.network.hydraulics import saturation_pressure_bar

    # IAPWS-IF97, table 35: 300, 500, 600 K → 0.00353658941, 2.63889776, 12.3443146 MPa
    got = saturation_pressure_bar(np.array([300.0, 500.0, 600.0]) - 273.15) / 10
    np.testing.assert_allclose(got, [0.00353658941, 2.63889776, 12.3443146], rtol=1e-8)


@pytest.mark.parametrize(("t_supply_c", "boils"), [(115.0, False), (180.0, True)])
def test_water_above_its_boiling_pressure_is_a_failed_check(tmp_path, t_supply_c, boils):
    """A plant supplying 180 °C: water needs 10 bar(a) to stay liquid, far above the plan's pressures, and the plan
    says so (it had simulated liquid water at 3–6 bar(a) and called every check held)."""
    import geopandas as gpd

    from heatmap.io import synthetic
    from heatmap.network.hydraulics import AMBIENT_PRESSURE_BAR, saturation_pressure_bar
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    path = synthetic.write_synthetic_scenario(synthetic.synthetic_town(40, seed=3), tmp_path)
    sources = gpd.read_file(tmp_path / "sources.geojson")
    sources["t_supply_c"] = t_supply_c
    sources.to_file(tmp_path / "sources.geojson")
    plan = plan_from_scenario(scenario_from_file(path))
    j = plan.junctions
    below = (j.p_bar + AMBIENT_PRESSURE_BAR < saturation_pressure_bar(j.t_c)).sum()
    flagged = plan.violations[plan.violations.check == "boiling"]
    assert len(flagged) == below and (below > 0) == boils
    assert (flagged.value < flagged.limit).all()

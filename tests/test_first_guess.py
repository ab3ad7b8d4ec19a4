"""The directly solved steady state (heatmap.network.first_guess) against pandapipes' converged solution."""

import numpy as np
import pandas as pd
import pytest
from test_hydraulics import T_GROUND_C, branched_design

from heatmap.network import first_guess, hydraulics
from heatmap.network.hydraulics import KELVIN

HOURS = {
    "peak": ([300e3, 200e3, 100e3], 85.0, 1.0, 0.4),
    "set flow": ([40e3, 10e3, 5e3], 75.0, 1.6, 0.9),
    "summer": ([30e3, 15e3, 8e3], 72.0, 0.8, 0.1),  # small flows: the water cools by several kelvin
}


def iterations(net) -> int:
    return net._internal_results["iterations_bidirectional"]


def solved(design, cond, *, guess):
    net = hydraulics.build_net(design, cond)
    return net, hydraulics.run_net(net, design, guess=guess)


@pytest.mark.parametrize("hour", HOURS)
def test_steady_state_is_the_solution_pandapipes_converges_to(hour):
    design, cond = branched_design(*HOURS[hour])
    net, sim = solved(design, cond, guess=False)
    assert sim.converged
    state = first_guess.steady_state(hydraulics.build_net(design, cond))
    assert state is not None
    np.testing.assert_allclose(state.t_k, net.res_junction.t_k, atol=1e-3)
    np.testing.assert_allclose(state.p_bar, net.res_junction.p_bar, atol=1e-3)
    np.testing.assert_allclose(state.pipe_mdot_kg_per_s, net.res_pipe.mdot_from_kg_per_s, rtol=1e-5)
    np.testing.assert_allclose(state.pipe_t_out_k, net.res_pipe.t_outlet_k, atol=1e-3)
    np.testing.assert_allclose(state.consumer_mdot_kg_per_s, net.res_heat_consumer.mdot_from_kg_per_s, rtol=1e-5)
    np.testing.assert_allclose(state.consumer_t_out_k, net.res_heat_consumer.t_outlet_k, atol=1e-3)


@pytest.mark.parametrize("hour", HOURS)
def test_steady_state_conserves_mass_and_cools_each_pipe_exponentially(hour):
    """Invariants of the state itself: at every junction what flows in flows out; along every pipe the excess
    over the ground decays as exp(−U π d_o L / (ṁ c_p)); a substation holding its return temperature draws
    Q / (c_p ΔT) (c_p the mean of the inlet's and the outlet's, as pandapipes takes it)."""
    design, cond = branched_design(*HOURS[hour])
    net = hydraulics.build_net(design, cond)
    s = first_guess.steady_state(net)
    n = len(net.junction)
    pipe, hc, pump = net.pipe, net.heat_consumer, net.circ_pump_pressure.iloc[0]
    balance = np.bincount(pipe.to_junction, s.pipe_mdot_kg_per_s, n) - np.bincount(
        pipe.from_junction, s.pipe_mdot_kg_per_s, n
    )
    balance += np.bincount(hc.to_junction, s.consumer_mdot_kg_per_s, n)
    balance -= np.bincount(hc.from_junction, s.consumer_mdot_kg_per_s, n)
    total = s.consumer_mdot_kg_per_s.sum()
    balance[int(pump.flow_junction)] += total
    balance[int(pump.return_junction)] -= total
    np.testing.assert_allclose(balance, 0, atol=1e-12)
    m = np.abs(s.pipe_mdot_kg_per_s)
    t_in = np.where(s.pipe_mdot_kg_per_s >= 0, s.t_k[pipe.from_junction], s.t_k[pipe.to_junction])
    cp = net.fluid.get_heat_capacity
    cp = (cp(t_in) + cp(s.pipe_t_out_k)) / 2  # pandapipes': the mean of the inlet's and the outlet's
    ua = pipe.u_w_per_m2k * np.pi * pipe.outer_diameter_mm / 1000 * pipe.length_km * 1000
    expected = pipe.text_k + (t_in - pipe.text_k) * np.exp(-ua / (m * cp))
    np.testing.assert_allclose(s.pipe_t_out_k, expected, atol=1e-4)
    assert (s.pipe_t_out_k < t_in).all()
    held = hc.controlled_mdot_kg_per_s.isna()
    t_c = s.t_k[hc.from_junction]
    cp_c = (net.fluid.get_heat_capacity(t_c) + net.fluid.get_heat_capacity(hc.treturn_k)) / 2
    np.testing.assert_allclose(
        s.consumer_mdot_kg_per_s[held], (hc.qext_w / (cp_c * (t_c - hc.treturn_k)))[held], rtol=1e-4
    )
    assert s.t_k[int(pump.flow_junction)] == pytest.approx(HOURS[hour][1] + hydraulics.KELVIN)


@pytest.mark.parametrize("hour", HOURS)
def test_pandapipes_from_the_steady_state_reaches_its_own_solution_in_fewer_iterations(hour):
    design, cond = branched_design(*HOURS[hour])
    own_net, own = solved(design, cond, guess=False)
    net, sim = solved(design, cond, guess=True)
    assert own.converged and sim.converged
    for frame, cols in (
        ("pipes", ["mdot_kg_per_s", "dp_bar", "t_in_c", "t_out_c"]),
        ("junctions", ["p_bar", "t_c"]),
        ("consumers", ["q_kw", "mdot_kg_per_s", "dp_bar", "t_supply_c", "t_return_c"]),
        ("sources", ["q_supplied_kw", "mdot_kg_per_s", "pump_lift_bar"]),
    ):
        a, b = getattr(own, frame)[cols], getattr(sim, frame)[cols]
        np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=1e-6, atol=1e-6, err_msg=frame)
    loads, t_supply_c, lift_bar, set_mdot = HOURS[hour]
    assert sim.sources.pump_lift_bar.iloc[0] == pytest.approx(lift_bar, abs=1e-9)  # what is given is kept
    assert sim.consumers.mdot_kg_per_s.iloc[2] == pytest.approx(set_mdot, rel=1e-9)
    assert sim.consumers.q_kw.to_numpy() == pytest.approx(np.array(loads) / 1000, rel=1e-9)
    assert iterations(net) <= 3 < iterations(own_net)


def test_no_guess_where_the_pipes_are_not_trees():
    """A pipe closing a loop: no steady state by trees, and pandapipes solves from its own guess."""
    design, cond = branched_design(*HOURS["peak"])
    loop = design.pipes.iloc[[1]].assign(edge_id=5, from_node=3, to_node=4)
    design = hydraulics.NetworkDesign(pd.concat([design.pipes, loop]), design.consumers, design.sources, design.node_xy)
    net = hydraulics.build_net(design, cond)
    assert first_guess.steady_state(net) is None
    assert hydraulics.run_net(net, design).converged


def test_bypass_rounds_on_the_steady_state_set_the_flows_rounds_on_pandapipes_would():
    """A summer hour whose far consumers arrive too cold: the bypass rule applied to the directly solved steady state
    before pandapipes solves (operation._bypass_on_model's way) and to pandapipes' solutions round after round."""
    from heatmap.network import operation

    design, cond = branched_design([30e3, 15e3, 8e3], 72.0, 0.8, np.nan)  # small loads: far ones at 65-67 °C
    limits = hydraulics.Limits(1.5, 300.0, 0.5, 68.0, 1e-3)
    rule = dict(limits=limits, t_ground_c=T_GROUND_C, margin_k=0.5)

    def flows(ids, t_supply_c, mdot):
        return operation._bypass_flow(consumer_id=ids, t_supply_c=t_supply_c, mdot_kg_per_s=mdot,
                                      t_source_c=np.full(len(ids), 72.0), **rule)  # fmt: skip

    def on_model(net, state):
        hc = net.heat_consumer
        new = flows(hc.name.to_numpy(), state.t_k[hc.from_junction.to_numpy()] - KELVIN, state.consumer_mdot_kg_per_s)
        cold = np.isfinite(new)
        hc.loc[cold, "controlled_mdot_kg_per_s"], hc.loc[cold, "treturn_k"] = new[cold], np.nan
        return bool(cold.any())

    model = hydraulics.run_net(hydraulics.build_net(design, cond), design, adjust=on_model)
    bypass = pd.Series(dtype=float)
    for _ in range(hydraulics.MAX_ADJUST_ROUNDS):  # the same rule, each round on pandapipes' solution
        sim = hydraulics.simulate(design.__class__(design.pipes, design.consumers.assign(
            mdot_kg_per_s=design.consumers.consumer_id.map(bypass)), design.sources, design.node_xy), cond)  # fmt: skip
        new = flows(sim.consumers.consumer_id.to_numpy(), sim.consumers.t_supply_c.to_numpy(),
                    sim.consumers.mdot_kg_per_s.to_numpy())  # fmt: skip
        if not np.isfinite(new).any():
            break
        cold = sim.consumers.consumer_id[np.isfinite(new)]
        bypass = pd.concat([bypass.drop(cold, errors="ignore"), pd.Series(new[np.isfinite(new)], index=cold)])
    assert len(bypass) >= 2  # the hour does need the bypass
    pd.testing.assert_series_equal(model.set_mdot_kg_per_s.sort_index(), bypass.sort_index(), rtol=1e-6)
    assert (model.consumers.t_supply_c >= limits.min_consumer_supply_c).all()


@pytest.mark.parametrize("settled", [True, False])
def test_a_steady_state_that_does_not_settle_sends_every_consumer_through_its_bypass(settled):
    """Where the rounds of substation flows and temperatures do not settle pandapipes does not converge either:
    every consumer then passes twice the flow its load needs at the design temperature difference, its return
    temperature floating (operation._bypass's rule after a failure), before pandapipes spends its iterations."""
    import dataclasses
    from types import SimpleNamespace

    from heatmap.network import operation, sizing

    design, cond = branched_design(*HOURS["peak"])
    pnet = hydraulics.build_net(design, cond)
    state = first_guess.steady_state(pnet)
    assert state.converged
    water = sizing.water_properties(90.0, cond.t_return_c)
    net = SimpleNamespace(limits=hydraulics.Limits(1.5, 300.0, 0.5, 60.0, 1e-3), conditions=cond, water=water)
    changed = operation._bypass_on_model(net, 0.5, pnet, dataclasses.replace(state, converged=settled))
    hc = pnet.heat_consumer
    given = design.consumers.mdot_kg_per_s.to_numpy(dtype=float)  # one consumer passes a set flow already
    assert changed is not settled
    if settled:  # every consumer warm enough at the peak: nothing changes
        np.testing.assert_array_equal(hc.controlled_mdot_kg_per_s.to_numpy(dtype=float), given)
        assert (hc.treturn_k.isna().to_numpy() == np.isfinite(given)).all()
        return
    t_source = float(pnet.circ_pump_pressure.t_flow_k.max()) - KELVIN
    want = np.fmax(given, 2 * hc.qext_w.to_numpy() / (water.cp_j_per_kgk * (t_source - cond.t_return_c)))
    assert hc.controlled_mdot_kg_per_s.to_numpy() == pytest.approx(want, rel=1e-12)
    assert hc.treturn_k.isna().all()

"""Several feed-ins on one pandapipes network: a pressure-holding plant, a second plant injecting a fixed
mass flow at its own temperature, and a prosumer that buys heat in one hour and sells in another."""

import numpy as np
import pandas as pd
import pytest

from heatmap.network import hydraulics

# A star of DN100 pairs around junction 1: plant S1 at node 0, prosumer P at node 2, plant S2 at node 3,
# consumer C at node 4.
EDGES = [(0, 1), (1, 2), (1, 3), (1, 4)]
LENGTH_M, T_RETURN_C = 300.0, 45.0


def design(prosumer_sells: bool):
    pipes = pd.DataFrame(
        {
            "edge_id": range(len(EDGES)),
            "from_node": [a for a, _ in EDGES],
            "to_node": [b for _, b in EDGES],
            "length_m": LENGTH_M,
            "dn": 100,
            "d_inner_m": 0.1071,
            "d_outer_m": 0.1143,
            "u_w_per_mk": 0.2478,
            "tree": 0,
        }
    )
    consumers = [("C", 4, 900e3)] + ([] if prosumer_sells else [("P", 2, 400e3)])
    consumers = pd.DataFrame(
        {
            "consumer_id": [c for c, _, _ in consumers],
            "node": [n for _, n, _ in consumers],
            "q_design_w": [q for _, _, q in consumers],
            "tree": 0,
        }
    )
    feed = [("S1", 0, 85.0, np.nan), ("S2", 3, 80.0, 2.5)] + ([("P", 2, 75.0, 2.0)] if prosumer_sells else [])
    sources = pd.DataFrame(
        {
            "source_id": [s for s, *_ in feed],
            "node": [n for _, n, _, _ in feed],
            "t_supply_c": [t for _, _, t, _ in feed],
            "capacity_kw": 5e3,
            "tree": 0,
            "mdot_kg_per_s": [m for *_, m in feed],
        }
    )
    xy = pd.DataFrame({"x": [0.0, 300.0, 600.0, 300.0, 300.0], "y": [0.0, 0.0, 0.0, 300.0, -300.0]})
    return hydraulics.NetworkDesign(pipes, consumers, sources, xy), hydraulics.Conditions(
        T_RETURN_C, 8.0, 2.0, 0.045, {0: 1.5}
    )


@pytest.mark.parametrize("sells", [False, True])
def test_two_plants_and_a_prosumer_converge_and_balance(sells):
    sim = hydraulics.simulate(*design(sells))
    assert sim.converged
    eb = sim.energy_balance
    assert eb["residual_relative"] < 1e-3
    s = sim.sources.set_index("source_id")
    # The fixed feed-ins deliver their mass flow; what they add is ṁ c_p (T_feed − T_return at them).
    assert s.mdot_kg_per_s["S2"] == pytest.approx(2.5, rel=1e-6)
    assert (s.q_supplied_kw > 0).all()
    # Mixed water: the consumer gets less than the hottest feed-in and more than the coldest.
    t_c = sim.consumers.set_index("consumer_id").t_supply_c["C"]
    assert 75.0 - 1.0 < t_c < 85.0


def test_flow_to_the_prosumer_reverses_when_it_switches_from_buying_to_selling():
    buying = hydraulics.simulate(*design(False))
    selling = hydraulics.simulate(*design(True))
    edge = 1  # junction 1 → prosumer P

    def reversed_(sim):
        p = sim.pipes[(sim.pipes.edge_id == edge) & (sim.pipes.circuit == "supply")]
        return bool(p.flow_reversed.iloc[0])

    assert not reversed_(buying) and reversed_(selling)
    # Selling, the prosumer's heat displaces the pressure-holding plant's.
    q_s1 = [sim.sources.set_index("source_id").q_supplied_kw["S1"] for sim in (buying, selling)]
    assert q_s1[1] < q_s1[0]

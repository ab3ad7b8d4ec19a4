import numpy as np
import pandas as pd
import pytest

from heatmap import settings
from heatmap.network import routing, sizing


@pytest.fixture(scope="module")
def catalogue():
    return sizing.load_catalogue(
        settings.data_dir / "pipes_en253.csv", insulation_series=2, cost_column="cost_eur_per_m"
    )


def test_catalogue_covers_dn20_to_dn600_in_metres(catalogue):
    assert catalogue.index[0] == 20 and catalogue.index[-1] == 600
    assert catalogue.loc[100, "d_inner_m"] == pytest.approx(0.1071)
    assert (np.diff(catalogue.d_inner_m) > 0).all()


def test_series_3_has_no_dn600(tmp_path):
    cat = sizing.load_catalogue(
        settings.data_dir / "pipes_en253.csv", insulation_series=3, cost_column="cost_eur_per_m"
    )
    assert 600 not in cat.index and 500 in cat.index


def test_missing_cost_column_is_named(tmp_path):
    with pytest.raises(ValueError, match="no column 'nope'"):
        sizing.load_catalogue(settings.data_dir / "pipes_en253.csv", insulation_series=2, cost_column="nope")


@pytest.mark.parametrize(
    "re,eps,expected",
    [
        (1e5, 0.0, 0.01799),  # smooth pipe (Moody chart)
        (1000, 0.001, 0.064),  # laminar: 64 / Re
    ],
)
def test_colebrook_against_reference_values(re, eps, expected):
    assert sizing.colebrook_friction_factor(np.array([re]), eps)[0] == pytest.approx(expected, rel=3e-3)


def test_winter_simultaneity_matches_the_published_curve():
    f = sizing.simultaneity_factor(np.array([1, 2, 10, 50, 199, 10_000]), "winter")
    a, b, c, d = sizing.WINTER_GLF
    assert f[0] == 1.0
    assert f[2] == pytest.approx(a + b / (1 + (10 / c) ** d))
    assert (np.diff(f) <= 0).all() and f[-1] == pytest.approx(f[-2], rel=1e-3)
    assert sizing.simultaneity_factor(4, "thermos") == pytest.approx(0.62 + 0.38 / 4)
    assert sizing.simultaneity_factor(40, "none") == 1.0


def test_size_pipes_picks_the_smallest_dn_within_both_limits(catalogue):
    rho, nu = 975.0, 0.4e-6
    mdot = np.array([0.05, 2.0, 30.0, 1e5])
    dn = sizing.size_pipes(
        mdot,
        catalogue,
        rho=rho,
        nu_m2_per_s=nu,
        roughness_m=4.5e-5,
        max_velocity_m_per_s=1.5,
        max_pressure_gradient_pa_per_m=150,
    )
    assert dn[0] == 20 and dn[-1] == 600  # beyond the catalogue: largest size, reported by the checks
    for m, size in zip(mdot[1:3], dn[1:3], strict=True):
        d = catalogue.d_inner_m.to_numpy()
        v, r = sizing.pressure_gradient_pa_per_m(np.full(len(d), m), d, rho=rho, nu_m2_per_s=nu, roughness_m=4.5e-5)
        ok = (v <= 1.5) & (r <= 150)
        assert catalogue.index[ok.argmax()] == size
        assert not ok[: ok.argmax()].any()


@pytest.mark.parametrize("re", [4e3, 3e4, 2e5, 1e6, 1e7])
@pytest.mark.parametrize("eps", [0.0, 1e-4, 1e-3, 1e-2])
def test_colebrook_matches_a_root_finder(re, eps):
    from test_hydraulics import colebrook_hand

    assert sizing.colebrook_friction_factor(np.array([re]), eps)[0] == pytest.approx(colebrook_hand(re, eps), rel=1e-8)


def chain_with_branch():
    # source 0 → 1 → 2 → 3, and a branch 1 → 4: edge positions 0..3
    return pd.DataFrame(
        {
            "from_node": [0, 1, 2, 1],
            "to_node": [1, 2, 3, 4],
            "depth": [1, 2, 3, 2],
            "tree": 0,
            "length_m": [500.0, 500.0, 500.0, 100.0],
        }
    )


def test_path_totals_and_upstream_mask_follow_the_tree():
    e = chain_with_branch()
    assert routing.parent_edge(e).tolist() == [-1, 0, 1, 0]
    assert routing.path_totals(e, np.array([1.0, 2.0, 4.0, 8.0])).tolist() == [1.0, 3.0, 7.0, 9.0]
    assert routing.upstream_mask(e, np.array([2])).tolist() == [True, True, True, False]
    assert routing.upstream_mask(e, np.array([3, 1])).tolist() == [True, True, False, True]


def test_fit_pump_lift_upsizes_the_critical_path_until_the_lift_fits(catalogue):
    e = chain_with_branch()
    e["dn"] = 50
    mdot = np.full(4, 3.0)
    water = {"rho": 980.0, "nu_m2_per_s": 0.45e-6, "roughness_m": 4.5e-5}
    _, r = sizing.pressure_gradient_pa_per_m(mdot, catalogue.d_inner_m[50], **water)
    # Hand calculation of the lift at DN50 everywhere: 2 × 1.1 × (1500 m × R) + 0.5 bar + margin.
    need = 2 * 1.1 * 1500 * r[0] / 1e5 + 0.5 + 0.05

    def rule(max_lift_bar):
        return sizing.PumpLiftRule(
            min_consumer_dp_bar=0.5, local_loss_factor=1.1, margin_bar=0.05, min_lift_bar=1.0, max_lift_bar=max_lift_bar
        )

    dn, lift = sizing.fit_pump_lift(e, mdot, catalogue, **water, rule=rule(100.0))
    assert (dn == 50).all() and lift[0] == pytest.approx(need)
    dn, lift = sizing.fit_pump_lift(e, mdot, catalogue, **water, rule=rule(need / 2))
    assert lift[0] <= need / 2 + 1e-9
    assert (dn[:3] > 50).all() and dn[3] == 50  # the branch off the critical path keeps its size
    _, r_new = sizing.pressure_gradient_pa_per_m(mdot, catalogue.d_inner_m.reindex(dn).to_numpy(), **water)
    path = routing.path_totals(e, r_new * e.length_m.to_numpy() / 1e5)
    assert lift[0] == pytest.approx(max(1.0, 2 * 1.1 * path.max() + 0.5 + 0.05))


def test_supply_temperature_cools_exponentially_along_the_path():
    e = chain_with_branch()
    mdot = np.array([2.0, 1.0, 0.5, 1.0])
    u = np.full(4, 0.3)
    t = sizing.supply_temperature_c(e, mdot, u, t_supply_c=85.0, t_ground_c=8.0, cp_j_per_kgk=4190.0)
    # Hand calculation for the end of edge 2 (path 0 → 1 → 2): the exponents of the three pipes add up.
    k = [0.3 * 500 / (m * 4190) for m in (2.0, 1.0, 0.5)]
    assert t[2] == pytest.approx(8 + 77 * np.exp(-sum(k)), rel=1e-12)
    assert t[3] == pytest.approx(8 + 77 * np.exp(-k[0] - 0.3 * 100 / 4190), rel=1e-12)
    assert (np.diff(t[:3]) < 0).all()


def test_own_pipes_loss_and_cooling_by_hand():
    """A trunk to a junction feeding two consumers: C1 by a street stretch of its own and a service pipe, C2 by a
    service pipe only. Own pipes: C1 60 m, C2 20 m; U' 0.2 W/(m·K); 80/40 °C, ground 10 °C."""
    edges = pd.DataFrame(
        {
            "edge_id": [10, 11, 12, 13],
            "from_node": [0, 1, 2, 1],
            "to_node": [1, 2, 3, 4],
            "depth": [0, 1, 2, 1],
            "n_consumers_downstream": [2, 1, 1, 1],
            "length_m": [100.0, 50.0, 10.0, 20.0],
            "t_supply_c": 80.0,
        }
    )
    own = sizing.own_pipes(
        edges,
        pd.Series({12: "C1", 13: "C2"}),
        np.full(4, 0.2),
        peak_kw=pd.Series({"C1": 1.0, "C2": 10.0}),
        t_return_c=40.0,
        t_ground_c=10.0,
    )
    # C1: UA 12 W/K, loss 12 · 70 W; ṁc_p = 1000 W / 40 K = 25 W/K: cooled 70 · (1 − e^(−12/25)) K
    assert own.loc["C1", "own_pipes_loss_kw"] == pytest.approx(0.84)
    assert own.loc["C1", "own_pipes_cooling_k"] == pytest.approx(70 * (1 - np.exp(-0.48)))
    # C2: UA 4 W/K; ṁc_p 250 W/K
    assert own.loc["C2", "own_pipes_loss_kw"] == pytest.approx(0.28)
    assert own.loc["C2", "own_pipes_cooling_k"] == pytest.approx(70 * (1 - np.exp(-0.016)))

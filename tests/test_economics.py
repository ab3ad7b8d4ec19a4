import pandas as pd
import pytest

from heatmap import economics
from heatmap.scenario import Economics


def test_key_figures_by_hand():
    econ = Economics(
        interest_rate=0.05,
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

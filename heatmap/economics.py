"""Costs and key figures of a simulated plan.

Definitions (all per year unless stated):

- **capex** = Σ over route edges of trench length × catalogue cost per metre of the edge's DN
  (the ``network.cost_column`` cost model; one trench holds the supply and return pipe).
- **heat delivered** = Σ annual demand of the connected consumers (MWh/a).
- **heat losses** = simulated design-condition loss rate × 8760 h (conservative: supply temperatures are
  lower outside the heating season); share = losses / (delivered + losses).
- **pumping** power = Σ pumps of volume flow × lift / ``economics.pump_efficiency``; energy = power ×
  ``economics.pump_full_load_hours_h``.
- **linear heat density** = heat delivered / route length (MWh/m/a).
- **annuity factor** = r (1+r)^n / ((1+r)^n − 1) with r = ``economics.discount_rate`` and n = ``lifetime_a``.
- **annual cost** = capex × annuity factor + O&M (``om_fraction_per_a`` × capex) + pumping energy ×
  electricity price + (delivered + losses) × ``heat_cost_eur_per_mwh``.
- **LCOH** = annual cost / heat delivered (€/MWh).
- **NPV** = −capex + (delivered × heat price − annual cost without capital) / annuity factor.
"""

from __future__ import annotations

import logging

import pandas as pd

from heatmap.scenario import Economics

logger = logging.getLogger(__name__)

HOURS_PER_YEAR = 8760.0


def annuity_factor(rate: float, years: int) -> float:
    """Capital recovery factor.

    Examples
    --------
    >>> round(annuity_factor(0.03, 30), 5)
    0.05102
    >>> annuity_factor(0.0, 20)
    0.05
    """
    if rate == 0:
        return 1.0 / years
    g = (1 + rate) ** years
    return rate * g / (g - 1)


def key_figures(
    edges: pd.DataFrame,
    consumers: pd.DataFrame,
    pipes: pd.DataFrame,
    sources: pd.DataFrame,
    econ: Economics,
) -> dict[str, float]:
    """Compute the plan's costs and key figures.

    Parameters
    ----------
    edges
        Route edges with ``length_m`` and ``cost_eur``.
    consumers
        Connected consumers with ``annual_demand_mwh``.
    pipes
        Simulated pipes with ``q_loss_kw``.
    sources
        Simulated sources with ``pump_power_kw`` (hydraulic).
    econ
        The scenario's economic settings.

    Returns
    -------
    dict
        Figures with units in their names.
    """
    capex = float(edges.cost_eur.sum())
    route_m = float(edges.length_m.sum())
    delivered = float(consumers.annual_demand_mwh.sum())
    loss_kw = float(pipes.q_loss_kw.sum())
    losses = loss_kw * HOURS_PER_YEAR / 1000
    pump_kw = float(sources.pump_power_kw.sum()) / econ.pump_efficiency
    pump_mwh = pump_kw * econ.pump_full_load_hours_h / 1000
    af = annuity_factor(econ.discount_rate, econ.lifetime_a)
    om = econ.om_fraction_per_a * capex
    pumping_cost = pump_mwh * econ.electricity_price_eur_per_mwh
    heat_cost = (delivered + losses) * econ.heat_cost_eur_per_mwh
    running = om + pumping_cost + heat_cost
    annual = capex * af + running
    revenue = delivered * econ.heat_price_eur_per_mwh
    out = {
        "capex_eur": capex,
        "route_length_m": route_m,
        "heat_delivered_mwh_per_a": delivered,
        "heat_losses_kw_design": loss_kw,
        "heat_losses_mwh_per_a": losses,
        "heat_losses_share": losses / (delivered + losses) if delivered + losses > 0 else float("nan"),
        "pumping_power_kw": pump_kw,
        "pumping_energy_mwh_per_a": pump_mwh,
        "linear_heat_density_mwh_per_m_a": delivered / route_m if route_m > 0 else float("nan"),
        "annuity_factor": af,
        "capital_cost_eur_per_a": capex * af,
        "om_cost_eur_per_a": om,
        "pumping_cost_eur_per_a": pumping_cost,
        "heat_purchase_cost_eur_per_a": heat_cost,
        "annual_cost_eur_per_a": annual,
        "revenue_eur_per_a": revenue,
        "lcoh_eur_per_mwh": annual / delivered if delivered > 0 else float("nan"),
        "npv_eur": -capex + (revenue - running) / af,
    }
    logger.info(
        "Economics: capex %.2f M€, LCOH %.1f €/MWh, NPV %.2f M€, losses %.1f %%",
        capex / 1e6,
        out["lcoh_eur_per_mwh"],
        out["npv_eur"] / 1e6,
        100 * out["heat_losses_share"],
    )
    return out

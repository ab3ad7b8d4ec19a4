"""Costs and key figures of a simulated plan.

Definitions (all per year unless stated):

- **capex** = Σ over route edges of trench length × catalogue cost per metre of the edge's DN
  (the ``network.cost_column`` cost model; one trench holds the supply and return pipe).
- **heat delivered** = Σ annual demand of the connected consumers (MWh/a).
- **heat losses** = with a year of operation, the year's losses (each hour's, by its supply temperature); without,
  the simulated design-condition loss rate × 8760 h (conservative: supply temperatures are lower outside the
  heating season); share = losses / (delivered + losses).
- **pumping** power = Σ pumps of volume flow × lift / ``economics.pump_efficiency``; energy = power ×
  ``economics.pump_full_load_hours_h`` (with a year of operation too: only a few of its hours are simulated).
- **linear heat density** = heat delivered / route length (MWh/m/a).
- **annuity factor** = r (1+r)^n / ((1+r)^n − 1) with r = ``economics.discount_rate`` and n = ``lifetime_a``.
- **revenue** and **heat purchase**: without a year of operation, revenue = heat delivered ×
  ``economics.heat_price_eur_per_mwh`` and heat purchase = (delivered + losses) × ``economics.heat_cost_eur_per_mwh``.
  With a year (scenario section ``operation``) both come from its heat trade (:func:`trade_money`, the rows of
  ``trade.csv``): revenue = what the other companies pay the operator for the heat they draw (at
  ``operation.heat_price_eur_per_mwh``) + the heat the operator's own sites draw ×
  ``operation.own_sites_heat_value_eur_per_mwh`` (0 where not given); heat purchase = what the operator pays the
  other companies' sources and prosumers for the heat they feed in (each seller's price). The operator's own
  sources trade with no money, so their production cost is not in the heat purchase.
- **heat sold** = the heat revenue is paid for: heat delivered, or with a year the heat all sites draw over it.
- **annual cost** = capex × annuity factor + O&M (``om_fraction_per_a`` × capex) + pumping energy ×
  electricity price + heat purchase.
- **LCOH** = annual cost / heat sold (€/MWh).
- **NPV** = −capex + (revenue − annual cost without capital) / annuity factor.

Which settings each money figure rests on, and whether each came from the scenario or its default, is
:func:`money_origins`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from heatmap.scenario import Economics, Scenario

logger = logging.getLogger(__name__)

HOURS_PER_YEAR = 8760.0


def annuity_factor(rate: float, years: float) -> float:
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


@dataclass(frozen=True)
class TradeMoney:
    """The operator's money over a year of operation, read from the heat trade (:func:`trade_money`).

    Attributes
    ----------
    consumers_pay_eur_per_a
        What the other companies pay the operator for the heat they draw (at ``operation.heat_price_eur_per_mwh``).
    own_sites_heat_mwh_per_a
        Heat the operator's own sites draw over the year.
    own_sites_heat_value_eur_per_mwh
        Its value (``operation.own_sites_heat_value_eur_per_mwh``); ``None`` where the scenario gives none: 0.
    purchase_eur_per_a
        What the operator pays the other companies' sources and prosumers for the heat they feed in.
    heat_drawn_mwh_per_a
        Heat every site draws over the year, the operator's own included.
    own_sources_heat_mwh_per_a
        Heat the operator's own sources feed in (no money: its production cost is not counted).
    """

    consumers_pay_eur_per_a: float
    own_sites_heat_mwh_per_a: float
    own_sites_heat_value_eur_per_mwh: float | None
    purchase_eur_per_a: float
    heat_drawn_mwh_per_a: float
    own_sources_heat_mwh_per_a: float

    @property
    def own_sites_value_eur_per_a(self) -> float:
        """The own sites' heat at its value (0 where no value is given)."""
        return self.own_sites_heat_mwh_per_a * (self.own_sites_heat_value_eur_per_mwh or 0.0)

    @property
    def revenue_eur_per_a(self) -> float:
        """What the consumers pay plus the value of the own sites' heat."""
        return self.consumers_pay_eur_per_a + self.own_sites_value_eur_per_a


def trade_money(trade: pd.DataFrame, *, operator: str, own_sites_heat_value_eur_per_mwh: float | None) -> TradeMoney:
    """Read the operator's revenue and heat purchase from a year's heat trade.

    The operator's row of the trade is the counterparty of every other: it receives what the others pay
    (``received_eur``), pays what they receive (``paid_eur``), and its ``bought_mwh`` / ``sold_mwh`` are its own
    sites' draw and its own sources' feed-in, which change no hands.

    Parameters
    ----------
    trade
        Per company ``company``, ``bought_mwh``, ``sold_mwh``, ``paid_eur``, ``received_eur``
        (:func:`heatmap.energy.trade.company_trade`; written as ``trade.csv``).
    operator
        The company running the network (``operation.operator``).
    own_sites_heat_value_eur_per_mwh
        Value of the heat the operator's own sites draw; ``None``: not given (valued at 0).

    Returns
    -------
    TradeMoney

    Examples
    --------
    >>> t = pd.DataFrame({"company": ["A", "OP"], "bought_mwh": [10.0, 5.0], "sold_mwh": [0.0, 15.0],
    ...                   "paid_eur": [500.0, 0.0], "received_eur": [0.0, 500.0]})
    >>> m = trade_money(t, operator="OP", own_sites_heat_value_eur_per_mwh=20.0)
    >>> m.revenue_eur_per_a, m.purchase_eur_per_a, m.heat_drawn_mwh_per_a
    (600.0, 0.0, 15.0)
    """
    table = trade.set_index(trade.company.astype(str))
    if operator not in table.index:
        raise ValueError(f"the trade has no row of the operator {operator!r}")
    own = table.loc[operator]
    money = TradeMoney(
        consumers_pay_eur_per_a=float(own.received_eur),
        own_sites_heat_mwh_per_a=float(own.bought_mwh),
        own_sites_heat_value_eur_per_mwh=own_sites_heat_value_eur_per_mwh,
        purchase_eur_per_a=float(own.paid_eur),
        heat_drawn_mwh_per_a=float(table.bought_mwh.sum()),
        own_sources_heat_mwh_per_a=float(own.sold_mwh),
    )
    logger.info(
        "Trade money of %s: revenue %.3f M€/a (own sites %.0f MWh/a at %s), heat purchase %.3f M€/a",
        operator,
        money.revenue_eur_per_a / 1e6,
        money.own_sites_heat_mwh_per_a,
        "no value given" if own_sites_heat_value_eur_per_mwh is None else f"{own_sites_heat_value_eur_per_mwh:g} €/MWh",
        money.purchase_eur_per_a / 1e6,
    )
    return money


def key_figures(
    edges: pd.DataFrame,
    consumers: pd.DataFrame,
    pipes: pd.DataFrame,
    sources: pd.DataFrame,
    econ: Economics,
    *,
    year: TradeMoney | None = None,
    losses_mwh_per_a: float | None = None,
    unserved_mwh_per_a: float = 0.0,
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
    year
        The operator's money over a year of operation (:func:`trade_money`): revenue and heat purchase come from it
        instead of ``econ.heat_price_eur_per_mwh`` and ``econ.heat_cost_eur_per_mwh``.
    losses_mwh_per_a
        The heat lost over a year of operation (each hour's losses, by its supply temperature); ``None``: the design
        case's loss rate × 8760 h.
    unserved_mwh_per_a
        The heat the consumers drew over a year of operation that the sources could not give (a plan written as
        partial): it is not sold, and the consumers' payments count for the share served only.

    Returns
    -------
    dict
        Figures with units in their names.
    """
    capex = float(edges.cost_eur.sum())
    route_m = float(edges.length_m.sum())
    delivered = float(consumers.annual_demand_mwh.sum())
    loss_kw = float(pipes.q_loss_kw.sum(skipna=False))  # unknown (NaN) where a network's simulation failed
    losses = loss_kw * HOURS_PER_YEAR / 1000 if losses_mwh_per_a is None else float(losses_mwh_per_a)
    pump_kw = float(sources.pump_power_kw.sum(skipna=False)) / econ.pump_efficiency
    pump_mwh = pump_kw * econ.pump_full_load_hours_h / 1000
    af = annuity_factor(econ.discount_rate, econ.lifetime_a)
    om = econ.om_fraction_per_a * capex
    pumping_cost = pump_mwh * econ.electricity_price_eur_per_mwh
    if year is None:
        heat_cost = (delivered + losses) * econ.heat_cost_eur_per_mwh
        revenue = delivered * econ.heat_price_eur_per_mwh
        sold = delivered
    else:
        heat_cost, revenue, sold = year.purchase_eur_per_a, year.revenue_eur_per_a, year.heat_drawn_mwh_per_a
        if unserved_mwh_per_a > 0 and sold > 0:  # heat not given is not sold
            served = max(sold - unserved_mwh_per_a, 0.0)
            revenue, sold = revenue * served / sold, served
            delivered = min(delivered, served)
    running = om + pumping_cost + heat_cost
    annual = capex * af + running
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
        "heat_sold_mwh_per_a": sold,
        "lcoh_eur_per_mwh": annual / sold if sold > 0 else float("nan"),
        "npv_eur": -capex + (revenue - running) / af,
    }
    if year is not None:
        out |= {
            "revenue_from_consumers_eur_per_a": year.consumers_pay_eur_per_a,
            "own_sites_heat_mwh_per_a": year.own_sites_heat_mwh_per_a,
            "own_sites_heat_value_eur_per_a": year.own_sites_value_eur_per_a,
            "own_sources_heat_mwh_per_a": year.own_sources_heat_mwh_per_a,
            "heat_unserved_mwh_per_a": float(unserved_mwh_per_a),
        }
    logger.info(
        "Economics: capex %.2f M€, LCOH %.1f €/MWh, NPV %.2f M€, losses %.1f %%",
        capex / 1e6,
        out["lcoh_eur_per_mwh"],
        out["npv_eur"] / 1e6,
        100 * out["heat_losses_share"],
    )
    return out


def consumer_shares(
    edges: pd.DataFrame,
    loss_kw: pd.Series,
    consumers: pd.DataFrame,
    figures: dict[str, float],
    econ: Economics,
) -> pd.DataFrame:
    """Attribute the plan's costs to its consumers; every share adds up to its total.

    - **Capex**: each consumer pays its own service pipe and, of every pipe upstream of it, the part its peak load
      is of the peak loads that pipe carries (``capex_share_eur``; ``trunk_share_eur`` = that less the service pipe).
      A pipe that carries no consumer's load (to a second source of a shared network) serves them all: every
      consumer pays the part its peak load is of all connected peak loads.
    - **Losses**: each pipe's design heat loss is shared the same way and scaled to the year's losses
      (``loss_share_mwh_per_a``).
    - **Pumping**: the pumping energy and its cost by the consumer's share of all connected peak loads
      (``pumping_share_mwh_per_a``, ``pumping_share_eur_per_a``).
    - **Heat purchase**: by the consumer's heat plus its loss share, of the heat delivered plus the losses.
    - ``annual_cost_share_eur_per_a`` = capex share × (annuity factor + O&M share) + its pumping and heat purchase;
      ``lcoh_eur_per_mwh`` = that over its annual demand.

    Parameters
    ----------
    edges
        Route edges oriented away from their source, with ``edge_id``, ``from_node``, ``to_node``, ``depth`` and
        ``cost_eur``.
    loss_kw
        Design heat loss per edge id (supply + return pipe), kW.
    consumers
        Connected consumers: ``consumer_id``, ``node`` (their graph node), ``peak_load_kw``, ``annual_demand_mwh``.
    figures
        The plan's key figures (:func:`key_figures`).
    econ
        The economic settings.

    Returns
    -------
    pandas.DataFrame
        Indexed by consumer id.
    """
    from heatmap.network.routing import downstream_totals, path_totals

    load = pd.Series(consumers.peak_load_kw.to_numpy(), index=consumers.node.to_numpy())
    carried = downstream_totals(edges, load).peak_load_kw.to_numpy()
    shared = ~(carried > 0)  # no consumer's load: a pipe to a second source, paid by all
    carried = np.where(shared, np.inf, carried)
    edge_loss = loss_kw.reindex(edges.edge_id).fillna(0.0).to_numpy()
    per_kw_capex = path_totals(edges, edges.cost_eur.to_numpy() / carried)
    per_kw_loss = path_totals(edges, edge_loss / carried)
    at = pd.Index(edges.to_node.to_numpy()).get_indexer(pd.Index(consumers.node))  # each consumer's service edge
    service = np.where(at >= 0, edges.cost_eur.to_numpy()[at], np.nan)
    peak = consumers.peak_load_kw.to_numpy()
    of_all = peak / max(float(peak.sum()), 1e-12)
    capex = peak * per_kw_capex[at] + of_all * float(edges.cost_eur.to_numpy()[shared].sum())
    loss_kw_share = peak * per_kw_loss[at] + of_all * float(edge_loss[shared].sum())
    total_loss_kw = float(loss_kw.sum())
    losses = figures["heat_losses_mwh_per_a"]
    loss_mwh = loss_kw_share / total_loss_kw * losses if total_loss_kw > 0 else np.zeros(len(peak))
    demand = consumers.annual_demand_mwh.to_numpy()
    heat_key = (demand + loss_mwh) / max(float(demand.sum() + loss_mwh.sum()), 1e-12)
    pumping = figures["pumping_cost_eur_per_a"] * of_all
    annual = (
        capex * (figures["annuity_factor"] + econ.om_fraction_per_a)
        + pumping
        + figures["heat_purchase_cost_eur_per_a"] * heat_key
    )
    out = pd.DataFrame(
        {
            "service_cost_eur": service,
            "trunk_share_eur": capex - service,
            "capex_share_eur": capex,
            "loss_share_mwh_per_a": loss_mwh,
            "pumping_share_mwh_per_a": figures["pumping_energy_mwh_per_a"] * of_all,
            "pumping_share_eur_per_a": pumping,
            "annual_cost_share_eur_per_a": annual,
            "lcoh_eur_per_mwh": np.where(demand > 0, annual / np.where(demand > 0, demand, 1.0), np.nan),
        },
        index=pd.Index(consumers.consumer_id.to_numpy(), name="consumer_id"),
    )
    known = out.lcoh_eur_per_mwh.dropna()  # none where a simulation failed (its losses unknown)
    logger.info(
        "Consumer shares: %d consumers, LCOH %s",
        len(out),
        f"{known.min():.1f}–{known.max():.1f} €/MWh (median {known.median():.1f})" if len(known) else "unknown",
    )
    return out


_CAPITAL = ("economics.discount_rate", "economics.lifetime_a")
_OM = ("economics.om_fraction_per_a",)
_PUMPING = ("economics.electricity_price_eur_per_mwh", "economics.pump_efficiency", "economics.pump_full_load_hours_h")
_UNITS = {"_eur_per_mwh": "€/MWh", "lifetime_a": "a", "_hours_h": "h"}
_FIGURE_NAMES = {"npv_eur": "NPV", "lcoh_eur_per_mwh": "LCOH"}

PUMPING_ENERGY_BASIS = (
    "design pumping power × economics.pump_full_load_hours_h (a year of operation simulates a few hours only, too "
    "few to sum its pumping energy)"
)
"""Where the pumping energy of every plan comes from."""


def money_origins(
    scn: Scenario, year: TradeMoney | None, *, seller_prices_eur_per_mwh: dict[str, float] | None = None
) -> dict[str, Any]:
    """Name the settings each money figure rests on, each with its value and whether the scenario gave it.

    Parameters
    ----------
    scn
        The plan's scenario (its :attr:`~heatmap.scenario.Scenario.given` keys tell scenario from default).
    year
        The operator's money over a year of operation, or ``None`` (the figures rest on ``economics`` prices).
    seller_prices_eur_per_mwh
        With a year: the sources of other companies that bring their own ``heat_price_eur_per_mwh`` (source id →
        price; input data, not settings).

    Returns
    -------
    dict
        ``money_from`` (``year of operation`` or ``economics prices``), ``basis`` (where revenue and heat purchase
        come from, in words), ``pumping_energy_basis``, ``price_origins``
        (figure → list of ``{"key", "value", "source"}``, ``source`` being ``scenario``, ``default`` or ``input``),
        ``on_defaults`` (each default setting NPV or LCOH rests on: ``key``, ``value``, ``unit``, ``figures``,
        ``price`` and a ``message`` naming the setting to give) and ``notes``.
    """
    rows = {a["key"]: a for a in scn.assumptions()}

    def setting(key: str) -> dict[str, Any]:
        return {"key": key, "value": rows[key]["value"], "source": rows[key]["source"]}

    notes: list[str] = []
    if year is None:
        basis = (
            "no year of operation: revenue = heat delivered × economics.heat_price_eur_per_mwh; heat purchase = (heat "
            "delivered + losses) × economics.heat_cost_eur_per_mwh"
        )
        revenue = [setting("economics.heat_price_eur_per_mwh")]
        purchase = [setting("economics.heat_cost_eur_per_mwh")]
    else:
        basis = (
            "the year of operation's heat trade (trade.csv): revenue = what the other companies pay the operator for "
            "the heat they draw (operation.heat_price_eur_per_mwh) + the operator's own sites' heat × "
            "operation.own_sites_heat_value_eur_per_mwh; heat purchase = what the operator pays the other companies' "
            "sources and prosumers (each seller's price per MWh fed in)"
        )
        revenue = [setting("operation.heat_price_eur_per_mwh")]
        if year.own_sites_heat_mwh_per_a > 0:
            revenue.append(setting("operation.own_sites_heat_value_eur_per_mwh"))
        purchase = [setting("operation.feed_in_price_eur_per_mwh")] + [
            {"key": f"sources.{sid}.heat_price_eur_per_mwh", "value": price, "source": "input"}
            for sid, price in sorted((seller_prices_eur_per_mwh or {}).items())
        ]
        for key in ("economics.heat_price_eur_per_mwh", "economics.heat_cost_eur_per_mwh"):
            if rows[key]["source"] == "scenario":
                notes.append(f"{key} is given but not used: the plan's money follows its year of operation")
        if year.own_sources_heat_mwh_per_a > 0:
            notes.append(
                f"the operator's own sources feed in {year.own_sources_heat_mwh_per_a:,.0f} MWh/a with no money: "
                f"their production cost is not in the heat purchase"
            )
    capital, om, pumping = ([setting(k) for k in keys] for keys in (_CAPITAL, _OM, _PUMPING))
    running = om + pumping + purchase
    origins = {
        "revenue_eur_per_a": revenue,
        "heat_purchase_cost_eur_per_a": purchase,
        "pumping_cost_eur_per_a": pumping,
        "om_cost_eur_per_a": om,
        "capital_cost_eur_per_a": capital,
        "annual_cost_eur_per_a": capital + running,
        "lcoh_eur_per_mwh": capital + running,
        "npv_eur": revenue + running + capital,
    }
    on_defaults = []
    for key in dict.fromkeys(r["key"] for f in _FIGURE_NAMES for r in origins[f] if r["source"] == "default"):
        figures = [name for f, name in _FIGURE_NAMES.items() if any(r["key"] == key for r in origins[f])]
        value = rows[key]["value"]
        unit = next((u for suffix, u in _UNITS.items() if key.endswith(suffix)), "")
        rest = f"{' and '.join(figures)} {'rest' if len(figures) > 1 else 'rests'} on"
        if value is None and year is not None:  # the own sites' heat value, counted with a year of operation
            message = (
                f"{rest} {key}, not given: the operator's own sites' {year.own_sites_heat_mwh_per_a:,.0f} MWh/a "
                f"are valued at 0 €/MWh; give it in the scenario (the value of their heat, e.g. the production cost "
                f"it avoids)"
            )
        else:
            message = f"{rest} the default {key} = {value:g}{' ' + unit if unit else ''}; give it in the scenario"
        on_defaults.append(
            {
                "key": key,
                "value": value,
                "unit": unit,
                "figures": figures,
                "price": key.endswith("_eur_per_mwh"),
                "message": message,
            }
        )
    out = {
        "money_from": "year of operation" if year is not None else "economics prices",
        "basis": basis,
        "pumping_energy_basis": PUMPING_ENERGY_BASIS,
        "price_origins": origins,
        "on_defaults": on_defaults,
        "notes": notes,
    }
    logger.info(
        "Money origins: %s; %d settings on their defaults",
        "year of operation" if year is not None else "economics prices",
        len(on_defaults),
    )
    return out

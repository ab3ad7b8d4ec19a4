"""A year of a planned network: who draws and feeds in each hour, the hours that matter, and the money.

Each hour (:func:`site_loads`): a consumer draws its annual demand spread by heating degree-hours (space heat) plus
a flat hot-water share (:func:`heatmap.demand.profiles.hourly_load_kw`); a site with a column in the site profiles
follows it instead, kW net: positive it buys, negative it sells (a prosumer).

Sources run in merit order per network (:func:`source_hours`): the heat needed is the consumers' load plus the
network's losses less the prosumers' sales; excess-heat sources cover it first, each at the same share of its
capacity, backup sources what is left at the same share of theirs. Heat needed beyond every source's capacity is
*unserved*. The sources keep supplying at least ``min_source_share`` of the load plus losses: the source holding the
network's pressure must keep a forward flow through its pump, so prosumers' sales beyond the rest have no buyer and
are *curtailed* (every seller of the network in proportion to its sale). The losses are the design case's, held
constant (supply and return temperatures do not change in a plan).

Money (:func:`company_trade`): the operator is the counterparty of every sale. A consumer pays the operator the heat
price per MWh drawn; the operator pays each seller per MWh fed in (a source its own heat price where it has one,
else the feed-in price; a prosumer the feed-in price). Sources and sites of the operator itself trade with no money.
So every euro paid is received: the companies' net sums to zero.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from heatmap._errors import InputDataError
from heatmap.network.operation import OperatingHour

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SiteLoads:
    """Every site's hourly net heat, kept compact: a degree-hour site is its annual space heat and hot water.

    A degree-hour site draws ``space_mwh × space_share_h + hot_water_mwh / hours`` in hour ``h`` (kW × 1000), so a
    town's ten thousand buildings need no column each; a site with its own profile keeps its column (``own_kw``,
    + draws, − sells).
    """

    index: pd.DatetimeIndex
    space_share: np.ndarray
    space_mwh: pd.Series
    hot_water_mwh: pd.Series
    own_kw: pd.DataFrame

    @property
    def sites(self) -> pd.Index:
        """Every site id: degree-hour sites first, then those with their own profile."""
        return self.space_mwh.index.append(self.own_kw.columns)

    def net_at(self, time: pd.Timestamp) -> pd.Series:
        """Every site's net heat in one hour (kW; + draws, − sells)."""
        h = self.index.get_loc(time)
        assert isinstance(h, int)  # the hours are unique
        shaped = 1000 * (self.space_mwh * self.space_share[h] + self.hot_water_mwh / len(self.index))
        return pd.concat([shaped, self.own_kw.iloc[h]])

    def draw_by_group(self, group_of: pd.Series) -> pd.DataFrame:
        """Hourly draw summed per group of sites (kW; hours × groups), ``group_of`` naming each site's group."""
        g = group_of.reindex(self.space_mwh.index).to_numpy()
        space = self.space_mwh.groupby(g).sum()
        water = self.hot_water_mwh.groupby(g).sum()
        groups = sorted(set(group_of.reindex(self.sites)))
        out = pd.DataFrame(0.0, index=self.index, columns=groups)
        for k in space.index:
            out[k] += 1000 * (space[k] * self.space_share + water[k] / len(self.index))
        own = self.own_kw.clip(lower=0.0)
        # pandas-stubs lacks Index.groupby
        for k, cols in own.columns.groupby(group_of.reindex(own.columns).to_numpy()).items():  # type: ignore[attr-defined]
            out[k] += own[cols].sum(axis=1)
        return out

    def annual_draw_mwh(self) -> pd.Series:
        """Heat each site draws over the year (MWh; a prosumer's purchases only)."""
        return pd.concat([self.space_mwh + self.hot_water_mwh, self.own_kw.clip(lower=0.0).sum() / 1000])

    def sale_peak_kw(self) -> pd.Series:
        """Each site's largest sale in an hour (kW; 0 for sites that never sell)."""
        peak = (-self.own_kw.min()).clip(lower=0.0) if len(self.own_kw.columns) else pd.Series(dtype=float)
        return peak.reindex(self.sites, fill_value=0.0)


@dataclass(frozen=True)
class Year:
    """The hours of the year: draws per network, accepted sales, what each source feeds in (kW)."""

    loads: SiteLoads
    draw_by_tree: pd.DataFrame
    sale_kw: pd.DataFrame
    source_kw: pd.DataFrame
    unserved_kw: pd.Series
    curtailed_kw: pd.Series

    @property
    def index(self) -> pd.DatetimeIndex:
        """The hours."""
        return self.loads.index


def site_loads(
    consumers: pd.DataFrame,
    outdoor_c: pd.Series,
    *,
    base_temperature_c: float,
    hot_water_share: float,
    profiles: pd.DataFrame | None = None,
) -> SiteLoads:
    """Every site's hourly net heat: degree-hours and hot water, or its own profile (see the module docstring).

    Parameters
    ----------
    consumers
        ``consumer_id``, ``annual_demand_mwh``.
    outdoor_c
        Hourly outdoor temperature (°C), indexed by hour.
    base_temperature_c
        Base temperature of the heating degree-hours.
    hot_water_share
        Share of the annual demand drawn flat over the year.
    profiles
        Hourly net heat of the sites that give their own (columns: consumer ids; kW), on the same hours.
    """
    from heatmap.demand.profiles import hourly_load_kw

    own = profiles if profiles is not None else pd.DataFrame(index=outdoor_c.index)
    annual = consumers.set_index(consumers.consumer_id.astype(str)).annual_demand_mwh.astype(float)
    annual = annual.drop(index=own.columns)
    shape = hourly_load_kw(1.0, 0.0, outdoor_c, base_temperature_c=base_temperature_c) / 1000
    hours = outdoor_c.index
    assert isinstance(hours, pd.DatetimeIndex)  # the outdoor temperature is hourly over a year
    loads = SiteLoads(hours, shape, annual * (1 - hot_water_share), annual * hot_water_share, own)
    logger.info(
        "Site loads over %d hours: %d sites by degree-hours, %d with their own profile",
        len(outdoor_c),
        len(annual),
        len(own.columns),
    )
    return loads


def source_hours(
    loads: SiteLoads,
    tree_of_site: pd.Series,
    sources: pd.DataFrame,
    losses_kw: pd.Series,
    *,
    min_source_share: float,
    capacity_factor: pd.DataFrame | None = None,
    loss_scale: np.ndarray | float = 1.0,
) -> Year:
    """Dispatch the sources of each network in merit order, every hour (see the module docstring).

    Parameters
    ----------
    loads
        Output of :func:`site_loads` for the connected sites.
    tree_of_site
        The network (tree) of each site id.
    sources
        ``source_id``, ``tree``, ``capacity_kw``, ``role`` (``excess_heat`` or ``backup``).
    losses_kw
        Heat lost by each network (kW), by tree.
    min_source_share
        Share of each hour's load plus losses the sources supply at least (prosumers' sales beyond are curtailed).
    capacity_factor
        Heat each source can deliver per kW of its capacity, per hour (hours × source ids); ``None``: 1. With a
        supply curve a source colder than the hour's supply temperature preheats and a booster lifts the rest, so
        it delivers its capacity over its own share (:func:`heatmap.network.operation.own_share`): the dispatch
        stays in heat delivered, the capacity limits the source's own heat, the booster is not capacity-limited.
    loss_scale
        Each hour's losses over ``losses_kw`` (a number, or one per hour): with a supply curve the losses follow
        the hour's mean water temperature above the ground.

    Returns
    -------
    Year
    """
    draw = loads.draw_by_group(tree_of_site)
    sale = (-loads.own_kw).clip(lower=0.0)
    sale = sale.loc[:, sale.max() > 0]
    seller_tree = tree_of_site.reindex(sale.columns).to_numpy()
    source_kw = pd.DataFrame(0.0, index=loads.index, columns=sources.source_id.astype(str).to_numpy())
    unserved = pd.Series(0.0, index=loads.index)
    curtailed = pd.Series(0.0, index=loads.index)
    for tree in sorted(set(sources.tree)):
        gross = (draw[tree] if tree in draw else 0.0) + float(losses_kw.get(tree, 0.0)) * loss_scale
        in_tree = seller_tree == tree
        sold = sale.loc[:, in_tree]
        total_sold = sold.sum(axis=1)
        surplus = (total_sold - (1 - min_source_share) * gross).clip(lower=0.0)
        keep = np.where(total_sold > 0, 1 - surplus / total_sold.where(total_sold > 0, 1.0), 1.0)
        sale.loc[:, in_tree] = sold.mul(keep, axis=0)
        curtailed += surplus
        rest = gross - (total_sold - surplus)
        for role in ("excess_heat", "backup"):
            mine = sources[(sources.tree == tree) & (sources.role == role)]
            capacity: float | np.ndarray
            if capacity_factor is None:
                caps = {sid: cap for sid, cap in zip(mine.source_id.astype(str), mine.capacity_kw, strict=True)}
                capacity = float(mine.capacity_kw.sum())
            else:  # each hour's heat deliverable: the capacity times the hour's factor
                caps = {
                    sid: cap * capacity_factor[sid].to_numpy()
                    for sid, cap in zip(mine.source_id.astype(str), mine.capacity_kw, strict=True)
                }
                capacity = sum(caps.values(), np.zeros(len(loads.index)))
            if np.max(capacity, initial=0.0) <= 0:
                continue
            given = rest.clip(upper=capacity)
            share = given / capacity
            for sid, cap in caps.items():
                source_kw[sid] = share.to_numpy() * cap
            rest = rest - given
        unserved += rest
    year = Year(loads, draw, sale, source_kw, unserved, curtailed)
    logger.info(
        "Source hours: %.0f MWh fed in by sources, %.0f MWh sold by prosumers, %.0f MWh unserved, %.0f MWh curtailed",
        source_kw.to_numpy().sum() / 1000,
        sale.to_numpy().sum() / 1000,
        unserved.sum() / 1000,
        curtailed.sum() / 1000,
    )
    return year


def hours_that_matter(year: Year, *, summer_months: list[int]) -> list[OperatingHour]:
    """Pick the hours to simulate besides the design peak: highest load, the summer's least, prosumers' largest sale.

    The hour of highest load shows whether the hourly loads stay within the design (a consumer whose hourly
    profile rises above its design peak load shows here). In the summer hour of least load excess heat runs alone
    where it can (backup sources run only where the excess heat falls short, which the hour then shows). The
    prosumers' hour is left out when no site sells.
    """
    return _hours(year, _picked(year, summer_months))


def sizing_hours(year: Year, *, summer_months: list[int]) -> list[OperatingHour]:
    """Pick the hours the pipes are sized for: :func:`hours_that_matter` and each own-profile site's extremes.

    A site with its own profile may peak in an hour the network as a whole does not: its largest draw and its
    largest sale are added, so that its connection (and the pipes towards it) carry them.
    """
    picked = _picked(year, summer_months)
    own = year.loads.own_kw
    for site in own.columns:
        picked[f"{site} draws most"] = pd.Timestamp(own[site].idxmax())
        if site in year.sale_kw.columns and year.sale_kw[site].max() > 0:
            picked[f"{site} sells most"] = pd.Timestamp(year.sale_kw[site].idxmax())
    return _hours(year, picked)


def _picked(year: Year, summer_months: list[int]) -> dict[str, pd.Timestamp]:
    total_draw = year.draw_by_tree.sum(axis=1)
    picked = {"highest load": pd.Timestamp(total_draw.idxmax())}
    summer = total_draw[year.index.month.isin(summer_months)]
    if len(summer):
        picked["summer, least load"] = pd.Timestamp(summer.idxmin())
    total_sale = year.sale_kw.sum(axis=1)
    if total_sale.max() > 0:
        picked["prosumers sell most"] = pd.Timestamp(total_sale.idxmax())
    return picked


def _hours(year: Year, picked: dict[str, pd.Timestamp]) -> list[OperatingHour]:
    names: dict[pd.Timestamp, list[str]] = {}
    for name, time in picked.items():  # an hour picked twice is taken once, under both names
        names.setdefault(time, []).append(name)
    return [_hour(year, "; ".join(n), time) for time, n in names.items()]


def _hour(year: Year, name: str, time: pd.Timestamp) -> OperatingHour:
    source = year.source_kw.loc[time]
    sale = year.sale_kw.loc[time]
    assert isinstance(source, pd.Series) and isinstance(sale, pd.Series)  # the hours are unique
    return OperatingHour(name, time, year.loads.net_at(time).clip(lower=0.0), source[source > 0], sale[sale > 0])


def company_trade(
    year: Year,
    sites: pd.DataFrame,
    sources: pd.DataFrame,
    *,
    heat_price_eur_per_mwh: float,
    feed_in_price_eur_per_mwh: float,
    operator: str,
    own_share: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Heat bought and sold by each company over the year, and the money that changes hands.

    Parameters
    ----------
    year
        Output of :func:`source_hours`.
    sites
        ``consumer_id``, ``company``.
    sources
        ``source_id``, ``company``, ``heat_price_eur_per_mwh`` (NaN: the feed-in price).
    heat_price_eur_per_mwh, feed_in_price_eur_per_mwh
        The operator's selling price and its default buying price.
    operator
        The company running the network.
    own_share
        Per hour and source (hours × source ids), the share of its heat delivered that is its own: a source is paid
        for that; its booster's lift (the rest, where a supply curve is above the source's temperature) is the
        operator's, sold with no money. ``None``: all its own.

    Returns
    -------
    pandas.DataFrame
        Per company: ``bought_mwh``, ``sold_mwh``, ``paid_eur``, ``received_eur``, ``net_eur`` (received − paid);
        the operator's row is the counterparty of all others.
    """
    site_company = sites.set_index(sites.consumer_id.astype(str)).company
    src = sources.set_index(sources.source_id.astype(str))
    drawn = year.loads.annual_draw_mwh()
    bought = drawn.groupby(site_company.reindex(drawn.index).to_numpy()).sum()
    sale_mwh = year.sale_kw.sum() / 1000
    delivered = year.source_kw
    own_kw = delivered if own_share is None else delivered * own_share.reindex(columns=delivered.columns).fillna(1.0)
    source_mwh = own_kw.sum() / 1000
    boost_mwh = float((delivered - own_kw).to_numpy().sum() / 1000)
    source_price = src.heat_price_eur_per_mwh.reindex(source_mwh.index).fillna(feed_in_price_eur_per_mwh)
    sellers = pd.DataFrame(
        {
            "company": np.concatenate(
                [site_company.reindex(sale_mwh.index).to_numpy(), src.company.reindex(source_mwh.index).to_numpy()]
            ),
            "mwh": np.concatenate([sale_mwh.to_numpy(), source_mwh.to_numpy()]),
            "eur": np.concatenate(
                [sale_mwh.to_numpy() * feed_in_price_eur_per_mwh, (source_mwh * source_price).to_numpy()]
            ),
        }
    )
    sold = sellers.groupby("company")[["mwh", "eur"]].sum()
    known = sorted(set(bought.index) | set(sold.index))
    close = difflib.get_close_matches(operator, known, n=1, cutoff=0.8)
    if operator not in known and close:
        raise InputDataError(
            f"operation.operator {operator!r} is no company of the plan's sources or consumers, but {close[0]!r} is; "
            f"write it as the sources and consumers do (an operator with no site or source of its own is fine)"
        )
    table = pd.DataFrame({"bought_mwh": bought, "sold_mwh": sold.mwh}).fillna(0.0)
    if boost_mwh > 0:  # the boosters' lift: the operator's heat
        boost = pd.DataFrame({"bought_mwh": [0.0], "sold_mwh": [boost_mwh]}, index=[operator])
        table = pd.concat([table, boost]).groupby(level=0).sum()
    table["paid_eur"] = table.bought_mwh * heat_price_eur_per_mwh
    table["received_eur"] = sold.eur.reindex(table.index).fillna(0.0)
    if operator in table.index:  # the operator's own heat changes no hands
        table.loc[operator, ["paid_eur", "received_eur"]] = 0.0
    others = table.drop(index=operator, errors="ignore")
    own = table.loc[operator] if operator in table.index else pd.Series(0.0, index=table.columns)
    assert isinstance(own, pd.Series)  # one row per company
    table.loc[operator] = [
        own.bought_mwh,
        own.sold_mwh,
        float(others.received_eur.sum()),
        float(others.paid_eur.sum()),
    ]
    table["net_eur"] = table.received_eur - table.paid_eur
    table = table.rename_axis("company").reset_index()
    logger.info(
        "Trade: %d companies, %.0f € changing hands",
        len(table),
        float(others.paid_eur.sum() + others.received_eur.sum()),
    )
    return table


PROFILE_TOLERANCE = 0.01
"""A site that never sells must draw its annual demand over its profile's year within this relative tolerance."""


LEFT_OUT_WHY = {
    "below_min_annual_demand": "left out of the plan by 'consumers.min_annual_demand_mwh' (their annual demand is "
    "below it): lower that minimum to plan them, or drop the columns",
    "below_min_peak_load": "left out of the plan by 'consumers.min_peak_load_kw' (their peak load is below it): "
    "lower that minimum to plan them, or drop the columns",
    "not_routed": "not connected: no route reaches them from a source (see 'excluded_consumers' in summary.json); "
    "connect them, or drop the columns",
    "excluded": "excluded from the plan by 'connect: excluded' (the consumers' connect column): make them required or "
    "optional, or drop the columns",
}
"""Why a consumer of the inputs is not one of the plan's, by the reason :func:`read_site_profiles` is given."""


def read_site_profiles(
    path: Path, index: pd.DatetimeIndex, sites: pd.DataFrame, *, left_out: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """Read the hourly net heat of the sites that give their own (columns: time, one per consumer id; kW).

    Parameters
    ----------
    path
        The CSV file.
    index
        The hours of the year.
    sites
        ``consumer_id``, ``annual_demand_mwh`` of the plan's consumers.
    left_out
        Consumers of the inputs that are not the plan's, by reason (keys of :data:`LEFT_OUT_WHY`): a column
        naming one is refused with that reason, not as naming no consumer.

    Raises
    ------
    InputDataError
        A column naming no consumer of the plan (or one left out of it, with the reason), an hourly column the
        series reader refuses, or a site that never sells whose profile does not add up to its annual demand
        (:data:`PROFILE_TOLERANCE`).
    """
    from heatmap.demand.profiles import read_hourly_table
    from heatmap.io.tables import read_csv_table

    header = read_csv_table(path, required=("time",), what="site profiles file").columns
    columns = [str(c) for c in header if c != "time"]
    annual = sites.set_index(sites.consumer_id.astype(str)).annual_demand_mwh
    unknown = [c for c in columns if c not in annual.index]
    why = {str(c): reason for reason, ids in (left_out or {}).items() if reason in LEFT_OUT_WHY for c in ids}
    for reason in dict.fromkeys(why[c] for c in unknown if c in why):
        named = [c for c in unknown if why.get(c) == reason]
        raise InputDataError(f"{path}: columns {', '.join(named)} name consumers {LEFT_OUT_WHY[reason]}")
    if unknown:
        raise InputDataError(
            f"{path}: columns {', '.join(unknown)} name no consumer of the plan; name each column after a "
            f"consumer id (its hourly net heat in kW, + buys, − sells)"
        )
    table = read_hourly_table(path, columns, index, lower=-1e6, upper=1e6, what="site profiles", hint=" (kW expected)")
    buyers = [c for c in columns if (table[c] >= 0).all()]
    drawn = table[buyers].sum() / 1000
    off = drawn[(drawn - annual[buyers]).abs() > PROFILE_TOLERANCE * annual[buyers]]
    if len(off):
        c = off.index[0]
        raise InputDataError(
            f"{path}: column {c} draws {drawn[c]:,.0f} MWh over the year but the consumer's annual_demand_mwh is "
            f"{annual[c]:,.0f}; make them agree (within {PROFILE_TOLERANCE:.0%})"
        )
    return table

"""Regional impact of each concept against the reference (boilers only, no excess heat).

Per concept: excess heat used (GWh/a), fuel displaced by type (the reference's fuel use minus the concept's,
peat separately and as a share of the reference's peat — the town's energy company aims to cut its peat use by a
third), electricity added, CO₂ avoided (fuel CO₂ and the CO₂ counted for electricity bought) and money saved
(the reference's yearly cost minus the concept's, investments annualised). Money saved is NaN where the concept or
the reference leaves heat unserved: a concept is not cheaper for delivering less. Emission factors and prices are
the fuel table's and the scenario's documented settings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd


class ConceptFigures(Protocol):
    """What the impact reads of a concept's result (a :class:`heatmap.energy.concepts.ConceptResult`)."""

    @property
    def name(self) -> str:
        """The concept's name."""

    @property
    def figures(self) -> dict[str, Any]:
        """Its figures: ``fuel_mwh_by_fuel``, ``excess_heat_mwh``, ``electricity_mwh``."""

    @property
    def co2_t(self) -> float:
        """Its CO2 emissions (t/a)."""

    @property
    def total_cost_eur(self) -> float:
        """What it costs a year (€)."""

    @property
    def costs_comparable(self) -> bool:
        """Whether it serves all the heat, so that its cost compares."""


logger = logging.getLogger(__name__)

PEAT_GOAL_SHARE = 1 / 3
"""Kokkola's energy company aims to cut its peat use by a third (KIP HUKKA project description)."""


def is_peat(fuel: str, fuels: pd.DataFrame) -> bool:
    """Whether a fuel is peat: Statistics Finland fuel class 21xx, or 'peat' in its name."""
    code = str(fuels.loc[fuel, "code"]) if "code" in fuels.columns and fuel in fuels.index else ""
    return code.startswith("21") or "peat" in fuel.lower()


def regional_impact(
    reference: ConceptFigures, concepts: Sequence[ConceptFigures], *, fuels: pd.DataFrame
) -> pd.DataFrame:
    """Impact of each concept compared with the reference.

    Parameters
    ----------
    reference
        The reference's :class:`heatmap.energy.concepts.ConceptResult`.
    concepts
        The concepts' results.
    fuels
        The fuel table (indexed by fuel name; ``code`` marks peat).

    Returns
    -------
    pandas.DataFrame
        One row per concept: ``excess_heat_used_gwh``, ``displaced_<fuel>_gwh`` per fuel,
        ``fuel_displaced_gwh``, ``peat_displaced_gwh``, ``peat_cut_pct`` (of the reference's peat),
        ``peat_goal_met`` (cut ≥ one third), ``electricity_added_gwh``, ``co2_avoided_kt_per_a``,
        ``costs_comparable`` (neither leaves heat unserved) and ``cost_saved_meur_per_a``. Where either leaves heat
        unserved, every saving (fuel, peat, electricity, CO₂, cost) is NaN and the peat goal not met: heat not
        delivered burns no fuel.
    """
    ref_fuel = reference.figures["fuel_mwh_by_fuel"]
    names = sorted(set(ref_fuel).union(*(c.figures["fuel_mwh_by_fuel"] for c in concepts)))
    ref_peat = sum(v for k, v in ref_fuel.items() if is_peat(k, fuels))
    rows = []
    for c in concepts:
        f = c.figures["fuel_mwh_by_fuel"]
        row = {"concept": c.name, "excess_heat_used_gwh": c.figures["excess_heat_mwh"] / 1000}
        for name in names:
            row[f"displaced_{name}_gwh"] = (ref_fuel.get(name, 0.0) - f.get(name, 0.0)) / 1000
        row["fuel_displaced_gwh"] = sum(row[f"displaced_{n}_gwh"] for n in names)
        peat = sum(row[f"displaced_{n}_gwh"] for n in names if is_peat(n, fuels))
        row["peat_displaced_gwh"] = peat
        row["peat_cut_pct"] = 100 * peat * 1000 / ref_peat if ref_peat > 0 else float("nan")
        row["peat_goal_met"] = bool(ref_peat > 0 and peat * 1000 >= PEAT_GOAL_SHARE * ref_peat - 1e-6)
        row["electricity_added_gwh"] = (c.figures["electricity_mwh"] - reference.figures["electricity_mwh"]) / 1000
        row["co2_avoided_kt_per_a"] = (reference.co2_t - c.co2_t) / 1000
        comparable = reference.costs_comparable and c.costs_comparable
        row["costs_comparable"] = comparable
        row["cost_saved_meur_per_a"] = (reference.total_cost_eur - c.total_cost_eur) / 1e6
        if not comparable:  # heat left unserved is fuel not burnt and CO2 not emitted: no saving to claim
            row |= {k: float("nan") for k in row if k not in ("concept", "excess_heat_used_gwh", "costs_comparable")}
            row["peat_goal_met"] = False
        rows.append(row)
    table = pd.DataFrame(rows)
    logger.info("Regional impact of %d concepts against %s", len(concepts), reference.name)
    return table

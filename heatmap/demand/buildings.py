"""First heat-demand estimate for buildings from their OpenStreetMap footprints and tags.

The rule, for each building (every threshold is a ``demand.*`` setting of the scenario):

1. **Type** from the tags: the first of the ``amenity``, ``shop``, ``office`` and ``building`` tags found in the
   building-types table (``data/osm_building_types.csv``). Where the tag does not say the use
   (``building=yes``, ``building``, or a value not in the table: *generic*; ``residential``, ``house``: a
   dwelling of unknown kind), the type is inferred (``demand.infer_type``):

   a. a generic building takes the type of the OSM ``landuse`` polygon around it (column ``landuse``, see
      :func:`heatmap.io.streets.buildings_from_pbf`; ``data/osm_landuse_types.csv``: industrial → industrial,
      commercial → office, retail → retail); elsewhere it is taken for a dwelling;
   b. a dwelling with at least ``apartment_min_floors`` floors (from ``building:levels`` or ``height``) is an
      apartment block; else one with a footprint up to ``detached_max_footprint_m2`` is a detached house; else
      one whose footprint's oriented rectangle is at least ``row_min_elongation`` times longer than wide and at
      most ``row_max_footprint_m2`` is a row house; else an apartment block.

   With ``infer_type: false`` these buildings all get ``demand.default_type``.
2. **Left out**, counted with their reason and given no demand: buildings whose tag names an unheated type
   (garages, sheds, huts, roofs, carports, saunas, greenhouses, …); buildings of inferred type whose footprint
   is below ``min_heated_footprint_m2`` (saunas and sheds tagged ``building=yes``); buildings without a
   footprint (points); buildings whose footprint lies inside another building's (column ``inside_building``, found
   by :func:`heatmap.io.streets.containing_building` when OSM buildings are read; ``nested_buildings``): their floor
   area is counted once, in the building around them; and any other building whose demand comes out as zero. A
   metered demand (``metered_column``) keeps a building in, whatever its tags.
3. **Floors**: ``building:levels``, else ``height / floor_height_m`` (rounded, at least 1), else the type's
   default of ``floors_by_type`` (given in the scenario), else of ``data/default_floors_fi.csv``
   (``default_floors`` for a type in neither). A value above
   ``max_floors`` is implausible: it is ignored (the type's default applies) and reported with the building's id.
   A tag is read as a positive number; of several values (``2;3``) the largest is taken, and a height may carry
   its unit (``12 m``). Anything else (``-3``, ``abc``, ``0``, and a length such as ``12 m`` given as
   ``building:levels``: a height, not a number of levels) is unreadable: it is ignored like an implausible value,
   logged as a warning and counted with the buildings' ids in the report (``unreadable_floors``).
4. **Heated floor area** = footprint area (m², in the metric CRS) × floors.
5. **Era** from ``start_date`` (year): ≤1920 → ``-1920``, 1921–1959 → ``1950s``, 1960–1979 → ``1970s``,
   1980–1999 → ``1990s``, 2000–2009 → ``2000s``, 2010–2017 → ``2010s``, ≥2018 → ``2018-``;
   else ``demand.default_era``.
6. **Annual demand** = space heat + hot water, with space heat = floor area × specific space-heat
   demand[era, type] × degree_days / reference_degree_days / 1000 and hot water = floor area × domestic
   hot water[type] / 1000 → MWh/a. Where ``demand.metered_column`` names a column holding a value, that
   metered annual demand is kept (split into space heat and hot water in the estimate's proportion).
7. **Peak load** (``demand.peak_method``): ``full_load_hours``: annual demand × 1000 /
   ``demand.full_load_hours_h``; or ``design_temperature`` (degree-day method): space heat × 1000 ×
   (base − design outdoor temperature) / (24 h × degree days) + hot water × 1000 / 8760 h → kW. The hourly
   profile of :mod:`heatmap.demand.profiles` peaks at the same value in the hour at the design temperature.

Each building's ``demand_method`` records which tags were used and which rules or defaults filled gaps. The rule
works building by building, so a region split into partitions (:mod:`heatmap.demand.region`) gets the same demand;
its :class:`DemandReport` (counts by reason, by source of type, floors and era, sums per type) adds up over
partitions, and :func:`plausibility` compares the sums per type with published Finnish figures.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from heatmap._errors import InputDataError
from heatmap.io.inputs import read_table
from heatmap.scenario import Demand

logger = logging.getLogger(__name__)

ERA_BINS = [
    (1920, "-1920"),
    (1959, "1950s"),
    (1979, "1970s"),
    (1999, "1990s"),
    (2009, "2000s"),
    (2017, "2010s"),
]
LAST_ERA = "2018-"
TYPE_TAGS = ("amenity", "shop", "office", "building")
UNHEATED = "unheated"
RESIDENTIAL = "residential"
"""Marker of the tables: a dwelling of unknown kind, typed by the footprint rule."""
GENERIC = "generic"
"""Marker of the building-types table: use unknown, typed by the land use (else as a dwelling)."""
LEFT_OUT_REASONS = {
    "unheated_tag": "tag names an unheated building",
    "below_min_footprint": "footprint below demand.min_heated_footprint_m2 (outbuilding)",
    "no_footprint": "no footprint (point): give a polygon or a metered demand",
    "inside_another": "footprint inside another building's (counted there once: demand.nested_buildings)",
    "zero_demand": "demand is zero (empty footprint or metered 0)",
}
"""Why a building is left out (the keys of :attr:`DemandReport.left_out`)."""
LARGE_FOOTPRINT_M2 = 200_000.0
"""A footprint above this (20 ha under one roof) is warned of with the building ids: more likely a layer in the
wrong units or CRS than a building (its demand still counts: the warning only asks to check)."""
SMALL_MEDIAN_FOOTPRINT_M2 = 10.0
"""A layer whose median footprint is below this (of at least :data:`MIN_BUILDINGS_FOR_MEDIAN` buildings) is warned of:
more likely a layer in the wrong units or CRS than a town of sheds."""
MIN_BUILDINGS_FOR_MEDIAN = 10
"""Buildings a layer needs before its median footprint is judged."""
MAX_EXAMPLES = 10
"""Building ids kept per reason in a report."""
FALLBACK_RULES = {
    "implausible_floors": "building:levels or height above demand.max_floors ignored: floors from the other tag "
    "or the type's default",
    "unreadable_floors": "building:levels or height that is not a positive number (-3, abc, 12 m as levels) "
    "ignored: floors from the other tag or the type's default",
}
"""What was done to the buildings of each kind of :attr:`DemandEstimate.fallback_ids`."""


def _read_table(path: Path, index_col: str | list[str]) -> pd.DataFrame:
    return read_table(path, index=index_col, what="demand table")


def _year(start_date: pd.Series) -> pd.Series:
    return pd.to_numeric(start_date.astype(str).str.extract(r"(\d{4})")[0], errors="coerce")


def _listed(ids: pd.Series, values: pd.Series | list[str], *, sep: str = "; ") -> str:
    """Name the first :data:`MAX_EXAMPLES` buildings as ``id (value)``, then how many more (for a warning)."""
    shown = sep.join(f"{i} ({v})" for i, v in zip(ids[:MAX_EXAMPLES], values[:MAX_EXAMPLES], strict=True))
    return shown + (f" and {len(ids) - MAX_EXAMPLES} more" if len(ids) > MAX_EXAMPLES else "")


def _warn_of_years(start_date: pd.Series, year: pd.Series, ids: pd.Series, default_era: str) -> None:
    """Log the buildings whose ``start_date`` is given but holds no year (the default era), or a year to come."""
    this_year = dt.date.today().year
    future = (year > this_year).to_numpy()
    if future.any():
        logger.warning(
            "%d buildings have a start_date after %d (planned buildings, or a typo?); they are estimated as built in "
            "the newest era: %s",
            int(future.sum()),
            this_year,
            _listed(ids[future], start_date[future]),
        )
    given = start_date.notna() & (start_date.astype(str).str.strip() != "")
    unread = (given & year.isna()).to_numpy()
    if unread.any():
        logger.warning(
            "%d buildings with a start_date that holds no year got the default era %s (demand.default_era): %s",
            int(unread.sum()),
            default_era,
            _listed(ids[unread], start_date[unread]),
        )


def _warn_of_doubtful_input(b: pd.DataFrame, ids: pd.Series, footprint: np.ndarray) -> None:
    """Log what suggests a layer in the wrong units or with the wrong columns (the buildings are still estimated)."""
    median = float(np.median(footprint)) if len(footprint) >= MIN_BUILDINGS_FOR_MEDIAN else np.inf
    if median < SMALL_MEDIAN_FOOTPRINT_M2:
        logger.warning(
            "The buildings' median footprint is %.3g m² (below %g m²): check the layer's units and CRS (a footprint "
            "in the wrong units leaves most buildings out as too small)",
            median,
            SMALL_MEDIAN_FOOTPRINT_M2,
        )
    large = footprint > LARGE_FOOTPRINT_M2
    if large.any():
        logger.warning(
            "%d buildings have a footprint above %s m² (20 ha under one roof): %s; check the layer's units and CRS "
            "(a footprint in the wrong units gives a demand a million times over)",
            int(large.sum()),
            f"{LARGE_FOOTPRINT_M2:,.0f}",
            _listed(ids[large], [f"{a:,.0f} m²" for a in footprint[large]], sep=", "),
        )
    if isinstance(b, gpd.GeoDataFrame) and len(b) > 1:
        same = pd.Series(footprint_keys(b.geometry)).duplicated(keep="first").to_numpy()
        if same.any():
            logger.warning(
                "%d buildings have the footprint of another one, so their demand counts twice (a layer merged from "
                "two sources?): %s",
                int(same.sum()),
                _listed(ids[same], [f"{a:,.0f} m²" for a in footprint[same]], sep=", "),
            )
    if "building" not in b and len(b):
        logger.warning(
            "The buildings have no 'building' column (the OSM tag): each type comes from its other tags (amenity, "
            "shop, office), its land use or its footprint; check the file's columns"
        )


def footprint_keys(geometry: gpd.GeoSeries) -> np.ndarray:
    """Return a 64-bit key per footprint, equal for equal footprints (vertices in any order or start): duplicates.

    The key hashes the normalised geometry's WKB (:func:`pandas.util.hash_array`); an empty or missing geometry
    has a key of its own kind too, so callers compare only present footprints.
    """
    wkb = geometry.normalize().to_wkb().to_numpy(dtype=object)
    return pd.util.hash_array(wkb, categorize=False)


def era_of_year(year: pd.Series) -> pd.Series:
    """Map construction years to the eras of the specific-demand table (NaN stays NaN)."""
    edges = [b for b, _ in ERA_BINS]
    labels = np.array([lab for _, lab in ERA_BINS] + [LAST_ERA], dtype=object)
    idx = np.searchsorted(edges, year.to_numpy(dtype=float), side="left")
    out = pd.Series(labels[np.minimum(idx, len(labels) - 1)], index=year.index, dtype=object)
    return out.where(year.notna())


def footprint_elongation(geometry: gpd.GeoSeries) -> np.ndarray:
    """Length over width of each footprint's oriented (minimum rotated) rectangle; NaN without a footprint.

    >>> from shapely.geometry import box
    >>> footprint_elongation(gpd.GeoSeries([box(0, 0, 30, 10), box(0, 0, 10, 10)])).tolist()
    [3.0, 1.0]
    """
    geoms = np.asarray(geometry.values, dtype=object)
    n = len(geoms)
    out = np.full(n, np.nan)
    polygonal = np.asarray(shapely.get_type_id(geoms) >= 3) & ~np.asarray(shapely.is_empty(geoms))
    if not polygonal.any():
        return out
    rect = shapely.oriented_envelope(geoms[polygonal])
    coords, idx = shapely.get_coordinates(rect, return_index=True)
    counts = np.bincount(idx, minlength=len(rect))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has3 = counts >= 3
    start = first[has3]
    side_a = np.hypot(*(coords[start + 1] - coords[start]).T)
    side_b = np.hypot(*(coords[start + 2] - coords[start + 1]).T)
    short = np.minimum(side_a, side_b)
    ratio = np.divide(np.maximum(side_a, side_b), short, out=np.full(len(short), np.inf), where=short > 0)
    sub = np.full(len(rect), np.nan)
    sub[has3] = ratio
    out[polygonal] = sub
    return out


@dataclass
class DemandReport:
    """What the demand rule did to a set of buildings; reports of partitions add up with :meth:`merge`.

    Attributes
    ----------
    buildings_read : int
    heated : int
        Buildings given a demand.
    left_out : dict
        Count per reason (keys of :data:`LEFT_OUT_REASONS`).
    left_out_examples : dict
        Up to :data:`MAX_EXAMPLES` building ids per reason.
    implausible_floors : int
        Buildings whose ``building:levels`` or ``height`` was ignored as implausible.
    implausible_examples : list of str
        Up to :data:`MAX_EXAMPLES` of them, with the value.
    unreadable_floors : int
        Buildings whose ``building:levels`` or ``height`` could not be read as a positive number (``-3``,
        ``abc``, ``12 m`` as levels) and was ignored: their floors come from the other tag or the type's default.
    unreadable_examples : list of str
        Up to :data:`MAX_EXAMPLES` of them, with the value.
    type_from, floors_from, era_from : dict
        Heated buildings counted by where their type, floors and era came from.
    unlisted_tags : dict
        Buildings counted by a ``building`` tag value the building-types table does not list (their use taken as
        unknown: typed by the land use around them, else by the footprint rule), most frequent first.
    per_type : dict
        Per demand type: ``buildings``, ``floor_area_m2``, ``annual_demand_mwh``.
    """

    buildings_read: int = 0
    heated: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    left_out_examples: dict[str, list[str]] = field(default_factory=dict)
    implausible_floors: int = 0
    implausible_examples: list[str] = field(default_factory=list)
    unreadable_floors: int = 0
    unreadable_examples: list[str] = field(default_factory=list)
    type_from: dict[str, int] = field(default_factory=dict)
    floors_from: dict[str, int] = field(default_factory=dict)
    era_from: dict[str, int] = field(default_factory=dict)
    unlisted_tags: dict[str, int] = field(default_factory=dict)
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def merge(cls, reports: list[DemandReport]) -> DemandReport:
        """Add up the reports of several partitions (examples: the first ones found)."""
        out = cls()
        for r in reports:
            out.buildings_read += r.buildings_read
            out.heated += r.heated
            out.implausible_floors += r.implausible_floors
            out.implausible_examples = (out.implausible_examples + r.implausible_examples)[:MAX_EXAMPLES]
            out.unreadable_floors += r.unreadable_floors
            out.unreadable_examples = (out.unreadable_examples + r.unreadable_examples)[:MAX_EXAMPLES]
            for mine, theirs in (
                (out.left_out, r.left_out),
                (out.type_from, r.type_from),
                (out.floors_from, r.floors_from),
                (out.era_from, r.era_from),
                (out.unlisted_tags, r.unlisted_tags),
            ):
                for k, v in theirs.items():
                    mine[k] = mine.get(k, 0) + v
            for k, ids in r.left_out_examples.items():
                out.left_out_examples[k] = (out.left_out_examples.get(k, []) + ids)[:MAX_EXAMPLES]
            for t, sums in r.per_type.items():
                totals = out.per_type.setdefault(t, {"buildings": 0, "floor_area_m2": 0.0, "annual_demand_mwh": 0.0})
                for k, amount in sums.items():
                    totals[k] += amount
        return out

    def defaulted_share(self) -> dict[str, float]:
        """Share of the heated buildings whose type, era or floors rest on an assumption, not on their tags."""
        n = max(self.heated, 1)
        return {
            "type": 1.0 - self.type_from.get("tag", 0) / n if self.heated else 0.0,
            "era": self.era_from.get("default era", 0) / n,
            "floors": self.floors_from.get("type default", 0) / n,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready values (with the defaulted shares)."""
        return {
            "buildings_read": self.buildings_read,
            "heated": self.heated,
            "left_out": {k: self.left_out.get(k, 0) for k in LEFT_OUT_REASONS},
            "left_out_reasons": LEFT_OUT_REASONS,
            "left_out_examples": {k: v for k, v in self.left_out_examples.items() if v},
            "implausible_floors": self.implausible_floors,
            "implausible_examples": self.implausible_examples,
            "unreadable_floors": self.unreadable_floors,
            "unreadable_examples": self.unreadable_examples,
            "type_from": self.type_from,
            "floors_from": self.floors_from,
            "era_from": self.era_from,
            "unlisted_building_tags": dict(sorted(self.unlisted_tags.items(), key=lambda kv: (-kv[1], kv[0]))),
            "defaulted_share": self.defaulted_share(),
        }


@dataclass
class DemandEstimate:
    """The heated buildings with their demand, the buildings left out, and the report.

    Attributes
    ----------
    buildings : geopandas.GeoDataFrame
        See :func:`estimate_building_demand`.
    left_out : geopandas.GeoDataFrame
        ``consumer_id``, ``building`` (tag), ``footprint_m2``, ``reason`` (key of :data:`LEFT_OUT_REASONS`) and
        the building's geometry, in the buildings' CRS.
    report : DemandReport
    fallback_ids : dict
        Every heated or left-out building whose tag was ignored, by what was ignored (``implausible_floors``,
        ``unreadable_floors``): its ids (the report keeps a few examples, this keeps them all).
    """

    buildings: gpd.GeoDataFrame
    left_out: pd.DataFrame
    report: DemandReport
    fallback_ids: dict[str, list[str]] = field(default_factory=dict)


def _tag_type(buildings: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Type each building from the first of its tags the table lists (:data:`GENERIC` where none is).

    Returns the type, the tag that gave it, and the ``building`` value the table does not list (NA elsewhere).
    """
    lookup = table["demand_type"]
    result = pd.Series(np.nan, index=buildings.index, dtype=object)
    source = pd.Series("", index=buildings.index, dtype=object)
    for tag in TYPE_TAGS:
        if tag not in buildings.columns:
            continue
        values = buildings[tag].astype("string")
        exact = pd.Series(
            lookup.reindex(pd.MultiIndex.from_arrays([[tag] * len(values), values.fillna("")])).to_numpy(),
            index=buildings.index,
        )
        wildcard = lookup.get((tag, "*"))
        if wildcard is not None:
            exact = exact.where(exact.notna() | values.isna(), wildcard)
        take = result.isna() & exact.notna()
        result[take] = exact[take]
        source[take] = tag + "=" + values[take].astype(str)
    unlisted = pd.Series(pd.NA, index=buildings.index, dtype="string")
    if "building" in buildings.columns:  # a building value not in the table: use unknown
        unknown = result.isna() & buildings["building"].notna()
        source[unknown] = "building=" + buildings.loc[unknown, "building"].astype(str)
        unlisted[unknown] = buildings.loc[unknown, "building"].astype(str)
    result = result.fillna(GENERIC)
    return result, source, unlisted


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_TAG_PATTERNS = {"building:levels": rf"^{_NUMBER}$", "height": rf"^{_NUMBER}\s*(?:m|metres?|meters?)?$"}
"""A value of each numeric tag that is read: a number; a height may end in its unit, metres."""


def _tag_number(values: pd.Series, tag: str) -> tuple[pd.Series, pd.Series]:
    """Read an OSM tag as a positive number: the largest of several (``2;3``), a height with its unit (``12 m``).

    Returns
    -------
    (pandas.Series, pandas.Series)
        The value (NaN where the tag is not given or unreadable) and a mask of the given values that are
        unreadable: not a positive finite number in the tag's form (``-3``, ``abc``, ``0``, ``12 m`` as levels).
    """
    text = values.astype("string").str.strip()
    given = (text.notna() & (text != "")).to_numpy(dtype=bool)
    value = pd.Series(pd.to_numeric(text, errors="coerce"), index=values.index, dtype=float)
    rest = given & np.isnan(value.to_numpy())  # not a plain number: the slow path, for the few such tags
    if rest.any():
        parts = text[rest].str.split(";").explode().str.strip()
        number = parts.str.extract(_TAG_PATTERNS[tag], flags=re.IGNORECASE)[0].astype(float)
        ok = number.notna().groupby(level=0).all()
        value[rest] = number.groupby(level=0).max().where(ok).reindex(value.index[rest]).to_numpy()
    unreadable = given & ~((value > 0) & np.isfinite(value)).to_numpy()
    return value.where(~unreadable), pd.Series(unreadable, index=values.index)


def _explicit_floors(b: pd.DataFrame, settings: Demand) -> tuple[pd.Series, pd.Series, dict[str, pd.Series]]:
    """Floors from building:levels, else height; NaN where neither is given, readable and plausible.

    Returns floors, their source and notes per building (empty where none): ``implausible`` names the values
    above ``max_floors``, ``unreadable`` those not read as a positive number, ``several`` the tags of several
    values whose largest was taken.
    """
    floors = pd.Series(np.nan, index=b.index)
    source = pd.Series("", index=b.index, dtype=object)
    notes = {k: pd.Series("", index=b.index, dtype=object) for k in ("implausible", "unreadable", "several")}
    for col in ("height", "building:levels"):  # levels last: they win
        if col not in b:
            continue
        raw, unreadable = _tag_number(b[col].reset_index(drop=True), col)
        raw.index = unreadable.index = b.index
        shown = b[col].astype(str)
        several = shown.str.contains(";", regex=False) & raw.notna()
        value = np.maximum(np.round(raw / settings.floor_height_m), 1) if col == "height" else raw
        implausible = value > settings.max_floors
        for key, mask, text in (
            ("unreadable", unreadable, f"{col} " + shown.map(repr) + " ignored; "),
            ("several", several, f"{col} " + shown + ": the largest taken; "),
            ("implausible", implausible, f"{col} " + shown + " ignored; "),
        ):
            notes[key][mask] = notes[key][mask] + text[mask]
        ok = raw.notna() & ~implausible
        floors[ok] = value[ok]
        source[ok] = col
    return floors, source, notes


def _residential_kind(
    footprint_m2: np.ndarray, elongation: np.ndarray, floors: np.ndarray, settings: Demand
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the footprint rule to dwellings of unknown kind: their type and the reason in words."""
    s = settings
    conditions = [
        floors >= s.apartment_min_floors,
        footprint_m2 <= s.detached_max_footprint_m2,
        (elongation >= s.row_min_elongation) & (footprint_m2 <= s.row_max_footprint_m2),
    ]
    kind = np.select(conditions, ["apartment_block", "detached", "row"], default="apartment_block")
    why = np.select(
        conditions,
        [
            f"≥ {s.apartment_min_floors:g} floors",
            f"footprint ≤ {s.detached_max_footprint_m2:g} m²",
            f"footprint ≥ {s.row_min_elongation:g}× longer than wide, ≤ {s.row_max_footprint_m2:g} m²",
        ],
        default=f"footprint > {s.detached_max_footprint_m2:g} m², not row-house shaped",
    )
    return kind, why


def _check_tables(settings: Demand) -> dict[str, pd.DataFrame]:
    t = {
        "specific": _read_table(settings.specific_demand_table, "era"),
        "dhw": _read_table(settings.dhw_table, "demand_type"),
        "types": _read_table(settings.building_types_table, ["tag", "value"]),
        "landuse": _read_table(settings.landuse_types_table, "landuse"),
        "floors": _read_table(settings.floors_table, "demand_type"),
    }
    known = set(t["specific"].columns)
    for name, value, allowed in (
        ("default_type", settings.default_type, t["specific"].columns),
        ("default_era", settings.default_era, t["specific"].index),
    ):
        if value not in allowed:
            raise InputDataError(f"'demand.{name}' is {value!r}; allowed: {', '.join(map(str, allowed))}")
    for key, table, col, extra in (
        ("building_types_table", t["types"], "demand_type", {UNHEATED, RESIDENTIAL, GENERIC}),
        ("landuse_types_table", t["landuse"], "demand_type", {RESIDENTIAL}),
    ):
        bad = sorted(set(table[col]) - known - extra)
        if bad:
            raise InputDataError(
                f"{getattr(settings, key)}: demand types {', '.join(bad)} are not columns of "
                f"{settings.specific_demand_table} ({', '.join(sorted(known))}) nor {', '.join(sorted(extra))}"
            )
    floors = pd.to_numeric(t["floors"]["default_floors"], errors="coerce")
    if not (floors.notna() & np.isfinite(floors) & (floors >= 1)).all():
        raise InputDataError(f"{settings.floors_table}: default_floors must be a number ≥ 1 on every row")
    given = settings.floors_by_type or {}
    for name, n_floors in given.items():
        if name not in known:
            raise InputDataError(f"'demand.floors_by_type' names {name!r}; allowed: {', '.join(sorted(known))}")
        if isinstance(n_floors, bool) or not isinstance(n_floors, int | float) or not 1 <= n_floors < float("inf"):
            raise InputDataError(f"'demand.floors_by_type.{name}' is {n_floors!r}; give a number of floors ≥ 1")
    t["floors"] = pd.DataFrame({"default_floors": floors.astype(float)})
    for name, n_floors in given.items():
        t["floors"].loc[name, "default_floors"] = float(n_floors)
    return t


def estimate_demand(buildings: gpd.GeoDataFrame, settings: Demand) -> DemandEstimate:
    """Estimate annual heat demand and peak load of buildings from footprints and OSM tags (module rule).

    Parameters
    ----------
    buildings
        Building footprints in a metric CRS, with OSM tag columns where known (``building``,
        ``building:levels``, ``height``, ``start_date``, ``amenity``, ``shop``, ``office``, ``name``), the
        ``landuse`` around each building where known, and a unique ``id``.
    settings
        The scenario's demand settings.

    Returns
    -------
    DemandEstimate
    """
    if buildings.crs is None or not buildings.crs.is_projected:
        raise InputDataError("buildings must be in a metric (projected) CRS before estimating demand")
    if "id" not in buildings.columns:
        raise InputDataError("buildings need an 'id' column (unique per building)")
    tables = _check_tables(settings)
    b = buildings
    ids = b["id"].astype(str)
    footprint = b.geometry.area.to_numpy(dtype=float)
    has_footprint = np.asarray(shapely.get_type_id(np.asarray(b.geometry.values, dtype=object)) >= 3) & (footprint > 0)

    _warn_of_doubtful_input(b, ids, footprint)
    # 1. type
    btype, type_tag, unlisted = _tag_type(b, tables["types"])
    explicit, floors_source, floor_notes = _explicit_floors(b, settings)
    implausible_note, unreadable_note = floor_notes["implausible"], floor_notes["unreadable"]
    inferred = btype.isin([RESIDENTIAL, GENERIC]).to_numpy()
    type_from = np.where(inferred, "footprint rule", "tag").astype(object)
    type_note = type_tag.copy()
    if settings.infer_type:
        landuse_map = tables["landuse"]["demand_type"]
        landuse = b["landuse"].astype("string") if "landuse" in b else pd.Series(pd.NA, index=b.index, dtype="string")
        from_landuse = pd.Series(landuse_map.reindex(landuse.fillna("")).to_numpy(), index=b.index)
        generic = (btype == GENERIC).to_numpy()
        by_landuse = generic & from_landuse.notna().to_numpy() & (from_landuse != RESIDENTIAL).to_numpy()
        btype[by_landuse] = from_landuse[by_landuse]
        type_from[by_landuse] = "land use"
        type_note[by_landuse] = type_note[by_landuse] + " in landuse=" + landuse[by_landuse].astype(str)
        dwelling = inferred & ~by_landuse
        kind, why = _residential_kind(
            footprint[dwelling], footprint_elongation(b.geometry[dwelling]), explicit.to_numpy()[dwelling], settings
        )
        btype[dwelling] = kind
        why_note = pd.Series(why, index=btype.index[dwelling])
        type_note[dwelling] = type_note[dwelling] + " → " + why_note + " (footprint rule)"
    else:
        btype[inferred] = settings.default_type
        type_from[inferred] = "default"
        type_note[inferred] = type_note[inferred] + " → demand.default_type"
    type_note = type_note.str.lstrip()

    # 2. left out
    metered = np.full(len(b), np.nan)
    if settings.metered_column and settings.metered_column in b:
        metered = pd.to_numeric(b[settings.metered_column], errors="coerce").to_numpy(dtype=float)
    has_metered = np.isfinite(metered) & (metered >= 0)
    reason = np.full(len(b), "", dtype=object)
    reason[(btype == UNHEATED).to_numpy()] = "unheated_tag"
    small = inferred & (footprint < settings.min_heated_footprint_m2) & has_footprint
    reason[(reason == "") & small] = "below_min_footprint"
    reason[(reason == "") & ~has_footprint] = "no_footprint"
    if settings.nested_buildings == "leave_out" and "inside_building" in b:
        reason[(reason == "") & b["inside_building"].notna().to_numpy()] = "inside_another"
    reason[has_metered] = ""

    # 3. floors: explicit, else the type's default
    by_type = pd.to_numeric(tables["floors"]["default_floors"]).reindex(btype).to_numpy(dtype=float)
    floors = explicit.to_numpy(copy=True)
    defaulted = np.isnan(floors)
    floors[defaulted] = np.where(np.isnan(by_type[defaulted]), settings.default_floors, by_type[defaulted])
    floors_source[defaulted] = "type default"

    # 4.–6. area, era, demand
    year = _year(b["start_date"]) if "start_date" in b else pd.Series(np.nan, index=b.index)
    if "start_date" in b:
        _warn_of_years(b["start_date"], year, ids, settings.default_era)
    era = era_of_year(year)
    era_source = np.where(era.notna(), "start_date", "default era")
    era = era.fillna(settings.default_era)
    area = footprint * floors
    heated_type = btype.where(btype != UNHEATED, settings.default_type)  # unheated rows are dropped below
    spec = tables["specific"].stack().reindex(pd.MultiIndex.from_arrays([era, heated_type])).to_numpy(dtype=float)
    dd_factor = settings.degree_days / settings.reference_degree_days
    space = area * spec * dd_factor / 1000.0
    dhw_rate = tables["dhw"]["dhw_kwh_per_m2"].reindex(heated_type).to_numpy(dtype=float)
    hot_water = area * np.nan_to_num(dhw_rate) / 1000.0
    method = (
        "OSM footprint; type from "
        + type_note.astype(str)
        + "; floors from "
        + floors_source
        + "; era from "
        + pd.Series(era_source, index=b.index, dtype=str)
        + f"; degree days {settings.degree_days:g}/{settings.reference_degree_days:g}"
    )
    for key, note in floor_notes.items():
        method = method.where(note == "", method + f"; {key} " + note.str.rstrip("; "))
    if has_metered.any():
        estimate = space + hot_water
        scale = np.divide(metered, estimate, out=np.ones_like(metered), where=has_metered & (estimate > 0))
        space = np.where(has_metered, space * scale, space)
        hot_water = np.where(has_metered, hot_water * scale, hot_water)
        # metered, no estimate to split by (a point, an unheated tag): all of it counts as space heat
        no_split = has_metered & ~(estimate > 0)
        space, hot_water = np.where(no_split, metered, space), np.where(no_split, 0.0, hot_water)
        method = method.where(~has_metered, f"metered ({settings.metered_column})")
    annual = np.nan_to_num(space + hot_water)
    reason[(reason == "") & ~(annual > 0)] = "zero_demand"
    if settings.peak_method == "design_temperature":
        heating_k = settings.base_temperature_c - settings.design_temperature_c
        peak = space * 1000.0 * heating_k / (24.0 * settings.degree_days) + hot_water * 1000.0 / 8760.0
        method += f"; peak at {settings.design_temperature_c:g} °C (degree-day method)"
    else:
        peak = annual * 1000.0 / settings.full_load_hours_h
        method += f"; peak = annual / {settings.full_load_hours_h:g} h"

    keep = reason == ""
    out = gpd.GeoDataFrame(
        {
            "consumer_id": ids.to_numpy()[keep],
            "name": b["name"].fillna("").astype(str).to_numpy()[keep] if "name" in b else "",
            "building_type": btype.to_numpy()[keep],
            "era": era.to_numpy()[keep],
            "floors": floors[keep],
            "floor_area_m2": area[keep],
            "space_heat_mwh": space[keep],
            "dhw_mwh": hot_water[keep],
            "annual_demand_mwh": annual[keep],
            "peak_load_kw": peak[keep],
            "demand_method": method.to_numpy()[keep],
        },
        geometry=b.geometry.to_numpy()[keep],
        crs=buildings.crs,
    )
    tag = b["building"].astype(str).to_numpy() if "building" in b else np.full(len(b), "")
    left_out = gpd.GeoDataFrame(
        {"consumer_id": ids.to_numpy()[~keep], "building": tag[~keep], "footprint_m2": footprint[~keep]},
        geometry=b.geometry.to_numpy()[~keep],
        crs=buildings.crs,
    )
    left_out["reason"] = reason[~keep]
    report = _report(out, left_out, type_from[keep], floors_source.to_numpy()[keep], era_source[keep])
    report.buildings_read = len(b)
    report.unlisted_tags = {str(k): int(v) for k, v in unlisted[keep].value_counts().items()}
    flagged = (implausible_note != "").to_numpy()
    report.implausible_floors = int(flagged.sum())
    report.implausible_examples = (ids[flagged] + " (" + implausible_note[flagged].str.rstrip("; ") + ")").tolist()[
        :MAX_EXAMPLES
    ]
    unread = (unreadable_note != "").to_numpy()
    report.unreadable_floors = int(unread.sum())
    report.unreadable_examples = (ids[unread] + " (" + unreadable_note[unread].str.rstrip("; ") + ")").tolist()[
        :MAX_EXAMPLES
    ]
    if report.implausible_floors:
        logger.warning(
            "%d buildings with implausible floors (above demand.max_floors %g) got their type's default: %s",
            report.implausible_floors,
            settings.max_floors,
            "; ".join(report.implausible_examples),
        )
    if report.unreadable_floors:
        logger.warning(
            "%d buildings with building:levels or height that is not a positive number got their floors from the "
            "other tag or their type's default (fix the OSM tags, or give the consumers in a file): %s%s",
            report.unreadable_floors,
            "; ".join(report.unreadable_examples),
            f" and {report.unreadable_floors - MAX_EXAMPLES} more" if report.unreadable_floors > MAX_EXAMPLES else "",
        )
    logger.info(
        "Estimated demand of %d heated buildings (%d left out: %s): %.0f MWh/a",
        len(out),
        len(left_out),
        ", ".join(f"{v} {k}" for k, v in report.left_out.items() if v) or "none",
        out.annual_demand_mwh.sum(),
    )
    fallback_ids = {"implausible_floors": ids[flagged].tolist(), "unreadable_floors": ids[unread].tolist()}
    return DemandEstimate(out, left_out, report, {k: v for k, v in fallback_ids.items() if v})


def _report(
    out: gpd.GeoDataFrame, left_out: pd.DataFrame, type_from: np.ndarray, floors_from: np.ndarray, era_from: np.ndarray
) -> DemandReport:
    def counts(values: np.ndarray) -> dict[str, int]:
        return {str(k): int(v) for k, v in pd.Series(values).value_counts().items()}

    per_type = (
        out.assign(buildings=1)
        .groupby("building_type")[["buildings", "floor_area_m2", "annual_demand_mwh"]]
        .sum()
        .to_dict(orient="index")
    )
    return DemandReport(
        heated=len(out),
        left_out=counts(left_out.reason.to_numpy()),
        left_out_examples={str(k): g.consumer_id.head(MAX_EXAMPLES).tolist() for k, g in left_out.groupby("reason")},
        type_from=counts(type_from),
        floors_from=counts(floors_from),
        era_from=counts(era_from),
        per_type={
            t: {k: (int(v) if k == "buildings" else float(v)) for k, v in sums.items()} for t, sums in per_type.items()
        },
    )


def estimate_building_demand(buildings: gpd.GeoDataFrame, settings: Demand) -> gpd.GeoDataFrame:
    """Estimate annual heat demand and peak load of buildings from footprints and OSM tags.

    Parameters
    ----------
    buildings
        As for :func:`estimate_demand`.
    settings
        The scenario's demand settings.

    Returns
    -------
    geopandas.GeoDataFrame
        The heated buildings with ``consumer_id``, ``name``, ``building_type``, ``era``, ``floors``,
        ``floor_area_m2``, ``space_heat_mwh``, ``dhw_mwh``, ``annual_demand_mwh``, ``peak_load_kw`` and
        ``demand_method``; the buildings left out are counted in ``attrs["demand_report"]`` (a
        :meth:`DemandReport.to_dict`) and listed by reason in ``attrs["left_out_ids"]``
        (``left_out_<reason>`` → ids); the tags ignored (:attr:`DemandEstimate.fallback_ids`) are in
        ``attrs["fallbacks"]``: per kind, its ``count``, what was done (``rule``) and every building's ``ids``.
    """
    est = estimate_demand(buildings, settings)
    est.buildings.attrs["demand_report"] = est.report.to_dict()
    est.buildings.attrs["fallbacks"] = {
        kind: {"count": len(ids), "rule": FALLBACK_RULES[kind], "ids": ids} for kind, ids in est.fallback_ids.items()
    }
    est.buildings.attrs["left_out_ids"] = {
        f"left_out_{reason}": sorted(group.consumer_id) for reason, group in est.left_out.groupby("reason")
    }
    return est.buildings


def plausibility(report: DemandReport, statistics_table: Path) -> list[dict[str, Any]]:
    """Compare the estimate per type with published Finnish figures (``data/demand_statistics_fi.csv``).

    Parameters
    ----------
    report
        The report of the estimate (its sums per type).
    statistics_table
        Table of ``demand_type``, ``mean_floor_area_m2``, ``heat_kwh_per_m2``, ``mean_heat_mwh_per_building``,
        ``source``.

    Returns
    -------
    list of dict
        Per type in the table: the estimate's buildings, mean floor area, kWh per floor m² and MWh per building,
        the published figures, and the estimate's ratios to them.
    """
    stats = _read_table(statistics_table, "demand_type")
    rows = []
    for t, ref in stats.iterrows():
        s = report.per_type.get(str(t))
        if not s or not s["buildings"]:
            continue
        n, area, mwh = s["buildings"], s["floor_area_m2"], s["annual_demand_mwh"]
        kwh_m2 = mwh * 1000 / area if area > 0 else float("nan")
        rows.append(
            {
                "demand_type": str(t),
                "buildings": int(n),
                "mean_floor_area_m2": area / n,
                "heat_kwh_per_m2": kwh_m2,
                "mean_heat_mwh_per_building": mwh / n,
                "reference_mean_floor_area_m2": float(ref.mean_floor_area_m2),
                "reference_heat_kwh_per_m2": float(ref.heat_kwh_per_m2),
                "reference_mean_heat_mwh_per_building": float(ref.mean_heat_mwh_per_building),
                "ratio_heat_kwh_per_m2": kwh_m2 / float(ref.heat_kwh_per_m2),
                "ratio_mean_heat_mwh_per_building": mwh / n / float(ref.mean_heat_mwh_per_building),
                "reference_source": str(ref.source),
            }
        )
    return rows

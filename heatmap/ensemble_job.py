"""Run a study over uncertain inputs (``heatmap ensemble``): many variants of one study, on Dask, one table.

A vary file (YAML) names the study's uncertain inputs by their dotted path in the study (``economics.discount_rate``,
``year.electricity_price_scale``, ``economics.fuel_prices_eur_per_mwh.milled_peat``,
``sources.boliden_acid_heat.availability``, ``consumers.town_dh.annual_demand_mwh``: a list of units is entered by
its unit's id) and how each varies: ``values`` (a list), ``range: [low, high]`` (uniform between) or
``scale: [low, high]`` (the study's own value times a uniform factor). ``method: lhs`` draws ``samples`` variants
by Latin hypercube sampling (:class:`scipy.stats.qmc.LatinHypercube`, with the file's ``seed``: the same seed gives
the same variants); ``method: grid`` takes every combination of the inputs' ``values`` or ``levels`` evenly
spaced points of their range. Whole-number settings (``lifetime_a``) take the value rounded.

Each variant is the study with its values applied and validated again as a study file (:func:`apply_values`), run
as ``heatmap study`` runs it (:func:`heatmap.study_job.study_parts`, the network planned by
:func:`heatmap.plan.plan_from_scenario`, the concepts' year on it by :func:`heatmap.energy.concepts.run_concepts`);
the matches are left out (no key figure comes from them). A worker plans a network once per distinct plan
scenario: a variant whose values leave the derived plan scenario unchanged (a CO₂ or fuel price, a source off the
network) reuses the network planned for an earlier variant with that same scenario, which is the network it would
plan (the planning is deterministic); any other variant is planned again. The variants run as Dask tasks
(:func:`run_ensemble`), each returning its key figures or its error: a variant that fails is reported and the
others go on. The results are ordered by variant, so they do not depend on which worker ran what.

Key figures per concept (:data:`FIGURES`): the net present value against the reference (boilers only): the
yearly total cost saved times the present-value factor of the study's discount rate and lifetime; the cost of
heat (LCOH), the excess-heat share, CO₂, the peat displaced, the total cost and the investment. The sensitivity is
taken over the finished variants, not one input at a time: the Spearman rank correlation of each input with each
figure, and the swing of a least-squares linear fit of the figure on all inputs (how far the figure moves as the
input goes from its lowest to its highest value, the others held); the tornado chart draws the NPV's swings.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, PrivateAttr, model_validator

from heatmap._errors import HeatmapError, ScenarioError
from heatmap._kept import Warned, kept_warnings, log_again
from heatmap.scenario import SettingsModel
from heatmap.study import Study

logger = logging.getLogger(__name__)

FIGURES: dict[str, str] = {
    "npv_meur": "NPV against the reference (M€)",
    "lcoh_eur_per_mwh": "cost of heat (€/MWh delivered)",
    "excess_heat_share_pct": "excess-heat share (%)",
    "co2_kt_per_a": "CO₂ (kt/a)",
    "peat_displaced_gwh": "peat displaced (GWh/a)",
    "total_cost_meur_per_a": "total cost (M€/a)",
    "investment_meur": "investment (M€)",
}
"""The key figures of every concept in every variant, with their labels."""

QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
"""The quantiles of distribution.csv."""

MAX_VARIANTS = 10_000
"""The most variants one ensemble runs."""

OUTPUT_FILES = ("variants.csv", "distribution.csv", "cheapest.csv", "sensitivity.csv", "failures.csv",
                "tornado.png", "summary.json")  # fmt: skip
"""The files :func:`write_ensemble` writes."""

FREE_KEYS = {"economics.fuel_prices_eur_per_mwh"}
"""Sections of the study whose keys are names (a fuel's price), so a path may name one the study does not give."""

SENSITIVITY_METHOD = (
    "over the finished variants (not one-at-a-time): Spearman rank correlation of each input with each figure, and "
    "the swing of a least-squares linear fit of the figure on every input scaled to its lowest…highest value "
    "(the figure's change over the input's range, the others held); the tornado chart draws the swing of the NPV"
)


class VaryInput(SettingsModel):
    """One uncertain input: where it is in the study and how it varies."""

    path: str = Field(min_length=1, description="dotted path in the study, e.g. economics.discount_rate")
    name: str | None = Field(None, min_length=1, description="column name in the tables (default: the path)")
    values: list[float] | None = Field(None, min_length=1, description="the values it takes (each equally likely)")
    range: list[float] | None = Field(None, min_length=2, max_length=2, description="[low, high], uniform")
    scale: list[float] | None = Field(
        None, min_length=2, max_length=2, description="[low, high] factor on the study's own value, uniform"
    )
    levels: int | None = Field(None, ge=2, le=1000, description="grid: evenly spaced points of range or scale")
    note: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> VaryInput:
        given = [k for k in ("values", "range", "scale") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give one of values, range or scale")
        ends = self.range or self.scale
        if ends is not None and not ends[0] < ends[1]:
            raise ValueError(f"{given[0]} [{ends[0]:g}, {ends[1]:g}]: low must be below high")
        if self.values is not None and self.levels is not None:
            raise ValueError("levels go with range or scale; values are the levels themselves")
        return self

    @property
    def label(self) -> str:
        """The input's column name."""
        return self.name or self.path


class VaryFile(SettingsModel):
    """How a study varies: the inputs and the sampling (``heatmap ensemble --vary``)."""

    method: Literal["lhs", "grid"] = Field(description="lhs: Latin hypercube sample; grid: every combination")
    samples: int | None = Field(None, ge=1, le=MAX_VARIANTS, description="lhs: number of variants")
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, description="lhs: seed of the sample (the same seed, the same variants)"
    )
    inputs: list[VaryInput] = Field(min_length=1)
    _base_dir: Path = PrivateAttr(default=Path("."))
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _method(self) -> VaryFile:
        labels, paths = [i.label for i in self.inputs], [i.path for i in self.inputs]
        dup = sorted({x for x in labels if labels.count(x) > 1} | {p for p in paths if paths.count(p) > 1})
        if dup:
            raise ValueError(f"every input once: repeated {', '.join(dup)}")
        if self.method == "lhs":
            if self.samples is None or self.seed is None:
                raise ValueError("method lhs needs samples and seed (the same seed gives the same variants)")
            if any(i.levels is not None for i in self.inputs):
                raise ValueError("levels are for method grid; lhs samples range and scale uniformly")
        else:
            if self.samples is not None or self.seed is not None:
                raise ValueError("method grid takes no samples or seed (it runs every combination)")
            flat = [i.label for i in self.inputs if i.values is None and i.levels is None]
            if flat:
                raise ValueError(f"method grid needs values or levels for every input; missing for {', '.join(flat)}")
            n = math.prod(len(i.values) if i.values is not None else int(i.levels or 0) for i in self.inputs)
            if n > MAX_VARIANTS:
                raise ValueError(f"the grid has {n} variants, more than {MAX_VARIANTS}; use fewer levels or lhs")
        return self


@dataclass(frozen=True)
class Variant:
    """One variant: its number and the value of each input (by dotted path)."""

    id: int
    values: dict[str, float]


@dataclass
class VariantResult:
    """What a variant gave: its key figures per concept, or its error."""

    id: int
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    """Concept → figure → value."""
    error: str | None = None
    time_s: float = 0.0
    network_reused: bool = False
    warned: Warned = field(default_factory=Warned)
    """What the variant warned of (:func:`run_variant`), for the process that gathers the results to show."""


@dataclass
class Ensemble:
    """The finished ensemble: its inputs, variants and results (in variant order)."""

    study: Study
    vary: VaryFile
    variants: list[Variant]
    results: list[VariantResult]
    time_s: float
    workers: int
    scheduler: str

    @property
    def concepts(self) -> list[str]:
        """The concepts in the study's order (the reference first)."""
        done = next((r for r in self.results if r.error is None), None)
        return list(done.figures) if done is not None else []


# ---------------------------------------------------------------------------------------------- vary file ---


def read_vary(path: str | Path, study: Study) -> VaryFile:
    """Read a vary file and check each input against the study; errors name the file and the input.

    Each input's path must name a number of the study, and its lowest and highest value (each alone, the rest of
    the study as it is) must be accepted by the study's own checks.

    Raises
    ------
    heatmap._errors.ScenarioError
        Naming the vary file, the input and what to fix.
    """
    from heatmap.energy.energy_scenario import settings_from_file

    vary, _ = settings_from_file(path, VaryFile)
    vary._path = Path(path)
    named: dict[str, str] = {}  # each number's path with its units named by id → the input that varies it
    for inp in vary.inputs:
        where = f"{path}: inputs[{inp.label}]"
        keys: list[str] = []
        base = study_value(study, inp.path, where=where, canonical=keys)
        if keys == ["year", "year"]:
            raise ScenarioError(
                f"{where}: year.year cannot be varied: the study's hourly files hold the hours of one year; run the "
                "study once per year instead"
            )
        same = named.setdefault(".".join(keys), inp.label)
        if same != inp.label:
            raise ScenarioError(
                f"{where}: {inp.path} is the number inputs[{same}] varies ({'.'.join(keys)}, its unit named by id); "
                "vary each number once"
            )
        if inp.scale is not None and base is None:
            raise ScenarioError(f"{where}: the study gives no value at {inp.path} to scale; give range or values")
        for value in _ends(inp, base):
            try:
                apply_values(study, {inp.path: value})
            except ScenarioError as exc:
                raise ScenarioError(f"{where}: the study refuses {inp.path} = {value:g}: {exc}") from None
    logger.info("Read vary file %s: %s of %d inputs", path, vary.method, len(vary.inputs))
    return vary


def _ends(inp: VaryInput, base: float | None) -> list[float]:
    if inp.values is not None:
        return sorted(set(inp.values))
    if inp.range is not None:
        return list(inp.range)
    assert inp.scale is not None and base is not None  # VaryInput._one_way; read_vary checks the base
    return [base * inp.scale[0], base * inp.scale[1]]


def _locate(data: Any, path: str, where: str, *, canonical: list[str] | None = None) -> tuple[Any, str | int]:
    """Return the container holding the path's last key, and that key (a list of units is entered by id or name).

    ``canonical``, where given, receives the path's keys with each unit named by its id (or by its name where it has
    none): two paths to one number have the same.
    """
    keys = path.split(".")
    node = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            index = next((j for j, item in enumerate(node) if isinstance(item, dict) and key in
                          (item.get("id"), item.get("name"))), None)  # fmt: skip
            if index is None:
                known = [str(item.get("id", item.get("name"))) for item in node if isinstance(item, dict)]
                raise ScenarioError(f"{where}: {'.'.join(keys[:i])} has no unit {key!r}; known: {', '.join(known)}")
            if last:
                raise ScenarioError(f"{where}: {path} names a whole unit; name one of its numbers")
            node = node[index]
            if canonical is not None:
                canonical.append(str(node.get("id") or node.get("name")))
        elif isinstance(node, dict):
            if canonical is not None:
                canonical.append(key)
            if last and key not in node and ".".join(keys[:i]) in FREE_KEYS:
                node[key] = None  # a fuel without a price of the study's own (the study's schema checks its name)
            if key not in node:
                raise ScenarioError(
                    f"{where}: {path}: the study has no {key!r} at {'.'.join(keys[:i]) or 'the top'}; "
                    f"known: {', '.join(map(str, node))}"
                )
            if last:
                return node, key
            node = node[key]
        else:
            raise ScenarioError(f"{where}: {path}: {'.'.join(keys[:i])} is no section (it holds {node!r})")
    raise AssertionError("unreachable")  # the loop returns at the last key


def study_value(study: Study, path: str, *, where: str = "vary", canonical: list[str] | None = None) -> float | None:
    """Return the study's number at a dotted path (``None`` where the study leaves it to a preset or default).

    ``canonical`` receives the path with its units named by id (:func:`_locate`).

    Raises
    ------
    heatmap._errors.ScenarioError
        Where the path names nothing of the study, or no number.
    """
    node, key = _locate(study.model_dump(), path, where, canonical=canonical)
    value = node[key]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ScenarioError(f"{where}: {path} holds {value!r}, not a number; name a number of the study")
    return None if value is None else float(value)


def apply_values(study: Study, values: dict[str, float]) -> Study:
    """Return the study with the values set at their dotted paths, validated again as a study file is.

    Whole-number settings take the value rounded. The study itself is not changed (settings are frozen).

    Raises
    ------
    heatmap._errors.ScenarioError
        Where a path names nothing of the study, or the study's checks refuse the values.
    """
    from heatmap.energy.energy_scenario import energy_scenario_from_dict

    full = study.model_dump()
    data = study.model_dump(exclude_unset=True)
    for path, value in values.items():
        node, key = _locate(full, path, "vary")
        base = node[key]
        if isinstance(base, bool) or (base is not None and not isinstance(base, int | float)):
            raise ScenarioError(f"vary: {path} holds {base!r}, not a number")
        new: float | int = int(round(value)) if _is_whole(node, key) else float(value)
        _set(data, full, path, new)
    out = energy_scenario_from_dict(data, base_dir=study._base_dir, origin=study._origin, model=Study)
    out._path = study._path
    return out


def _is_whole(node: Any, key: str | int) -> bool:
    """Whether the setting at ``node[key]`` takes whole numbers (its value is an int, not a bool)."""
    return isinstance(node[key], int) and not isinstance(node[key], bool)


def _set(data: Any, full: Any, path: str, value: float | int) -> None:
    """Set ``value`` at ``path`` in the sparse dump ``data`` (the keys the file gave), following ``full``."""
    keys = path.split(".")
    node, whole = data, full
    for key in keys[:-1]:
        if isinstance(whole, list):
            index = next(j for j, item in enumerate(whole) if key in (item.get("id"), item.get("name")))
            node, whole = node[index], whole[index]
        else:
            if key not in node:
                node[key] = {}
            node, whole = node[key], whole[key]
    node[keys[-1]] = value


# ------------------------------------------------------------------------------------------------ variants ---


def sample_unit(n_inputs: int, samples: int, seed: int) -> np.ndarray:
    """Return a Latin hypercube sample in [0, 1): ``samples`` rows, one column per input, one point per stratum.

    Each column has exactly one point in each of the ``samples`` equal strata of [0, 1); the same seed gives the
    same sample (:class:`scipy.stats.qmc.LatinHypercube`).
    """
    from scipy.stats import qmc

    return np.asarray(qmc.LatinHypercube(d=n_inputs, rng=np.random.default_rng(seed)).random(samples))


def make_variants(vary: VaryFile, study: Study) -> list[Variant]:
    """Return the variants of the vary file: its Latin hypercube sample or its grid, numbered from 1.

    A whole-number setting (a lifetime in years) takes its values rounded, as the variant runs it.
    """
    bases = {i.path: study_value(study, i.path) for i in vary.inputs}
    full = study.model_dump()
    whole = {i.path for i in vary.inputs if _is_whole(*_locate(full, i.path, "vary"))}

    def level(inp: VaryInput, u: float) -> float:
        if inp.values is not None:
            return float(inp.values[min(int(u * len(inp.values)), len(inp.values) - 1)])
        lo, hi = inp.range or inp.scale or (0.0, 0.0)
        x = lo + u * (hi - lo)
        return x * float(bases[inp.path] or 0.0) if inp.scale is not None else x

    if vary.method == "lhs":
        assert vary.samples is not None and vary.seed is not None  # VaryFile._method
        unit = sample_unit(len(vary.inputs), vary.samples, vary.seed)
        rows = [[level(inp, float(u)) for inp, u in zip(vary.inputs, row, strict=True)] for row in unit]
    else:
        axes = []
        for inp in vary.inputs:
            if inp.values is not None:
                axes.append([float(v) for v in inp.values])
            else:
                assert inp.levels is not None  # VaryFile._method: grid inputs have values or levels
                axes.append([level(inp, float(u)) for u in np.linspace(0.0, 1.0, inp.levels)])
        rows = [list(combo) for combo in itertools.product(*axes)]
    variants = [Variant(k + 1, {inp.path: float(round(v)) if inp.path in whole else v for inp, v in
                                zip(vary.inputs, row, strict=True)}) for k, row in enumerate(rows)]  # fmt: skip
    logger.info("%d variants (%s) of %d inputs", len(variants), vary.method, len(vary.inputs))
    return variants


# ------------------------------------------------------------------------------------------- one variant ---

_PLANS: OrderedDict[str, Any] = OrderedDict()
"""This process's networks planned, by the digest of their plan scenario (the last two kept)."""


def _plan_key(scenario: Any) -> str:
    text = scenario.model_dump_json() + str(getattr(scenario, "_base_dir", ""))
    return hashlib.sha256(text.encode()).hexdigest()


def _planned(scenario: Any) -> tuple[Any, bool]:
    """Plan the network of a plan scenario, or return the one this process planned for an equal scenario."""
    from heatmap.plan import plan_from_scenario

    key = _plan_key(scenario)
    if key in _PLANS:
        _PLANS.move_to_end(key)
        return _PLANS[key], True
    plan = plan_from_scenario(scenario)
    _PLANS[key] = plan
    while len(_PLANS) > 2:
        _PLANS.popitem(last=False)
    return plan, False


def concept_figures(concepts: Any, study: Study) -> dict[str, dict[str, float]]:
    """Return the key figures (:data:`FIGURES`) of every concept of a concept study, the reference first.

    The NPV is against the reference: the total cost saved per year times the present-value factor
    1 / annuity factor of the study's discount rate and lifetime (NaN where the costs are not comparable).
    """
    from heatmap.economics import annuity_factor

    pv = 1.0 / annuity_factor(study.economics.discount_rate, study.economics.lifetime_a)
    table = concepts.comparison.set_index("concept")
    impact = concepts.impact.set_index("concept")
    reference = float(table.total_cost_meur_per_a.iloc[0])
    out: dict[str, dict[str, float]] = {}
    for name, row in table.iterrows():
        out[str(name)] = {
            "npv_meur": (reference - float(row.total_cost_meur_per_a)) * pv,
            "lcoh_eur_per_mwh": float(row.cost_of_heat_eur_per_mwh),
            "excess_heat_share_pct": float(row.excess_heat_share_pct),
            "co2_kt_per_a": float(row.co2_kt_per_a),
            "peat_displaced_gwh": float(impact.peat_displaced_gwh.get(name, 0.0)),
            "total_cost_meur_per_a": float(row.total_cost_meur_per_a),
            "investment_meur": float(row.investment_meur),
        }
    return out


def run_variant(study: Study, variant: Variant) -> VariantResult:
    """Run one variant: the study with its values, planned and its concepts run as ``heatmap study`` does.

    Never raises: a variant that fails returns its error (the type and message), so the others go on.
    """
    from heatmap.energy.concepts import run_concepts
    from heatmap.study_job import study_parts

    t0 = time.perf_counter()
    with kept_warnings() as warned:
        try:
            the_study = apply_values(study, variant.values)
            parts = study_parts(the_study)
            plan, reused = _planned(parts.plan)
            concepts = run_concepts(parts.concepts, plan=plan)
            figures = concept_figures(concepts, the_study)
        except Exception as exc:  # a variant that fails is reported and the ensemble goes on (issue: never ends it)
            message = str(exc) if isinstance(exc, HeatmapError) else f"{type(exc).__name__}: {exc}"
            logger.info("Variant %d failed: %s", variant.id, message)
            return VariantResult(variant.id, error=message, time_s=time.perf_counter() - t0, warned=warned)
    logger.info("Variant %d done in %.1f s (network %s)", variant.id, time.perf_counter() - t0,
                "reused" if reused else "planned")  # fmt: skip
    return VariantResult(variant.id, figures, None, time.perf_counter() - t0, reused, warned)


# ---------------------------------------------------------------------------------------------- ensemble ---


def run_ensemble(
    study: Study,
    vary: VaryFile,
    variants: Sequence[Variant],
    *,
    client: Any = None,
    progress: Callable[[VariantResult], None] | None = None,
) -> Ensemble:
    """Run every variant, as Dask tasks on ``client`` or one by one in this process (``client=None``).

    Parameters
    ----------
    study
        The validated study.
    vary
        Its vary file (:func:`read_vary`).
    variants
        The variants to run (:func:`make_variants`).
    client
        A ``distributed.Client``: the study is sent to every worker once and each variant is one task.
    progress
        Called with each variant's result as it finishes (in the order they finish).

    Returns
    -------
    Ensemble
        The results in variant order; a failed variant (or a task lost with its worker) holds its error.
    """
    t0 = time.perf_counter()
    results: dict[int, VariantResult] = {}

    def done(result: VariantResult) -> None:
        results[result.id] = result
        if progress is not None:
            progress(result)

    if client is None:
        workers, scheduler = 1, "this process (one by one)"
        for v in variants:
            done(run_variant(study, v))
    else:
        from distributed import as_completed

        info = client.scheduler_info()
        workers, scheduler = len(info.get("workers", {})), str(info.get("address", "?"))
        shared = client.scatter(study, broadcast=True)
        futures = {client.submit(run_variant, shared, v, pure=False): v for v in variants}
        for future in as_completed(futures):
            try:
                result = future.result()
                log_again(logger, result.warned)
                done(result)
            except Exception as exc:  # the task itself was lost (its worker died): reported like a failure
                done(VariantResult(futures[future].id, error=f"{type(exc).__name__}: {exc}"))
    ordered = [results[v.id] for v in variants]
    failed = sum(r.error is not None for r in ordered)
    elapsed = time.perf_counter() - t0
    logger.info("Ensemble of %d variants on %s: %d failed, %.1f s", len(ordered), scheduler, failed, elapsed)
    return Ensemble(study, vary, list(variants), ordered, elapsed, workers, scheduler)


def variants_table(ens: Ensemble) -> pd.DataFrame:
    """One row per finished variant and concept: the variant, its inputs, the concept and its key figures."""
    labels = {i.path: i.label for i in ens.vary.inputs}
    rows = []
    for v, r in zip(ens.variants, ens.results, strict=True):
        if r.error is not None:
            continue
        inputs = {labels[p]: x for p, x in v.values.items()}
        for concept, figs in r.figures.items():
            rows.append({"variant": v.id, **inputs, "concept": concept, **figs})
    columns = ["variant", *labels.values(), "concept", *FIGURES]
    return pd.DataFrame(rows, columns=columns)


def failures_table(ens: Ensemble) -> pd.DataFrame:
    """One row per failed variant: the variant, its inputs and the error."""
    labels = {i.path: i.label for i in ens.vary.inputs}
    rows = [
        {"variant": v.id, **{labels[p]: x for p, x in v.values.items()}, "error": r.error}
        for v, r in zip(ens.variants, ens.results, strict=True)
        if r.error is not None
    ]
    return pd.DataFrame(rows, columns=["variant", *labels.values(), "error"])


def distribution_table(table: pd.DataFrame, concepts: list[str]) -> pd.DataFrame:
    """Per concept and key figure over the finished variants: count, mean, std, min, quantiles, max."""
    rows = []
    for concept in concepts:
        sub = table[table.concept == concept]
        for fig in FIGURES:
            x = sub[fig].dropna().to_numpy(dtype=float)
            stats: dict[str, float] = {"n": float(len(x))}
            if len(x):
                stats |= {"mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1 else float("nan"),
                          "min": float(x.min())}  # fmt: skip
                stats |= {k: float(np.quantile(x, q)) for k, q in QUANTILES.items()}
                stats["max"] = float(x.max())
            rows.append({"concept": concept, "figure": fig, **stats})
    out = pd.DataFrame(rows, columns=["concept", "figure", "n", "mean", "std", "min", *QUANTILES, "max"])
    return out.astype({"n": int})


def cheapest_table(table: pd.DataFrame, concepts: list[str]) -> pd.DataFrame:
    """How often each concept has the lowest total cost, of the finished variants (ties: the first concept)."""
    order = {c: k for k, c in enumerate(concepts)}
    comparable = table.dropna(subset=["total_cost_meur_per_a"])
    ranked = comparable.assign(_order=comparable.concept.map(order)).sort_values(
        ["variant", "total_cost_meur_per_a", "_order"], kind="stable"
    )
    winners = ranked.groupby("variant").concept.first()
    n = int(table.variant.nunique())
    counts = winners.value_counts()
    return pd.DataFrame(
        {
            "concept": concepts,
            "cheapest_variants": [int(counts.get(c, 0)) for c in concepts],
            "probability_cheapest": [counts.get(c, 0) / n if n else float("nan") for c in concepts],
        }
    )


def sensitivity_table(table: pd.DataFrame, ens: Ensemble) -> pd.DataFrame:
    """Per concept, figure and input: the Spearman rank correlation and the linear swing over the input's range.

    ``spearman_rho``: rank correlation of the input with the figure over the finished variants (NaN where either
    is constant). ``swing``: the coefficient of a least-squares fit of the figure on every input scaled to its
    sampled lowest (0) … highest (1) value: how much the figure moves, in its unit, as the input goes from its
    lowest to its highest value with the other inputs held (NaN with fewer variants than inputs + 2).
    ``r2``: how much of the figure's variance that linear fit explains.
    """
    from scipy.stats import spearmanr

    labels = [i.label for i in ens.vary.inputs]
    rows = []
    for concept in ens.concepts:
        sub = table[table.concept == concept]
        for fig in FIGURES:
            data = sub[[*labels, fig]].dropna()
            y = data[fig].to_numpy(dtype=float)
            flat_y = len(y) == 0 or np.ptp(y) <= 1e-12 * max(1.0, float(np.abs(y).max()))
            x = data[labels].to_numpy(dtype=float)
            span = np.ptp(x, axis=0) if len(x) else np.zeros(len(labels))
            moving = span > 0
            swing = np.full(len(labels), np.nan)
            r2 = float("nan")
            if len(y) >= int(moving.sum()) + 2 and moving.any():
                scaled = (x[:, moving] - x[:, moving].min(axis=0)) / span[moving]
                design = np.column_stack([np.ones(len(y)), scaled])
                coef, *_ = np.linalg.lstsq(design, y, rcond=None)
                swing[moving] = 0.0 if flat_y else coef[1:]
                residual = y - design @ coef
                total = float(((y - y.mean()) ** 2).sum())
                r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else float("nan")
            for j, label in enumerate(labels):
                if len(y) < 3 or not moving[j] or flat_y:
                    rho = float("nan")
                else:
                    rho = float(spearmanr(x[:, j], y).statistic)
                rows.append({"concept": concept, "figure": fig, "input": label, "spearman_rho": rho,
                             "swing": float(swing[j]), "r2": r2})  # fmt: skip
    return pd.DataFrame(rows, columns=["concept", "figure", "input", "spearman_rho", "swing", "r2"])


def plot_tornado(sensitivity: pd.DataFrame, path: Path, *, figure: str = "npv_meur") -> None:
    """Draw a tornado chart: per concept, how far each input moves ``figure`` over its range, largest on top.

    The bars are the linear swings of :func:`sensitivity_table` (the figure's change from the input's lowest to
    its highest value, the others held), each labelled with the input's Spearman rank correlation; with too few
    finished variants for the fit (fewer than the inputs + 2) the bars are the rank correlations themselves.
    """
    from matplotlib.figure import Figure

    sub = sensitivity[sensitivity.figure == figure]
    measure = "swing" if sub.swing.notna().any() else "spearman_rho"
    concepts = [c for c in dict.fromkeys(sub.concept) if sub[sub.concept == c][measure].abs().gt(0).any()]
    inputs = list(dict.fromkeys(sub.input))
    n = max(len(concepts), 1)
    fig = Figure(figsize=(8, 0.8 + n * (0.4 * len(inputs) + 0.9)), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False, sharex=True)[:, 0]
    if not concepts:
        axes[0].text(0.5, 0.5, "no input moved the figure (too few finished variants, or none varied it)", ha="center")
        axes[0].set_axis_off()
    for ax, concept in zip(axes, concepts, strict=False):
        rows = sub[sub.concept == concept].set_index("input").reindex(inputs)
        rows = rows.assign(_size=rows[measure].abs().fillna(0.0)).sort_values("_size", kind="stable")
        bars = rows[measure].fillna(0.0).to_numpy()
        ax.barh(range(len(rows)), bars, color=["#d7301f" if v < 0 else "#2b8cbe" for v in bars])
        ax.set_yticks(range(len(rows)), list(rows.index), fontsize=8)
        if measure == "swing":
            for k, (v, rho) in enumerate(zip(bars, rows.spearman_rho, strict=True)):
                if rho == rho:
                    ax.annotate(f"ρ {rho:+.2f}", (v, k), xytext=(4 if v >= 0 else -4, 0), textcoords="offset points",
                                ha="left" if v >= 0 else "right", va="center", fontsize=7)  # fmt: skip
        ax.axvline(0, color="black", lw=0.8)
        r2 = rows.r2.dropna()
        fit = f" (linear fit R² {r2.iloc[0]:.2f})" if measure == "swing" and len(r2) else ""
        ax.set_title(f"{concept}{fit}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.15)
    if measure == "swing":
        axes[-1].set_xlabel(f"Change of the {FIGURES[figure]} from the input's lowest to its highest value")
        title = "Which input moves the NPV most (linear swing over the variants; ρ: rank correlation)"
    else:
        axes[-1].set_xlabel(f"Spearman rank correlation with the {FIGURES[figure]}")
        title = "Which input moves the NPV most (rank correlation: too few variants for the linear fit)"
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)


def ensemble_summary(ens: Ensemble, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Return what summary.json holds: the study, the sampling, counts, the cheapest, the distribution, failures."""
    import heatmap

    failed = [{"variant": r.id, "error": r.error} for r in ens.results if r.error is not None]
    return {
        "heatmap_version": heatmap.__version__,
        "study": ens.study.name,
        "study_file": str(ens.study.path) if ens.study.path else None,
        "vary_file": str(ens.vary._path) if ens.vary._path else None,
        "method": ens.vary.method,
        "samples": ens.vary.samples,
        "seed": ens.vary.seed,
        "inputs": [i.model_dump(exclude_none=True) for i in ens.vary.inputs],
        "variants": len(ens.variants),
        "finished": len(ens.variants) - len(failed),
        "failed": failed,
        "figures": FIGURES,
        "sensitivity_method": SENSITIVITY_METHOD,
        "npv_rule": "against the reference (boilers only): total cost saved per year × present-value factor of "
        "economics.discount_rate over economics.lifetime_a",
        "network_rule": "each variant is planned as heatmap study plans it; a worker reuses the network it planned "
        "for an identical plan scenario (deterministic planning); the matches are not run",
        "cheapest": _records(tables["cheapest"]),
        "distribution": _records(tables["distribution"]),
        "run": {"workers": ens.workers, "scheduler": ens.scheduler, "time_s": round(ens.time_s, 1)},
    }


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the table's rows for JSON, a NaN (no value: one variant's spread, a constant figure) as null."""
    return [
        {str(k): (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


def ensemble_tables(ens: Ensemble) -> dict[str, pd.DataFrame]:
    """Return the ensemble's tables: variants, failures, distribution, cheapest and sensitivity."""
    variants = variants_table(ens)
    return {
        "variants": variants,
        "failures": failures_table(ens),
        "distribution": distribution_table(variants, ens.concepts),
        "cheapest": cheapest_table(variants, ens.concepts),
        "sensitivity": sensitivity_table(variants, ens),
    }


def write_ensemble(ens: Ensemble, out_dir: Path, *, inputs: Sequence[Path] = ()) -> dict[str, Path]:
    """Write the ensemble's tables, tornado chart and summary atomically into ``out_dir``."""
    import json

    from heatmap.io.output_folder import write_atomically
    from heatmap.io.tables import write_csv

    tables = ensemble_tables(ens)
    summary = ensemble_summary(ens, tables)

    def write(tmp: Path) -> None:
        for name, table in tables.items():
            write_csv(table, tmp / f"{name}.csv", float_format="%.6g")
        plot_tornado(tables["sensitivity"], tmp / "tornado.png")
        text = json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default)
        (tmp / "summary.json").write_text(text, encoding="utf-8")

    title = f"heatmap ensemble, {ens.study.name}: {len(ens.variants)} variants ({ens.vary.method})"
    written = write_atomically(out_dir, OUTPUT_FILES, write, inputs=inputs, title=title)
    logger.info("Wrote the ensemble's %d files to %s", len(written), out_dir)
    return written


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON: {value!r}")


def format_ensemble(ens: Ensemble, written: dict[str, Path]) -> str:
    """Render what ``heatmap ensemble`` prints: counts, each concept's NPV and LCOH spread, the cheapest."""
    tables = ensemble_tables(ens)
    dist = {(r["concept"], r["figure"]): r for r in tables["distribution"].to_dict(orient="records")}
    failed = [r for r in ens.results if r.error is not None]
    lines = [
        f"Ensemble of {ens.study.name}: {len(ens.variants)} variants ({ens.vary.method}), "
        f"{len(ens.variants) - len(failed)} finished, {len(failed)} failed; {ens.workers} workers, {ens.time_s:.1f} s",
        "",
        f"{'concept':<34}{'NPV p5 / p50 / p95 (M€)':>28}{'LCOH p50 (€/MWh)':>18}{'cheapest':>10}",
    ]
    cheapest = tables["cheapest"].set_index("concept").probability_cheapest
    for c in ens.concepts:
        npv, lcoh = dist[(c, "npv_meur")], dist[(c, "lcoh_eur_per_mwh")]
        spread = f"{npv['p5']:,.1f} / {npv['p50']:,.1f} / {npv['p95']:,.1f}" if npv["n"] else "-"
        median = f"{lcoh['p50']:,.1f}" if lcoh["n"] else "-"
        lines.append(f"{c[:33]:<34}{spread:>28}{median:>18}{cheapest[c]:>10.0%}")
    for r in failed[:5]:
        lines.append(f"variant {r.id} failed: {r.error}")
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more (failures.csv)")
    if "summary.json" in written:
        lines += ["", f"Written: {len(written)} files in {written['summary.json'].parent} (README.txt lists them)"]
    return "\n".join(lines)

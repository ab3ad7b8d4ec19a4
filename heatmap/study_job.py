"""Run a whole study (``heatmap study``): its network, its year per concept and its matches, into one output folder.

:func:`run_study` conducts the three parts a study holds (:mod:`heatmap.study`): the network is planned once
(:func:`heatmap.plan.plan_from_scenario`), the concepts' year of dispatch runs on it
(:func:`heatmap.energy.concepts.run_concepts`: the network's year decides what its sources send, one answer per
hour), and every source is matched with every heat user (:func:`heatmap.energy.matches_job.matches_from_scenario`).
:func:`write_study` writes them atomically into one folder: the concepts' files at the top (with the network in
``network/`` and the concepts map), the matches in ``matches/``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heatmap.study import Study, energy_scenario, match_scenario, plan_scenario

logger = logging.getLogger(__name__)

PARTS = ("network", "concepts", "matches")
"""The parts :func:`run_study` reports progress for, in order."""


@dataclass
class StudyRun:
    """A study run whole: the concepts on the planned network (``concepts.network.plan``) and the matches."""

    study: Study
    concepts: Any
    """The :class:`heatmap.energy.concepts.ConceptStudy` (its ``network.plan`` is the planned network)."""
    matches: Any
    """The :class:`heatmap.energy.matches_job.MatchesRun`."""
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyParts:
    """The three scenarios a study's commands run, derived from it once (:mod:`heatmap.study`)."""

    plan: Any
    """The network's :class:`heatmap.scenario.Scenario`."""
    concepts: Any
    """The concepts' :class:`heatmap.energy.energy_scenario.EnergyScenario`."""
    matches: Any
    """The matching's :class:`heatmap.energy.matching.MatchScenario`."""


def study_parts(study: Study) -> StudyParts:
    """Derive the study's three parts (each checked as a scenario file of its kind would be)."""
    return StudyParts(plan_scenario(study), energy_scenario(study), match_scenario(study))


def run_study(study: Study, parts: StudyParts, *, progress: Callable[[str], None] | None = None) -> StudyRun:
    """Plan the study's network, run its concepts on it and rank its matches.

    Parameters
    ----------
    study
        A validated study with a network and concepts.
    parts
        Its parts (:func:`study_parts`).
    progress
        Called with each part's name when it is done (see :data:`PARTS`).

    Returns
    -------
    StudyRun
    """
    from heatmap.energy.concepts import run_concepts
    from heatmap.energy.matches_job import matches_from_scenario
    from heatmap.plan import plan_from_scenario

    timings: dict[str, float] = {}

    def done(part: str, t0: float) -> None:
        timings[part] = time.perf_counter() - t0
        if progress is not None:
            progress(part)

    t0 = time.perf_counter()
    plan = plan_from_scenario(parts.plan)
    done("network", t0)
    t0 = time.perf_counter()
    concepts = run_concepts(parts.concepts, plan=plan)
    done("concepts", t0)
    t0 = time.perf_counter()
    matches = matches_from_scenario(parts.matches, planner=plan_from_scenario)
    done("matches", t0)
    logger.info(
        "Study %r: network %s, %d concepts, %d pairs ranked; %s",
        study.name, "ok" if plan.ok else "failing checks", len(concepts.results), len(matches.table),
        ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
    )  # fmt: skip
    return StudyRun(study, concepts, matches, timings)


def study_inputs(study: Study, parts: StudyParts) -> list[Path]:
    """Return the study file and every file its parts read (none may lie in the output folder)."""
    from heatmap.io.output_folder import input_paths

    found = [study.path] if study.path is not None else []
    for part in (parts.plan, parts.concepts, parts.matches):
        found += input_paths(part)
    return list(dict.fromkeys(found))


def write_study(run: StudyRun, out_dir: Path, *, inputs: list[Path] | tuple[Path, ...] = ()) -> dict[str, Path]:
    """Write every part atomically into ``out_dir``: the concepts and network at the top, the matches in matches/."""
    from heatmap.energy import concepts, matches_job
    from heatmap.io.output_folder import write_atomically

    names = (*concepts.output_names(run.concepts), *(f"matches/{n}" for n in matches_job.output_names(run.matches)))

    def write(tmp: Path) -> None:
        (tmp / "matches").mkdir()
        matches_job.write_match_files(run.matches, tmp / "matches")
        matches = json.loads((tmp / "matches" / "summary.json").read_text(encoding="utf-8"))
        concepts.write_concept_files(run.concepts, tmp, matches=matches)  # its report ranks the matches too

    title = f"heatmap study, {run.study.name} (network and concepts here, matches in matches/)"
    written = write_atomically(out_dir, names, write, inputs=inputs, title=title)
    logger.info("Wrote the study's %d files to %s", len(written), out_dir)
    return written


MATCHES_NETWORK = "matches/network/"
"""Where a study's matches keep their planned network; its PostGIS tables are named ``matches_…``."""


def postgis_layers(written: dict[str, Path]) -> list[tuple[Path, str]]:
    """Return the GeoPackages of a written study, each with the prefix of its PostGIS tables' names.

    The network's layers keep their names (as ``heatmap plan --to-postgis`` writes them), the matches' layer
    (``matches``) too; the matches' network, whose layers have the network's names, is prefixed ``matches_``.
    """
    return [
        (path, "matches_" if name.startswith(MATCHES_NETWORK) else "")
        for name, path in written.items()
        if name.endswith(".gpkg")
    ]


def format_study(run: StudyRun, written: dict[str, Path]) -> str:
    """Render what ``heatmap study`` prints: the concepts' report (network and agreement included), the matches."""
    from heatmap.energy.concepts import concepts_report
    from heatmap.energy.matches_job import format_run

    concepts = concepts_report(run.concepts, {}).rsplit("\nWritten:", 1)[0].rstrip()
    times = ", ".join(f"{k} {v:.1f} s" for k, v in run.timings_s.items())
    lines = [concepts, "", "Matches (each pair judged as if alone):", format_run(run.matches), "", f"Times: {times}"]
    if "summary.json" in written:
        lines += ["", f"Written: {len(written)} files in {written['summary.json'].parent} (matches in matches/)"]
    return "\n".join(lines)

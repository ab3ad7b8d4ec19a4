"""The ``heatmap`` command line.

Exit codes: 0 success; 2 a user error (bad scenario, input, street data, output folder; the message says
what to fix); 3 the plan's checks still fail after the allowed resizing rounds (nothing is written unless
``--partial`` is given, which writes the plan marked as partial and exits 0).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import click

EXIT_USER_ERROR = 2
EXIT_CHECKS_FAILED = 3

verbosity = click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
quiet = click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bar or summary.")


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Dependencies are chatty at WARNING about behaviour we rely on knowingly.
    for name in ("pandapipes", "pandapower", "pyrosm", "numba"):
        logging.getLogger(name).setLevel(max(level, logging.ERROR))
    if verbose < 2:
        warnings.filterwarnings("ignore")


@contextlib.contextmanager
def _answer_errors(before_exit: Callable[[], object] = lambda: None) -> Iterator[None]:
    """Turn a user error into its message and exit code 2, Ctrl-C into exit code 130 (``before_exit`` first)."""
    from heatmap._errors import HeatmapError

    try:
        yield
    except HeatmapError as exc:
        before_exit()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        before_exit()
        click.echo("interrupted: nothing was written; earlier results are unchanged", err=True)
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="heatmap")
def main() -> None:
    """Plan heat networks and map heat demand.

    plan: OSM streets → routed, sized, pandapipes-simulated, costed network → GeoPackage + web map.
    demand: buildings → heat demand, heat-density raster and district-heating potential areas.
    concepts: excess-heat concepts compared over a year of hourly least-cost dispatch → tables, plots, impact.
    """


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--partial", is_flag=True, help="Write the plan (marked partial) even if checks still fail.")
@click.option("--tiles", default=None, help="Tile URL template for an online base map (default: none, offline).")
@verbosity
@quiet
def plan(scenario: Path, out_dir: Path, partial: bool, tiles: str | None, verbose: int, quiet: bool) -> None:
    """Plan the network described by the SCENARIO file (YAML) and write it to --out."""
    _configure_logging(verbose, quiet)
    from tqdm import tqdm

    from heatmap.outputs import format_summary, plan_summary, write_plan
    from heatmap.plan import STAGES, plan_from_scenario
    from heatmap.scenario import scenario_from_file

    bar = tqdm(total=len(STAGES) + 1, desc="planning", unit="stage", disable=quiet or None, file=sys.stderr)
    with _answer_errors(bar.close):
        scn = scenario_from_file(scenario)

        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        result = plan_from_scenario(scn, progress=progress)
        if not result.ok and not partial:
            bar.close()
            click.echo(format_summary(plan_summary(result)), err=True)
            click.echo(
                f"\nerror: {len(result.violations)} checks still fail after the allowed resizing rounds; nothing "
                f"was written. Fix the scenario, or pass --partial to write the plan marked as partial.",
                err=True,
            )
            sys.exit(EXIT_CHECKS_FAILED)
        written = write_plan(result, out_dir, partial=partial, tiles=tiles)
        progress("outputs")
        bar.close()
    if not quiet:
        click.echo(format_summary(plan_summary(result, partial=partial)))
        click.echo("\nWritten:")
        for path in written.values():
            click.echo(f"  {path}")


@main.command()
@click.argument("buildings", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Scenario file whose demand, density, economics and study_area.crs settings apply (default: defaults).",
)
@click.option(
    "--temperatures",
    type=click.Path(path_type=Path),
    default=None,
    help="Hourly outdoor temperature of a year, CSV with time and t_out_c (°C): writes heat_profile.csv.",
)
@click.option("--dask", "use_dask", is_flag=True, help="Run partitioned on a local Dask cluster (whole regions).")
@click.option("--scheduler", default=None, help="Address of a Dask scheduler to run on (implies --dask).")
@verbosity
@quiet
def demand(
    buildings: Path,
    out_dir: Path,
    scenario_path: Path | None,
    temperatures: Path | None,
    use_dask: bool,
    scheduler: str | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Map the heat demand of BUILDINGS and find district-heating potential areas.

    BUILDINGS is an OSM PBF or a file of footprints with OSM-like tags and an id (GPKG, GeoJSON, SHP,
    GeoParquet). Writes demand.gpkg, heat_density.tif (MWh/ha/a) and summary.json into --out.
    """
    _configure_logging(verbose, quiet)
    import json

    from heatmap.demand_job import demand_map, demand_summary, write_demand_map
    from heatmap.profiles import read_outdoor_temperature
    from heatmap.scenario import scenario_from_dict, scenario_from_file

    use_dask = use_dask or scheduler is not None
    with _answer_errors():
        if use_dask and temperatures is not None:
            raise click.UsageError("--temperatures needs the single-process run (leave out --dask/--scheduler)")
        if scenario_path is not None:
            scn = scenario_from_file(scenario_path, for_plan=False)
        else:
            scn = scenario_from_dict({}, base_dir=Path.cwd(), for_plan=False)
        outdoor = read_outdoor_temperature(temperatures) if temperatures is not None else None
        if use_dask:
            from heatmap.region import dask_client

            client = dask_client(scheduler)
        else:
            client = contextlib.nullcontext()
        with client:
            result = demand_map(buildings, scn, outdoor_temperature=outdoor, use_dask=use_dask)
        written = write_demand_map(result, out_dir)
    if not quiet:
        summary = demand_summary(result)
        summary.pop("assumptions")
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        click.echo("\nWritten:")
        for path in written.values():
            click.echo(f"  {path}")


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder.")
@verbosity
@quiet
def concepts(scenario: Path, out_dir: Path, verbose: int, quiet: bool) -> None:
    """Compare excess-heat concepts of the SCENARIO file (YAML) over a year of hourly least-cost dispatch."""
    _configure_logging(verbose, quiet)
    from heatmap.concepts import concepts_report, run_concepts, write_concepts
    from heatmap.energy_scenario import energy_scenario_from_file

    with _answer_errors():
        study = run_concepts(energy_scenario_from_file(scenario))
        written = write_concepts(study, out_dir)
    if not quiet:
        click.echo(concepts_report(study, written))


if __name__ == "__main__":
    main()

"""The ``heatmap`` command line.

Exit codes: 0 success; 2 a user error (bad scenario, input, street data, output folder; the message says
what to fix); 3 the plan's checks still fail after the allowed resizing rounds (nothing is written unless
``--partial`` is given, which writes the plan marked as partial and exits 0); 130 interrupted (Ctrl-C),
143 terminated (SIGTERM): the temporary files are removed and the previous results stay unchanged.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from heatmap.io.postgis import PostgisUrl

EXIT_USER_ERROR = 2
EXIT_CHECKS_FAILED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

verbosity = click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
quiet = click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bar or summary.")
out_option = click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder (new, empty or written by heatmap; replaced in whole).",
)
to_postgis_option = click.option(
    "--to-postgis",
    "to_postgis",
    metavar="URL",
    default=None,
    help="Also write every layer with its QGIS style to this PostGIS database (postgresql://user@host/db), "
    "in one transaction.",
)
postgis_schema_option = click.option(
    "--postgis-schema", default="public", show_default=True, help="Schema of the tables written by --to-postgis."
)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    screen = logging.StreamHandler(sys.stderr)
    screen.addFilter(_ShownOnce())
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", handlers=[screen])
    # Dependencies are chatty at WARNING about behaviour we rely on knowingly; their warnings (and Python
    # warnings, captured into the "py.warnings" logger) show from -v on.
    logging.captureWarnings(True)
    _quiet_dependencies(("pandapipes", "pandapower", "pyrosm", "numba", "py.warnings"), verbose, quiet)


class _ShownOnce(logging.Filter):
    """Let a warning through once per run: an ensemble's variants (and its checks) repeat the study's own."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.ERROR:
            return True
        message = record.getMessage()
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


def _quiet_dependencies(names: tuple[str, ...], verbose: int, quiet: bool) -> None:
    """Show the named dependencies' log records from -v on only (errors always)."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    for name in names:
        logging.getLogger(name).setLevel(level if verbose else max(level, logging.ERROR))


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    from heatmap._errors import note_stop

    note_stop(signum)
    raise _Terminated


def _raise_interrupted(signum: int, frame: object) -> None:
    """Ctrl-C: noted (the output folder is not replaced however the interrupt is caught), then raised."""
    from heatmap._errors import note_stop

    note_stop(signum)
    raise KeyboardInterrupt


def _exit_terminated(signum: int, frame: object) -> None:
    """SIGTERM outside :func:`_answer_errors` (during the imports, before or after the work): exit 143 with a word.

    Every output folder is swapped in whole, so whenever the signal comes it holds one complete run.
    """
    click.echo("terminated: the output folder holds the earlier results or the complete new ones", err=True)
    sys.exit(EXIT_TERMINATED)


@contextlib.contextmanager
def _answer_errors(before_exit: Callable[[], object] = lambda: None) -> Iterator[None]:
    """Turn a user error into its message and exit code 2, Ctrl-C (130) and SIGTERM (143) into a message.

    ``before_exit`` runs first (e.g. closing the progress bar).
    """
    from heatmap._errors import HeatmapError

    main_thread = threading.current_thread() is threading.main_thread()  # only there can signals be handled
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    previous_int = signal.signal(signal.SIGINT, _raise_interrupted) if main_thread else None
    try:
        yield
    except HeatmapError as exc:
        before_exit()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt as exc:
        before_exit()
        terminated = isinstance(exc, _Terminated) or getattr(exc, "signum", None) == signal.SIGTERM
        what = "terminated" if terminated else "interrupted"
        written_to = getattr(exc, "written_to", None)
        if written_to is not None:
            click.echo(f"{what} after the run was complete: the new results are in {written_to}", err=True)
        else:
            click.echo(f"{what}: nothing was written; earlier results are unchanged", err=True)
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def long_lived_imports() -> Iterator[None]:
    """Import modules with the cyclic garbage collector paused, then exempt every object alive from its passes.

    What the modules make as they load lives as long as the command, yet each of the collector's full passes would
    walk it all again: frozen (:func:`gc.freeze`), it is left out, and a pass walks only what the work made. A
    synthetic town of 10,000 consumers with its year: the plan process spent 1.8–2.2 s collecting before, 0.4–0.5 s
    after (two runs each).
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


SCHEDULER_CONNECT_S = 5.0
"""How long the command waits for a Dask scheduler to accept a connection before it checks anything else."""


def _check_scheduler(address: str | None) -> None:
    """Refuse a ``--scheduler`` nothing listens at (before the inputs are read): a TCP connection, at most 5 s."""
    import socket
    from urllib.parse import urlsplit

    from heatmap._errors import OfflineError

    if address is None:
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme != "tcp" or not host or not port:
        return  # other protocols (tls://, inproc://): left to Dask's own client
    try:
        socket.create_connection((host, port), timeout=SCHEDULER_CONNECT_S).close()
    except OSError as exc:
        raise OfflineError(
            f"cannot reach the Dask scheduler at {address} within {SCHEDULER_CONNECT_S:g} s "
            f"({exc.strerror or type(exc).__name__}); check the address (e.g. tcp://host:8786) and that the scheduler "
            "runs, or leave out --scheduler to run on a local cluster"
        ) from exc


def _unraisable(unraisable: Any) -> None:
    """Say nothing of a Ctrl-C or SIGTERM Python had to discard (noted: the run stops before its output is swapped)."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


class _Group(click.Group):
    """Click's group, Ctrl-C outside :func:`_answer_errors` (during the imports) answered as inside: exit 130."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Click would say "Aborted!" and exit 1
            click.echo("interrupted: the output folder holds the earlier results or the complete new ones", err=True)
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="heatmap")
def main() -> None:
    """Plan heat networks and map heat demand.

    plan: OSM streets → routed, sized, pandapipes-simulated, costed network → GeoPackage + web map.
    demand: buildings → heat demand, heat-density raster and district-heating potential areas.
    concepts: excess-heat concepts compared over a year of hourly least-cost dispatch → tables, plots, impact.
    matches: excess-heat sources paired with heat users, ranked by € per MWh → CSV + map layer.
    study: a whole study file (network, concepts, matches) that agree hour by hour → one output folder.
    ensemble: a study over uncertain inputs (--vary FILE: a grid or a Latin hypercube sample with a fixed seed),
    the variants as Dask tasks (a local cluster, or --scheduler tcp://host:8786) → each concept's distribution of
    NPV, LCOH, excess-heat share, CO₂ and peat displaced, how often it is cheapest, a tornado chart.
    """
    from heatmap._errors import clear_stops

    clear_stops()  # signals noted by an earlier command of this process (tests run many)
    sys.unraisablehook = _unraisable
    if threading.current_thread() is threading.main_thread():  # a SIGTERM from here on is answered (exit 143)
        signal.signal(signal.SIGTERM, _exit_terminated)


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@out_option
@click.option("--partial", is_flag=True, help="Write the plan (marked partial) even if checks still fail.")
@click.option(
    "--tiles",
    default=None,
    callback=lambda ctx, param, value: _tile_template(value),
    help="Tile URL template for an online base map, https://…/{z}/{x}/{y}.png (default: none, offline).",
)
@to_postgis_option
@postgis_schema_option
@verbosity
@quiet
def plan(
    scenario: Path,
    out_dir: Path,
    partial: bool,
    tiles: str | None,
    to_postgis: str | None,
    postgis_schema: str,
    verbose: int,
    quiet: bool,
) -> None:
    """Plan the network described by the SCENARIO file (YAML; a plan scenario or a study) and write it to --out."""
    _configure_logging(verbose, quiet)
    with long_lived_imports():
        from heatmap.io.output_folder import check_output_folder, input_paths
        from heatmap.scenario import check_input_files
        from heatmap.study import plan_scenario_from_file

    with _answer_errors():  # a user error in the scenario or --out is answered before the heavy imports
        scn = plan_scenario_from_file(scenario)
        check_input_files(scn)
        inputs = [scenario, *input_paths(scn)]
        check_output_folder(out_dir, inputs=inputs)
        database = _postgis_target(to_postgis, postgis_schema)
    with long_lived_imports():
        from tqdm import tqdm

        from heatmap.io.outputs import format_summary, plan_summary, write_plan
        from heatmap.plan import STAGES, plan_from_scenario

    bar = tqdm(total=len(STAGES) + 1, desc="planning", unit="stage", disable=quiet or None, file=sys.stderr)
    with _answer_errors(bar.close):

        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        result = plan_from_scenario(scn, progress=progress)
        if not result.ok and not partial:
            bar.close()
            _stop_on_failed_checks(result, what="", then="write the plan", assumptions=verbose > 0)
        written = write_plan(result, out_dir, partial=partial, tiles=tiles, inputs=inputs)
        tables = _write_postgis(database, [(written["plan.gpkg"], "")], postgis_schema, what="the plan")
        progress("outputs")
        bar.close()
    if not quiet:
        click.echo(format_summary(plan_summary(result, partial=partial), assumptions=verbose > 0))
        click.echo("\nWritten (README.txt there lists every file, the GeoJSON of each layer in geojson/ too):")
        for path in written.values():
            click.echo(f"  {path}")
        if database is not None:
            click.echo(_postgis_written(database, postgis_schema, tables))


def _stop_on_failed_checks(result: Any, *, what: str, then: str, assumptions: bool = False) -> NoReturn:
    """Print a plan's summary and the checks it fails, then exit with :data:`EXIT_CHECKS_FAILED` (nothing written).

    ``what`` goes before the message (the scenario, where several are planned); ``then``: what ``--partial`` does.
    """
    from heatmap.io.outputs import format_summary, plan_summary

    summary = plan_summary(result)
    click.echo(format_summary(summary, assumptions=assumptions), err=True)
    click.echo(
        f"\nerror: {what}checks fail ({', '.join(summary['failed_checks'])}); nothing was written. Change what is "
        f"listed above, or pass --partial to {then} marked as partial.",
        err=True,
    )
    sys.exit(EXIT_CHECKS_FAILED)


def _tile_template(url: str | None) -> str | None:
    """Check ``--tiles``: an http(s) URL template with ``{z}``, ``{x}`` and ``{y}`` (or ``{-y}``), as Leaflet takes."""
    if url is None:
        return None
    missing = [p for p in ("{z}", "{x}") if p not in url] + ([] if "{y}" in url or "{-y}" in url else ["{y}"])
    if not url.lower().startswith(("http://", "https://")) or missing:
        why = f"it lacks {', '.join(missing)}" if missing else "it is not an http(s) URL"
        raise click.BadParameter(
            f"{url!r}: {why}; give a tile URL template such as https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png"
        )
    return url


def _postgis_target(url: str | None, schema: str, *, what: str = "the plan") -> PostgisUrl | None:
    """Check the database of ``--to-postgis`` before the work (it answers, has PostGIS); ``None`` without one."""
    if url is None:
        return None
    from heatmap._errors import OutputError
    from heatmap.io.postgis import PostgisUrl, check_target

    try:
        database = PostgisUrl(url)
    except ValueError as exc:
        raise OutputError(f"--to-postgis: {exc}") from None
    check_target(database, schema=schema, what=what)
    return database


def _write_postgis(
    database: PostgisUrl | None, gpkgs: list[tuple[Path, str]], schema: str, *, what: str
) -> dict[str, int]:
    """Write GeoPackages (each with its tables' prefix) to ``--to-postgis``; a failure changes nothing (exit 2)."""
    if database is None:
        return {}
    from heatmap._errors import OutputError
    from heatmap.io.postgis import write_geopackages

    try:
        return write_geopackages(gpkgs, database, schema=schema, what=what)
    except OutputError as exc:
        raise OutputError(f"{exc}; the output folder holds the new results ({gpkgs[0][0].parent})") from None


def _postgis_written(database: PostgisUrl, schema: str, tables: dict[str, int]) -> str:
    """Return the line that names the tables ``--to-postgis`` wrote."""
    shown = ", ".join(f"{name} ({rows:,})" for name, rows in tables.items())
    return f"  {database}, schema {schema}: tables {shown}; QGIS styles in public.layer_styles"


@main.command()
@click.argument("buildings", type=click.Path(path_type=Path))
@out_option
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Scenario file whose demand, density, economics and study_area.crs settings apply (a study: its "
    "network's; default: defaults).",
)
@click.option(
    "--temperatures",
    type=click.Path(path_type=Path),
    default=None,
    help="Hourly outdoor temperature of a year, CSV with time and t_out_c (°C): writes heat_profile.csv.",
)
@click.option("--layer", default=None, help="Layer of BUILDINGS to read, where the file holds several (GeoPackage).")
@click.option("--dask", "use_dask", is_flag=True, help="Run partitioned on a local Dask cluster (whole regions).")
@click.option("--scheduler", default=None, help="Address of a Dask scheduler to run on (implies --dask).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole summary as JSON (as in summary.json).")
@to_postgis_option
@postgis_schema_option
@verbosity
@quiet
def demand(
    buildings: Path,
    out_dir: Path,
    scenario_path: Path | None,
    temperatures: Path | None,
    layer: str | None,
    use_dask: bool,
    scheduler: str | None,
    as_json: bool,
    to_postgis: str | None,
    postgis_schema: str,
    verbose: int,
    quiet: bool,
) -> None:
    """Map the heat demand of BUILDINGS and find district-heating potential areas.

    BUILDINGS is an OSM PBF or a file of footprints with OSM-like tags and an id (GPKG, GeoJSON, SHP,
    GeoParquet). Writes demand.gpkg, heat_density.tif (MWh/ha/a), map.html, summary.json and tables into --out
    (README.txt there lists them); prints a one-screen summary (--json: the whole summary as JSON).
    """
    _configure_logging(verbose, quiet)
    import json

    from heatmap._errors import InputDataError
    from heatmap.io.output_folder import check_output_folder, input_paths
    from heatmap.scenario import check_input_files, scenario_from_dict, scenario_from_file
    from heatmap.study import is_study, plan_scenario, read_study

    use_dask = use_dask or scheduler is not None
    with _answer_errors():  # a user error in the scenario is answered before the heavy imports
        if use_dask and temperatures is not None:
            raise click.UsageError("--temperatures needs the single-process run (leave out --dask/--scheduler)")
        _check_scheduler(scheduler)
        if scenario_path is not None and is_study(scenario_path):  # the study's network: its plan scenario
            scn = plan_scenario(read_study(scenario_path))
        elif scenario_path is not None:
            scn = scenario_from_file(scenario_path, for_plan=False)
        else:
            scn = scenario_from_dict({}, base_dir=Path.cwd(), for_plan=False)
        check_input_files(scn, for_plan=False)
        from heatmap.io.paths import refuse_special

        for path, key in ((buildings, "BUILDINGS"), (temperatures, "--temperatures")):
            if path is not None:
                refuse_special(path, key, folder_ok=key == "BUILDINGS" and path.suffix.lower() == ".gdb")
            if path is not None and not path.exists():
                raise InputDataError(f"{path}: file not found")
        given = [p for p in (buildings, scenario_path, temperatures) if p is not None]
        check_output_folder(out_dir, inputs=[*given, *input_paths(scn)])
        database = _postgis_target(to_postgis, postgis_schema, what="the demand map")
    with long_lived_imports():
        from tqdm import tqdm

        from heatmap.demand.job import (
            DEMAND_STAGES,
            demand_map,
            demand_summary,
            format_demand_summary,
            write_demand_map,
        )
        from heatmap.demand.profiles import read_outdoor_temperature

    bar = tqdm(total=len(DEMAND_STAGES) + 1, desc="demand", unit="step", disable=quiet or None, file=sys.stderr)

    def progress(stage: str) -> None:
        bar.set_postfix_str(stage)
        bar.update(1)

    with _answer_errors(bar.close):
        outdoor = read_outdoor_temperature(temperatures) if temperatures is not None else None
        client: contextlib.AbstractContextManager[object]
        if use_dask:
            import distributed  # noqa: F401  (sets its loggers' levels when imported: quieted after it)

            from heatmap.demand.region import dask_client

            _quiet_dependencies(("distributed", "tornado", "bokeh"), verbose, quiet)

            client = dask_client(scheduler)
        else:
            client = contextlib.nullcontext()
        with client:
            result = demand_map(
                buildings, scn, outdoor_temperature=outdoor, use_dask=use_dask, progress=progress, layer=layer
            )
        written = write_demand_map(result, out_dir)
        tables = _write_postgis(database, [(written["demand.gpkg"], "")], postgis_schema, what="the demand map")
        progress("outputs")
        bar.close()
    if as_json:
        click.echo(json.dumps(demand_summary(result), indent=2, ensure_ascii=False))
    elif not quiet:
        click.echo(format_demand_summary(demand_summary(result), written))
        if database is not None:
            click.echo(_postgis_written(database, postgis_schema, tables))


SCHEMA_KINDS: dict[str, str | None] = {  # the description of each kind's schema (plan: json_schema's own)
    "plan": None,
    "study": "A heatmap study (kind: study; heatmap study, plan, concepts, matches, ensemble). Unknown keys are "
    "refused.",
    "concepts": "A heatmap concept study (heatmap concepts). Unknown keys are refused.",
    "matches": "A heatmap matching scenario (heatmap matches). Unknown keys are refused.",
}


@main.command()
@click.option(
    "--kind",
    type=click.Choice(list(SCHEMA_KINDS)),
    default="plan",
    show_default=True,
    help="Which files: plan scenarios, studies, concept studies or matching scenarios.",
)
def schema(kind: str) -> None:
    """Print the JSON Schema of scenario files (--kind: plan scenarios, studies, concept studies, matchings).

    Editors check scenario YAML against it as it is typed: save it (heatmap schema > scenario.schema.json)
    and start the scenario with the line "# yaml-language-server: $schema=scenario.schema.json".
    """
    import json
    import os

    from pydantic import BaseModel

    from heatmap.energy.energy_scenario import EnergyScenario
    from heatmap.energy.matching import MatchScenario
    from heatmap.scenario import Scenario, json_schema
    from heatmap.study import Study

    models: dict[str, type[BaseModel]] = {
        "plan": Scenario,
        "study": Study,
        "concepts": EnergyScenario,
        "matches": MatchScenario,
    }
    model = models[kind]
    try:
        click.echo(json.dumps(json_schema(model, description=SCHEMA_KINDS[kind]), indent=2, ensure_ascii=False))
    except OSError as exc:  # a full disk or a closed pipe on the other end of stdout
        with contextlib.suppress(OSError, ValueError):  # what is left in stdout's buffer goes nowhere at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        click.echo(
            f"error: cannot write the schema to standard output ({exc.strerror or exc}); the output is incomplete",
            err=True,
        )
        sys.exit(EXIT_USER_ERROR)


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@out_option
@verbosity
@quiet
def concepts(scenario: Path, out_dir: Path, verbose: int, quiet: bool) -> None:
    """Compare excess-heat concepts of the SCENARIO file (YAML) over a year of hourly least-cost dispatch.

    When the scenario names a plan scenario for its network (network.plan), the network is planned too: its
    GeoPackage and maps go to --out/network/, the concepts map to --out/map.html.
    """
    _configure_logging(verbose, quiet)
    with long_lived_imports():
        from heatmap.energy.concept_network import read_plan_scenario
        from heatmap.energy.concepts import concepts_report, run_concepts, write_concepts
        from heatmap.io.output_folder import check_output_folder, input_paths
        from heatmap.study import energy_scenario_from_file

    with _answer_errors():  # a user error in either scenario or --out is answered before any work
        scn = energy_scenario_from_file(scenario)
        plan_scn = read_plan_scenario(scn)
        inputs = [scenario, *input_paths(scn), *(input_paths(plan_scn) if plan_scn is not None else [])]
        check_output_folder(out_dir, inputs=inputs)
    with _answer_errors():
        plan = None
        if plan_scn is not None:
            from heatmap._errors import HeatmapError
            from heatmap.plan import plan_from_scenario

            try:
                plan = plan_from_scenario(plan_scn)
            except HeatmapError as exc:  # name the plan scenario file the message is about (not a study's own)
                if Path(scenario).resolve() == Path(str(scn.network.plan)).resolve():
                    raise
                raise type(exc)(f"network.plan ({scn.network.plan}): {exc}") from None
        study = run_concepts(scn, plan=plan)
        written = write_concepts(study, out_dir)
    if not quiet:
        click.echo(concepts_report(study, written))


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@out_option
@verbosity
@quiet
def matches(scenario: Path, out_dir: Path, verbose: int, quiet: bool) -> None:
    """Rank source–sink pairings of the SCENARIO file (YAML): matches.csv, matches.gpkg, summary.json.

    Where the scenario chooses pairs (plan.pairs), they are planned with the network model and written to
    network/ in the same output folder (plan.gpkg, map.html, summary.json).
    """
    _configure_logging(verbose, quiet)
    with long_lived_imports():
        from heatmap.energy.matches_job import format_run, matches_from_scenario, write_matches
        from heatmap.io.output_folder import check_output_folder, input_paths
        from heatmap.study import matching_scenario_from_file

    with _answer_errors():
        scn = matching_scenario_from_file(scenario)
        inputs = [scenario, *(scn.path(p) for p in input_paths(scn))]
        check_output_folder(out_dir, inputs=inputs)
        planner = None
        if scn.plan is not None:
            from heatmap.plan import plan_from_scenario

            planner = plan_from_scenario
        run = matches_from_scenario(scn, planner=planner)
        written = write_matches(run, out_dir, inputs=inputs)
    if not quiet:
        click.echo(format_run(run))
        click.echo("\nWritten (README.txt there lists every file, the GeoJSON of each layer in geojson/ too):")
        for path in written.values():
            click.echo(f"  {path}")


@main.command()
@click.argument("items", metavar="SCENARIO_OR_FOLDER...", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_option
@click.option("--partial", is_flag=True, help="Compare a scenario whose plan still fails checks too (marked partial).")
@verbosity
@quiet
def compare(items: tuple[Path, ...], out_dir: Path, partial: bool, verbose: int, quiet: bool) -> None:
    """Compare plans side by side: each ITEM a scenario file (planned here) or a finished plan's output folder.

    Writes to --out a table (comparison.csv), a chart (comparison.png), one map with each plan's route as a layer
    (map.html) and a report (report.html); each scenario planned here is written whole into --out/<its name>/.
    A scenario whose plan fails its checks stops the comparison (exit 3, nothing written), as heatmap plan does,
    unless --partial is given.
    """
    _configure_logging(verbose, quiet)
    import re

    from heatmap._errors import ScenarioError
    from heatmap.io import compare as comparing
    from heatmap.io.output_folder import check_output_folder, input_paths
    from heatmap.scenario import check_input_files
    from heatmap.study import plan_scenario_from_file

    with _answer_errors():  # every item is checked (a finished plan read) before any is planned
        if len(items) < 2:
            raise ScenarioError("give at least two scenario files or finished plan folders to compare")
        resolved = [Path(item).resolve() for item in items]
        for i, item in enumerate(items):
            if resolved[i] in resolved[:i]:
                first = items[resolved.index(resolved[i])]
                raise ScenarioError(f"{item}: given twice (also as {first}); give each scenario or plan folder once")
        scenarios, finished, inputs = {}, {}, []
        for item in items:
            if Path(item).is_dir():  # a finished plan: read now, and it may not lie in --out
                finished[item] = comparing.read_finished(item)
                inputs += [Path(item) / "summary.json", Path(item) / "plan.gpkg"]
                continue
            scn = plan_scenario_from_file(item)
            check_input_files(scn)
            scenarios[item] = scn
            inputs += [item, *input_paths(scn)]
        check_output_folder(out_dir, inputs=inputs)
    with long_lived_imports():
        from tqdm import tqdm

        from heatmap.io.output_folder import write_atomically
        from heatmap.io.outputs import plan_file_names, write_plan_files
        from heatmap.plan import plan_from_scenario

    with _answer_errors():
        order: list[comparing.FinishedPlan | str] = []  # a plan read, or the folder name of one planned here
        planned = {}
        taken: set[str] = set()
        for item in tqdm(items, desc="planning", unit="plan", disable=quiet or None, file=sys.stderr):
            if item in finished:
                order.append(finished[item])
                continue
            result = plan_from_scenario(scenarios[item])
            if not result.ok and not partial:
                _stop_on_failed_checks(result, what=f"{item}: ", then="compare the plan")
            slug = re.sub(r"[^a-z0-9]+", "_", str(result.scenario.name).lower()).strip("_")[:60] or "plan"
            while slug in taken:
                slug += "_2"
            taken.add(slug)
            planned[slug] = result
            order.append(slug)
        names = list(comparing.FILES)
        for slug, result in planned.items():
            names += [f"{slug}/{n}" for n in plan_file_names(result)]

        def write(tmp: Path) -> None:
            for slug, result in planned.items():
                (tmp / slug).mkdir()
                write_plan_files(result, tmp / slug, partial=not result.ok)
            plans = [comparing.read_finished(tmp / p) if isinstance(p, str) else p for p in order]
            comparing.write_comparison_files(plans, tmp, title="Plans compared: " + ", ".join(p.name for p in plans))

        written = write_atomically(out_dir, tuple(names), write, inputs=inputs, title="heatmap compare")
    if not quiet:
        import pandas as pd

        table = pd.read_csv(written["comparison.csv"]).set_index("scenario")
        click.echo(table.T.to_string(float_format=lambda v: f"{v:,.2f}"))
        click.echo(f"\nWritten: {len(written)} files in {out_dir} (README.txt there lists them)")


@main.command()
@click.argument("study_file", metavar="STUDY", type=click.Path(path_type=Path))
@out_option
@to_postgis_option
@postgis_schema_option
@verbosity
@quiet
def study(
    study_file: Path, out_dir: Path, to_postgis: str | None, postgis_schema: str, verbose: int, quiet: bool
) -> None:
    """Run the whole STUDY file (YAML, kind: study): its network, its concepts' year on it and its matches.

    Writes the concepts' tables and plots, the network (network/), the concepts map and the matches (matches/)
    into --out in one go; the parts agree hour by hour (the network's year decides what its sources send).
    With --to-postgis, the network's layers, the matches and the matches' network (its tables named matches_…)
    go to PostGIS too, in one transaction.
    """
    _configure_logging(verbose, quiet)
    with long_lived_imports():
        from heatmap._errors import ScenarioError
        from heatmap.io.output_folder import check_output_folder
        from heatmap.study import is_study, read_study
        from heatmap.study_job import (
            PARTS,
            format_study,
            postgis_layers,
            run_study,
            study_inputs,
            study_parts,
            write_study,
        )

    with _answer_errors():
        from heatmap.io.paths import refuse_special

        refuse_special(study_file, "the STUDY file given to the command", error=ScenarioError)
        if not study_file.exists():
            raise ScenarioError(f"{study_file}: study file not found")
        if not is_study(study_file):
            raise ScenarioError(
                f"{study_file}: not a study (its first lines need 'kind: study'); a plan, concept or matching "
                f"scenario runs with heatmap plan, concepts or matches"
            )
        the_study = read_study(study_file)
        parts = study_parts(the_study)
        inputs = study_inputs(the_study, parts)
        check_output_folder(out_dir, inputs=inputs)
        database = _postgis_target(to_postgis, postgis_schema, what="the study")
    from tqdm import tqdm

    bar = tqdm(total=len(PARTS), desc="study", unit="part", disable=quiet or None, file=sys.stderr)
    with _answer_errors(bar.close):

        def progress(part: str) -> None:
            bar.set_postfix_str(part)
            bar.update(1)

        run = run_study(the_study, parts, progress=progress)
        written = write_study(run, out_dir, inputs=inputs)
        tables = _write_postgis(database, postgis_layers(written), postgis_schema, what="the study")
        bar.close()
    if not quiet:
        click.echo(format_study(run, written))
        if database is not None:
            click.echo(_postgis_written(database, postgis_schema, tables))


@main.command()
@click.argument("study_file", metavar="STUDY", type=click.Path(path_type=Path))
@click.option(
    "--vary",
    "vary_file",
    type=click.Path(path_type=Path),
    required=True,
    help="YAML: the uncertain inputs (dotted paths in the study, values/range/scale) and method lhs|grid.",
)
@out_option
@click.option("--scheduler", default=None, help="Address of a Dask scheduler to run on (default: a local cluster).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local cluster workers (default: cores).")
@click.option("--serial", is_flag=True, help="Run the variants one by one in this process (no Dask).")
@verbosity
@quiet
def ensemble(
    study_file: Path,
    vary_file: Path,
    out_dir: Path,
    scheduler: str | None,
    workers: int | None,
    serial: bool,
    verbose: int,
    quiet: bool,
) -> None:
    """Run the STUDY over the uncertain inputs of --vary, each variant as heatmap study runs it, on Dask.

    Writes variants.csv (every finished variant's inputs and each concept's key figures), distribution.csv
    (mean, std, p5…p95 per concept and figure), cheapest.csv (how often each concept costs least), sensitivity.csv
    (each input's Spearman rank correlation with each figure and its linear swing over the input's range, over all
    variants), tornado.png (the NPV's swings), failures.csv (a variant that fails is reported; the others go on)
    and summary.json into --out. The same seed gives the same tables.
    """
    _configure_logging(verbose, quiet)
    from heatmap._errors import ScenarioError
    from heatmap.ensemble_job import make_variants, read_vary
    from heatmap.io.output_folder import check_output_folder
    from heatmap.study import is_study, read_study
    from heatmap.study_job import study_inputs, study_parts

    with _answer_errors():
        from heatmap.io.paths import refuse_special

        if serial and (scheduler is not None or workers is not None):
            raise click.UsageError("--serial runs in this process: leave out --scheduler and --workers")
        if scheduler is not None and workers is not None:
            raise click.UsageError("--workers sizes the local cluster: leave it out with --scheduler")
        _check_scheduler(scheduler)
        refuse_special(study_file, "the STUDY file given to the command", error=ScenarioError)
        if not study_file.exists():
            raise ScenarioError(f"{study_file}: study file not found")
        if not is_study(study_file):
            raise ScenarioError(f"{study_file}: not a study (its first lines need 'kind: study')")
        the_study = read_study(study_file)
        parts = study_parts(the_study)
        vary = read_vary(vary_file, the_study)
        variants = make_variants(vary, the_study)
        inputs = [*study_inputs(the_study, parts), vary_file]
        check_output_folder(out_dir, inputs=inputs)
    with long_lived_imports():
        from tqdm import tqdm

        from heatmap.ensemble_job import format_ensemble, run_ensemble, write_ensemble

    bar = tqdm(total=len(variants), desc="ensemble", unit="variant", disable=quiet or None, file=sys.stderr)
    failed = 0

    def progress(result: object) -> None:
        nonlocal failed
        failed += getattr(result, "error", None) is not None
        bar.set_postfix_str(f"{failed} failed" if failed else "")
        bar.update(1)

    with _answer_errors(bar.close):
        client: contextlib.AbstractContextManager[object]
        if serial:
            client = contextlib.nullcontext()
        else:
            import distributed  # noqa: F401  (sets its loggers' levels when imported: quieted after it)

            from heatmap.demand.region import dask_client

            _quiet_dependencies(("distributed", "tornado", "bokeh"), verbose, quiet)
            client = dask_client(scheduler, n_workers=workers)
        with client as c:
            result = run_ensemble(the_study, vary, variants, client=c, progress=progress)
        bar.close()
        if all(r.error is not None for r in result.results):
            raise ScenarioError(
                f"{vary_file}: no variant finished (nothing written); variant {result.results[0].id}: "
                f"{result.results[0].error}"
            )
        written = write_ensemble(result, out_dir, inputs=inputs)
    if not quiet:
        click.echo(format_ensemble(result, written))


if __name__ == "__main__":
    main()

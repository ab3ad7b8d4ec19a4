"""The ``heatmap`` command line.

Exit codes: 0 success; 2 a user error (bad scenario, input, street data, output folder; the message says
what to fix); 3 the plan's checks still fail after the allowed resizing rounds (nothing is written unless
``--partial`` is given, which writes the plan marked as partial and exits 0).
"""

from __future__ import annotations

import logging
import sys
import warnings
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="heatmap")
def main() -> None:
    """Plan heat networks: OSM streets → routed, sized, pandapipes-simulated, costed network → GPKG + map."""


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

    from heatmap._errors import HeatmapError
    from heatmap.outputs import format_summary, plan_summary, write_plan
    from heatmap.plan import STAGES, plan_from_scenario
    from heatmap.scenario import scenario_from_file

    bar = tqdm(total=len(STAGES) + 1, desc="planning", unit="stage", disable=quiet or None, file=sys.stderr)
    try:
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
    except HeatmapError as exc:
        bar.close()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        bar.close()
        click.echo("interrupted: nothing was written; earlier results are unchanged", err=True)
        sys.exit(130)
    if not quiet:
        click.echo(format_summary(plan_summary(result, partial=partial)))
        click.echo("\nWritten:")
        for path in written.values():
            click.echo(f"  {path}")


if __name__ == "__main__":
    main()

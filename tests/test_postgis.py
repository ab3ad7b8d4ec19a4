"""PostGIS for teams, against a real PostgreSQL + PostGIS (Debian's) started on a temporary data folder.

A session fixture runs ``initdb`` into a temporary folder (as the ``postgres`` user when the tests run as root),
starts ``postgres`` with ``pg_ctl`` on 127.0.0.1 at a free port (password authentication, scram-sha-256), creates a
database with ``CREATE EXTENSION postgis`` and stops the server at the end. Tested: the bundled plan written to
PostGIS (every layer's rows, pipe length, SRID, geometry type, primary key, comment and default QGIS style equal to
``plan.gpkg``'s); writing again replaces; a write that fails midway leaves the previous tables and styles; consumers
read from a PostGIS table plan the same figures as from a file; ``heatmap study --to-postgis`` writes every
GeoPackage of the study (the matches' network prefixed ``matches_``), ``heatmap demand --to-postgis`` its layers,
styled; bad URLs, tables and columns answered with exit code 2, the URL without its password and the table named;
and real QGIS (``tests/qgis_postgis_check.py`` under ``/usr/bin/python3``) opens the tables through its ``postgres``
provider, styled from ``public.layer_styles``.

PostgreSQL or PostGIS missing is a failure, not a skip: ``bash scripts/setup.sh --with-postgis`` installs them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from conftest import KIP_STUDY, run_cli, write_scenario

from heatmap._errors import OutputError
from heatmap.io.postgis import PostgisUrl, write_geopackage, write_geopackages
from heatmap.maps.layers import load_layer_specs
from heatmap.maps.qgis_style import field_aliases

INSTALL_HINT = (
    "PostgreSQL with PostGIS is missing: the PostGIS tests start Debian's PostgreSQL server with the PostGIS "
    "extension. Install them with `bash scripts/setup.sh --with-browser --with-qgis --with-postgis` (or `sudo "
    "apt-get install postgresql postgresql-postgis`)."
)
USER = "planner"
PASSWORD = "pl4n-S3cret"  # distinctive: no output may hold it
DATABASE = "heat"
ARTEFACTS = Path(__file__).with_name("artefacts") / "postgis"
RENDERERS = {"single": "singleSymbol", "graduated": "graduatedSymbol", "categorized": "categorizedSymbol"}


def _server_binaries() -> Path:
    """The newest PostgreSQL's bin folder that has PostGIS beside it (Debian's layout)."""
    found = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda p: float(p.parent.name) if p.parent.name.replace(".", "").isdigit() else 0.0,
    )
    if not found:
        pytest.fail(INSTALL_HINT + " (no /usr/lib/postgresql/*/bin/initdb)")
    with_postgis = [
        b for b in found if (Path("/usr/share/postgresql") / b.parent.name / "extension/postgis.control").is_file()
    ]
    if not with_postgis:
        pytest.fail(INSTALL_HINT + f" (PostgreSQL {', '.join(b.parent.name for b in found)} has no postgis.control)")
    return with_postgis[-1]


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def server() -> dict:
    """A PostgreSQL server with PostGIS on a temporary data folder: its connection and URL; stopped at the end."""
    binaries = _server_binaries()
    root = Path(tempfile.mkdtemp(prefix="heatmap-postgis-"))
    as_server: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_server = ["runuser", "-u", "postgres", "--"]
    (root / "password").write_text(PASSWORD)
    if as_server:
        os.chown(root / "password", owner.pw_uid, owner.pw_gid)
    data = root / "data"
    _run([*as_server, binaries / "initdb", "-D", data, "-U", USER, "--auth=scram-sha-256",
          f"--pwfile={root / 'password'}", "-E", "UTF8", "--locale=C"])  # fmt: skip
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    _run([*as_server, binaries / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-t", "60", "-o", options,
          "start"])  # fmt: skip
    try:
        import psycopg

        connection = {"host": "127.0.0.1", "port": port, "user": USER, "password": PASSWORD}
        with psycopg.connect(**connection, dbname="postgres", autocommit=True) as con:
            con.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(**connection, dbname=DATABASE, autocommit=True) as con:
            con.execute("CREATE EXTENSION postgis")
            version = con.execute("SELECT postgis_lib_version()").fetchone()[0]
        print(f"\nPostgreSQL {binaries.parent.name} with PostGIS {version} on 127.0.0.1:{port} ({root})")
        yield {
            **connection,
            "dbname": DATABASE,
            "url": f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}",
            "binaries": binaries,
        }
    finally:
        subprocess.run(
            [*as_server, binaries / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def db(server: dict):
    """An SQLAlchemy engine on the test database."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(server["url"].replace("postgresql://", "postgresql+psycopg://"))
    yield engine
    engine.dispose()


def _query(db, sql: str, **params) -> list[tuple]:
    from sqlalchemy import text

    with db.connect() as con:
        return [tuple(r) for r in con.execute(text(sql), params)]


def _gpkg_layers(gpkg: Path) -> list[str]:
    return [str(name) for name, kind in pyogrio.list_layers(gpkg) if kind is not None and name != "layer_styles"]


@pytest.fixture(scope="module")
def written(bundled_outputs: Path, server: dict) -> dict[str, int]:
    """The bundled plan's plan.gpkg written to the schema ``plan``."""
    return write_geopackage(bundled_outputs / "plan.gpkg", PostgisUrl(server["url"]), schema="plan")


def test_every_layer_is_written_as_in_the_geopackage(written: dict, bundled_outputs: Path, db) -> None:
    gpkg = bundled_outputs / "plan.gpkg"
    layers = _gpkg_layers(gpkg)
    assert list(written) == layers and set(layers) >= {"sources", "consumers", "pipes", "junctions", "left_out"}
    with contextlib.closing(sqlite3.connect(gpkg)) as con:
        described = dict(con.execute("SELECT table_name, description FROM gpkg_contents"))
        geometry_types = dict(con.execute("SELECT table_name, geometry_type_name FROM gpkg_geometry_columns"))
    for name in layers:
        expected = gpd.read_file(gpkg, layer=name, fid_as_index=True)
        assert written[name] == len(expected)
        (srid, kind), = _query(db, "SELECT srid, type FROM geometry_columns WHERE f_table_schema = 'plan' "
                                   "AND f_table_name = :n", n=name)  # fmt: skip
        assert srid == 3067 and kind == geometry_types[name].upper(), name
        ((count, length_m, area_m2, key, comment),) = _query(
            db,  # the length of lines and the perimeter of polygons, as shapely's length
            f"SELECT count(*), sum(ST_Length(geometry) + ST_Perimeter(geometry)), sum(ST_Area(geometry)), "
            f'(SELECT array_agg(fid ORDER BY fid) FROM plan."{name}"), '
            f'obj_description(\'plan."{name}"\'::regclass) FROM plan."{name}"',
        )
        assert count == len(expected), name
        assert length_m == pytest.approx(expected.length.sum(), rel=1e-9, abs=1e-6), name
        assert area_m2 == pytest.approx(expected.area.sum(), rel=1e-9, abs=1e-6), name
        assert list(key or []) == list(expected.index), name  # the GeoPackage's feature ids as primary key
        assert comment == described[name], name
        ((primary,),) = _query(
            db, "SELECT array_agg(a.attname) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
                "a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(:q AS regclass) AND i.indisprimary",
            q=f'plan."{name}"',
        )  # fmt: skip
        assert primary == ["fid"], name
    # the pipes read back equal the GeoPackage's, column by column (total pipe length included)
    pipes = gpd.read_postgis("SELECT * FROM plan.pipes ORDER BY fid", db, geom_col="geometry", index_col="fid")
    expected = gpd.read_file(gpkg, layer="pipes", fid_as_index=True)
    assert pipes.crs.to_epsg() == 3067
    assert list(pipes.columns) == list(expected.columns)

    def table(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
        df = pd.DataFrame(gdf.drop(columns="geometry")).astype(object)
        return df.where(df.notna(), None)

    pd.testing.assert_frame_equal(
        table(pipes), table(expected),
        check_dtype=False, check_index_type=False, check_names=False,
    )  # fmt: skip
    assert pipes.length_m.sum() == pytest.approx(expected.length_m.sum(), rel=1e-12) and pipes.length_m.sum() > 1000
    assert np.allclose(pipes.length.to_numpy(), expected.length.to_numpy(), rtol=0, atol=1e-6)


def test_each_table_gets_its_qgis_style_as_default(written: dict, bundled_outputs: Path, db, server: dict) -> None:
    with contextlib.closing(sqlite3.connect(bundled_outputs / "plan.gpkg")) as con:
        gpkg_styles = {t: (q, d) for t, q, d in con.execute(
            "SELECT f_table_name, styleQML, description FROM layer_styles WHERE useAsDefault")}  # fmt: skip
    rows = _query(
        db,
        "SELECT f_table_catalog, f_table_name, f_geometry_column, stylename, styleqml::text, description, owner "
        "FROM public.layer_styles WHERE f_table_schema = 'plan' AND useasdefault",
    )
    assert sorted(r[1] for r in rows) == sorted(written)  # one default style per table
    for catalog, table, column, name, qml, description, owner in rows:
        assert (catalog, column, name, owner) == (DATABASE, "geometry", table, USER)
        assert (qml, description) == gpkg_styles[table]  # the very QML of plan.gpkg


def test_writing_again_replaces_tables_and_default_style_and_keeps_other_styles(
    written: dict, bundled_outputs: Path, db, server: dict
) -> None:
    from sqlalchemy import text

    with db.begin() as con:  # a planner saved a style of their own for the pipes, as the default
        con.execute(text(
            "INSERT INTO public.layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
            "stylename, styleqml, useasdefault) VALUES (:c, 'plan', 'pipes', 'geometry', 'mine', "
            "XMLPARSE(DOCUMENT '<qgis/>'), true)"), {"c": DATABASE})  # fmt: skip
    again = write_geopackage(bundled_outputs / "plan.gpkg", PostgisUrl(server["url"]), schema="plan")
    assert again == written
    for name, rows in written.items():
        assert _query(db, f'SELECT count(*) FROM plan."{name}"') == [(rows,)]
    styles = _query(db, "SELECT stylename, useasdefault FROM public.layer_styles WHERE f_table_schema = 'plan' AND "
                        "f_table_name = 'pipes' ORDER BY stylename")  # fmt: skip
    assert styles == [("mine", False), ("pipes", True)]


def test_a_write_failing_midway_leaves_the_previous_tables_and_styles(bundled_outputs: Path, db, server: dict) -> None:
    from sqlalchemy import text

    url = PostgisUrl(server["url"])
    gpkg = bundled_outputs / "plan.gpkg"
    first = write_geopackage(gpkg, url, schema="previous")
    with db.begin() as con:
        con.execute(text("DELETE FROM previous.consumers WHERE fid > 10"))  # the previous run: 10 consumers
        # a view on the pipes: replacing the pipes table (third, after sources and consumers) fails
        con.execute(text("CREATE VIEW previous.big_pipes AS SELECT * FROM previous.pipes WHERE dn >= 100"))
    before = _query(db, "SELECT f_table_name, update_time FROM public.layer_styles WHERE f_table_schema = 'previous' "
                        "ORDER BY 1")  # fmt: skip
    assert list(first)[:3] == ["sources", "consumers", "pipes"]
    failed = (
        r"writing the plan to schema previous failed \(cannot drop table previous.pipes .*view previous.big_pipes .*\);"
        r" nothing was changed in the database"
    )
    with pytest.raises(OutputError, match=failed) as err:
        write_geopackage(gpkg, url, schema="previous")
    assert PASSWORD not in str(err.value) and ":***@" in str(err.value)
    assert _query(db, "SELECT count(*) FROM previous.consumers") == [(10,)]  # replaced, then rolled back
    assert _query(db, "SELECT count(*) FROM previous.pipes") == [(first["pipes"],)]
    after = _query(db, "SELECT f_table_name, update_time FROM public.layer_styles WHERE f_table_schema = 'previous' "
                       "ORDER BY 1")  # fmt: skip
    assert after == before and len(after) == len(first)


@pytest.fixture(scope="module")
def consumer_inputs(bundled_plan, db, tmp_path_factory) -> dict:
    """40 of the bundled plan's consumers in EPSG:4326, as a GeoPackage and as the PostGIS table inputs.buildings.

    The annual demand is in a column named otherwise (``demand_mwh_a``), mapped by the scenario in both.
    """
    from sqlalchemy import text

    connected = bundled_plan.consumers[bundled_plan.consumers.connected.astype(bool)]
    cons = connected.nlargest(40, "annual_demand_mwh").sort_values("consumer_id")
    table = gpd.GeoDataFrame(
        {
            "id": cons.consumer_id.astype(str).to_numpy(),
            "name": cons["name"].astype(str).to_numpy(),
            "demand_mwh_a": cons.annual_demand_mwh.to_numpy(),
            "peak_load_kw": cons.peak_load_kw.to_numpy(),
        },
        geometry=cons.geometry.to_crs(4326).to_numpy(),
        crs=4326,
    )
    folder = tmp_path_factory.mktemp("postgis_inputs")
    table.to_file(folder / "buildings.gpkg", layer="buildings", engine="pyogrio")
    with db.begin() as con:
        con.execute(text("CREATE SCHEMA IF NOT EXISTS inputs"))
        table.to_postgis("buildings", con, schema="inputs", if_exists="replace")
        table.drop(columns="demand_mwh_a").to_postgis("no_demand", con, schema="inputs", if_exists="replace")
        con.execute(text("CREATE TABLE IF NOT EXISTS inputs.plain (id text)"))
        con.execute(text("DROP TABLE IF EXISTS inputs.no_srid"))
        con.execute(text("CREATE TABLE inputs.no_srid AS SELECT id, demand_mwh_a, ST_SetSRID(geometry, 0) AS geom "
                         "FROM inputs.buildings"))  # fmt: skip
        con.execute(text("DROP TABLE IF EXISTS inputs.in_3857"))  # another CRS than the file's: projected the same
        in_3857 = (
            "CREATE TABLE inputs.in_3857 AS SELECT id, name, demand_mwh_a, peak_load_kw, "
            "ST_Transform(geometry, 3857)::geometry(Geometry, 3857) AS geom FROM inputs.buildings"
        )
        con.execute(text(in_3857))
    return {"file": folder / "buildings.gpkg", "folder": folder, "n": len(table)}


def _scenario(folder: Path, path: str, layer: str, **columns: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_scenario(
        folder,
        consumers__osm_buildings=None,
        consumers__path=path,
        consumers__layer=layer,
        consumers__columns=columns or {"annual_demand_mwh": "demand_mwh_a"},
    )


def test_consumers_read_from_postgis_plan_as_from_the_file_and_the_plan_goes_to_postgis(
    consumer_inputs: dict, server: dict, db, tmp_path: Path
) -> None:
    from_file = _scenario(tmp_path / "file", str(consumer_inputs["file"]), "buildings")
    from_db = _scenario(tmp_path / "db", server["url"], "inputs.buildings")
    assert PASSWORD in from_db.read_text()  # given in the scenario; never in an output
    a = run_cli("plan", from_file, "--out", tmp_path / "out_file", "-q")
    assert a.exit_code == 0, a.output
    b = run_cli("plan", from_db, "--out", tmp_path / "out_db", "--to-postgis", server["url"], "--postgis-schema",
                "roundtrip")  # fmt: skip
    assert b.exit_code == 0, b.output
    summary_file = json.loads((tmp_path / "out_file" / "summary.json").read_text())
    summary_db = json.loads((tmp_path / "out_db" / "summary.json").read_text())
    assert summary_db["counts"] == summary_file["counts"]
    assert summary_db["counts"]["consumers"] == consumer_inputs["n"] and summary_db["counts"]["consumers_connected"] > 0
    assert summary_db["figures"] == summary_file["figures"]  # the same plan, to the last digit
    assert summary_db["figures"]["route_length_m"] > 0
    assert summary_db["input_columns"]["consumers"] == summary_file["input_columns"]["consumers"]
    assert summary_db["input_columns"]["consumers"]["annual_demand_mwh"] == "demand_mwh_a"  # the mapping applied
    path_row = next(a for a in summary_db["assumptions"] if a["key"] == "consumers.path")
    masked = server["url"].replace(f":{PASSWORD}@", ":***@")
    assert path_row["value"] == masked
    for out in (tmp_path / "out_db").rglob("*"):  # the password is in no file written, nor in the terminal
        if out.is_file():
            assert PASSWORD.encode() not in out.read_bytes(), out
    assert PASSWORD not in b.output and f"{masked}, schema roundtrip: tables sources (" in b.output
    # the table in another CRS (EPSG:3857, PostGIS's ST_Transform): taken from PostGIS and projected to EPSG:3067
    c = run_cli(
        "plan", _scenario(tmp_path / "db_3857", server["url"], "inputs.in_3857"), "--out", tmp_path / "o3", "-q"
    )
    assert c.exit_code == 0, c.output
    summary_3857 = json.loads((tmp_path / "o3" / "summary.json").read_text())
    assert summary_3857["crs"] == summary_file["crs"] and summary_3857["counts"] == summary_file["counts"]
    assert summary_3857["figures"] == pytest.approx(summary_file["figures"], rel=1e-6)
    gpkg = tmp_path / "out_db" / "plan.gpkg"
    for name in _gpkg_layers(gpkg):
        assert _query(db, f'SELECT count(*) FROM roundtrip."{name}"') == [(len(gpd.read_file(gpkg, layer=name)),)]
    ((length_m,),) = _query(db, "SELECT sum(length_m) FROM roundtrip.pipes")
    assert length_m == pytest.approx(gpd.read_file(gpkg, layer="pipes").length_m.sum(), rel=1e-12)


def _error(result, *expected: str) -> str:
    assert result.exit_code == 2, result.output
    text = result.output
    assert "Traceback" not in text and PASSWORD not in text, text
    for part in expected:
        assert part in text, text
    return text


def test_bad_database_table_and_columns_are_answered_without_the_password(
    consumer_inputs: dict, server: dict, tmp_path: Path
) -> None:
    url = server["url"]
    masked = url.replace(f":{PASSWORD}@", ":***@")
    down = url.replace(f":{server['port']}/", f":{_free_port()}/")

    def plan(case: str, path: str, layer: str, *extra: str, **columns: str):
        return run_cli("plan", _scenario(tmp_path / case, path, layer, **columns), "--out", tmp_path / f"{case}_out",
                       "-q", *extra)  # fmt: skip

    _error(plan("down", down, "inputs.buildings"), "cannot connect to PostgreSQL to read consumers from table "
           "inputs.buildings", "Connection refused", ":***@127.0.0.1:")  # fmt: skip
    wrong = url.replace(f":{PASSWORD}@", ":wrong-pw@")
    text = _error(plan("wrong_pw", wrong, "inputs.buildings"), "password authentication failed")
    assert "wrong-pw" not in text
    _error(plan("missing", url, "inputs.nothing"), f"{masked}: table inputs.nothing does not exist (tables with a "
           "geometry: inputs.buildings, inputs.in_3857, inputs.no_demand, inputs.no_srid")  # fmt: skip
    _error(plan("plain", url, "inputs.plain"), "table inputs.plain has no geometry column")
    _error(plan("no_srid", url, "inputs.no_srid"), f"{masked}, table inputs.no_srid: the layer has no CRS", "SRID")
    _error(plan("columns", url, "inputs.no_demand"), f"{masked}, table inputs.no_demand: column 'demand_mwh_a' "
           "(mapped by 'consumers.columns.annual_demand_mwh') is not in the file")  # fmt: skip
    unmapped = plan("unmapped", url, "inputs.buildings", peak_load_kw="peak_load_kw")
    _error(unmapped, f"{masked}, table inputs.buildings: column 'demand_mwh_a' looks like 'annual_demand_mwh'")
    _error(plan("bad_url", "postgresql://planner@127.0.0.1/", "inputs.buildings"), "names no database")
    # --to-postgis into a database without PostGIS: refused before planning, nothing written
    no_postgis = url.rsplit("/", 1)[0] + "/postgres"
    result = plan("target", str(consumer_inputs["file"]), "buildings", "--to-postgis", no_postgis,
                  annual_demand_mwh="demand_mwh_a")  # fmt: skip
    _error(result, "postgres: the database has no PostGIS")
    assert not (tmp_path / "target_out").exists()
    _error(plan("target_down", str(consumer_inputs["file"]), "buildings", "--to-postgis", down,
                annual_demand_mwh="demand_mwh_a"), "cannot connect to PostgreSQL to write the plan")  # fmt: skip
    assert not (tmp_path / "target_down_out").exists()


def test_a_study_goes_to_postgis_whole_its_matches_network_prefixed(server: dict, db, tmp_path: Path) -> None:
    """``heatmap study --to-postgis``: every layer of every GeoPackage it wrote, in one schema, styled."""
    out = tmp_path / "study"
    result = run_cli("study", KIP_STUDY, "--out", out, "--to-postgis", server["url"], "--postgis-schema", "kip")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    expected: dict[str, int] = {}
    for gpkg, prefix in (
        (out / "network" / "plan.gpkg", ""),
        (out / "matches" / "matches.gpkg", ""),
        (out / "matches" / "network" / "plan.gpkg", "matches_"),
        (out / "matches" / "network" / "pair_lines.gpkg", "matches_"),
    ):
        for name in _gpkg_layers(gpkg):
            expected[prefix + name] = len(gpd.read_file(gpkg, layer=name))
    assert {"pipes", "pipes_by_hour", "matches", "matches_pipes", "matches_pair_lines"} <= set(expected)
    tables = dict(_query(db, "SELECT f_table_name, 0 FROM geometry_columns WHERE f_table_schema = 'kip'"))
    assert set(tables) == set(expected)
    for name, rows in expected.items():
        assert _query(db, f'SELECT count(*) FROM kip."{name}"') == [(rows,)], name
    styled = _query(db, "SELECT f_table_name FROM public.layer_styles WHERE f_table_schema = 'kip' AND useasdefault")
    assert sorted(t for (t,) in styled) == sorted(expected)  # each table its default QGIS style
    shown = ", ".join(f"{name} ({rows:,})" for name, rows in expected.items() if name == "matches_pipes")
    assert "schema kip: tables " in result.output and shown in result.output
    # a database without PostGIS is refused before the study runs: nothing written
    no_postgis = server["url"].rsplit("/", 1)[0] + "/postgres"
    refused = run_cli("study", KIP_STUDY, "--out", tmp_path / "refused", "--to-postgis", no_postgis, "-q")
    _error(refused, "postgres: the database has no PostGIS")
    assert not (tmp_path / "refused").exists()


def test_a_demand_map_goes_to_postgis_styled(server: dict, db, tmp_path: Path) -> None:
    """``heatmap demand --to-postgis``: the buildings and the potential areas as tables with their QGIS styles."""
    from heatmap.io.synthetic import synthetic_region_buildings

    buildings = tmp_path / "buildings.gpkg"
    synthetic_region_buildings(300, seed=5, n_towns=1).to_file(buildings, engine="pyogrio")
    out = tmp_path / "demand"
    result = run_cli("demand", buildings, "--out", out, "--to-postgis", server["url"], "--postgis-schema", "demand")
    assert result.exit_code == 0, result.output
    gpkg = out / "demand.gpkg"
    layers = _gpkg_layers(gpkg)
    assert set(layers) == {"buildings", "potential_areas"}
    for name in layers:
        assert _query(db, f'SELECT count(*) FROM demand."{name}"') == [(len(gpd.read_file(gpkg, layer=name)),)], name
    styled = _query(db, "SELECT f_table_name FROM public.layer_styles WHERE f_table_schema = 'demand' AND useasdefault")
    assert sorted(t for (t,) in styled) == sorted(layers)
    assert "schema demand: tables buildings (" in result.output and PASSWORD not in result.output


def test_two_geopackages_with_the_same_layers_need_prefixes(bundled_outputs: Path, server: dict) -> None:
    gpkg = bundled_outputs / "plan.gpkg"
    with pytest.raises(ValueError, match="two GeoPackages give a table 'sources'"):
        write_geopackages([(gpkg, ""), (gpkg, "")], PostgisUrl(server["url"]), schema="twice")


def test_qgis_opens_the_postgis_tables_styled(written: dict, bundled_outputs: Path, server: dict) -> None:
    """QGIS (Debian's python3-qgis) adds each table through its postgres provider and finds its default style."""
    from test_qgis_real import _qgis_python

    python = _qgis_python()
    if ARTEFACTS.exists():
        shutil.rmtree(ARTEFACTS)
    request = {
        "connection": {k: server[k] for k in ("host", "port", "dbname", "user", "password")},
        "schema": "plan",
        "tables": list(written),
        "png_dir": str(ARTEFACTS),
    }
    run = subprocess.run(
        [python, Path(__file__).with_name("qgis_postgis_check.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=300,
    )
    assert run.returncode == 0 and run.stdout.strip(), f"QGIS check failed ({run.returncode}): {run.stderr[-2000:]}"
    report = json.loads(run.stdout)
    (ARTEFACTS / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    specs = load_layer_specs()
    assert set(report["tables"]) == set(written)
    for name, found in report["tables"].items():
        spec = specs[name]
        assert found["valid"] and found["crs"] == "EPSG:3067", (name, found)
        assert found["features"] == written[name], name
        assert found["style_loaded"], (name, found["style_message"])
        rule = spec.color
        assert found["renderer"] == RENDERERS[rule.kind], name
        expected = [] if rule.kind == "single" else [c.label for c in rule.classes]
        if rule.kind == "categorized":
            expected.append("Other")
        assert found["classes"] == expected, name
        assert found["renderer_field"] == (rule.field if rule.kind != "single" else None), name
        assert found["labels_enabled"] == (name in ("sources", "consumers")), name
        aliases = found["aliases"]
        assert aliases == field_aliases(spec, dict.fromkeys(aliases)) and all(aliases.values()), name
        assert spec.description in found["comment"], name
        assert found["render"]["errors"] == [], name
        assert found["render"]["drawn_share"] > 0 or spec.max_scale_denominator is not None, name

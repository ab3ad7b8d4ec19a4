"""PostGIS for teams: a plan's layers with their QGIS styles written to PostgreSQL, sources and consumers read from it.

Writing (:func:`write_geopackage`, ``heatmap plan … --to-postgis URL``; a study's GeoPackages together:
:func:`write_geopackages`, ``heatmap study … --to-postgis URL``): every feature layer of a GeoPackage that
heatmap wrote (``plan.gpkg``) becomes a table of that name in one schema (``public`` unless named), in the
GeoPackage's CRS (EPSG:3067 in Finland), with an integer primary key ``fid`` (the GeoPackage's feature id), a
spatial index and the layer's description as the table's comment. Each layer's QGIS style (the QML heatmap stored
in the GeoPackage's ``layer_styles`` table) goes into ``public.layer_styles``, the table QGIS reads and writes
(*Save as default → Datasource database*), as the table's default style: QGIS opens the tables styled. Everything
is written in one transaction: a run that fails anywhere (a lost connection, a full disk, a wrong permission)
leaves the tables and styles of the previous run as they were.

Reading (:func:`read_table`): a scenario's ``sources`` or ``consumers`` may name a PostgreSQL database as their
``path`` and a table (``schema.name``) as their ``layer``, as GDAL and QGIS name a PostGIS table::

    consumers: {path: "postgresql://planner@db.example.org/heat", layer: plans.consumers}

The table is read in its own CRS (from PostGIS) and then checked and projected like a file, with the same column
mapping (``columns:``). A password may be given in the URL, but better not: libpq reads it from ``~/.pgpass`` or
``PGPASSWORD``. A URL never shows its password: :class:`PostgisUrl` prints ``***`` in its place, so messages, logs
and ``summary.json`` never hold it.

SQLAlchemy, GeoAlchemy2 and psycopg are imported only by the functions that talk to the database.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heatmap._errors import InputDataError, OutputError

if TYPE_CHECKING:
    import geopandas as gpd
    import sqlalchemy

logger = logging.getLogger(__name__)

SCHEMES = ("postgresql", "postgres")
"""URL schemes taken for a PostgreSQL database (libpq's and SQLAlchemy's ``postgresql://user@host:port/db``; a
driver named as in ``postgresql+psycopg2://`` is accepted, and psycopg 3 used)."""
CONNECT_TIMEOUT_S = 10
"""Seconds to wait for the server before a connection counts as failed."""
_URL_PATTERN = re.compile(r"^\s*(postgres|postgresql)(\+\w+)?://", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

_CREATE_LAYER_STYLES = """
CREATE TABLE IF NOT EXISTS public.layer_styles (
    id SERIAL PRIMARY KEY, f_table_catalog varchar, f_table_schema varchar, f_table_name varchar,
    f_geometry_column varchar, stylename text, styleqml xml, stylesld xml, useasdefault boolean, description text,
    owner varchar(63) DEFAULT CURRENT_USER, ui xml, update_time timestamp DEFAULT CURRENT_TIMESTAMP, type varchar)
"""
"""The style table as QGIS creates it in PostgreSQL. QGIS 3.22 fills ``type`` with the layer's geometry type as it
names it and loads a style whose ``type`` is that or empty: heatmap leaves it empty."""


def looks_like_url(value: object) -> bool:
    """Tell whether a scenario value names a PostgreSQL database (``postgresql://…``) rather than a file."""
    return isinstance(value, str) and _URL_PATTERN.match(value) is not None


class PostgisUrl:
    """A PostgreSQL connection URL that never shows its password.

    ``str()`` and ``repr()`` give the URL with ``***`` for the password, so a message, a log line or a summary
    that names the database never holds it; :attr:`secret` is the URL as given, for the driver only.

    Parameters
    ----------
    url
        ``postgresql://[user[:password]@][host][:port]/database[?param=value…]`` (libpq's parameters, e.g.
        ``?host=/run/postgresql`` for a Unix socket or ``?sslmode=require``).

    Raises
    ------
    ValueError
        If the URL is not a PostgreSQL URL or names no database.
    """

    def __init__(self, url: str) -> None:
        url = url.strip()
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower().split("+")[0] not in SCHEMES or not url[len(parts.scheme) :].startswith("://"):
            raise ValueError(f"a PostgreSQL URL starts with postgresql:// (two slashes), got {_masked(url)!r}")
        if not parts.path.strip("/"):
            raise ValueError(f"the URL {_masked(url)!r} names no database: give postgresql://user@host/database")
        try:
            parts.port  # noqa: B018 - checks the port is a number
        except ValueError as exc:
            raise ValueError(f"the URL {_masked(url)!r} has no valid port ({exc})") from None
        self._url = url

    @property
    def secret(self) -> str:
        """The URL as given, password included: pass it to the driver, never to a message."""
        return self._url

    @property
    def database(self) -> str:
        """The database the URL names."""
        return urllib.parse.unquote(urllib.parse.urlsplit(self._url).path.strip("/"))

    def __str__(self) -> str:
        return _masked(self._url)

    def __repr__(self) -> str:
        return f"PostgisUrl({_masked(self._url)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PostgisUrl) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.is_instance_schema(cls, serialization=core_schema.to_string_ser_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "format": "uri", "pattern": r"^(postgres|postgresql)(\+\w+)?://"}


def _masked(url: str) -> str:
    """Return the URL with ``***`` for its password (in the user part and a ``password=`` parameter)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _scrub(text: str, url: PostgisUrl) -> str:
    """Remove the URL's password from a text (a driver's message), should it hold it."""
    parts = urllib.parse.urlsplit(url.secret)
    secrets = [parts.password, *urllib.parse.parse_qs(parts.query).get("password", [])]
    for secret in filter(None, secrets):
        text = text.replace(secret, "***").replace(urllib.parse.unquote(secret), "***")
    return text


def _engine(url: PostgisUrl) -> sqlalchemy.Engine:
    """Make an SQLAlchemy engine on psycopg (version 3) for the URL."""
    import sqlalchemy

    parsed = sqlalchemy.engine.make_url(url.secret).set(drivername="postgresql+psycopg")
    return sqlalchemy.create_engine(
        parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, poolclass=sqlalchemy.pool.NullPool
    )


def _reason(exc: BaseException, url: PostgisUrl) -> str:
    """Give the driver's own words for a failure: its first line, without SQLAlchemy's statement and link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    reason = (text[0] if text else type(orig).__name__).rstrip(".")
    detail = getattr(getattr(orig, "diag", None), "message_detail", None)  # PostgreSQL's DETAIL: what is in the way
    if detail:
        reason += ": " + " ".join(str(detail).split()).rstrip(".")
    return _scrub(reason, url)


@contextmanager
def _connection(url: PostgisUrl, error: type[Exception], doing: str) -> Iterator[sqlalchemy.Connection]:
    """One connection to the database; a failure to connect raises ``error`` naming the URL and the reason."""
    import sqlalchemy

    try:
        engine = _engine(url)
    except sqlalchemy.exc.ArgumentError as exc:  # a URL SQLAlchemy cannot read
        raise error(f"{url}: not a PostgreSQL URL SQLAlchemy can read ({_reason(exc, url)})") from None
    try:
        try:
            conn = engine.connect()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise error(
                f"{url}: cannot connect to PostgreSQL to {doing} ({_reason(exc, url)}); check the host, port, "
                f"database, user and password (~/.pgpass or PGPASSWORD) and that the server is running"
            ) from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def _postgis_version(conn: sqlalchemy.Connection) -> str | None:
    from sqlalchemy import text

    return conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()


def _split_table(table: str, key: str) -> tuple[str, str]:
    """Split ``schema.name`` (or ``name``, in ``public``) into (schema, name), their case kept (as GDAL and QGIS)."""
    parts = [p.strip() for p in table.split(".")]
    if len(parts) == 1:
        parts = ["public", *parts]
    if len(parts) != 2 or not all(parts):
        raise InputDataError(f"{key} {table!r}: give the table as schema.name (or name, in the schema public)")
    return parts[0], parts[1]


def read_table(url: PostgisUrl, table: str | None, *, what: str, key: str | None = None) -> gpd.GeoDataFrame:
    """Read a PostGIS table of sources or consumers, in its own CRS.

    Parameters
    ----------
    url
        The database.
    table
        ``schema.name`` or ``name`` (schema ``public``); the scenario's ``layer``.
    what
        What the features are ("sources", "consumers"), for messages.
    key
        The scenario section naming the table, for messages.

    Returns
    -------
    geopandas.GeoDataFrame
        The table's rows (ordered by its primary key, if it has one) with its geometry column as the geometry and
        its SRID as the CRS (none where the SRID is 0); ``attrs``: ``where`` (the URL and table, for messages),
        ``row_label`` "row" and ``row_numbers`` (1-based in the order read).

    Raises
    ------
    heatmap._errors.InputDataError
        The server unreachable, PostGIS missing, the table missing (the tables with a geometry are listed) or
        without a geometry column.
    """
    import geopandas as gpd
    import numpy as np
    import sqlalchemy
    from sqlalchemy import text

    section = f"'{key}.layer'" if key else "the table"
    if not table:
        raise InputDataError(f"{url}: name the table to read {what} from with {section} (schema.name)")
    schema, name = _split_table(table, section)
    where = f"{url}, table {schema}.{name}"
    with _connection(url, InputDataError, f"read {what} from table {schema}.{name}") as conn:
        try:
            if _postgis_version(conn) is None:
                raise InputDataError(f"{url}: the database has no PostGIS (CREATE EXTENSION postgis)")
            columns = conn.execute(
                text(
                    "SELECT f_geometry_column, srid FROM geometry_columns WHERE f_table_schema = :s AND "
                    "f_table_name = :n ORDER BY f_geometry_column"
                ),
                {"s": schema, "n": name},
            ).all()
            if not columns:
                exists = conn.execute(text("SELECT to_regclass(:q) IS NOT NULL"), {"q": _quoted(schema, name)}).scalar()
                tables = [
                    f"{s}.{t}"
                    for s, t in conn.execute(
                        text(
                            "SELECT DISTINCT f_table_schema, f_table_name FROM geometry_columns "
                            "WHERE f_table_schema NOT IN ('pg_catalog', 'information_schema', 'topology') ORDER BY 1, 2"
                        )
                    )
                ]
                problem = "has no geometry column" if exists else "does not exist"
                raise InputDataError(
                    f"{url}: table {schema}.{name} {problem} (tables with a geometry: {', '.join(tables) or 'none'}); "
                    f"check {section}"
                )
            geometry, srid = columns[0]
            keys = (
                conn.execute(
                    text(
                        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
                        "a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(:q AS regclass) AND i.indisprimary "
                        "ORDER BY array_position(i.indkey, a.attnum)"
                    ),
                    {"q": _quoted(schema, name)},
                )
                .scalars()
                .all()
            )
            order = f" ORDER BY {', '.join(_ident(k) for k in keys)}" if keys else ""
            crs = None
            if srid and int(srid) > 0:  # the table's SRID as PostGIS defines it: its EPSG code, else its WKT
                ((authority, code, wkt),) = conn.execute(
                    text("SELECT auth_name, auth_srid, srtext FROM spatial_ref_sys WHERE srid = :srid"), {"srid": srid}
                ).all()
                crs = f"EPSG:{code}" if str(authority).upper() == "EPSG" else wkt
            gdf = gpd.read_postgis(
                text(f"SELECT * FROM {_quoted(schema, name)}{order}"), conn, geom_col=geometry, crs=crs
            )
        except InputDataError:
            raise
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise InputDataError(f"{where}: cannot be read ({_reason(exc, url)})") from None
    gdf.attrs["row_label"] = "row"
    gdf.attrs["row_numbers"] = np.arange(1, len(gdf) + 1)
    gdf.attrs["where"] = where
    logger.info("Read %d rows from %s (geometry %s, SRID %s)", len(gdf), where, geometry, srid)
    return gdf


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quoted(schema: str, name: str) -> str:
    return f"{_ident(schema)}.{_ident(name)}"


def check_target(url: PostgisUrl, *, schema: str = "public", what: str = "the plan") -> str:
    """Check, before any work, that a plan (or ``what``) can be written to the database: it answers, has PostGIS.

    Parameters
    ----------
    url
        The database.
    schema
        The schema the tables go into (created if missing).
    what
        What will be written, for the messages.

    Returns
    -------
    str
        The PostGIS version of the database.

    Raises
    ------
    heatmap._errors.OutputError
        The schema name is not a plain name, the server does not answer, or the database has no PostGIS.
    """
    _check_schema(schema)
    with _connection(url, OutputError, f"write {what}") as conn:
        version = _postgis_version(conn)
    if version is None:
        raise OutputError(f"{url}: the database has no PostGIS; run CREATE EXTENSION postgis in it (as its owner)")
    logger.info("PostGIS %s at %s", version, url)
    return version


def _check_schema(schema: str) -> None:
    if not _NAME.match(schema):
        raise OutputError(
            f"--postgis-schema {schema!r}: give a plain name (letters, digits, _; not starting with a digit)"
        )


def _styles(gpkg: Path) -> dict[str, tuple[str, str | None, str]]:
    """Layer name → (QML, SLD or None, description) of the default styles stored in a GeoPackage."""
    with closing(sqlite3.connect(f"{gpkg.resolve().as_uri()}?mode=ro", uri=True)) as con:
        exists = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'layer_styles'").fetchone()
        if exists is None:
            return {}
        rows = con.execute(
            "SELECT f_table_name, styleQML, styleSLD, description FROM layer_styles WHERE useAsDefault ORDER BY id"
        ).fetchall()
    return {str(t): (str(qml), str(sld) if sld else None, str(d or "")) for t, qml, sld, d in rows}


def _layers(gpkg: Path) -> dict[str, tuple[str, str]]:
    """Feature layer → (geometry type as GeoPackage names it, description) in the GeoPackage's order."""
    with closing(sqlite3.connect(f"{gpkg.resolve().as_uri()}?mode=ro", uri=True)) as con:
        rows = con.execute(
            "SELECT c.table_name, g.geometry_type_name, c.description FROM gpkg_contents c JOIN gpkg_geometry_columns "
            "g ON g.table_name = c.table_name WHERE c.data_type = 'features' ORDER BY c.rowid"
        ).fetchall()
    return {str(t): (str(g).upper(), str(d or "")) for t, g, d in rows}


def write_geopackage(gpkg: Path, url: PostgisUrl, *, schema: str = "public") -> dict[str, int]:
    """Write every feature layer of a GeoPackage heatmap wrote, and its QGIS style, to PostGIS in one transaction.

    Each layer replaces the table of its name in ``schema`` (created if missing): its columns, an integer primary
    key ``fid``, the geometry in the GeoPackage's CRS with a spatial index, and the layer's description as the
    table's comment. Its default QGIS style goes into ``public.layer_styles`` (created as QGIS does if missing) as
    the table's default style named after it; other styles of the table stay, no longer the default. A failure
    anywhere rolls the whole transaction back: the tables and styles stay as they were.

    Parameters
    ----------
    gpkg
        The GeoPackage (``plan.gpkg``).
    url
        The database; it needs PostGIS and the right to create tables in ``schema``.
    schema
        The schema of the tables.

    Returns
    -------
    dict
        Table name → rows written.

    Raises
    ------
    heatmap._errors.OutputError
        The server unreachable, PostGIS missing, or the write failed (nothing changed in the database).
    """
    return write_geopackages([(gpkg, "")], url, schema=schema)


def write_geopackages(
    gpkgs: Sequence[tuple[Path, str]], url: PostgisUrl, *, schema: str = "public", what: str = "the plan"
) -> dict[str, int]:
    """Write the layers of several GeoPackages (as :func:`write_geopackage` does one) in one transaction.

    Parameters
    ----------
    gpkgs
        Each GeoPackage and the prefix of its tables' names (``""``: the layers' own names; ``"matches_"``:
        ``matches_pipes`` …), so that layers of the same name in two GeoPackages stay apart.
    url
        The database; it needs PostGIS and the right to create tables in ``schema``.
    schema
        The schema of the tables.
    what
        What is written, for the messages (``the plan``, ``the study``).

    Returns
    -------
    dict
        Table name → rows written, in the order written.

    Raises
    ------
    heatmap._errors.OutputError
        As :func:`write_geopackage`.
    """
    import geopandas as gpd
    import sqlalchemy
    from sqlalchemy import text

    _check_schema(schema)
    layers: dict[str, tuple[str, str]] = {}
    styles: dict[str, tuple[str, str | None, str]] = {}
    frames: dict[str, gpd.GeoDataFrame] = {}
    for gpkg, prefix in gpkgs:
        for name, layer in _layers(gpkg).items():
            if prefix + name in layers:
                raise ValueError(f"two GeoPackages give a table {prefix + name!r}; give them different prefixes")
            layers[prefix + name] = layer
            frames[prefix + name] = gpd.read_file(gpkg, layer=name, engine="pyogrio", fid_as_index=True)
        styles.update({prefix + name: style for name, style in _styles(gpkg).items()})
    written: dict[str, int] = {}
    with _connection(url, OutputError, f"write {what}") as conn:
        if _postgis_version(conn) is None:
            raise OutputError(f"{url}: the database has no PostGIS; run CREATE EXTENSION postgis in it (as its owner)")
        conn.rollback()  # end the transaction the check began: the write is one transaction of its own
        try:
            with conn.begin():
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}"))
                for name, gdf in frames.items():
                    _write_layer(conn, gdf, schema, name, *layers[name])
                    written[name] = len(gdf)
                _write_styles(conn, url.database, schema, styles, {n: g.geometry.name for n, g in frames.items()})
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise OutputError(
                f"{url}: writing {what} to schema {schema} failed ({_reason(exc, url)}); nothing was changed in "
                f"the database (the previous tables stay)"
            ) from None
    logger.info(
        "Wrote %d tables (%s) and their QGIS styles to %s, schema %s", len(written), ", ".join(written), url, schema
    )
    return written


def _write_layer(
    conn: sqlalchemy.Connection, gdf: gpd.GeoDataFrame, schema: str, name: str, geometry_type: str, description: str
) -> None:
    """Replace one table: rows, primary key ``fid``, the geometry type of the GeoPackage, the comment."""
    from sqlalchemy import text

    gdf = gdf.rename_axis("fid")
    gdf.to_postgis(name, conn, schema=schema, if_exists="replace", index=True)
    table = _quoted(schema, name)
    column = _ident(gdf.geometry.name)
    conn.execute(text(f"ALTER TABLE {table} ADD PRIMARY KEY (fid)"))
    srid = int(
        conn.execute(text("SELECT Find_SRID(:s, :n, :g)"), {"s": schema, "n": name, "g": gdf.geometry.name}).one()[0]
    )
    declared = conn.execute(
        text("SELECT type FROM geometry_columns WHERE f_table_schema = :s AND f_table_name = :n"),
        {"s": schema, "n": name},
    ).scalar()
    if geometry_type != "GEOMETRY" and str(declared).upper() != geometry_type:  # an empty layer: its GeoPackage type
        conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE geometry({geometry_type}, {srid})"))
    literal = "'" + description.replace("'", "''") + "'"  # COMMENT takes no parameter; no text() (its ':' binds)
    conn.exec_driver_sql(f"COMMENT ON TABLE {table} IS {literal}")


def _write_styles(
    conn: sqlalchemy.Connection,
    database: str,
    schema: str,
    styles: dict[str, tuple[str, str | None, str]],
    tables: dict[str, str],
) -> None:
    """Make each table's style the default one in ``public.layer_styles``."""
    from sqlalchemy import text

    conn.execute(text(_CREATE_LAYER_STYLES))
    conn.execute(text("ALTER TABLE public.layer_styles ADD COLUMN IF NOT EXISTS type varchar"))  # as QGIS 3.22 does
    where = "f_table_catalog = :c AND f_table_schema = :s AND f_table_name = :t AND f_geometry_column = :g"
    for table, (qml, sld, description) in styles.items():
        if table not in tables:
            continue
        keys = {"c": database, "s": schema, "t": table, "g": tables[table]}
        conn.execute(text(f"DELETE FROM public.layer_styles WHERE {where} AND stylename = :sn"), {**keys, "sn": table})
        conn.execute(text(f"UPDATE public.layer_styles SET useasdefault = false WHERE {where}"), keys)
        conn.execute(
            text(
                "INSERT INTO public.layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                "stylename, styleqml, stylesld, useasdefault, description, owner, ui, update_time, type) VALUES "
                "(:c, :s, :t, :g, :sn, XMLPARSE(DOCUMENT :qml), XMLPARSE(DOCUMENT :sld), true, :d, CURRENT_USER, NULL, "
                "CURRENT_TIMESTAMP, NULL)"
            ),
            {**keys, "sn": table, "qml": qml, "sld": sld, "d": description},
        )

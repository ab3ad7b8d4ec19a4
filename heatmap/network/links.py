"""Candidate links where there are no streets: lines drawn in QGIS and straight site-to-site lines.

Inside an industrial park pipes run on pipe racks, across open ground and under roads and rails, not along
public streets. Two kinds of candidate link complement (or replace) the OSM streets:

- **Drawn links**: a line layer (GeoPackage, GeoJSON, …) drawn in QGIS, one feature per candidate route,
  with an optional ``surface`` column naming how the pipe is laid there (``open_terrain``, ``pipe_rack``,
  ``road_crossing``, ``rail_crossing``, ``street``) and an optional ``status``: ``candidate`` (or empty),
  ``forbidden`` (no pipe along it, nor along the streets it follows) or ``existing`` (a pipe lies there, of the DN in
  the ``dn`` column: the design reuses it up to the load it carries and upgrades it beyond; drawn along a street it
  joins it where it ends and at the junctions it passes, and replaces the street beside it). Lines are split
  where they cross or touch each other, so every crossing is a junction (draw with snapping on: an end joins
  another line only at a crossing or within ``snap_m`` of another line's end).
- **Site-to-site links**: a straight line from every site (source or consumer) to each of its ``k`` nearest
  sites within ``max_length_m``, laid on ``site_link_surface``.

Each link carries a ``cost_factor``: the trench cost per metre relative to a street (the surface's factor,
a setting). Routing weighs every link by ``length_m × cost_factor`` and the economics cost it by the same
factor. No pipe ever crosses a ``no_go`` polygon (buildings, tanks, process areas): a link or a street segment
whose line enters one is left out (the streets too where the scenario gives no links).

:func:`combine` joins the links (ends within ``snap_m`` share a node) and the streets (a link end within
``snap_m`` of a street node joins it) into one table in the form of :func:`heatmap.io.streets.street_edges`
(``edge_id``, ``u``, ``v``, ``name``, ``highway``, ``length_m``, plus ``surface`` and ``cost_factor``), so
the candidate graph takes them with or without streets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from heatmap._errors import InputDataError
from heatmap.io.inputs import check_degrees, check_layer
from heatmap.network.no_go import NoGoAreas

logger = logging.getLogger(__name__)

LINE_COLUMNS = ("surface", "status", "dn")
"""The columns of a line layer read (in any case)."""

SURFACES = ("street", "open_terrain", "pipe_rack", "road_crossing", "rail_crossing")
"""Surfaces a candidate link may be laid on; each has a cost factor in the scenario."""


def read_lines(
    path: Path,
    *,
    layer: str | None,
    crs: CRS,
    what: str,
    allowed: tuple[str, ...] = ("LineString",),
    layer_setting: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a line or polygon layer, check its geometry and CRS, and project it to the plan's CRS.

    Parameters
    ----------
    path
        The file.
    layer
        The layer of a multi-layer file.
    crs
        The plan's metric CRS.
    what
        What the features are (for messages), e.g. "candidate links".
    allowed
        Geometry types accepted (their Multi- forms are exploded).
    layer_setting
        The scenario setting that names ``layer`` (e.g. ``links.layer``): a file of several layers without one named
        is refused, naming it (with none, GDAL's first layer is read).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per single-part geometry, with ``feature`` (the file's feature number, from 1).
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: file of {what} not found; check the path in the scenario")
    try:
        check_layer(path, layer, option=f"'{layer_setting}'" if layer_setting else None)
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except InputDataError:
        raise
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError, OSError) as exc:
        raise InputDataError(f"{path}: cannot be read as {what} ({str(exc).split(';')[0]})") from exc
    if gdf.crs is None:
        raise InputDataError(f"{path}: the layer of {what} has no CRS; assign one in QGIS (Layer ▸ Set CRS)")
    gdf = gdf.reset_index(drop=True)
    named = {c: c.strip().lower() for c in gdf.columns if isinstance(c, str) and c.strip().lower() in LINE_COLUMNS}
    if len(set(named.values())) == len(named):  # 'DN' or 'Status' as QGIS users write them (none twice over)
        gdf = gdf.rename(columns=named)
    gdf["feature"] = np.arange(1, len(gdf) + 1)
    gdf.attrs.update(row_label="feature", row_numbers=gdf.feature.to_numpy())
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.any():
        raise InputDataError(
            f"{path}: features {', '.join(map(str, gdf.feature[empty][:10]))} of the {what} have no geometry (empty "
            f"coordinates); draw them again or delete them"
        )
    types = gdf.geometry.geom_type.str.removeprefix("Multi")
    bad = gdf.feature[~types.isin(allowed)]
    if len(bad):
        raise InputDataError(
            f"{path}: features {', '.join(map(str, bad[:10]))} are not {' or '.join(allowed)} geometries "
            f"({what} must be {' or '.join(a.lower() + 's' for a in allowed)})"
        )
    invalid = ~gdf.geometry.is_valid.to_numpy()
    if invalid.any():
        reasons = shapely.is_valid_reason(gdf.geometry.values[invalid])
        shown = ", ".join(f"feature {f} ({r})" for f, r in zip(gdf.feature[invalid][:5], reasons[:5], strict=False))
        more = f" and {int(invalid.sum()) - 5} more" if invalid.sum() > 5 else ""
        are = "is not a valid geometry" if invalid.sum() == 1 else "are not valid geometries"
        why = (
            "a line needs two distinct points"
            if "Polygon" not in allowed
            else "an invalid polygon (its outline crossing itself) has no well-defined inside"
        )
        raise InputDataError(
            f"{path}: {shown}{more} of the {what} {are}; {why}: repair them in QGIS (Vector ▸ Geometry Tools ▸ Fix "
            f"Geometries, or Check Validity to find them)"
        )
    check_degrees(gdf, str(path))  # metres in a GeoJSON without a CRS (GeoJSON means degrees)
    out = gdf.explode(index_parts=False).reset_index(drop=True).to_crs(crs)
    out.attrs = {"where": str(path)}
    logger.info("Read %d %s from %s", len(out), what, path)
    return out


def drawn_links(
    lines: gpd.GeoDataFrame,
    *,
    cost_factors: dict[str, float],
    default_surface: str,
) -> gpd.GeoDataFrame:
    """Split drawn lines at their crossings into links with cost factors.

    Lines with ``status`` ``forbidden`` are no links (:func:`forbid` takes them); the rest are candidates, those with
    ``status`` ``existing`` a pipe that lies there already, of the DN in their ``dn`` column (``existing_dn``).

    Parameters
    ----------
    lines
        Output of :func:`read_lines` (metric CRS), with optional ``surface``, ``status`` and ``dn`` columns.
    cost_factors
        Cost factor per surface (see :data:`SURFACES`).
    default_surface
        Surface of lines without one.

    Returns
    -------
    geopandas.GeoDataFrame
        Links with ``name``, ``highway``, ``surface``, ``cost_factor``, ``link_feature`` (the drawn feature each
        piece lies on), ``existing_dn`` (NaN where no pipe lies) and line geometry.
    """
    existing_dn = existing_dns(lines)
    keep = ~forbidden_mask(lines)
    lines, existing_dn = lines[keep], existing_dn[keep]
    surface = pd.Series(default_surface, index=lines.index)
    surface_given = pd.Series(False, index=lines.index)
    if "surface" in lines:  # as written in QGIS: any case, spaces for underscores; blank: the default
        given = lines["surface"].fillna("").astype(str).str.strip().str.lower().str.replace(" ", "_")
        surface, surface_given = given.where(given != "", default_surface), given != ""
    unknown = sorted(set(surface) - set(cost_factors))
    if unknown:
        rows = lines.feature[surface.isin(unknown)].tolist()
        raise InputDataError(
            f"{lines.attrs.get('where', 'candidate links')}: features {', '.join(map(str, rows[:10]))} have surface "
            f"{', '.join(unknown)}; known surfaces: {', '.join(cost_factors)}"
        )
    # Node the lines: every crossing and touching point becomes a junction of both lines.
    pieces = shapely.get_parts(shapely.node(shapely.multilinestrings(lines.geometry.values)))
    pieces = pieces[shapely.length(pieces) > 1e-9]
    # Each piece takes the surface of the drawn line it lies on (the dearest, where lines overlap).
    tree = shapely.STRtree(lines.geometry.values)
    mid = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    p_idx, l_idx = tree.query(mid, predicate="dwithin", distance=1e-6)
    _refuse_two_dns(lines, existing_dn, p_idx, l_idx)
    factor = np.array([cost_factors[s] for s in surface.to_numpy()])
    # an existing pipe's line wins where lines overlap (the pipe lies there), then the dearest surface
    pick = pd.DataFrame({"p": p_idx, "l": l_idx, "e": existing_dn.notna().to_numpy()[l_idx], "f": factor[l_idx]})
    pick = pick.sort_values(["e", "f"]).drop_duplicates("p", keep="last")
    pick = pick.set_index("p").reindex(np.arange(len(pieces)))
    return gpd.GeoDataFrame(
        {
            "name": "",
            "highway": "",
            "surface": surface.to_numpy()[pick.l.to_numpy().astype(int)],
            "cost_factor": pick.f.to_numpy(),
            "link_feature": lines.feature.to_numpy()[pick.l.to_numpy().astype(int)],
            "existing_dn": existing_dn.to_numpy()[pick.l.to_numpy().astype(int)],
            "surface_given": surface_given.to_numpy()[pick.l.to_numpy().astype(int)],
        },
        geometry=pieces,
        crs=lines.crs,
    )


def _shown(value: Any) -> str:
    """Quote a cell's value for a message: ``an empty cell`` for a blank or NULL one."""
    return "an empty cell" if pd.isna(value) or not str(value).strip() else repr(str(value)[:60])


def _refuse_two_dns(lines: gpd.GeoDataFrame, existing_dn: pd.Series, p_idx: np.ndarray, l_idx: np.ndarray) -> None:
    """Refuse existing pipes of different DNs drawn along the same stretch (``p_idx``: pieces, ``l_idx``: lines)."""
    on = pd.DataFrame({"p": p_idx, "dn": existing_dn.to_numpy()[l_idx], "feature": lines.feature.to_numpy()[l_idx]})
    on = on[on.dn.notna()]
    sizes = on.groupby("p").dn.nunique()
    if (sizes > 1).any():
        clash = on[on.p == sizes.index[sizes > 1][0]].drop_duplicates("feature")
        raise InputDataError(
            f"{lines.attrs.get('where', 'candidate links')}: features "
            f"{' and '.join(map(str, clash.feature))} lay existing pipes of "
            f"{' and '.join(f'DN {d:g}' for d in clash.dn)} along the same stretch; keep the one that lies there"
        )


STATUSES = ("candidate", "forbidden", "existing")
"""What a drawn line is (its ``status`` column; empty: a candidate)."""


def statuses(lines: gpd.GeoDataFrame) -> pd.Series:
    """Return each drawn line's status (:data:`STATUSES`; empty: ``candidate``); refuse any other."""
    if "status" not in lines:
        return pd.Series("candidate", index=lines.index)
    status = lines["status"].fillna("").astype(str).str.strip().str.lower().replace("", "candidate")
    bad = ~status.isin(STATUSES)
    if bad.any():
        raise InputDataError(
            f"{lines.attrs.get('where', 'candidate links')}: features {', '.join(map(str, lines.feature[bad][:10]))}: "
            f"'status' must be {', '.join(STATUSES[:-1])} or {STATUSES[-1]} or empty "
            f"(got {str(lines['status'][bad].iloc[0])[:60]!r})"
        )
    return status


def forbidden_mask(lines: gpd.GeoDataFrame) -> pd.Series:
    """Mark the drawn lines whose ``status`` is ``forbidden``."""
    return statuses(lines) == "forbidden"


def existing_dns(lines: gpd.GeoDataFrame) -> pd.Series:
    """Return the DN of each drawn line whose ``status`` is ``existing`` (NaN for the others).

    Raises
    ------
    heatmap._errors.InputDataError
        Where an existing line has no ``dn``, or one that is not a positive whole number.
    """
    existing = statuses(lines) == "existing"
    out = pd.Series(np.nan, index=lines.index)
    where = lines.attrs.get("where", "candidate links")
    if "dn" in lines:
        given = lines["dn"].notna() & (lines["dn"].astype(str).str.strip() != "") & ~existing
        if given.any():
            logger.warning(
                "%s: features %s give a dn but not status existing: a dn counts only for a pipe that lies there "
                "(status existing); they are candidates for new pipes, sized by the plan",
                where, ", ".join(map(str, lines.feature[given][:10])),
            )  # fmt: skip
    if not existing.any():
        return out
    if "dn" not in lines:
        raise InputDataError(
            f"{where}: features {', '.join(map(str, lines.feature[existing][:10]))} have status existing but the "
            f"layer has no 'dn' column; add one with each existing pipe's nominal diameter (e.g. 100 for DN100)"
        )
    dn = pd.to_numeric(lines["dn"], errors="coerce")
    bad = existing & ~((dn > 0) & (dn == np.round(dn)))
    if bad.any():
        raise InputDataError(
            f"{where}: features {', '.join(map(str, lines.feature[bad][:10]))}: an existing pipe needs its 'dn', a "
            f"positive whole number such as 100 (got {_shown(lines['dn'][bad].iloc[0])})"
        )
    out[existing] = dn[existing]
    return out


def forbid(streets: gpd.GeoDataFrame, forbidden: gpd.GeoDataFrame, *, within_m: float) -> gpd.GeoDataFrame:
    """Leave out the street segments that a forbidden line runs along (half or more of their length within it).

    Parameters
    ----------
    streets
        Street segments (:func:`heatmap.io.streets.street_edges`).
    forbidden
        The drawn lines with status ``forbidden`` (metric CRS).
    within_m
        How close to the forbidden line a street must lie to be taken as the same route.
    """
    if forbidden.empty or streets.empty:
        return streets
    zone = shapely.union_all(forbidden.geometry.buffer(max(within_m, 1.0)).values)
    inside = shapely.length(shapely.intersection(streets.geometry.values, zone))
    along = inside >= 0.5 * shapely.length(streets.geometry.values)
    logger.info("Forbidden lines: %d of %d street segments left out", int(along.sum()), len(streets))
    return streets[~along].reset_index(drop=True)


def site_links(
    sites: gpd.GeoDataFrame,
    *,
    max_length_m: float,
    neighbours: int,
    cost_factor: float,
    surface: str,
) -> gpd.GeoDataFrame:
    """Straight candidate links from every site to its nearest sites.

    Parameters
    ----------
    sites
        Sources and consumers (points or footprints; a footprint's representative point is used).
    max_length_m
        Longest link.
    neighbours
        Links from each site to at most this many nearest sites.
    cost_factor
        Cost factor of the surface they cross.
    surface
        The surface's name.

    Returns
    -------
    geopandas.GeoDataFrame
        Links with ``name``, ``highway``, ``surface``, ``cost_factor`` and line geometry.
    """
    pts = shapely.get_coordinates(sites.geometry.representative_point().values)
    k = min(neighbours + 1, len(pts))
    if k < 2:
        return gpd.GeoDataFrame(
            {"name": [], "highway": [], "surface": [], "cost_factor": []}, geometry=[], crs=sites.crs
        )
    dist, idx = cKDTree(pts).query(pts, k=k, distance_upper_bound=max_length_m)
    a = np.repeat(np.arange(len(pts)), k - 1)
    b = idx[:, 1:].ravel()
    keep = np.isfinite(dist[:, 1:].ravel()) & (b < len(pts))
    pairs = np.unique(np.sort(np.stack([a[keep], b[keep]], axis=1), axis=1), axis=0)
    lines: np.ndarray | list[Any] = (
        np.asarray(shapely.linestrings(np.stack([pts[pairs[:, 0]], pts[pairs[:, 1]]], axis=1))) if len(pairs) else []
    )
    return gpd.GeoDataFrame(
        {"name": "", "highway": "", "surface": surface, "cost_factor": cost_factor},
        geometry=lines,
        index=pd.RangeIndex(len(lines)),
        crs=sites.crs,
    )


def avoid(
    links: gpd.GeoDataFrame, no_go: gpd.GeoDataFrame | None, *, what: str = "candidate links", from_inside: bool = True
) -> gpd.GeoDataFrame:
    """Leave out every line (a link or a street segment: ``what``) that enters a no-go polygon (:mod:`~.no_go`).

    With ``from_inside`` (links) a line from a site inside a polygon may leave it; a street may not.
    """
    if no_go is None or links.empty or no_go.empty:
        return links
    inside = NoGoAreas(no_go.geometry.values).enters(links.geometry.values, from_inside=from_inside)
    logger.info("No-go areas: %d of %d %s left out", int(inside.sum()), len(links), what)
    return links[~inside].reset_index(drop=True)


def avoid_all(
    parts: list[gpd.GeoDataFrame], no_go: gpd.GeoDataFrame | None, *, sites: gpd.GeoDataFrame, streets: bool
) -> list[gpd.GeoDataFrame]:
    """Leave out the links of every kind that enter a no-go polygon (:func:`avoid`); refuse where none is left.

    Parameters
    ----------
    parts
        The drawn and site-to-site links.
    no_go
        The no-go polygons (:func:`read_lines`, its file in ``attrs["where"]``), or ``None``.
    sites
        The sources and consumers with an ``id`` column (named where they lie inside a no-go polygon).
    streets
        Whether there are streets besides the links (then the sites are still reached along them).

    Raises
    ------
    heatmap._errors.InputDataError
        Where the no-go areas leave out every candidate link and there are no streets: naming the no-go file,
        how many links it leaves out and the sites that lie inside a no-go polygon.
    """
    kept = [avoid(p, no_go) for p in parts]
    given = sum(len(p) for p in parts)
    if no_go is None or no_go.empty:
        return kept
    zones = shapely.union_all(no_go.geometry.values)
    points = sites.geometry.representative_point().values
    inside = sites.id[shapely.within(points, zones)].astype(str).tolist()
    where = f"{len(inside)} of the {len(sites)} sites lie inside a no-go polygon ({', '.join(inside[:10])}"
    where += f" and {len(inside) - 10} more)" if len(inside) > 10 else ")"
    if inside:
        logger.warning(
            "%s: %s: their pipes leave it by the shortest way (a service pipe, or a link that crosses its edge once)",
            no_go.attrs.get("where", "links.no_go_path"), where,
        )  # fmt: skip
    if streets or given == 0 or any(len(k) for k in kept):
        return kept
    raise InputDataError(
        f"{no_go.attrs.get('where', 'links.no_go_path')}: the no-go areas ('links.no_go_path') leave out all "
        f"{given} candidate links (drawn and site-to-site), so no route is left"
        + (f"; {where}: a link from a site inside a no-go area enters it" if inside else "")
        + "; check the no-go polygons against the sites and the drawn links"
    )


def combine(
    streets: gpd.GeoDataFrame | None,
    links: list[gpd.GeoDataFrame],
    *,
    snap_m: float,
    street_cost_factor: float = 1.0,
    node_prefix: str = "link",
) -> gpd.GeoDataFrame:
    """Join streets and candidate links into one table of segments for the candidate graph.

    A link end within ``snap_m`` of a street node joins that node (and is moved onto it); streets get
    surface ``street`` and ``street_cost_factor``.

    Parameters
    ----------
    streets
        Output of :func:`heatmap.io.streets.street_edges`, or ``None`` where there are no streets.
    links
        Outputs of :func:`drawn_links`, :func:`site_links` (after :func:`avoid`); their ends within
        ``snap_m`` of each other share a node.
    snap_m
        Largest distance between link ends, or from a link end to the street node, that join.
    street_cost_factor
        Cost factor of the streets (1: the pipe catalogue's price is that of a street trench).
    node_prefix
        The links' node ids are ``{node_prefix}:{i}``: streets read from a line file (themselves joined here, as
        ``street``) keep theirs apart from the drawn links' joined to them later.

    Returns
    -------
    geopandas.GeoDataFrame
        Segments with ``edge_id``, ``u``, ``v``, ``name``, ``highway``, ``length_m``, ``surface``,
        ``cost_factor``, ``link_feature``, ``street_feature`` (the feature of a street line file a segment lies on,
        as the streets give it) and ``existing_dn`` (the DN of a pipe that lies there already, else NaN).
    """
    parts = [lk for lk in links if len(lk)]
    if parts:
        parts = [_with_nodes(pd.concat(parts, ignore_index=True), snap_m=snap_m, prefix=node_prefix)]
    if streets is not None and len(streets):
        from heatmap.network.candidates import orient_streets

        st = orient_streets(streets).assign(surface="street", cost_factor=street_cost_factor)
        if parts:
            st, parts[0] = _join_existing(st, parts[0], snap_m=snap_m, prefix=node_prefix)
        node_xy = _street_nodes(st)
        tree = cKDTree(node_xy.to_numpy())
        parts = [st, *(_snap_to(lk, tree, node_xy, snap_m) for lk in parts)]
        if len(parts) > 1:
            parts[0], parts[1] = _without_parallel_streets(parts[0], parts[1], snap_m=snap_m)
    if not parts:
        raise InputDataError("no candidate routes: give streets, drawn links or site-to-site links")
    out = pd.concat(parts, ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=parts[0].crs)
    out["edge_id"] = np.arange(len(out))
    logger.info(
        "Candidate routes: %d segments (%s)",
        len(out),
        ", ".join(f"{s} {n}" for s, n in out.surface.value_counts().items()),
    )
    for col in ("link_feature", "street_feature", "existing_dn"):
        if col not in out:
            out[col] = np.nan
    cols = ["edge_id", "u", "v", "name", "highway", "length_m", "surface", "cost_factor", "link_feature"]
    cols += ["street_feature", "existing_dn", "geometry"]
    return out[cols]


def _street_nodes(st: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return each street node's position (x, y), indexed by its id (the streets run from ``u`` to ``v``)."""
    node_xy = pd.concat(
        [
            pd.DataFrame(shapely.get_coordinates(shapely.get_point(st.geometry.values, 0)), index=st.u),
            pd.DataFrame(shapely.get_coordinates(shapely.get_point(st.geometry.values, -1)), index=st.v),
        ]
    )
    return node_xy[~node_xy.index.duplicated()]


def _join_existing(
    st: gpd.GeoDataFrame, links: gpd.GeoDataFrame, *, snap_m: float, prefix: str
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Let existing pipes drawn along streets join them wherever they meet, not only at the streets' nodes.

    An existing network's layer is not drawn on the street graph's nodes: a pipe may end in the middle of a street
    and pass several junctions. Each existing pipe (``existing_dn`` given) is split at every street node within
    ``snap_m`` of it, and each street segment is split where an existing pipe's end lies within ``snap_m`` of it but
    of none of its nodes (the new node ``{prefix}-street:{i}``); :func:`_snap_to` then joins the pipe's ends and
    cuts (``{prefix}-existing:{i}``) to those nodes. Returns the streets and the links so split (the streets
    ``u`` → ``v`` as given).
    """
    if "existing_dn" not in links or not links.existing_dn.notna().any() or not len(st):
        return st, links
    existing = links.existing_dn.notna().to_numpy()
    node_xy = _street_nodes(st)
    nodes = np.asarray(shapely.points(node_xy.to_numpy()))
    # the existing pipes split at the street nodes they pass (not at their ends: those join as any link's)
    pipes = links[existing].reset_index(drop=True)
    li, ni = shapely.STRtree(nodes).query(pipes.geometry.values, predicate="dwithin", distance=snap_m)
    at = np.asarray(shapely.line_locate_point(pipes.geometry.values[li], nodes[ni]))
    inner = (at > snap_m) & (at < shapely.length(pipes.geometry.values[li]) - snap_m)
    cut_pipes = _split(pipes, _by_row(li[inner], at[inner]), f"{prefix}-existing")
    # the street segments split where a pipe's end lies beside them, away from their nodes
    ends = np.concatenate([shapely.get_point(cut_pipes.geometry.values, i) for i in (0, -1)])
    far = cKDTree(node_xy.to_numpy()).query(shapely.get_coordinates(ends), distance_upper_bound=snap_m)[0] > snap_m
    ends = ends[far]
    ei, si = shapely.STRtree(st.geometry.values).query(ends, predicate="dwithin", distance=snap_m)
    nearest = pd.DataFrame({"e": ei, "s": si, "d": shapely.distance(ends[ei], st.geometry.values[si])})
    nearest = nearest.sort_values("d", kind="stable").drop_duplicates("e")
    at = np.asarray(shapely.line_locate_point(st.geometry.values[nearest.s], ends[nearest.e]))
    cut_streets = _split(st.reset_index(drop=True), _by_row(nearest.s.to_numpy(), at), f"{prefix}-street")
    logger.info(
        "Existing pipes: %d split at the street nodes they pass, %d street segments split where one ends beside them",
        len(cut_pipes) - len(pipes),
        len(cut_streets) - len(st),
    )
    links = pd.concat([links[~existing], cut_pipes], ignore_index=True)
    return cut_streets, gpd.GeoDataFrame(links, geometry="geometry", crs=st.crs)


def _by_row(rows: np.ndarray, at: np.ndarray) -> dict[int, list[float]]:
    """Return the distances ``at`` grouped by their ``rows``."""
    out: dict[int, list[float]] = {}
    for r, a in zip(rows.tolist(), at.tolist(), strict=True):
        out.setdefault(r, []).append(a)
    return out


def _split(lines: gpd.GeoDataFrame, cuts: dict[int, list[float]], node: str) -> gpd.GeoDataFrame:
    """Split the lines (``u`` → ``v``) at their distances ``cuts`` (row → distances along it), keeping attributes.

    The new nodes are named ``{node}:{k}``; each piece's ``length_m`` is its geometry's.
    """
    from shapely.ops import substring

    if not cuts:
        return lines
    rows = []
    k = 0
    cut = sorted(cuts)  # only these rows change; the others are kept as they are, before them
    for i, row in zip(cut, lines.iloc[cut].to_dict("records"), strict=True):
        line = row["geometry"]
        at = sorted({a for a in cuts[i] if 1e-3 < a < line.length - 1e-3})
        ids = [row["u"]]
        for _ in at:
            ids.append(f"{node}:{k}")
            k += 1
        ids.append(row["v"])
        stops = [0.0, *at, line.length]
        for j in range(len(stops) - 1):
            rows.append(row | {"u": ids[j], "v": ids[j + 1], "geometry": substring(line, stops[j], stops[j + 1])})
    pieces = gpd.GeoDataFrame(pd.DataFrame(rows, columns=lines.columns), geometry="geometry", crs=lines.crs)
    pieces["length_m"] = shapely.length(pieces.geometry.values)
    kept = lines.drop(index=lines.index[cut])
    return gpd.GeoDataFrame(pd.concat([kept, pieces], ignore_index=True), geometry="geometry", crs=lines.crs)


def _without_parallel_streets(
    st: gpd.GeoDataFrame, links: gpd.GeoDataFrame, *, snap_m: float
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Leave out the street segments an existing pipe runs along between the same two nodes (the pipe lies there).

    A new pipe there would replace the one that lies there: that is the existing pipe's upgrade, which its link
    offers, laid in the street: the link takes the street's surface and cost factor where the drawn line names no
    surface of its own. Along: half or more of the street's length within ``snap_m`` of the pipe (as :func:`forbid`).
    Returns the streets and the links.
    """
    pipes = links[links.existing_dn.notna()] if "existing_dn" in links else links.iloc[:0]
    if pipes.empty or st.empty:
        return st, links
    key = pd.Series([frozenset(p) for p in zip(st.u, st.v, strict=True)], index=st.index)
    pipe_key = pd.Series([frozenset(p) for p in zip(pipes.u, pipes.v, strict=True)], index=pipes.index)
    pairs = key.reset_index().merge(pipe_key.reset_index(), on=0, suffixes=("_s", "_p"))
    if pairs.empty:
        return st, links
    street = st.geometry.values[st.index.get_indexer(pairs.index_s)]
    zone = shapely.buffer(pipes.geometry.values[pipes.index.get_indexer(pairs.index_p)], max(snap_m, 1.0))
    along = pairs[shapely.length(shapely.intersection(street, zone)) >= 0.5 * shapely.length(street)]
    in_street = along[~links.surface_given.reindex(along.index_p).to_numpy(bool)].drop_duplicates("index_p")
    links = links.copy()
    links.loc[in_street.index_p, ["surface", "cost_factor"]] = st.loc[
        in_street.index_s, ["surface", "cost_factor"]
    ].to_numpy()
    logger.info(
        "Existing pipes: %d street segments left out where an existing pipe runs along them (%d pipes laid in them)",
        along.index_s.nunique(),
        len(in_street),
    )
    return st.drop(index=along.index_s.unique()), links


def _snap_to(links: gpd.GeoDataFrame, tree: cKDTree, node_xy: pd.DataFrame, snap_m: float) -> gpd.GeoDataFrame:
    """Join link ends lying within ``snap_m`` of a street node to it."""
    out = links.copy()
    for end, col in ((0, "u"), (-1, "v")):
        xy = shapely.get_coordinates(shapely.get_point(out.geometry.values, end))
        dist, idx = tree.query(xy, distance_upper_bound=snap_m)
        hit = np.isfinite(dist)
        out.loc[hit, col] = node_xy.index.to_numpy()[idx[hit]]
        out.geometry = _move_ends(
            out.geometry.values, end, np.where(hit[:, None], node_xy.to_numpy()[np.minimum(idx, len(node_xy) - 1)], xy)
        )
    out["length_m"] = shapely.length(out.geometry.values)
    return out[out.u != out.v]


def _move_ends(lines: np.ndarray, end: int, xy: np.ndarray) -> np.ndarray:
    """Return the lines with their first (``end`` 0) or last (``end`` -1) vertex moved to ``xy`` (vectorised)."""
    lines = np.asarray(lines, dtype=object)
    if not len(lines):
        return lines
    coords, line_of = shapely.get_coordinates(lines, return_index=True)
    first = np.r_[0, np.flatnonzero(np.diff(line_of)) + 1]
    last = np.r_[first[1:] - 1, len(line_of) - 1]
    coords[first if end == 0 else last] = np.asarray(xy, dtype=float)
    return np.asarray(shapely.linestrings(coords, indices=line_of))


def _with_nodes(links: gpd.GeoDataFrame, snap_m: float, prefix: str) -> gpd.GeoDataFrame:
    """Give the links node ids ``{prefix}:{i}`` by their end points; ends within ``snap_m`` share a node and point."""
    g = links.geometry.values
    xy = np.concatenate([shapely.get_coordinates(shapely.get_point(g, i)) for i in (0, -1)])
    n = len(links)
    # Ends within snap_m of each other, also through a chain of such ends, share one node: the first of them
    # (with snap_m 0: ends at the same point to the mm).
    if snap_m > 0:
        pairs = cKDTree(xy).query_pairs(r=snap_m, output_type="ndarray")
        adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xy), len(xy)))
        codes = connected_components(adj, directed=False)[1]
    else:
        codes = pd.Series(map(tuple, np.round(xy, 3))).factorize()[0]
    label = pd.Series(np.arange(len(xy))).groupby(codes).transform("min").to_numpy()
    out = links.copy()
    out.geometry = _move_ends(_move_ends(g, 0, xy[label[:n]]), -1, xy[label[n:]])
    out["u"] = [f"{prefix}:{i}" for i in label[:n]]
    out["v"] = [f"{prefix}:{i}" for i in label[n:]]
    out["length_m"] = shapely.length(out.geometry.values)
    return out[out.u != out.v].reset_index(drop=True)

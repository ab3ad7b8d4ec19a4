"""One check of a working CRS for every command: known, projected, in metres and true to scale at the study area.

``heatmap plan`` (``study_area.crs``, also for the network a concept study names), ``heatmap matches``
(``settings.crs``) and a study (``crs``) measure every length in their working CRS. A CRS that is not true to
scale where the study lies (EPSG:3857 in Finland stretches lengths by ~127 %) would make every pipe length and
cost wrong without a word, so all of them go through this module: :func:`crs_problem` for the settings
validators (no location needed yet) and :func:`check_scale` once the study area's location is known.
Light on purpose: pyproj and numpy are imported when a check runs, not with the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from heatmap._errors import HeatmapError, InputDataError

if TYPE_CHECKING:
    from pyproj import CRS

FINLAND_BBOX_DEG = (19.0, 59.5, 31.6, 70.1)
"""(west, south, east, north) inside which the Finnish national grid EPSG:3067 is used."""
MAX_SCALE_ERROR = 0.01
"""Largest scale error (|k − 1|) of a given working CRS at the study area: lengths and costs err by as much."""


def crs_problem(value: str) -> str | None:
    """Say what keeps ``value`` from being a working CRS, or ``None`` where it is one (before its scale is known).

    Returns
    -------
    str or None
        The end of a message that starts with the key ("is 'EPSG:4326', which is geographic …"): an unknown
        code, a geographic CRS or one whose unit is not the metre; ``None`` for a projected CRS in metres.
    """
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError as exc:
        return (
            f"is {value!r}, which pyproj does not know ({str(exc).splitlines()[0]}); give an EPSG code such as "
            f"EPSG:3067 (Finland) or the local UTM zone"
        )
    if not crs.is_projected:
        return f"is {value!r}, which is geographic (degrees); give a metric (projected) CRS such as EPSG:3067"
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if unit not in ("metre", "meter"):
        return f"is {value!r}, whose unit is {unit or 'unknown'}; give a CRS in metres such as EPSG:3067"
    return None


def local_crs(lon: float, lat: float) -> CRS:
    """Return the CRS made for a place: EPSG:3067 (ETRS-TM35FIN) inside Finland, else its WGS 84 UTM zone."""
    from pyproj import CRS

    w, s, e, n = FINLAND_BBOX_DEG
    if w <= lon <= e and s <= lat <= n:
        return CRS.from_epsg(3067)
    zone = min(int((lon + 180) // 6) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def scale_error(crs: CRS | str, lon: float | Sequence[float], lat: float | Sequence[float]) -> tuple[float, int]:
    """Return the largest scale error |k − 1| of ``crs`` over the points (``nan`` where pyproj cannot tell) and where.

    Returns
    -------
    (float, int)
        The largest error over the points (``nan`` where any is outside the CRS's area of use) and the index of
        the point where it is.
    """
    import numpy as np
    from pyproj import Proj

    lons = np.atleast_1d(np.asarray(lon, dtype=float))
    lats = np.atleast_1d(np.asarray(lat, dtype=float))
    try:
        factors = Proj(crs).get_factors(lons, lats)
        error = np.maximum(
            np.abs(np.asarray(factors.meridional_scale) - 1), np.abs(np.asarray(factors.parallel_scale) - 1)
        )
    except Exception:  # noqa: BLE001 - pyproj cannot give the scale there: as bad as a wrong scale
        return float("nan"), 0
    error = np.where(np.isfinite(error), error, np.inf)  # outside the area of use: inf, unknown
    worst = int(np.argmax(error))
    return (float(error[worst]) if np.isfinite(error[worst]) else float("nan")), worst


def _area(crs: CRS) -> str:
    """``: EPSG:3067 is made for lon 19.1–31.6, lat 58.8–70.1`` (nothing where the CRS has no area of use)."""
    a = crs.area_of_use
    if a is None:
        return ""
    return f"; {crs.to_string()} is made for lon {a.west:.1f}–{a.east:.1f}, lat {a.south:.1f}–{a.north:.1f}"


def check_scale(
    crs: CRS | str,
    lon: float | Sequence[float],
    lat: float | Sequence[float],
    *,
    key: str,
    where: str = "",
    may_leave_out: bool = False,
    error: type[HeatmapError] = InputDataError,
) -> None:
    """Refuse a working CRS whose scale is not within :data:`MAX_SCALE_ERROR` of one at any of the points.

    Parameters
    ----------
    crs
        The working CRS (checked by :func:`crs_problem` before).
    lon, lat
        Where the study lies (degrees, EPSG:4326): its centre or each of its sites.
    key
        The setting that gave the CRS, as written in the message ("'study_area.crs'", "'settings.crs'").
    where
        The file that holds the setting, put before the message where given.
    may_leave_out
        Whether the setting may be left out to have the CRS chosen for the place (said in the message).
    error
        The exception class to raise (exit code 2).

    Raises
    ------
    heatmap._errors.HeatmapError
        Of class ``error``, naming the key, the CRS, how much it distorts and where, and the CRS to give.
    """
    import numpy as np
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    size, worst = scale_error(crs, lon, lat)
    if size < MAX_SCALE_ERROR:
        return
    x = float(np.atleast_1d(np.asarray(lon, dtype=float))[worst])
    y = float(np.atleast_1d(np.asarray(lat, dtype=float))[worst])
    by = f"by {size:.0%}" if np.isfinite(size) else "by an unknown amount (outside its area of use)"
    if abs(x) <= 90 and scale_error(crs, y, x)[0] < MAX_SCALE_ERROR:  # the CRS's own place, with lon and lat swapped
        raise error(
            f"{where + ': ' if where else ''}a site at lon {x:.4f}, lat {y:.4f} lies where {key} {crs.to_string()} "
            f"distorts lengths {by}, but at lon {y:.4f}, lat {x:.4f} it would lie where that CRS is made for: are "
            f"its lon and lat swapped? Check the sites' coordinates (lon is east, lat north{_area(crs)})"
        )
    local = local_crs(x, y).to_string()
    instead = f"{local} (made for the place)" + (f", or leave {key} out" if may_leave_out else "")
    raise error(
        f"{where + ': ' if where else ''}{key} {crs.to_string()} distorts lengths {by} at the study area "
        f"({x:.3f}, {y:.3f}), so every pipe length and cost would be off as much (at most {MAX_SCALE_ERROR:.0%} "
        f"is accepted); give {instead}"
    )

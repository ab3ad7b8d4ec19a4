"""Exceptions raised by heatmap.

Every error a user can cause is a :class:`HeatmapError`: the command line prints its message (which names
the file, row, feature or key and what to do) and exits with code 2, without a traceback. Each class also
inherits the standard exception it refines, so callers can catch either.
"""

from __future__ import annotations


class HeatmapError(Exception):
    """Base class of every error a user can cause and fix."""


class ScenarioError(HeatmapError, ValueError):
    """The scenario file or a setting in it is invalid."""


class InputDataError(HeatmapError, ValueError):
    """An input file (sources, consumers, buildings) is missing, unreadable or has invalid rows."""


class StreetDataError(HeatmapError, ValueError):
    """The street data could not be read or gives no usable network."""


class OfflineError(HeatmapError, ConnectionError):
    """A network download was needed but the network (or the server) is not reachable."""


class RoutingError(HeatmapError, RuntimeError):
    """No network can be routed (for example no consumer is reachable from any source)."""


class HydraulicError(HeatmapError, RuntimeError):
    """The hydraulic simulation failed or its checks still fail after the allowed resizing rounds."""


class OutputError(HeatmapError, OSError):
    """The output folder cannot be written."""


_stops: list[int] = []
"""Signals (Ctrl-C, SIGTERM) asked to stop the run (:func:`note_stop`)."""


def note_stop(signum: int) -> None:
    """Note that a signal asked the run to stop.

    An interrupt raised where Python discards it (a weak reference's callback, a ``__del__``) would otherwise let the
    run go on and replace its output folder.
    """
    _stops.append(signum)


def stop_noted() -> int | None:
    """Return the first signal noted since :func:`clear_stops` (``None``: none)."""
    return _stops[0] if _stops else None


def clear_stops() -> None:
    """Forget the signals noted (a new command begins)."""
    _stops.clear()

"""The output folder of a run: one complete run per folder, swapped in whole, nothing of the user's lost.

Nothing lost, nothing mixed (:func:`write_atomically`, used by ``heatmap plan``, ``heatmap demand`` and
``heatmap concepts``):

- A run writes all its files into a temporary folder beside the output folder
  (``.<name>.heatmap-tmp-<pid>-…``) and swaps it in whole: the previous output folder is renamed aside
  (``.<name>.heatmap-old-<pid>-…``), the new one renamed into its place, then the previous one removed. An
  output folder therefore always holds the files of one complete run, never new files beside old ones. If
  a run fails or is interrupted (Ctrl-C, SIGTERM) before the swap, the previous results stay as they were
  and the temporary folder is removed; signals that arrive during the two renames are handled after them.
- A folder left behind by a killed run (its process no longer exists) is cleared by the next run writing
  to the same output folder; if the kill came between the two renames, the previous results are put back.
- heatmap writes only into a new or empty folder or one it wrote itself: the marker file
  :data:`MARKER` lists the files of the run (files that GDAL, QGIS or SQLite put beside them when reading,
  such as ``plan.gpkg.aux.xml``, count as part of the run). A folder that holds anything else (a file the
  user added, a folder of other data) or an input of the run is refused with
  :class:`~heatmap._errors.OutputError` (exit code 2), before any work is done (:func:`check_output_folder`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from heatmap import __version__
from heatmap._errors import OutputError, stop_noted
from heatmap.io.exports import abandon_geojson, finish_folder
from heatmap.io.paths import resolved

logger = logging.getLogger(__name__)

MARKER = ".heatmap-output"
"""File in every output folder heatmap writes: JSON naming the version, the time and the run's files."""
SQLITE_MAX_PATH = 504
"""Longest path SQLite opens (its unix VFS limit of 512 characters less the ``-journal`` suffix; measured
with SQLite 3.40). The QGIS styles are written into each GeoPackage with Python's sqlite3."""
_MAX_SHOWN = 5


def input_paths(settings: Any) -> list[Path]:
    """Return every file path held in a scenario (or any nested dataclass, pydantic model, dict or list)."""
    found: list[Path] = []

    def walk(value: Any) -> None:
        if isinstance(value, Path):
            found.append(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple | set | frozenset):
            for v in value:
                walk(v)
        elif hasattr(value, "__dataclass_fields__") or hasattr(type(value), "model_fields"):
            for v in vars(value).values():
                walk(v)

    walk(settings)
    return found


def _output_path(out_dir: Path | str) -> Path:
    """Return the output folder as an absolute path (a symbolic link is followed to its folder)."""
    out = Path(os.path.abspath(out_dir))
    return resolved(out, "--out", error=OutputError) if out.is_symlink() else out


def check_output_folder(out_dir: Path | str, *, inputs: Iterable[Path | str] = ()) -> Path:
    """Refuse an output folder whose files a run would lose or mix; return it as an absolute path.

    Accepted: a folder that does not exist yet, an empty folder, or a folder heatmap wrote (it holds
    :data:`MARKER` and nothing but the files that marker lists).

    Parameters
    ----------
    out_dir
        The output folder.
    inputs
        The run's input files (scenario, sources, consumers, streets, buildings, tables): none may lie
        inside the output folder, which a run replaces whole.

    Returns
    -------
    pathlib.Path
        The absolute output folder.

    Raises
    ------
    heatmap._errors.OutputError
        Naming the output folder, the file in the way and what to do.
    """
    _check_name_lengths(Path(out_dir))
    out = _output_path(out_dir)
    real = resolved(out, "--out", error=OutputError)
    for p in inputs:
        rp = resolved(p, "the input paths of the run")
        if rp == real or real in rp.parents:
            raise OutputError(
                f"the output folder {out} holds {p}, an input of this run; a run replaces its output folder "
                "whole: choose another --out"
            )
    if real == Path.cwd().resolve() or real in Path.cwd().resolve().parents:
        raise OutputError(
            f"the output folder {out} is the current folder or holds it; a run replaces its output folder "
            "whole: choose a folder of its own for --out"
        )
    # a GeoPackage (in a subfolder, as a study's network/) is written in the temporary folder beside --out, then
    # read where it lands: both paths must open (the temporary one is shorter where --out's name is long)
    written = str(out.parent / (_temporary_prefix(out, "tmp") + "x" * 20 + "/demand.gpkg"))
    landed = str(out / ("x" * 20) / "demand.gpkg")
    longest = max(len(written), len(landed))
    if longest > SQLITE_MAX_PATH:
        raise OutputError(
            f"the output folder {out} is too deep: its GeoPackage would be at a path of {longest} characters, and "
            f"SQLite opens at most {SQLITE_MAX_PATH}; choose a shorter --out"
        )
    ancestor = _nearest_existing(out.parent)
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        why = "is not a folder" if not ancestor.is_dir() else "is not writable"
        raise OutputError(f"cannot write to the output folder {out}: {ancestor} {why}; choose another --out")
    _check_contents(out)
    return out


def _nearest_existing(path: Path) -> Path:
    """Return ``path`` or its nearest ancestor that exists (a name too long for the file system does not)."""
    while path != path.parent:
        try:
            if path.exists():
                return path
        except OSError:  # ENAMETOOLONG
            pass
        path = path.parent
    return path


def _check_name_lengths(out: Path) -> None:
    """Raise where a folder name of ``out`` is longer than its file system allows (most: 255 bytes)."""
    try:
        most = os.pathconf(_nearest_existing(Path(os.path.abspath(out))), "PC_NAME_MAX")
    except (OSError, ValueError):
        most = 255
    for part in out.parts:
        if len(os.fsencode(part)) > most:
            raise OutputError(
                f"the output folder {out} has a folder name of {len(os.fsencode(part))} bytes ({part[:20]}…), "
                f"longer than the file system allows ({most}); choose a shorter --out"
            )


_SIDECARS = (".aux.xml", "-wal", "-shm", "-journal")
"""Files GDAL, QGIS and SQLite put beside a file they read (statistics, write-ahead logs): part of the run."""


def _check_contents(out: Path) -> None:
    """Raise unless ``out`` is missing, empty, or holds only the files of a heatmap run."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise OutputError(f"the output folder {out} exists and is not a folder; choose another --out")
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as exc:
        raise OutputError(f"cannot read the output folder {out} ({exc.strerror}); choose another --out") from exc
    if not entries:
        return
    hint = "move them elsewhere or choose another --out (heatmap writes into a new or empty folder or one it wrote)"
    if MARKER not in entries:
        shown = ", ".join(entries[:_MAX_SHOWN]) + (" …" if len(entries) > _MAX_SHOWN else "")
        raise OutputError(f"the output folder {out} holds files heatmap did not write ({shown}); {hint}")
    try:
        ours = set(json.loads((out / MARKER).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"the output folder {out} has an unreadable marker {out / MARKER} ({exc}); {hint}") from exc
    sidecars = {name + suffix for name in ours for suffix in _SIDECARS}
    foreign = [name for name in entries if name != MARKER and name not in ours and name not in sidecars]
    if foreign:
        shown = ", ".join(foreign[:_MAX_SHOWN]) + (" …" if len(foreign) > _MAX_SHOWN else "")
        raise OutputError(f"the output folder {out} holds files heatmap did not write ({shown}); {hint}")


def _temporary_prefix(out: Path, kind: str) -> str:
    """``.<name>.heatmap-<kind>-`` for folders beside ``out`` (a long name shortened, with its hash)."""
    name = out.name
    if len(name) > 100:
        name = name[:91] + "-" + hashlib.sha1(out.name.encode()).hexdigest()[:8]
    return f".{name}.heatmap-{kind}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path, kind: str) -> list[Path]:
    """Folders of ``kind`` beside ``out`` whose writing process no longer exists."""
    prefix = _temporary_prefix(out, kind)
    found = []
    for p in out.parent.glob(glob.escape(prefix) + "*"):
        pid = p.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            found.append(p)
    return found


def _recover(out: Path) -> None:
    """Clear what a killed run left beside ``out``; put its previous results back if the kill was mid-swap."""
    for old in sorted(_leftovers(out, "old")):
        if not out.exists() and not out.is_symlink():
            os.rename(old, out)
            logger.warning("Put back the previous results %s (a run was killed while swapping them)", out)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in _leftovers(out, "tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
        logger.info("Removed %s, left by a killed run", tmp)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done; one that came meanwhile is handled on leaving it.

    The handlers are swapped for a recorder (blocking the signals would not do: the process may have other
    threads, and a signal goes to any thread that does not block it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {
        signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    for signum in previous:
        signal.signal(signum, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # e.g. raises KeyboardInterrupt
            elif handler != signal.SIG_IGN:
                signal.raise_signal(held[0])


def _refuse_if_stopped() -> None:
    """Raise KeyboardInterrupt (its ``signum`` the signal's) where a signal asked the run to stop.

    An interrupt raised where Python discards it (in a weak reference's callback while plots are drawn) lets the run
    go on: noted by the command line's handler (:func:`heatmap._errors.note_stop`), it stops the run here, before the
    previous results are replaced.
    """
    signum = stop_noted()
    if signum is not None:
        exc = KeyboardInterrupt()
        exc.signum = signum  # type: ignore[attr-defined]
        raise exc


def _swap(tmp: Path, out: Path) -> None:
    """Put the complete folder ``tmp`` in the place of ``out`` (two renames); remove the previous one."""
    old = None
    if out.exists():
        _check_contents(out)  # nothing added since the run began
        old = out.parent / f"{_temporary_prefix(out, 'old')}{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def write_atomically(
    out_dir: Path | str,
    names: tuple[str, ...],
    write: Callable[[Path], None],
    *,
    inputs: Iterable[Path | str] = (),
    title: str = "",
) -> dict[str, Path]:
    """Have ``write`` fill a temporary folder beside ``out_dir``, then swap it in as ``out_dir`` whole.

    See the module docstring for the guarantees: the output folder holds one complete run, the previous
    results stay until the new ones are complete, and nothing the user put there is lost.

    Parameters
    ----------
    out_dir
        The output folder (created if missing; see :func:`check_output_folder` for which are accepted).
    names
        The files ``write`` makes; it is an error if one is missing.
    write
        Called with the temporary folder; it may also write other files (they are listed in the marker).
    inputs
        The run's input files, none of which may lie in ``out_dir``.
    title
        What wrote the folder, the first line of its ``README.txt`` (e.g. ``heatmap plan <scenario>``).

    Every folder gets, after ``write`` and before the swap, the GeoJSON of each GeoPackage layer and a
    ``README.txt`` listing its files (:func:`heatmap.io.exports.finish_folder`).

    Returns
    -------
    dict
        File name → path written.

    Raises
    ------
    heatmap._errors.OutputError
        If the folder is refused or cannot be written (disk full, path too long, no permission); the
        message names the path and the previous results are unchanged.
    """
    import pyogrio.errors

    out = _output_path(out_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _recover(out)
    except OSError as exc:
        raise OutputError(f"cannot write to the output folder {out} ({_reason(exc)}); choose another --out") from exc
    out = check_output_folder(out, inputs=inputs)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{_temporary_prefix(out, 'tmp')}{os.getpid()}-", dir=out.parent))
    except OSError as exc:
        raise OutputError(
            f"cannot write to the output folder {out}: cannot create a folder in {out.parent} ({_reason(exc)}); "
            "choose another --out"
        ) from exc
    try:
        try:
            write(tmp)
            finish_folder(tmp, title=title, marker=MARKER)
            missing = [name for name in names if not (tmp / name).is_file()]
            if missing:
                raise RuntimeError(f"internal error: the run did not write {', '.join(missing)}")
            files = sorted(p.name for p in tmp.iterdir())
            marker = {
                "written_by": "heatmap",
                "heatmap_version": __version__,
                "created_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                "files": files,
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        except OutputError as exc:
            message = str(exc).replace(str(tmp), str(out))
            raise OutputError(f"{message}; the previous results in {out} are unchanged") from exc
        except (OSError, sqlite3.Error, pyogrio.errors.DataSourceError) as exc:
            where = getattr(exc, "filename", None)
            where = f" ({str(where).replace(str(tmp), str(out))})" if where else ""
            free = shutil.disk_usage(out.parent).free
            raise OutputError(
                f"cannot write the results to {out}{where}: {_reason(exc).replace(str(tmp), str(out))} "
                f"({free / 1e6:,.1f} MB free on its disk); the previous results are unchanged"
            ) from exc
        _set_mode(tmp, out)
        swapped = False
        try:
            with _signals_deferred():
                _refuse_if_stopped()
                _swap(tmp, out)
                swapped = True
        except OSError as exc:
            raise OutputError(
                f"cannot put the results in place at {out} ({_reason(exc)}); the previous results are unchanged"
            ) from exc
        except KeyboardInterrupt as exc:  # came during the swap, handled after it
            if swapped:
                exc.written_to = out  # type: ignore[attr-defined]
            raise
    finally:
        abandon_geojson(tmp)  # a GeoJSON writing still running for a run that failed
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {name: out / name for name in names}


def _set_mode(tmp: Path, out: Path) -> None:
    """Give the new folder the permissions of the previous one, or the usual ones (mkdtemp makes it private)."""
    if out.is_dir():
        shutil.copymode(out, tmp)
    else:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)

"""One check of a path before it is read or written: no symbolic-link loop, FIFO, device, socket or folder.

``Path.resolve()`` raises ``RuntimeError`` on a loop of symbolic links and reading a FIFO that nobody writes to
waits for ever; every command's scenario, input and output paths go through :func:`refuse_special` and
:func:`resolved` first, which answer with a message naming the path and the key (exit code 2) at once.
Light on purpose (only the standard library): it runs before the heavy imports.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from heatmap._errors import HeatmapError, InputDataError

_LOOP = "is a loop of symbolic links (it points back to itself)"


def path_kind(path: Path | str) -> str | None:
    """Say what keeps ``path`` from being read as a file, or ``None`` for a regular file or a missing path.

    Returns
    -------
    str or None
        "is a loop of symbolic links …", "is a FIFO (named pipe)", "is a device", "is a socket" or "is a
        folder"; ``None`` where the path is a regular file or does not exist (the caller says "not found").
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _LOOP
        return None
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    return None


def special_problem(path: Path | str, *, folder_ok: bool = False) -> str | None:
    """Say what keeps ``path`` from being read as a file ("<path>: is a FIFO …"), or ``None`` where it may be.

    The message :func:`refuse_special` gives, without the key: for the settings validators of every scenario
    schema, which name the key themselves.

    Parameters
    ----------
    path
        The path to check.
    folder_ok
        Whether a folder is a valid value (a FileGDB).
    """
    kind = path_kind(path)
    if kind is None or (folder_ok and kind.startswith("is a folder")):
        return None
    return f"{path}: {kind}"


def refuse_special(
    path: Path | str,
    key: str,
    *,
    error: type[HeatmapError] = InputDataError,
    folder_ok: bool = False,
) -> None:
    """Raise ``error`` where ``path`` is a link loop, a FIFO, a device, a socket or (unless ``folder_ok``) a folder.

    A missing path and a regular file pass: whether a file must exist is the caller's to say.

    Parameters
    ----------
    path
        The path to check.
    key
        Where the path was given ("consumers.path", "the SCENARIO argument"), named in the message.
    error
        The exception class to raise (a :class:`~heatmap._errors.HeatmapError`: exit code 2).
    folder_ok
        Whether a folder is a valid value (a FileGDB).

    Raises
    ------
    heatmap._errors.HeatmapError
        Of class ``error``, naming the path, what it is and the key to fix.
    """
    problem = special_problem(path, folder_ok=folder_ok)
    if problem is not None:
        raise error(f"{problem}; check {key} (give a regular file)")


def resolved(path: Path | str, key: str, *, error: type[HeatmapError] = InputDataError) -> Path:
    """Return ``Path(path).resolve()``, a loop of symbolic links answered with ``error`` naming the path and key.

    Raises
    ------
    heatmap._errors.HeatmapError
        Of class ``error`` where ``path`` (or a folder on its way) is a loop of symbolic links.
    """
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:  # Python < 3.13: RuntimeError("Symlink loop ..."); later: ELOOP
        if isinstance(exc, OSError) and exc.errno != errno.ELOOP:
            raise
        raise error(f"{path}: {_LOOP}; check {key}") from None

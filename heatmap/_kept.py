"""Warnings kept in a process of its own (a Dask worker) and sent back to the process that shows them.

A Dask worker configures no logging, so Python printed the package's warnings there bare, once per task;
:func:`kept_warnings` keeps them while a task runs, the task returns them with its result, and the process that
gathers the results logs them again (the command line shows each distinct warning once).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Warned:
    """The messages of the warnings a task logged, and the process it ran in."""

    messages: list[str] = field(default_factory=list)
    pid: int = field(default_factory=os.getpid)


class _Kept(logging.Handler):
    """Keeps the messages of the warnings logged while it is attached (:func:`kept_warnings`)."""

    def __init__(self, into: Warned) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.messages.append(record.getMessage())


@contextlib.contextmanager
def kept_warnings() -> Iterator[Warned]:
    """Keep the messages of the package's warnings logged within (they still reach the process's own handlers)."""
    warned = Warned()
    kept = _Kept(warned)
    package = logging.getLogger("heatmap")
    package.addHandler(kept)
    try:
        yield warned
    finally:
        package.removeHandler(kept)


def log_again(logger: logging.Logger, warned: Warned) -> None:
    """Log in this process the warnings a task kept in another (in this one they were logged already)."""
    if warned.pid != os.getpid():
        for message in warned.messages:
            logger.warning("%s", message)

"""A vectorised replacement for one slow consistency check inside pandapipes 0.16.

pandapipes 0.16 checks, each time a component registers values for its rows of the internal arrays
(``PitRegistry.add``), that no (row, column) position is claimed twice by an exclusive ("unique") entry. It
does so by building Python sets of tuples of every position registered so far, once per registration: at
10,000 consumers this took 2.7 s of each 6.5 s pipeflow run (cProfile), 40 % of the solve.

:func:`install` replaces that method with one doing the same check with numpy on a boolean occupancy grid of
the positions (no sorting, no Python sets): the same entries pass, the same conflicts raise the same
``ValueError``. It is installed only on the pandapipes versions it was checked against
(``tests/test_hydraulics.py`` compares both implementations); on any other version pandapipes' own check
is kept.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

CHECKED_VERSIONS = ("0.16.",)
"""pandapipes versions whose ``PitRegistry._check_conflict`` this module was checked against."""
replaced: dict[str, Any] = {}
"""pandapipes' own implementation, kept once :func:`install` has replaced it (for the tests)."""


def check_conflict(self: Any, entries: Any, bucket: list) -> None:
    """Raise ``ValueError`` if ``entries`` claims a position an earlier unique entry of ``bucket`` claims."""
    from pandapipes.pf.system_index import PitWriteMode

    unique = [e for e in bucket if e.mode == PitWriteMode.UNIQUE]
    if not unique or not len(entries.rows):
        return
    rows = [np.asarray(e.rows, dtype=np.int64) for e in unique]
    cols = [np.asarray(e.cols, dtype=np.int64) for e in unique]
    new_rows, new_cols = np.asarray(entries.rows, dtype=np.int64), np.asarray(entries.cols, dtype=np.int64)
    shape = (np.concatenate([new_rows, *rows]).max() + 1, np.concatenate([new_cols, *cols]).max() + 1)
    claimed = np.zeros(shape, dtype=bool)  # an occupancy grid of the array's positions: no sorting, no sets
    for r, c in zip(rows, cols, strict=True):
        claimed[r, c] = True
    clash = claimed[new_rows, new_cols]
    if clash.any():
        pairs = set(zip(new_rows[clash].tolist(), new_cols[clash].tolist(), strict=True))
        raise ValueError(f"PIT conflict: (row, col) pairs {pairs} are already claimed by a unique entry.")


def install() -> bool:
    """Use :func:`check_conflict` in pandapipes if its version was checked; return whether it was installed."""
    import pandapipes
    from pandapipes.pf.system_index import PitRegistry

    if not pandapipes.__version__.startswith(CHECKED_VERSIONS) or not hasattr(PitRegistry, "_check_conflict"):
        logger.info("pandapipes %s: its own conflict check is kept", pandapipes.__version__)
        return False
    if PitRegistry._check_conflict is not check_conflict:
        replaced["_check_conflict"] = PitRegistry._check_conflict
        PitRegistry._check_conflict = check_conflict
    return True

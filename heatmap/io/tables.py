"""One CSV reader for the tables and series a scenario names: ``#`` lines are comments, errors name the file.

Rows are numbered by their line in the file (:func:`csv_file_lines`), so a message can point at the line to fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from heatmap._errors import InputDataError


def csv_file_lines(path: Path, rows: int) -> np.ndarray:
    """File line (1-based) of each data row of a CSV read with ``comment="#"``.

    pandas skips blank lines and lines that start with ``#``; the first line left is the header. Where the
    count does not fit (a quoted value spanning lines), the rows are numbered as if none were skipped.
    """
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [i for i, line in enumerate(text, 1) if line.strip() and not line.lstrip().startswith("#")]
    lines = np.array(kept[1:], dtype=int)
    if len(lines) != rows:
        start = kept[0] + 1 if kept else 2
        lines = np.arange(rows, dtype=int) + start
    return lines


def read_csv_table(path: str | Path, *, required: Sequence[str], what: str, hint: str = "") -> pd.DataFrame:
    """Read a CSV (``#`` lines are comments) that must hold the ``required`` columns.

    Errors name the file and what to fix: ``what`` says what the file is ("fuel table"), ``hint`` is added to
    the missing-columns message.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: {what} not found")
    try:
        table = pd.read_csv(path, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(f"{path}: {what} cannot be read as CSV ({exc})") from exc
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputDataError(
            f"{path}: columns {', '.join(missing)} missing (columns: {', '.join(map(str, table.columns))}){hint}"
        )
    return table


def row_tuples(frame: pd.DataFrame) -> Iterator[Any]:
    """Iterate over the rows of ``frame`` as named tuples (``frame.itertuples()``), a field per column.

    A field's type is its column's, which a type checker cannot know: the rows are typed ``Any`` (pandas-stubs
    types every field as the union of all scalars, which no arithmetic accepts).
    """
    return frame.itertuples()

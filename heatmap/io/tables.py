"""One CSV reader for the tables and series a scenario names: ``#`` lines are comments, errors name the file.

Rows are numbered by their line in the file (:func:`csv_file_lines`), so a message can point at the line to fix.
One CSV writer (:func:`write_csv`) for every table heatmap writes: a text that a spreadsheet would take for a
formula is escaped (OWASP "CSV injection").
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
    from heatmap.io.paths import refuse_special

    path = Path(path)
    refuse_special(path, f"the path of the {what}")
    if not path.is_file():
        raise InputDataError(f"{path}: {what} not found")
    try:
        table = read_csv_rows(path, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(f"{path}: {what} cannot be read as CSV ({exc})") from exc
    refuse_repeated_columns(path, comment="#")
    missing = [c for c in required if c not in table.columns]
    if missing:
        import difflib

        have = [str(c) for c in table.columns if c not in required]
        close = {c: difflib.get_close_matches(c, have, n=1, cutoff=0.6) for c in missing}
        similar = ", ".join(f"{m[0]} for {c}" for c, m in close.items() if m)
        raise InputDataError(
            f"{path}: columns {', '.join(missing)} missing (columns: {', '.join(map(str, table.columns))})"
            + (f"; did you mean {similar}? (a column the settings name may be misspelt there)" if similar else hint)
        )
    return table


def read_csv_rows(path: Path, *, comment: str | None = None) -> pd.DataFrame:
    """Read a CSV with :func:`pandas.read_csv`, refusing rows with more values than the header names.

    Rows that only end in a delimiter the header lacks (as spreadsheets write) are read as they are; a row with more
    values is refused, naming its line. pandas would take the first column of such rows as the index and shift every
    value one column: a price file's prices read as its times.
    """
    import csv

    table = pd.read_csv(path, comment=comment)
    header = str(table.columns[0]) if len(table.columns) == 1 else ""
    sep = next((d for d in ";\t|" if d in header), None)
    if sep is not None:  # one column: the header split by another delimiter than pandas' comma
        name = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}[sep]
        why = ", as a spreadsheet in a European locale exports CSV (with decimal commas)" if sep == ";" else ""
        raise InputDataError(
            f"{path}: the values are separated by {name} ({header!r}){why}; export it with commas between the values "
            "and points as decimal separators (LibreOffice: Save As, Text CSV, field delimiter ','), or save it as a "
            "GeoPackage"
        )
    if isinstance(table.index, pd.RangeIndex):
        return table
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if r and not (comment and r[0].startswith(comment))]
    width = len(rows[0][1])
    extra = next(((i, r) for i, r in rows[1:] if len(r) > width and any(v.strip() for v in r[width:])), None)
    if extra is None:  # only empty cells past the header's columns: the delimiters a spreadsheet wrote
        return pd.read_csv(path, comment=comment, index_col=False, usecols=range(width))
    line, row = extra
    raise InputDataError(
        f"{path}, line {line}: {len(row)} values where the header names {width} columns; remove the extra values "
        "or name their columns in the header"
    )


def refuse_repeated_columns(path: Path, *, comment: str | None = None) -> None:
    """Refuse a CSV whose header names a column twice (pandas would read the second as ``name.1``)."""
    head = pd.read_csv(path, comment=comment, header=None, nrows=1, dtype=str).iloc[0].dropna()
    counts = head.value_counts()
    twice = sorted(counts[counts > 1].index)
    if twice:
        raise InputDataError(f"{path}: the header names columns {', '.join(twice)} more than once; keep one of each")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection")."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_safe_text(value: Any) -> Any:
    """``value`` with a single quote put before it where it is a text a spreadsheet would run as a formula.

    A text starting with one of :data:`FORMULA_STARTS` is escaped unless it is a number ("-12.5" stays as it
    is); anything that is not a text (a number, a missing value) is returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_text(column: pd.Series | pd.Index) -> bool:
    dtype = column.dtype
    return (
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy ``frame`` with its text cells, text index and column names escaped (:func:`csv_safe_text`).

    Numeric columns are not touched, so numbers (negative ones too) stay numbers in the file.
    """
    safe = frame.copy(deep=False)
    for i, (_, column) in enumerate(frame.items()):
        if _is_text(column):
            safe.isetitem(i, column.astype(object).map(csv_safe_text).to_numpy())
    if _is_text(frame.index):
        safe.index = frame.index.astype(object).map(csv_safe_text)
    safe.columns = frame.columns.map(csv_safe_text)
    return safe


_CONTAINERS = (list, tuple, set, frozenset, dict, np.ndarray)


def check_tidy(frame: pd.DataFrame, what: str) -> None:
    """Raise unless every cell of ``frame`` holds one value (no list, tuple, set, dict or array).

    A container would be written as its Python text (``['a', 'b']``), which no spreadsheet or GIS reads as
    values: a table written for them gives each value its own cell (or row).

    Raises
    ------
    ValueError
        Naming the table, the column and an example cell (an internal error: the table is built wrong).
    """
    for name, column in frame.items():
        if _is_text(column) and not isinstance(column.dtype, pd.CategoricalDtype):
            found = column.map(lambda v: isinstance(v, _CONTAINERS)).to_numpy(dtype=bool)
            if found.any():
                example = column.to_numpy()[found][0]
                raise ValueError(
                    f"internal error: column {name!r} of {what} holds {int(found.sum())} cells of several values "
                    f"(e.g. {example!r}); give each value its own cell"
                )


def write_csv(frame: pd.DataFrame, path: Path, *, float_format: str, index: bool = False) -> None:
    """Write ``frame`` to the CSV file ``path``, its text cells escaped against formula injection (:func:`csv_safe`).

    Every cell must hold one value (:func:`check_tidy`).

    Parameters
    ----------
    frame
        The table to write.
    path
        The file to write (replaced if it exists).
    float_format
        The format of floats (``"%.4f"``), as :meth:`pandas.DataFrame.to_csv` takes it.
    index
        Whether to write the index as the first column.
    """
    check_tidy(frame, path.name)
    _with_floats_formatted(csv_safe(frame), float_format).to_csv(path, index=index, float_format=float_format)


def _with_floats_formatted(frame: pd.DataFrame, float_format: str) -> pd.DataFrame:
    """Copy ``frame`` with its float columns as text formatted as :meth:`pandas.DataFrame.to_csv` would format them.

    pandas formats each value with a call of its own; one ``%`` over a whole column gives the same text (empty
    where missing) in a fraction of the time.
    """
    out = frame.copy(deep=False)
    for i, (_, column) in enumerate(frame.items()):
        if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            values = column.to_numpy()
            missing = np.isnan(values)
            texts = ((float_format + "\n") * len(values) % tuple(values.tolist())).split("\n")[:-1]
            out.isetitem(i, np.where(missing, "", np.array(texts, dtype=object)).astype(object))
    return out


def row_tuples(frame: pd.DataFrame) -> Iterator[Any]:
    """Iterate over the rows of ``frame`` as named tuples (``frame.itertuples()``), a field per column.

    A field's type is its column's, which a type checker cannot know: the rows are typed ``Any`` (pandas-stubs
    types every field as the union of all scalars, which no arithmetic accepts).
    """
    return frame.itertuples()

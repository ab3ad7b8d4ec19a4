"""Issue 19: every bad input answered, nothing lost, the newer commands too.

Texts that a spreadsheet would run as formulas, symlink loops and FIFOs given as paths, a full stdout, a
SIGTERM during the imports and a huge value quoted in a message.
"""

import csv
import re
from pathlib import Path

import pandas as pd
import yaml
from conftest import run_cli

from heatmap.io.tables import csv_safe_text, write_csv

HEATMAP = Path(__file__).parents[1] / "heatmap"
KIP_MATCHES = Path(__file__).parent / "data" / "matching_scenario.yaml"
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\r=1+1"]


# ------------------------------------------------------------------------------ CSV formula injection ---
def test_csv_text_that_starts_a_formula_is_escaped_and_numbers_stay_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "name": [*FORMULAS, "-12.5", "plain"],
            "value": [-1.5, -2.0, 3.0, -4.0, 5.0, 6.0, -7.0, 8.0],
            "count": [-1, 2, 3, 4, 5, 6, 7, 8],
            "=header": ["a"] * 8,
        }
    )
    path = tmp_path / "t.csv"
    write_csv(frame, path, float_format="%.3f")
    text = path.read_bytes().decode("utf-8")
    assert "\n'\r=1+1," in text  # pandas leaves a carriage return unquoted: the file, not a reader, is checked
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f.read().replace("'\r", "'").splitlines()))
    assert header == ["name", "value", "count", "'=header"]
    assert [r[0] for r in rows] == [*("'" + f for f in FORMULAS[:-1]), "'=1+1", "-12.5", "plain"]
    # numbers, negative ones too, are written as numbers, not escaped
    assert [r[1] for r in rows] == ["-1.500", "-2.000", "3.000", "-4.000", "5.000", "6.000", "-7.000", "8.000"]
    assert [r[2] for r in rows] == ["-1", "2", "3", "4", "5", "6", "7", "8"]
    assert frame.name.iloc[0] == FORMULAS[0]  # the caller's table is not changed
    assert csv_safe_text(-3) == -3 and csv_safe_text("-3e5") == "-3e5" and csv_safe_text(None) is None


def test_every_csv_writer_goes_through_the_escaping_helper():
    """No module of heatmap writes a CSV but heatmap.io.tables.write_csv."""
    writers = [
        f"{path.relative_to(HEATMAP)}:{n}"
        for path in HEATMAP.rglob("*.py")
        if path.name != "tables.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.to_csv\(|csv\.writer|DictWriter", line)
    ]
    assert writers == []


def test_matches_csv_escapes_ids_that_start_a_formula(tmp_path):
    data = yaml.safe_load(KIP_MATCHES.read_text(encoding="utf-8"))
    here = KIP_MATCHES.parent
    data["outdoor_temperature"]["csv"] = str((here / data["outdoor_temperature"]["csv"]).resolve())
    data["plants_csv"] = str((here / data["plants_csv"]).resolve())
    data.pop("plan", None)
    data["sinks"][-1]["id"] = "-port"  # an id may start with a minus (the formula -port+1 in a spreadsheet)
    data["sources"][-1]["id"] = "-cooling-1"
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run_cli("matches", path, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "matches.csv")
    assert "'-port" in set(table.sink_id)
    assert "'-cooling-1" in set(table.source_id)
    text_cells = table.select_dtypes(include="object").to_numpy().ravel()
    assert not [c for c in text_cells if isinstance(c, str) and c[:1] in "=+-@\t\r"]
    assert pd.api.types.is_float_dtype(table.eur_per_mwh)

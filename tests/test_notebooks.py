"""The notebooks run top to bottom without error, their exercises' answers print what they show, and they are
training material: a goal, a link to the glossary, a plot, exercises with hidden answers, stored outputs with
readable numbers."""

import base64
import re
from pathlib import Path

import nbformat
import pytest
from notebook_checks import ANSWER, CODE, TEXT, answers, execute, store

NOTEBOOK_DIR = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
GLOSSARY = NOTEBOOK_DIR / "GLOSSARY.md"
EXPECTED = {
    "01_plan_bundled_scenario.ipynb": "checks hold",
    "02_heat_density_from_osm.ipynb": "raster total equals building total: True",
    "03_kip_excess_heat.ipynb": "hourly balance holds: True",
    "04_network_design.ipynb": "design checks hold: True",
}
"""A line each notebook prints when its result checks out."""

GLOSSARY_TERMS = [
    "DN",
    "EN 253",
    "Simultaneity factor",
    "Full-load hours",
    "Linear heat density",
    "Heat density",
    "LCOH",
    "NPV",
    "Discount rate",
    "annuity",
    "Capex",
    "opex",
    "Merit order",
    "COP",
    "Carnot",
    "Heat losses",
    "pressure gradient",
    "Supply and return temperatures",
    "Excess heat",
    "Prosumer",
    "Storage",
    "Electric boiler",
    "Steiner tree",
    "MIP gap",
    "bound",
]
"""Terms the glossary explains, each as a bold entry of its own."""

RAW_FLOAT = re.compile(r"\d\.\d{5,}e[+-]\d\d")
"""A number printed in raw scientific notation (``2.558508e+07``), unreadable for a trainee."""

MAX_IMAGE_KB = 300
"""Largest stored image (decoded PNG); the stored notebooks stay small."""

REFRESH = "run `.venv/bin/python tests/notebook_checks.py` to store the notebooks' outputs afresh"


def _outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def _output_text(output) -> str:
    if output.output_type == "stream":
        return output.text
    return "".join(v for k, v in output.get("data", {}).items() if k.startswith("text/"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    done, printed = execute(nb, tmp_path)  # raises on the first cell (or answer) that fails
    outputs = _outputs(done)
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert EXPECTED[path.name] in text
    assert not RAW_FLOAT.search("".join(map(_output_text, outputs)))
    shown = [shown for _, shown in answers(nb)]
    for i, (now, then) in enumerate(zip(printed, shown, strict=True)):
        assert then is not None and now.strip() == then.strip(), f"answer {i + 1} now prints:\n{now}\n{REFRESH}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_training_material(path):
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert markdown and nb.cells[0].cell_type == "markdown"
    intro = markdown[0] + markdown[1] if len(markdown) > 1 else markdown[0]
    assert "**Goal:**" in intro and "**You will learn**" in intro and "**Time:**" in intro
    assert "](GLOSSARY.md)" in intro
    blocks = [b for source in markdown for b in ANSWER.findall(source)]
    assert blocks, "no exercise with a hidden answer"
    assert all(CODE.search(b) and TEXT.search(b) for b in blocks), "each answer shows its code and what it prints"
    assert any("## Exercises" in source for source in markdown)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_outputs_are_stored_and_readable(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"a code cell was not run; {REFRESH}"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"run out of order; {REFRESH}"
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o.data["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert images, "no plot or map stored"
    assert max(len(base64.b64decode(png)) for png in images) <= MAX_IMAGE_KB * 1024
    text = "".join(map(_output_text, outputs))
    assert not (raw := RAW_FLOAT.findall(text)), f"raw scientific floats in the outputs: {raw[:3]}"
    assert EXPECTED[path.name] in text
    assert str(Path(__file__).parent.parent) not in text, "an output shows this machine's path"
    assert not any("execution" in c.metadata for c in nb.cells), "timing metadata stored"


def test_glossary_covers_the_terms():
    text = GLOSSARY.read_text()
    entries = re.findall(r"^\*\*(.+?)\*\*", text, re.M)
    for term in GLOSSARY_TERMS:
        assert any(term.lower() in e.lower() for e in entries), f"the glossary has no entry for {term}"
    for entry in re.split(r"^(?=\*\*)", text, flags=re.M)[1:]:
        assert len(entry.split()) >= 25, f"entry too short to explain: {entry[:40]!r}"


def test_raw_float_pattern():
    assert RAW_FLOAT.search("capex 2.558508e+07")
    assert not RAW_FLOAT.search("capex 25.6 M€, residual 1.2e-05")


def test_there_is_a_notebook():
    assert NOTEBOOKS
    assert set(EXPECTED) == {p.name for p in NOTEBOOKS}


def test_answers_run_after_the_notebook_and_their_print_is_stored(tmp_path):
    answer = "<details><summary>Answer</summary>\n\n```python\nprint(f'{x * 21} kW')\n```\n\n{}\nWhy.\n</details>"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# T"),
            nbformat.v4.new_code_cell("x = 2"),
            nbformat.v4.new_markdown_cell(answer.replace("{}", "```text\n1 kW\n```\n")),
        ]
    )
    done, printed = execute(nb, tmp_path)
    assert printed == ["42 kW\n"] and len(done.cells) == 3 and done.cells[1].execution_count == 1
    assert answers(nb) == [("print(f'{x * 21} kW')\n", "1 kW\n")]  # a stale print is told apart
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    store(path)
    stored = nbformat.read(path, as_version=4)
    assert answers(stored) == [("print(f'{x * 21} kW')\n", "42 kW\n")]
    assert "Why." in stored.cells[2].source and "execution" not in stored.cells[1].metadata

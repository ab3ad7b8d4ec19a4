"""The notebooks run top to bottom without error."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
EXPECTED = {
    "01_plan_bundled_scenario.ipynb": "checks hold",
    "02_heat_density_from_osm.ipynb": "raster total equals building total: True",
    "03_kip_excess_heat.ipynb": "hourly balance holds: True",
    "04_network_design.ipynb": "design checks hold: True",
}
"""A line each notebook prints when its result checks out."""


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert EXPECTED[path.name] in text


def test_there_is_a_notebook():
    assert NOTEBOOKS

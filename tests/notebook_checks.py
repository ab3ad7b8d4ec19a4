"""Run the notebooks together with their exercises' answers, and store their outputs.

An exercise's answer is a ``<details><summary>Answer</summary> … </details>`` block in a markdown cell holding a
fenced ``python`` block (the code that answers it) and a fenced ``text`` block (what that code prints). Running a
notebook here appends each answer's code as a cell after the notebook's own, so the printed text can be compared
with the one the answer shows.

Run as a script to execute the notebooks and store their outputs and the answers' printed text in them::

    .venv/bin/python tests/notebook_checks.py [notebooks/NAME.ipynb ...]

Each notebook runs in a fresh temporary folder (what it writes goes there), without timing metadata, so the stored
notebook changes only where a result changes.
"""

from __future__ import annotations

import copy
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).parent.parent / "notebooks"
ANSWER = re.compile(r"<details><summary>Answer</summary>(.*?)</details>", re.S)
CODE = re.compile(r"```python\n(.*?)```", re.S)
TEXT = re.compile(r"```text\n(.*?)```", re.S)
TIMEOUT_S = 300


def answers(nb: nbformat.NotebookNode) -> list[tuple[str, str | None]]:
    """Return each answer's code and the text it shows as printed (``None`` where it shows none)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for block in ANSWER.findall(cell.source):
            code = CODE.search(block)
            text = TEXT.search(block)
            if code is not None:
                found.append((code.group(1), text.group(1) if text else None))
    return found


def execute(nb: nbformat.NotebookNode, cwd: Path) -> tuple[nbformat.NotebookNode, list[str]]:
    """Execute a notebook and then its answers' code in the same kernel.

    Returns
    -------
    tuple
        The executed notebook (its own cells only) and what each answer's code printed.
    """
    run = copy.deepcopy(nb)
    n = len(run.cells)
    run.cells += [nbformat.v4.new_code_cell(code) for code, _ in answers(nb)]
    NotebookClient(
        run, timeout=TIMEOUT_S, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(cwd)}}
    ).execute()
    printed = [
        "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
        for cell in run.cells[n:]
    ]
    run.cells = run.cells[:n]
    return run, printed


def store(path: Path) -> None:
    """Execute a notebook and write it back with its outputs and its answers' printed text."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        done, printed = execute(nb, Path(tmp))
    texts = iter(printed)

    def fill(block: re.Match[str]) -> str:
        inner = block.group(1)
        if CODE.search(inner) is None:
            return block.group(0)
        text = f"```text\n{next(texts).rstrip()}\n```"
        inner = TEXT.sub(lambda _: text, inner) if TEXT.search(inner) else inner.rstrip() + f"\n\n{text}\n\n"
        return f"<details><summary>Answer</summary>{inner}</details>"

    for cell in done.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "markdown":
            cell.source = ANSWER.sub(fill, cell.source)
    nbformat.write(done, path)


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        store(Path(name))
        print(f"stored {name}")

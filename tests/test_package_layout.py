"""The package's domains import one way only: no cycle between subpackages, nothing importing the conductors."""

import ast
from pathlib import Path

import networkx as nx

import heatmap

PACKAGE = Path(heatmap.__file__).parent
DOMAINS = {"network", "demand", "energy", "io", "maps"}
CONDUCTORS = {"plan", "cli", "study_job", "ensemble_job"}  # call the stages; no stage may import them


def _domain_imports() -> nx.DiGraph:
    graph = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        source = parts[0]  # the subpackage, or the top-level module
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("heatmap"):
                names = [node.module] if node.module != "heatmap" else [f"heatmap.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("heatmap.")]
            else:
                continue
            for name in names:
                target = name.split(".")[1]
                if target != source:
                    graph.add_edge(source, target, file=str(path.relative_to(PACKAGE)))
    return graph


def test_domains_import_without_cycles():
    graph = _domain_imports()
    cycles = list(nx.simple_cycles(graph.subgraph(DOMAINS)))
    assert cycles == [], f"import cycles between subpackages: {cycles}"


def test_no_stage_imports_a_conductor():
    graph = _domain_imports()
    upward = [(u, v, d["file"]) for u, v, d in graph.edges(data=True) if v in CONDUCTORS and u not in CONDUCTORS]
    assert upward == []


def test_every_module_lives_in_a_domain_or_is_a_known_top_module():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {
        "__init__",
        "_errors",
        "_highs",
        "_kept",
        "cli",
        "economics",
        "ensemble_job",
        "plan",
        "scenario",
        "settings",
        "study",
        "study_job",
    }
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == DOMAINS


def _module_imports() -> nx.DiGraph:
    """Every import between the package's modules (at the top of a file or inside a function)."""
    graph = nx.DiGraph()
    modules = {".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        source = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("heatmap"):
                base = node.module.removeprefix("heatmap").lstrip(".")
                names = [f"{base}.{a.name}".lstrip(".") for a in node.names] + [base]
            elif isinstance(node, ast.Import):
                names = [a.name.removeprefix("heatmap.") for a in node.names if a.name.startswith("heatmap.")]
            else:
                continue
            target = next((n for n in names if n in modules and not n.endswith("__init__")), None)
            if target is not None and target != source:
                graph.add_edge(source, target)
    return graph


def test_modules_import_without_cycles():
    """No two modules import each other, even inside functions (the ranking and the planning of matches once did)."""
    cycles = sorted(sorted(c) for c in nx.simple_cycles(_module_imports()))
    assert cycles == [], f"import cycles between modules: {cycles}"

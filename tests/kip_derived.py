"""The bundled KIP study (``data/scenarios/kip.yaml``) and the three scenarios its commands derive from it.

Tests that change one part of the study (a plan setting, a concept, a matching pair) change the scenario the
command derives (:func:`heatmap.study.plan_data`, :func:`~heatmap.study.energy_data`,
:func:`~heatmap.study.match_data`), written once per test session as a scenario file of its own kind.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

import yaml

from heatmap import settings
from heatmap.study import energy_data, match_data, plan_data, read_study

STUDY = settings.data_dir / "scenarios" / "kip.yaml"
_DERIVE = {"network": plan_data, "concepts": energy_data, "matches": match_data}
_folder = Path(tempfile.mkdtemp(prefix="kip-derived-"))
atexit.register(shutil.rmtree, _folder, True)


def derived_data(part: str) -> dict:
    """The mapping of the study's ``part`` (network, concepts or matches), every path absolute."""
    return _DERIVE[part](read_study(STUDY))


def derived(part: str) -> Path:
    """The study's ``part`` written as a scenario file of that kind (once per session)."""
    path = _folder / f"kip_{part}.yaml"
    if not path.exists():
        path.write_text(yaml.safe_dump(derived_data(part), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path

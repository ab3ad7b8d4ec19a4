"""Open heatmap's PostGIS tables in real QGIS (the ``postgres`` provider) and report what QGIS makes of them.

Run by tests/test_postgis.py with Debian's system Python (``/usr/bin/python3``, which holds ``python3-qgis``), like
tests/qgis_check.py: it imports nothing of heatmap. Reads a JSON request on stdin::

    {"connection": {"host": "127.0.0.1", "port": "5432", "dbname": "heat", "user": "planner", "password": "…"},
     "schema": "public", "tables": ["sources", "pipes"], "png_dir": "/path/artefacts"}

and writes a JSON report on stdout: per table, whether the layer is valid, its CRS, feature count, the default
style QGIS loads for it from ``public.layer_styles`` (as when a user adds the table from the Browser panel):
renderer type, classes, renderer field, labels, field aliases, and a PNG rendered of it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsDataSourceUri,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def render(layer: QgsVectorLayer, path: Path) -> dict:
    """Render the layer into a PNG; return how many pixels are not background and the errors."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setOutputSize(QSize(600, 500))
    settings.setBackgroundColor(QColor(255, 255, 255))
    extent = layer.extent()
    extent.scale(1.08)
    settings.setExtent(extent)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(str(path), "PNG")
    drawn = sum(
        1
        for x in range(0, image.width(), 3)
        for y in range(0, image.height(), 3)
        if image.pixel(x, y) & 0xFFFFFF != 0xFFFFFF
    )
    return {
        "png": str(path),
        "scale": settings.scale(),
        "drawn_share": drawn / ((image.width() // 3 + 1) * (image.height() // 3 + 1)),
        "errors": [f"{e.layerID}: {e.message}" for e in job.errors()],
    }


def classes(renderer) -> list[str]:
    """The legend entries of a graduated or categorized renderer (none for a single symbol)."""
    if renderer.type() == "categorizedSymbol":
        return [c.label() for c in renderer.categories()]
    if renderer.type() == "graduatedSymbol":
        return [r.label() for r in renderer.ranges()]
    return []


def main() -> None:
    request = json.load(sys.stdin)
    png_dir = Path(request["png_dir"])
    png_dir.mkdir(parents=True, exist_ok=True)
    c = request["connection"]
    app = QgsApplication([], False)
    app.initQgis()
    report: dict = {"qgis_version": __import__("qgis.core").core.Qgis.QGIS_VERSION, "tables": {}}
    keep = []
    for table in request["tables"]:
        uri = QgsDataSourceUri()
        uri.setConnection(c["host"], str(c["port"]), c["dbname"], c["user"], c["password"])
        uri.setDataSource(request["schema"], table, "geometry", "", "fid")
        layer = QgsVectorLayer(uri.uri(False), table, "postgres")
        keep.append(layer)
        found: dict = {"valid": layer.isValid()}
        if layer.isValid():
            message, ok = layer.loadDefaultStyle()  # what QGIS does when the table is added
            renderer = layer.renderer()
            kind = renderer.type()
            fields = layer.fields()
            found.update(
                crs=layer.crs().authid(),
                features=layer.featureCount(),
                style_loaded=ok,
                style_message=message,
                renderer=kind,
                classes=classes(renderer),
                renderer_field=getattr(renderer, "classAttribute", lambda: None)(),
                labels_enabled=layer.labelsEnabled(),
                aliases={f.name(): layer.attributeAlias(i) for i, f in enumerate(fields)},
                comment=layer.dataProvider().dataComment(),
            )
            found["render"] = render(layer, png_dir / f"postgis_{table}.png")
        report["tables"][table] = found
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22 may crash in its teardown once the report is out (as in tests/qgis_check.py)


if __name__ == "__main__":
    main()

"""Open heatmap's GeoPackages and GeoTIFFs in real QGIS, report what QGIS makes of them and render PNGs.

Run by tests/test_qgis_real.py with Debian's system Python (``/usr/bin/python3``, which holds ``python3-qgis``), not
the project's .venv: it imports nothing of heatmap. Reads a JSON request on stdin::

    {"files": [{"path": "/out/plan.gpkg", "name": "plan/plan.gpkg"}, {"path": "/out/heat_density.tif", ...}],
     "png_dir": "/path/artefacts", "size": [900, 700], "raster_probes": [1.0, 50.0]}

and writes a JSON report on stdout: per file (by its name) and layer, what QGIS loaded as the layer's default style
(as when a user drags the file into QGIS): renderer and classes, labels, scale-dependent visibility, field aliases, the
layer's metadata (title, abstract), and the PNG rendered of each layer; per GeoPackage the QGIS project stored in it
(its layer tree: names, ticks, validity) and the PNG of the map it shows.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProject,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def render(layers: list, extent: QgsRectangle, size: tuple[int, int], path: Path) -> dict:
    """Render the layers (first on top) into a PNG; return its scale and how many pixels are not background."""
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[-1].crs())
    settings.setOutputSize(QSize(*size))
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setExtent(extent)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(str(path), "PNG")
    drawn = 0
    step = 3
    for x in range(0, image.width(), step):
        for y in range(0, image.height(), step):
            if image.pixel(x, y) & 0xFFFFFF != 0xFFFFFF:
                drawn += 1
    return {
        "png": str(path),
        "scale": settings.scale(),
        "drawn_share": drawn / ((image.width() // step + 1) * (image.height() // step + 1)),
        "errors": [f"{e.layerID}: {e.message}" for e in job.errors()],
    }


def vector_report(layer: QgsVectorLayer, style_ok: bool, style_message: str) -> dict:
    renderer = layer.renderer()
    kind = renderer.type()
    classes = {
        "categorizedSymbol": lambda: [c.label() for c in renderer.categories()],
        "graduatedSymbol": lambda: [r.label() for r in renderer.ranges()],
    }.get(kind, lambda: [layer.name()])()
    labeling = layer.labeling()
    label_expression = None
    if layer.labelsEnabled() and labeling is not None:
        label_expression = labeling.settings().fieldName
    fields = layer.fields()
    metadata = layer.metadata()
    return {
        "kind": "vector",
        "valid": layer.isValid(),
        "style_loaded": style_ok,
        "style_message": style_message,
        "features": layer.featureCount(),
        "renderer": kind,
        "classes": classes,
        "renderer_field": getattr(renderer, "classAttribute", lambda: None)(),
        "labels_enabled": layer.labelsEnabled(),
        "label_expression": label_expression,
        "scale_based_visibility": layer.hasScaleBasedVisibility(),
        "minimum_scale": layer.minimumScale(),
        "fields": [f.name() for f in fields],
        "aliases": {f.name(): layer.attributeAlias(i) for i, f in enumerate(fields)},
        "title": metadata.title(),
        "abstract": metadata.abstract(),
        "keywords": {k: v for k, v in metadata.keywords().items()},
        "map_tip": layer.mapTipTemplate(),
    }


def raster_report(layer: QgsRasterLayer, style_ok: bool, style_message: str, probes: list[float]) -> dict:
    renderer = layer.renderer()
    report = {
        "kind": "raster",
        "valid": layer.isValid(),
        "style_loaded": style_ok,
        "style_message": style_message,
        "renderer": renderer.type(),
        "opacity": renderer.opacity(),
        "classes": [],
        "colors": {},
    }
    if renderer.type() == "singlebandpseudocolor":
        ramp = renderer.shader().rasterShaderFunction()
        report["classes"] = [item.label for item in ramp.colorRampItemList()]
        report["ramp_type"] = int(ramp.colorRampType())
        for value in probes:
            ok, r, g, b, a = ramp.shade(value)
            report["colors"][repr(value)] = f"#{r:02x}{g:02x}{b:02x}" if ok else None
    return report


def main() -> None:
    request = json.load(sys.stdin)
    png_dir = Path(request["png_dir"])
    png_dir.mkdir(parents=True, exist_ok=True)
    size = tuple(request.get("size", [900, 700]))
    app = QgsApplication([], False)
    app.initQgis()
    storage = QgsApplication.projectStorageRegistry().projectStorageFromType("geopackage")
    report: dict = {"qgis_version": __import__("qgis.core").core.Qgis.QGIS_VERSION, "files": {}}
    keep = []  # the layers live until the end (QGIS renders them in threads)
    for entry in request["files"]:
        path = Path(entry["path"])
        stem = entry["name"].rsplit(".", 1)[0].replace("/", "__")
        layers: dict = {}
        loaded = []
        if path.suffix.lower() == ".gpkg":
            for sub in QgsProviderRegistry.instance().querySublayers(str(path)):
                if sub.providerKey() != "ogr" or sub.wkbType() == 100 or sub.name() == "layer_styles":
                    continue  # attribute tables (no geometry) are not map layers
                layer = QgsVectorLayer(sub.uri(), sub.name(), "ogr")
                message, ok = layer.loadDefaultStyle()  # what QGIS does when the layer is added
                layers[sub.name()] = vector_report(layer, ok, message)
                loaded.append(layer)
        else:
            layer = QgsRasterLayer(str(path), path.stem, "gdal")
            message, ok = layer.loadDefaultStyle()
            layers[path.stem] = raster_report(layer, ok, message, request.get("raster_probes", []))
            loaded.append(layer)
        keep += loaded
        extent = QgsRectangle()
        for layer in loaded:
            if layer.isValid() and not layer.extent().isEmpty():
                extent.combineExtentWith(layer.extent())
        extent.scale(1.08)
        for layer in loaded:
            layers[layer.name()]["render"] = render([layer], extent, size, png_dir / f"{stem}_{layer.name()}.png")
        found = {"path": str(path), "layers": layers}
        if path.suffix.lower() == ".gpkg":
            # the QGIS project stored in the GeoPackage (Browser panel: the GeoPackage's project; Project → Open From →
            # GeoPackage): its layer tree, and the map it shows, rendered
            found["projects"] = storage.listProjects(str(path))
            project = QgsProject.instance()
            found["project_read"] = project.read(f"geopackage:{path}?projectName={path.stem}")
            found["project_crs"] = project.crs().authid()
            tree = []
            for node in project.layerTreeRoot().findLayers():
                layer = node.layer()
                tree.append(
                    {
                        "name": node.name(),
                        "table": layer.source().split("layername=")[-1] if layer is not None else None,
                        "checked": node.isVisible(),
                        "valid": layer is not None and layer.isValid(),
                        "same_file": layer is not None and layer.source().split("|")[0] == str(path),
                        "renderer": layer.renderer().type() if layer is not None and layer.isValid() else None,
                    }
                )
            found["project_layers"] = tree
            shown = [node.layer() for node in project.layerTreeRoot().findLayers() if node.isVisible()]
            found["render"] = render(shown, extent, size, png_dir / f"{stem}.png")
        else:
            found["render"] = render(loaded, extent, size, png_dir / f"{stem}.png")
        report["files"][entry["name"]] = found
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.flush()
    # QGIS 3.22 crashes in exitQgis / Python's teardown of the layers (SIGSEGV) once the report is out: end here
    os._exit(0)


if __name__ == "__main__":
    main()

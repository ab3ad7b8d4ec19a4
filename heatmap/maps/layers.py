"""Declarative map-layer definitions shared by the web map and the QGIS styles.

Each file in the project's ``layers/`` folder defines one output layer once: its geometry, its colour
rule (single colour, graduated classes or categories), line width and dash rules, and the popup fields
with units. :mod:`heatmap.maps.webmap` and :mod:`heatmap.maps.qgis_style` both read these definitions, so a layer
looks the same in the browser and in QGIS. Keys for QGIS only: ``labels`` (:class:`LabelRule`),
``visible_by_default`` (ticked in the QGIS project stored in the GeoPackage), ``max_scale_denominator`` (drawn
only zoomed in closer than 1:that), ``aliases`` (column → alias, for columns without a popup row) and
``description`` (the layer's abstract in QGIS).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from heatmap import settings
from heatmap._errors import ScenarioError

logger = logging.getLogger(__name__)

GEOMETRY_KINDS = ("point", "line", "polygon", "polygon_or_point", "raster")


@dataclass(frozen=True)
class ColorClass:
    """One class of a graduated (``upper`` bound, inclusive) or categorized (``value``) rule."""

    color: str
    label: str
    upper: float | None = None
    value: str | None = None


@dataclass(frozen=True)
class ColorRule:
    """How a layer's features are coloured: ``single``, ``graduated`` or ``categorized``."""

    kind: str
    color: str | None = None
    field: str | None = None
    classes: tuple[ColorClass, ...] = ()


@dataclass(frozen=True)
class WidthRule:
    """Line width: constant, or scaled linearly by ``field`` between ``min_px`` and ``max_px``."""

    constant_px: float | None = None
    field: str | None = None
    min_px: float = 1.0
    max_px: float = 1.0


@dataclass(frozen=True)
class DashRule:
    """Dash patterns (SVG ``stroke-dasharray``) by the value of ``field``; other values are solid."""

    field: str
    values: dict[str, str]
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    """Legend label of each value (``{field}: {value}`` where none is given)."""

    def label(self, value: str) -> str:
        """Return the legend label of ``value``."""
        return self.labels.get(value, f"{self.field}: {value}")


@dataclass(frozen=True)
class PopupField:
    """One popup row: the column, its label, its unit and the decimals shown."""

    field: str
    label: str
    unit: str | None = None
    decimals: int | None = None


@dataclass(frozen=True)
class LabelRule:
    """Labels in QGIS: the text of ``field`` (``fallback`` where it is empty), on features passing the filter.

    ``min_field``/``min_value`` keep the labels to features whose ``min_field`` is at least ``min_value``
    (e.g. the large consumers only).
    """

    field: str
    fallback: str | None = None
    min_field: str | None = None
    min_value: float | None = None
    size_pt: float = 9.0
    color: str = "#000000"
    buffer_color: str = "#ffffff"


@dataclass(frozen=True)
class PairRule:
    """Draw the features that share ``key`` as one on the web map, the values of each ``by`` side by side.

    Supply and return pipes of one trench lie on the same line: drawn apart, the one on top takes every
    click. Drawn as one, the popup shows both circuits in columns (in ``order``), the ``sum`` fields added up.
    """

    key: str
    by: str
    order: tuple[str, ...] = ()
    sum: tuple[str, ...] = ()


@dataclass(frozen=True)
class AltColor:
    """A second colouring the web map offers (switched in a control): one colour per value of ``field``.

    The categories are the values found in the data; ``names_from`` (``layer.field``) names each value from
    another layer's row of the same ``field`` value (e.g. a source's name).
    """

    field: str
    label: str
    main_label: str
    names_from: str | None = None
    colors: dict[str, str] | None = None
    """A fixed colour by value (e.g. each source's colour of a study's plots); other values take the palette's."""


@dataclass(frozen=True)
class LayerSpec:
    """A layer's look, defined once for the web map and QGIS."""

    name: str
    title: str
    geometry: str
    web_map: bool
    draw_order: float
    color: ColorRule
    popup: tuple[PopupField, ...]
    width: WidthRule = field(default_factory=WidthRule)
    dash: DashRule | None = None
    unmatched_color: str = "#bdbdbd"
    radius_px: float = 5.0
    stroke_color: str = "#333333"
    fill_opacity: float = 0.8
    opacity: float = 1.0
    labels: LabelRule | None = None
    visible_by_default: bool = True
    max_scale_denominator: float | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    description: str = ""
    pair: PairRule | None = None
    color_by: AltColor | None = None
    web_map_dash: DashRule | None = None
    """The web map's dash rule where it draws a pair as one line (``pair``; ``dash`` tells the pair's lines apart)."""
    label: tuple[PopupField, ...] = ()
    """Fields of a permanent label beside each feature on the web map, one line each (missing ones left out)."""
    radius_field: str | None = None
    """Web map only: each point's radius in pixels from this column (else :attr:`radius_px`), e.g. to draw points
    at one place as rings around each other."""

    @property
    def legend(self) -> list[tuple[str, str]]:
        """Legend entries as ``(color, label)`` pairs, in class order."""
        if self.color.kind == "single":
            return [(self.color.color or self.unmatched_color, self.title)]
        return [(c.color, c.label) for c in self.color.classes]

    def colors_for(self, values: pd.Series | None) -> np.ndarray:
        """Return each feature's colour under this layer's colour rule.

        Parameters
        ----------
        values
            The values of the rule's field (ignored for a ``single`` colour rule).

        Returns
        -------
        numpy.ndarray
            One hex colour string per value; values outside every class get ``unmatched_color``.
        """
        rule = self.color
        if rule.kind == "single" or values is None:
            n = 0 if values is None else len(values)
            return np.full(n, rule.color or self.unmatched_color, dtype=object)
        out = np.full(len(values), self.unmatched_color, dtype=object)
        if rule.kind == "graduated":
            numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            uppers = np.array([c.upper for c in rule.classes], dtype=float)
            idx = np.searchsorted(uppers, numeric, side="left")
            ok = np.isfinite(numeric) & (idx < len(uppers))
            palette = np.array([c.color for c in rule.classes], dtype=object)
            out[ok] = palette[idx[ok]]
            return out
        by_value = {c.value: c.color for c in rule.classes}
        mapped = pd.Series(values).astype(str).map(by_value)
        return np.where(mapped.isna(), self.unmatched_color, mapped.to_numpy(dtype=object))

    def widths_for(self, values: pd.Series | None, n: int) -> np.ndarray:
        """Return each feature's line width in pixels (linear in the width field's range)."""
        w = self.width
        if w.field is None or values is None:
            return np.full(n, w.constant_px if w.constant_px is not None else w.min_px, dtype=float)
        v = pd.to_numeric(values, errors="coerce").abs().to_numpy(dtype=float)
        finite = v[np.isfinite(v)]
        if finite.size == 0 or finite.max() <= 0:
            return np.full(n, w.min_px, dtype=float)
        frac = np.clip(np.nan_to_num(v, nan=0.0) / finite.max(), 0.0, 1.0)
        return w.min_px + frac * (w.max_px - w.min_px)

    def dash_rule(self, *, paired: bool) -> DashRule | None:
        """Return the dash rule the web map draws with: ``web_map_dash`` where it draws a pair as one line."""
        return self.web_map_dash if paired else self.dash

    @staticmethod
    def dashes_for(values: pd.Series | None, n: int, rule: DashRule | None) -> np.ndarray:
        """Return each feature's dash pattern by ``rule`` (``dash`` or ``web_map_dash``), ``None`` for a solid line."""
        if rule is None or values is None:
            return np.full(n, None, dtype=object)
        mapped = pd.Series(values).astype(str).map(rule.values)
        # pandas-stubs refuses None as the replacement of a str Series' where (pandas takes it)
        return mapped.where(mapped.notna(), None).to_numpy(dtype=object)  # type: ignore[call-overload]


def _parse(path: Path) -> LayerSpec:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        style = raw["style"]
        c = style["color"]
        classes = tuple(
            ColorClass(
                color=k["color"],
                label=str(k["label"]),
                upper=(math.inf if str(k.get("upper")) in (".inf", "inf") else k.get("upper")),
                value=None if k.get("value") is None else str(k["value"]),
            )
            for k in (c.get("classes") or c.get("categories") or [])
        )
        color = ColorRule(kind=c["kind"], color=c.get("color"), field=c.get("field"), classes=classes)
        if color.kind not in ("single", "graduated", "categorized"):
            raise ValueError(f"unknown colour kind {color.kind!r}")
        if raw["geometry"] not in GEOMETRY_KINDS:
            raise ValueError(f"unknown geometry {raw['geometry']!r}, allowed: {GEOMETRY_KINDS}")
        dash = style.get("dash")
        max_scale = raw.get("max_scale_denominator")
        if max_scale is not None and not float(max_scale) > 0:
            raise ValueError(f"max_scale_denominator must be a scale denominator above 0, not {max_scale!r}")
        pair = raw.get("web_map_pair")
        alt = raw.get("web_map_color_by")
        return LayerSpec(
            name=raw["name"],
            title=raw["title"],
            geometry=raw["geometry"],
            web_map=bool(raw.get("web_map", True)),
            draw_order=float(raw.get("draw_order", 0)),
            color=color,
            width=WidthRule(**style.get("width", {})),
            dash=DashRule(field=dash["field"], values=dict(dash["values"])) if dash else None,
            popup=tuple(PopupField(**p) for p in raw.get("popup", [])),
            labels=LabelRule(**raw["labels"]) if raw.get("labels") else None,
            visible_by_default=bool(raw.get("visible_by_default", True)),
            max_scale_denominator=float(max_scale) if max_scale is not None else None,
            aliases={str(k): str(v) for k, v in (raw.get("aliases") or {}).items()},
            description=" ".join(str(raw.get("description", "")).split()),
            pair=None
            if pair is None
            else PairRule(
                key=pair["key"],
                by=pair["by"],
                order=tuple(str(v) for v in pair.get("order", ())),
                sum=tuple(pair.get("sum", ())),
            ),
            color_by=None if alt is None else AltColor(**alt),
            web_map_dash=DashRule(**raw["web_map_dash"]) if raw.get("web_map_dash") else None,
            label=tuple(PopupField(**p) for p in raw.get("web_map_label", [])),
            **{
                k: style[k]
                for k in ("unmatched_color", "radius_px", "stroke_color", "fill_opacity", "opacity")
                if k in style
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"{path}: invalid layer definition ({exc}); see the other files in layers/") from exc


@cache
def _load_all(folder: str) -> dict[str, LayerSpec]:
    specs = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        spec = _parse(path)
        specs[spec.name] = spec
    return specs


def load_layer_specs(folder: Path | None = None) -> dict[str, LayerSpec]:
    """Read every layer definition in ``folder`` (default: ``settings.layers_dir``).

    Parameters
    ----------
    folder
        The folder holding one ``<layer>.yaml`` per layer.

    Returns
    -------
    dict
        Layer name → :class:`LayerSpec`.
    """
    folder = Path(folder or settings.layers_dir)
    if not folder.is_dir():
        raise ScenarioError(f"layer definitions folder {folder} does not exist; set heatmap.settings.layers_dir")
    specs = _load_all(str(folder.resolve()))
    logger.debug("Loaded %d layer definitions from %s", len(specs), folder)
    return dict(specs)

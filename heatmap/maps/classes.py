"""Colour classes from the data: a layer's class bounds from its values, its colours from the layer's ramp.

A layer definition in ``layers/`` gives one colour ramp per theme (its classes' colours, light to dark) and
fixed class bounds. :func:`data_classes` keeps the ramp and takes the bounds from the values mapped
(``mapclassify``, quantiles: each class holds about as many features, which reads well for the skewed
demand of buildings and cells), rounded to two significant digits so the legend reads plainly. The same
classified definition styles the web map and the QGIS layer, so both show the same classes.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pandas as pd

from heatmap.maps.layers import ColorClass, LayerSpec

logger = logging.getLogger(__name__)

MAX_CLASSES = 5
"""Most classes of a layer classified from its data (fewer where its ramp or its distinct values are fewer)."""


def _nice(value: float) -> float:
    """Round ``value`` to two significant digits (1,531 → 1,500; 0.0347 → 0.035)."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = 1 - math.floor(math.log10(abs(value)))
    return round(value, digits)


def _text(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2g}"


def data_classes(spec: LayerSpec, values: pd.Series | np.ndarray, *, k: int = MAX_CLASSES) -> LayerSpec:
    """Return ``spec`` with graduated classes whose bounds come from ``values`` (quantiles, rounded).

    Parameters
    ----------
    spec
        A graduated layer definition; its classes' colours, in order, are the ramp.
    values
        The values of the colour field (missing and non-finite ones are ignored).
    k
        Most classes (at most the ramp's colours and the distinct values).

    Returns
    -------
    LayerSpec
        The definition with new classes: upper bounds rounded to two significant digits (the last one open),
        colours spread evenly over the ramp, labels with the field's unit. Unchanged if there is no value
        or the rule is not graduated.
    """
    import mapclassify

    if spec.color.kind != "graduated" or not spec.color.classes:
        return spec
    x = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return spec
    ramp = [c.color for c in spec.color.classes]
    k = max(1, min(k, len(ramp), len(np.unique(x))))
    bins = mapclassify.Quantiles(x, k=k).bins if k > 1 else np.array([x.max()])
    uppers = sorted({_nice(float(b)) for b in bins[:-1]} - {_nice(float(x.max()))})
    uppers = [u for u in uppers if x.min() <= u < x.max()] + [math.inf]  # no empty class
    spread = np.linspace(0, len(ramp) - 1, len(uppers)) if len(uppers) > 1 else [(len(ramp) - 1) / 2]
    colors = [ramp[i] for i in np.round(spread).astype(int)]  # a single class: the middle of the ramp
    unit = next((f" {p.unit}" for p in spec.popup if p.field == spec.color.field and p.unit), "")
    classes = []
    for i, (upper, color) in enumerate(zip(uppers, colors, strict=True)):
        if len(uppers) == 1:
            low, high = _text(float(x.min())), _text(float(x.max()))
            label = f"{low}{unit}" if low == high else f"{low}–{high}{unit}"
        elif i == 0:
            label = f"≤ {_text(upper)}{unit}"
        elif math.isinf(upper):
            label = f"> {_text(uppers[i - 1])}{unit}"
        else:
            label = f"{_text(uppers[i - 1])}–{_text(upper)}{unit}"
        classes.append(ColorClass(color=color, label=label, upper=upper))
    logger.info("Classes of %s from %d values: %s", spec.name, len(x), ", ".join(c.label for c in classes) or "none")
    return dataclasses.replace(spec, color=dataclasses.replace(spec.color, classes=tuple(classes)))

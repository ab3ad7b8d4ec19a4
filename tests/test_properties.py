"""Property-based tests: any input gives a valid result or a clear HeatmapError, never a crash."""

import math
import typing
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyproj import CRS

from heatmap._errors import HeatmapError
from heatmap.io import inputs
from heatmap.network import candidates
from heatmap.scenario import scenario_from_dict

TM35 = CRS.from_epsg(3067)
cell = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["1e3", " 12 ", "-0", "nan", ""]),
)
valid_row = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=4),
        "lon": st.floats(-180, 180),
        "lat": st.floats(-89, 89),
        "annual_demand_mwh": st.floats(0, 1e5),
        "peak_load_kw": st.one_of(st.none(), st.floats(0, 1e4)),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.one_of(
            valid_row,
            st.fixed_dictionaries(
                {"id": cell, "lon": cell, "lat": cell, "annual_demand_mwh": cell, "peak_load_kw": cell}
            ),
        ),
        min_size=0,
        max_size=8,
    )
)
def test_csv_consumers_valid_or_clear_error(tmp_path, rows):
    path = tmp_path / "c.csv"
    pd.DataFrame(rows, columns=["id", "lon", "lat", "annual_demand_mwh", "peak_load_kw"]).to_csv(path, index=False)
    try:
        raw = inputs.read_features(path, id_column="id", what="consumers")
        out = inputs.prepare_consumers(raw, crs=TM35, full_load_hours_h=2000, default_min_supply_c=70)
    except HeatmapError as exc:
        event("clear error")
        assert str(path) in str(exc)
        return
    event("valid")
    assert out.consumer_id.is_unique and len(out) == len(rows)
    assert (out.annual_demand_mwh >= 0).all() and np.isfinite(out.peak_load_kw).all()
    for column in ("annual_demand_mwh", "peak_load_kw", "min_supply_c"):
        assert np.isfinite(out[column]).all() and (out[column] <= 1e6).all()
    assert out.crs == TM35 and out.geometry.is_valid.all()


extreme = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 1e15, "inf", "nan", "-inf", "1e400"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity=st.one_of(extreme, st.floats(0, 1e7)), t_supply=st.one_of(st.none(), extreme, st.floats(20, 150)))
def test_csv_sources_with_non_finite_or_huge_values(tmp_path, capacity, t_supply):
    path = tmp_path / "s.csv"
    pd.DataFrame(
        {"id": ["S1"], "lon": [23.1], "lat": [63.8], "capacity_kw": [capacity], "t_supply_c": [t_supply]}
    ).to_csv(path, index=False)
    try:
        raw = inputs.read_features(path, id_column="id", what="sources")
        out = inputs.prepare_sources(raw, crs=TM35, default_t_supply_c=85)
    except HeatmapError as exc:
        event("clear error")
        assert str(path) in str(exc) and "line 2" in str(exc)
        return
    event("valid")
    assert np.isfinite(out.capacity_kw).all() and 0 < out.capacity_kw.iloc[0] <= 1e7
    assert np.isfinite(out.t_supply_c).all() and out.t_supply_c.iloc[0] <= 200


scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 500),
    st.floats(-1e3, 1e3),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=4),
)
keys = st.sampled_from(
    [
        "supply_c",
        "return_c",
        "ground_c",
        "suply_c",
        "max_velocity_m_per_s",
        "source",
        "path",
        "simultaneity",
        "interest_rate",
        "discount_rate",
        "lifetime_a",
        "osm_buildings",
        "bbox",
        "x",
    ]
)
sections = st.sampled_from(
    ["temperatures", "limits", "streets", "network", "economics", "consumers", "study_area", "sources", "nonsense"]
)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(sections, st.one_of(scalar, st.dictionaries(keys, scalar, max_size=4)), max_size=5))
def test_scenario_valid_or_clear_error(data):
    base = {"streets": {"path": "x.pbf"}, "sources": {"path": "s.csv"}, "consumers": {"path": "c.csv"}}
    merged = {**base, **data}
    try:
        scn = scenario_from_dict(merged, base_dir=Path("/tmp"))
    except HeatmapError as exc:
        event("clear error")
        assert str(exc)
        return
    event("valid")
    assert scn.temperatures.return_c < scn.temperatures.supply_c
    assert all(r["doc"] for r in scn.assumptions())


def numeric_settings() -> list[tuple[str, str]]:
    """Every numeric setting of the schema as (section, key), the street source's and inline rows' included."""
    from pydantic import BaseModel

    from heatmap import scenario

    found = []
    for section, info in scenario.Scenario.model_fields.items():
        model = scenario._inner_model(info.annotation)
        if section == "streets":
            model = scenario.PbfStreets
        if model is None:
            continue
        for key, f in model.model_fields.items():
            args = {f.annotation, *typing.get_args(f.annotation)}
            if args & {float, int} and not (isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)):
                found.append((section, key))
    for section, model in (("sources", scenario.InlineSource), ("consumers", scenario.InlineConsumer)):
        found += [
            (f"{section}.inline", key)
            for key, f in model.model_fields.items()
            if {float} & {f.annotation, *typing.get_args(f.annotation)}
        ]
    return found


NUMERIC = numeric_settings()
INLINE = {
    "sources.inline": {"id": "S1", "lon": 24.9, "lat": 60.2, "capacity_kw": 100.0},
    "consumers.inline": {"id": "C1", "lon": 24.9, "lat": 60.2, "annual_demand_mwh": 10.0},
}


def test_every_numeric_setting_is_bounded():
    from heatmap import scenario

    assert (
        len(NUMERIC) >= 48
        and ("network", "local_loss_factor") in NUMERIC
        and ("streets", "max_service_length_m") in NUMERIC
    )
    for section, key in NUMERIC:
        if section in INLINE:
            model = {"sources.inline": scenario.InlineSource, "consumers.inline": scenario.InlineConsumer}[section]
        else:
            info = scenario.Scenario.model_fields[section]
            model = scenario.PbfStreets if section == "streets" else scenario._inner_model(info.annotation)
        bounds = {type(m).__name__ for m in model.model_fields[key].metadata}
        assert bounds & {"Ge", "Gt"} and bounds & {"Le", "Lt"}, (section, key, bounds)


@settings(max_examples=200, deadline=None)
@given(
    setting=st.sampled_from(NUMERIC), value=st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 1e15, -1e15])
)
def test_non_finite_or_huge_settings_are_refused_naming_the_key(setting, value):
    section, key = setting
    data = {"streets": {"path": "x.pbf"}, "sources": {"path": "s.csv"}, "consumers": {"path": "c.csv"}}
    if section in INLINE:
        part = section.split(".")[0]
        data[part] = {"inline": [{**INLINE[section], key: value}]}
        shown = f"'{section}[0].{key}'"
    else:
        data[section] = {**data.get(section, {}), key: value}
        shown = f"'{section}.{key}'"
    with pytest.raises(HeatmapError) as info:
        scenario_from_dict(data, base_dir=Path("/tmp"))
    assert shown in str(info.value)
    event("non-finite" if not math.isfinite(value) else "huge")


coord = st.floats(0, 500, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    segments=st.lists(st.tuples(coord, coord, coord, coord), min_size=1, max_size=12),
    points=st.lists(st.tuples(coord, coord), min_size=2, max_size=15),
    max_len=st.floats(1, 300),
)
def test_candidate_graph_invariants(segments, points, max_len):
    lines = [shapely.LineString([(a, b), (c, d)]) for a, b, c, d in segments if math.hypot(c - a, d - b) > 1e-3]
    if not lines:
        return
    ends = [(round(ln.coords[0][0], 3), round(ln.coords[0][1], 3)) for ln in lines]
    ends2 = [(round(ln.coords[-1][0], 3), round(ln.coords[-1][1], 3)) for ln in lines]
    streets = gpd.GeoDataFrame(
        {
            "edge_id": range(len(lines)),
            "u": [str(e) for e in ends],
            "v": [str(e) for e in ends2],
            "osmid": "",
            "name": "",
            "highway": "",
            "length_m": [ln.length for ln in lines],
        },
        geometry=lines,
        crs=TM35,
    )
    streets = streets[streets.u != streets.v].reset_index(drop=True)
    if streets.empty:
        return
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[shapely.Point(points[0])], crs=TM35)
    cons = gpd.GeoDataFrame(
        {"consumer_id": [f"C{i}" for i in range(len(points) - 1)]}, geometry=shapely.points(points[1:]), crs=TM35
    )
    cand = candidates.build_candidates(streets, src, cons, max_service_length_m=max_len)
    t = cand.terminals
    reach = t[t.reachable]
    service = cand.edges[cand.edges.kind == "service"]
    assert len(service) == len(reach) and set(service.terminal_id) == set(reach.terminal_id)
    assert (reach.node >= 0).all() and (t[~t.reachable].node == -1).all()
    # splitting keeps every street's length
    street = cand.edges[cand.edges.kind == "street"]
    per_edge = street.groupby("street_edge_id").geometry.apply(lambda g: g.length.sum())
    assert per_edge.to_numpy() == pytest.approx(streets.length_m.loc[per_edge.index].to_numpy(), abs=1e-6)
    assert cand.edges.geometry.is_valid.all() and (cand.edges.length_m > 0).all()
    # every edge is drawn from its u node to its v node, and is as long as drawn
    assert cand.edges.length_m.to_numpy() == pytest.approx(cand.edges.geometry.length.to_numpy(), abs=1e-9)
    xy = shapely.get_coordinates(cand.nodes.geometry.values)
    first = shapely.get_coordinates(shapely.get_point(cand.edges.geometry.values, 0))
    last = shapely.get_coordinates(shapely.get_point(cand.edges.geometry.values, -1))
    assert np.abs(first - xy[cand.edges.u]).max() < 1e-3 and np.abs(last - xy[cand.edges.v]).max() < 1e-3
    assert cand.edges.u.max() < len(cand.nodes) and cand.edges.v.max() < len(cand.nodes)
    candidates.candidate_graph(cand.edges)

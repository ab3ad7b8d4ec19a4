"""Region scale: demand and heat density partitioned on Dask equal the single-process result."""

import os
from pathlib import Path

import numpy as np
import pytest

from heatmap.demand import buildings as demand
from heatmap.demand import density, region
from heatmap.io import synthetic
from heatmap.scenario import scenario_from_dict

SETTINGS = scenario_from_dict({}, base_dir=Path.cwd(), for_plan=False).demand  # the documented defaults


@pytest.fixture(scope="module")
def buildings():
    return synthetic.synthetic_region_buildings(6000, seed=2, n_towns=3)


def single_process(buildings):
    return density.heat_density_from_buildings(demand.estimate_building_demand(buildings, SETTINGS))


def test_synthetic_region_is_seeded_clustered_and_tagged(buildings):
    again = synthetic.synthetic_region_buildings(6000, seed=2, n_towns=3)
    assert buildings.drop(columns="geometry").equals(again.drop(columns="geometry"))
    assert buildings.crs.to_epsg() == 3067 and buildings.geometry.is_valid.all() and buildings.id.is_unique
    assert buildings["building:levels"].isna().mean() == pytest.approx(0.10, abs=0.02)
    assert buildings["start_date"].isna().mean() == pytest.approx(0.20, abs=0.02)
    # Clustered: the densest 1 % of the 100 m cells hold far more than 1 % of the demand.
    d = single_process(buildings).demand_mwh
    top = np.sort(d[d > 0])[::-1]
    assert top[: max(1, len(top) // 100)].sum() > 0.05 * top.sum()


def test_partitioned_on_a_named_scheduler_equals_single_process(buildings, tmp_path):
    from distributed import LocalCluster

    path = tmp_path / "buildings.parquet"
    buildings.to_parquet(path)
    frame = region.read_buildings(path).repartition(npartitions=4)
    assert frame.npartitions == 4
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with region.dask_client(cluster.scheduler_address) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            parted = region.heat_density_of_region(frame, SETTINGS)
    single = single_process(buildings)
    assert parted.transform == single.transform and parted.shape == single.shape
    np.testing.assert_allclose(parted.demand_mwh, single.demand_mwh, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(parted.floor_area_m2, single.floor_area_m2, rtol=1e-9, atol=1e-9)
    assert parted.total_demand_mwh == pytest.approx(single.total_demand_mwh, rel=1e-12)


def test_local_cluster_by_default(buildings, monkeypatch):
    # as in a new process: a local cluster started by Dask itself sets the variable in its starting process
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with region.dask_client() as client:
        assert len(client.scheduler_info()["workers"]) >= 1
        # the workers keep the C library's memory trimming; one thread for numerical libraries as Dask sets it
        environ = client.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
        assert all(e == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"} for e in environ.values())
        parted = region.heat_density_of_region(buildings.iloc[:1500], SETTINGS)
    assert parted.total_demand_mwh == pytest.approx(single_process(buildings.iloc[:1500]).total_demand_mwh)


def test_osm_file_in_partitions_equals_single_process():
    from heatmap import settings

    pbf = settings.data_dir / "helsinki_centre.osm.pbf"
    frame = region.read_buildings(pbf)  # was KeyError 'id' (read without the OSM ids)
    assert {"id", "landuse"} <= set(frame.columns)
    frame = frame.to_crs(3067).repartition(npartitions=3)
    parted, report = region.demand_of_region(frame, SETTINGS)  # Dask's default scheduler: no cluster needed
    est = demand.estimate_demand(frame.compute(), SETTINGS)
    single = density.heat_density_from_buildings(est.buildings)
    assert parted.total_demand_mwh == pytest.approx(single.total_demand_mwh, rel=1e-12)
    np.testing.assert_allclose(parted.demand_mwh, single.demand_mwh, rtol=1e-9, atol=1e-9)
    whole = est.report.to_dict()
    merged = report.to_dict()
    for key in ("buildings_read", "heated", "left_out", "implausible_floors", "type_from", "floors_from", "era_from"):
        assert merged[key] == whole[key], key
    assert merged["left_out"]["below_min_footprint"] > 0 and merged["type_from"]["land use"] > 0


def test_metered_column_is_read_from_geoparquet(buildings, tmp_path):

    b = buildings.iloc[:500].copy()
    b["metered_mwh"] = 100.0
    path = tmp_path / "metered.parquet"
    b.to_parquet(path)
    settings = SETTINGS.model_copy(update=dict(metered_column="metered_mwh"))
    parted, report = region.demand_of_region(region.read_buildings(path, extra_columns=("metered_mwh",)), settings)
    assert report.heated == 500 and parted.total_demand_mwh == pytest.approx(500 * 100.0)


def test_footprints_given_twice_across_partitions_are_warned_of_by_row(buildings, caplog):
    import dask_geopandas
    import pandas as pd

    part = buildings.iloc[:300]
    merged = pd.concat([part, part.iloc[[5, 17, 17]]], ignore_index=True)  # a layer merged from two sources
    frame = dask_geopandas.from_geopandas(merged, npartitions=2)
    assert frame.npartitions == 2 and len(frame.partitions[0]) <= 300  # the copies in the second partition only
    with caplog.at_level("WARNING", logger="heatmap"):
        twice, _ = region.demand_of_region(frame, SETTINGS)
    across = [r.getMessage() for r in caplog.records if "earlier in the layer" in r.getMessage()]
    assert len(across) == 1 and across[0].startswith("3 buildings") and "rows 301, 302, 303" in across[0], across
    # the copies count: the demand is what they add (the warning does not drop them)
    once, _ = region.demand_of_region(dask_geopandas.from_geopandas(part, npartitions=2), SETTINGS)
    extra = demand.estimate_building_demand(part.iloc[[5, 17, 17]], SETTINGS).annual_demand_mwh.sum()
    assert twice.total_demand_mwh == pytest.approx(once.total_demand_mwh + extra, rel=1e-9)
    caplog.clear()
    with caplog.at_level("WARNING", logger="heatmap"):
        region.demand_of_region(dask_geopandas.from_geopandas(part, npartitions=2), SETTINGS)
    assert not [r for r in caplog.records if "footprint" in r.getMessage()]

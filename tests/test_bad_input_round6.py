"""Bad input found by the sixth round of fuzzing (155 cases, 18 answered badly): each now a located message, exit 2
(or 3 for checks that fail), the previous output untouched."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from conftest import BUNDLED_SCENARIO, run_cli, write_scenario
from shapely.geometry import box

from heatmap import settings
from heatmap._errors import InputDataError, ScenarioError

PBF = settings.data_dir / "helsinki_centre.osm.pbf"


def _buildings() -> gpd.GeoDataFrame:
    """Ten footprints of central Helsinki in EPSG:3067."""
    x0, y0 = 385_500.0, 6_672_000.0
    return gpd.GeoDataFrame(
        {"id": [f"b{i}" for i in range(10)], "building": "apartments", "building:levels": 5},
        geometry=[box(x0 + 40 * i, y0, x0 + 40 * i + 25, y0 + 20) for i in range(10)],
        crs=3067,
    )


@pytest.mark.parametrize(
    ("relabel", "words"),
    [
        (lambda b: b.to_crs(4326).set_crs(3067, allow_override=True), "look like degrees (longitude, latitude)"),
        (lambda b: b.to_crs(3879).set_crs(3067, allow_override=True), "Helsinki's own GK25 is EPSG:3879"),
    ],
    ids=["degrees labelled EPSG:3067", "GK25 labelled EPSG:3067"],
)
def test_a_layer_in_another_crs_than_it_says_is_refused(tmp_path, relabel, words):
    """Degrees labelled as metres wrote a demand map of 0 GWh/a with exit 0; GK25 as TM35FIN ended in a traceback."""
    path = tmp_path / "buildings.gpkg"
    relabel(_buildings()).to_file(path, engine="pyogrio")
    result = run_cli("demand", path, "--out", tmp_path / "out", "-q")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    assert f"{path}: coordinates such as" in result.output and words in result.output
    assert "Layer ▸ Set CRS" in result.output


def test_a_layer_in_metres_near_the_crs_origin_is_not_taken_for_degrees():
    from heatmap.io.inputs import check_degrees

    # drawn near the origin (tests, sketches): read as degrees they lie off Finland, EPSG:3067's area
    check_degrees(gpd.GeoDataFrame(geometry=[box(0, 0, 40, 30)], crs=3067), "here")
    check_degrees(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=3067), "here")
    with pytest.raises(InputDataError, match=r"here: coordinates such as \(24.93, 60.16\) look like degrees"):
        check_degrees(gpd.GeoDataFrame(geometry=[box(24.93, 60.16, 24.94, 60.17)], crs=3067), "here")


@pytest.mark.parametrize("size", [0, 200_000], ids=["empty", "cut off"])
def test_demand_of_a_broken_pbf_names_the_file(tmp_path, size):
    """A cut-off or empty PBF ended `heatmap demand` in protobuf's or pyrosm's traceback (the plan answered it)."""
    path = tmp_path / "town.osm.pbf"
    path.write_bytes(PBF.read_bytes()[:size])
    result = run_cli("demand", path, "--out", tmp_path / "out", "-q")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    assert f"{path}: not a readable OSM PBF file" in result.output
    assert "a download may have been cut off" in result.output


@pytest.mark.parametrize("url", ["postgres:/localhost/heat", "postgresql:localhost/heat", "postgresql:localhost"])
def test_a_postgis_url_without_its_two_slashes_is_refused_before_any_work(tmp_path, url):
    """SQLAlchemy could not parse it: a traceback from plan, study and demand."""
    result = run_cli("plan", BUNDLED_SCENARIO, "--out", tmp_path / "out", "--to-postgis", url, "-q")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    assert "a PostgreSQL URL starts with postgresql:// (two slashes)" in result.output and url in result.output


def test_a_csv_with_semicolons_and_decimal_commas_says_so(tmp_path):
    """A spreadsheet's CSV in a Finnish locale was read as one column: '3 values where the header names 1 columns'."""
    path = tmp_path / "sources.csv"
    path.write_text("id;name;capacity_kw;t_supply_c;lon;lat\nS1;Plant;90000;85;24,9382;60,1652\n", encoding="utf-8")
    scenario = write_scenario(tmp_path, sources__path=str(path))
    result = run_cli("plan", scenario, "--out", tmp_path / "out", "-q")
    assert result.returncode == 2 and f"{path}: the values are separated by semicolons" in result.output
    assert "points as decimal separators" in result.output


def test_a_number_with_a_decimal_comma_gets_the_hint(tmp_path):
    from heatmap.io import inputs

    path = tmp_path / "consumers.csv"
    path.write_text('id,annual_demand_mwh,lon,lat\nC1,"15563,1",24.94,60.17\nC2,120,24.95,60.17\n', encoding="utf-8")
    gdf = inputs.read_features(path, id_column="id", what="consumers")
    with pytest.raises(InputDataError) as err:
        inputs._numeric(gdf, "annual_demand_mwh", str(path), gdf["id"], required=True)
    message = str(err.value)
    assert message.startswith(f"{path}, line 2: ") and "features C1" in message
    assert "write a point as the decimal separator (15563.1, not 15563,1)" in message


def test_a_scenario_in_latin_1_names_the_line_and_the_encoding(tmp_path):
    from heatmap.scenario import scenario_from_file

    path = tmp_path / "plan.yaml"
    text = BUNDLED_SCENARIO.read_text(encoding="utf-8").replace("name: Helsinki", "name: Töölö, Helsinki")
    path.write_bytes(text.encode("latin-1", errors="replace"))
    line = text.splitlines().index(next(s for s in text.splitlines() if "Töölö" in s)) + 1
    with pytest.raises(ScenarioError) as err:
        scenario_from_file(path)
    assert str(err.value).startswith(f"{path}, line {line}: not UTF-8 text (byte 0xf6")
    assert "save the file as UTF-8" in str(err.value)


def test_sources_given_as_a_list_point_to_inline(tmp_path):
    from heatmap.scenario import scenario_from_file

    path = write_scenario(tmp_path)
    text = path.read_text().split("sources:")[0]
    rows = "sources:\n- {id: S1, lon: 24.9382, lat: 60.1652, capacity_kw: 90000}\n"
    path.write_text(text + rows + "consumers:\n  osm_buildings: true\n")
    with pytest.raises(ScenarioError) as err:
        scenario_from_file(path)
    assert "'sources' must be a mapping of keys to values" in str(err.value)
    assert "rows given in the scenario go under 'sources.inline:'" in str(err.value)


def test_compare_stops_at_a_plan_that_fails_its_checks(tmp_path, bundled_outputs):
    """It compared a plan whose sources were given in MW as kW (90 and 40 kW) as if it worked, with exit 0."""
    sources = json.loads((BUNDLED_SCENARIO.parent / "helsinki_centre_sources.geojson").read_text(encoding="utf-8"))
    for f in sources["features"]:
        f["properties"]["capacity_kw"] /= 1000
    (tmp_path / "mw.geojson").write_text(json.dumps(sources), encoding="utf-8")
    mw = write_scenario(tmp_path, sources__path=str(tmp_path / "mw.geojson"))
    result = run_cli("compare", mw, bundled_outputs, "--out", tmp_path / "out", "-q")
    assert result.returncode == 3 and not (tmp_path / "out").exists()
    assert f"error: {mw}: checks fail (source_capacity); nothing was written" in result.output
    assert "--partial" in result.output


def test_a_consumer_needing_hotter_water_than_anything_feeds_in_is_refused():
    """It was planned (29 s) to fail its temperature check, with advice about consumers drawing too little."""
    import numpy as np
    from shapely.geometry import Point

    from heatmap.plan import _check_source_temperatures
    from heatmap.scenario import Temperatures

    src = gpd.GeoDataFrame({"source_id": ["S1"], "t_supply_c": [85.0]}, geometry=[Point(0, 0)], crs=3067)
    cons = gpd.GeoDataFrame(
        {"consumer_id": ["C1", "C2"], "min_supply_c": [75.0, 95.0]}, geometry=[Point(50, 0), Point(90, 0)], crs=3067
    )
    t = Temperatures(supply_c=85, return_c=45, ground_c=8, min_consumer_supply_c=75)
    with pytest.raises(InputDataError) as err:
        _check_source_temperatures(src, cons, t, where_cons="consumers.csv")
    assert str(err.value).startswith(
        "consumers.csv: consumers C2 (95 °C) need supply water hotter than the hottest the network gets, 85 °C"
    )
    # a prosumer feeding in at 100 °C can serve it
    _check_source_temperatures(src, cons.assign(t_feed_in_c=[100.0, np.nan]), t, where_cons="consumers.csv")


def test_a_missing_column_names_a_close_one_of_the_file(tmp_path):
    """A study's price column misspelt in the YAML ('price_eur_mwh') was reported as a column the file should add."""
    from heatmap.io.tables import read_csv_table

    path = tmp_path / "prices.csv"
    path.write_text("time,price_eur_per_mwh\n2025-01-01 00:00,50\n", encoding="utf-8")
    with pytest.raises(InputDataError) as err:
        read_csv_table(path, required=("time", "price_eur_mwh"), what="price file", hint="; give time and price")
    assert str(err.value) == (
        f"{path}: columns price_eur_mwh missing (columns: time, price_eur_per_mwh); did you mean price_eur_per_mwh for "
        "price_eur_mwh? (a column the settings name may be misspelt there)"
    )
    with pytest.raises(InputDataError, match="; give time and price$"):  # nothing like it: the caller's hint
        read_csv_table(path, required=("time", "heat_kw"), what="price file", hint="; give time and price")


def test_a_csv_split_by_tabs_says_so(tmp_path):
    from heatmap.io.tables import read_csv_rows

    path = tmp_path / "sites.csv"
    path.write_text("id\tlon\tlat\nA\t24.94\t60.17\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"sites.csv: the values are separated by tabs \('id\\tlon"):
        read_csv_rows(path)


def test_a_site_with_lon_and_lat_swapped_is_said_to_look_swapped():
    """A study's site at lon 63.844, lat 23.085 was told to use a UTM zone over Pakistan."""
    from heatmap.io.crs import check_scale

    with pytest.raises(ScenarioError) as err:
        check_scale("EPSG:3067", [23.0, 63.844], [63.8, 23.085], key="'crs'", where="kip.yaml", error=ScenarioError)
    assert str(err.value).startswith("kip.yaml: a site at lon 63.8440, lat 23.0850 lies where 'crs' EPSG:3067 distorts")
    message = str(err.value)
    assert "are its lon and lat swapped?" in message and "made for lon 19.1–31.6, lat 58.8–70.1" in message
    with pytest.raises(ScenarioError, match="distorts lengths by .* give EPSG:326"):  # far off, not swapped
        check_scale("EPSG:3067", [10.0], [50.0], key="'crs'", where="kip.yaml", error=ScenarioError)

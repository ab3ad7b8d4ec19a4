"""A plan inside an industrial park with no streets: drawn pipe racks, straight site links, no-go areas."""

import geopandas as gpd
import pytest
import shapely
import yaml
from plan_invariants import assert_drawn_equals_simulated
from pyproj import Transformer
from shapely.geometry import LineString, box

from heatmap.plan import plan_from_scenario
from heatmap.scenario import scenario_from_file

# In EPSG:3067 near Kokkola: a plant, three consumers, a tank farm between the plant and consumer B.
X0, Y0 = 313_000.0, 7_084_000.0
SITES = {"PLANT": (0, 0), "A": (150, 0), "B": (300, 0), "C": (300, 200)}


def lonlat(x, y):
    return Transformer.from_crs(3067, 4326, always_xy=True).transform(X0 + x, Y0 + y)


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    folder = tmp_path_factory.mktemp("park")
    rack = [
        ("pipe_rack", [(0, 0), (0, 80), (300, 80), (300, 200)]),
        ("road_crossing", [(150, 80), (150, 0)]),
    ]
    gpd.GeoDataFrame(
        {"surface": [s for s, _ in rack]},
        geometry=[LineString([(X0 + x, Y0 + y) for x, y in c]) for _, c in rack],
        crs=3067,
    ).to_file(folder / "links.gpkg")
    gpd.GeoDataFrame(geometry=[box(X0 + 180, Y0 - 40, X0 + 260, Y0 + 40)], crs=3067).to_file(folder / "no_go.gpkg")
    sources = [{"id": "PLANT", "capacity_kw": 8000, "t_supply_c": 90}]
    consumers = [{"id": k, "annual_demand_mwh": 4000} for k in ("A", "B", "C")]
    for row in sources + consumers:
        row["lon"], row["lat"] = lonlat(*SITES[row["id"]])
    scenario = {
        "name": "Park without streets",
        "streets": {"source": "none", "max_service_length_m": 30},
        "links": {"path": "links.gpkg", "no_go_path": "no_go.gpkg", "site_to_site": True},
        "sources": {"inline": sources},
        "consumers": {"inline": consumers},
        "temperatures": {"supply_c": 90, "return_c": 50, "ground_c": 8, "min_consumer_supply_c": 70},
    }
    (folder / "park.yaml").write_text(yaml.safe_dump(scenario))
    return plan_from_scenario(scenario_from_file(folder / "park.yaml")), folder


def test_park_plan_connects_every_site_and_holds_every_check(park):
    plan, _ = park
    assert plan.ok, plan.violations
    assert plan.consumers.connected.all()
    assert_drawn_equals_simulated(plan)


def test_park_route_never_enters_a_no_go_area(park):
    plan, folder = park
    zone = gpd.read_file(folder / "no_go.gpkg").geometry[0]
    route = shapely.union_all(plan.pipes.geometry.values)
    assert not route.intersects(zone.buffer(-1e-6))
    # B sits east of the tank farm: the straight site link A–B crosses it, so B is fed round it.
    assert set(plan.pipes.surface) - {"service"} <= {"open_terrain", "pipe_rack", "road_crossing"}


def test_capex_follows_each_surfaces_cost_factor(park):
    plan, _ = park
    supply = plan.pipes[plan.pipes.circuit == "supply"]
    f = plan.scenario.links.cost_factors.model_dump()
    route = supply[supply.kind != "service"]
    assert (route.cost_factor == route.surface.map(f)).all()
    # A service pipe is laid like the link it joins (here: open ground).
    assert (supply[supply.kind == "service"].cost_factor == f["open_terrain"]).all()
    # A pipe's cost (half the trench: supply and return share one) = catalogue €/m × length × surface factor.
    from heatmap.network import sizing

    cat = sizing.load_catalogue(plan.scenario.network.catalogue, insulation_series=2, cost_column="cost_eur_per_m")
    expected = cat.cost_eur_per_m.reindex(supply.dn).to_numpy() * supply.length_m.to_numpy() / 2
    assert supply.cost_eur.to_numpy() == pytest.approx(expected * supply.cost_factor.to_numpy())


def test_no_streets_without_links_is_refused(tmp_path):
    from heatmap._errors import ScenarioError
    from heatmap.scenario import scenario_from_dict

    with pytest.raises(ScenarioError, match="'streets.source: none' needs candidate links"):
        scenario_from_dict(
            {"streets": {"source": "none"}, "sources": {"path": "s.csv"}, "consumers": {"path": "c.csv"}},
            base_dir=tmp_path,
        )


def test_water_fed_in_above_the_pipes_rating_is_warned_of(park, caplog):
    """A 150 °C plant and a prosumer feeding in at 130 °C: EN 253 pipes are rated for 120 °C continuous."""
    _, folder = park
    data = yaml.safe_load((folder / "park.yaml").read_text())
    data["sources"]["inline"][0]["t_supply_c"] = 150
    data["consumers"]["inline"][0].update(t_feed_in_c=130)
    (folder / "hot.yaml").write_text(yaml.safe_dump(data))
    from heatmap.plan import _load

    with caplog.at_level("WARNING", logger="heatmap"):
        _load(scenario_from_file(folder / "hot.yaml"))
    warned = [r.getMessage() for r in caplog.records if "continuous rating" in r.getMessage()]
    assert warned == [
        "sources PLANT (150 °C) and prosumers A (130 °C) feed the network water above 120 °C, the continuous rating of "
        "EN 253 pre-insulated pipes (peaks to 140 °C): the plan simulates it, but such heat needs a heat exchanger or "
        "a mixing shunt to the network's temperature; lower their t_supply_c or t_feed_in_c"
    ]

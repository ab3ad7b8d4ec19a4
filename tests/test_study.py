"""One place, one model: a study file defines every site and unit once, and every command reads its part from it."""

import json

import pytest
import yaml
from conftest import run_cli
from kip_derived import STUDY

from heatmap import settings
from heatmap._errors import ScenarioError
from heatmap.study import energy_scenario, is_study, match_scenario, plan_scenario, read_study

KIP_DATA = settings.data_dir / "kip"


@pytest.fixture(scope="module")
def kip():
    study = read_study(STUDY)
    return study, plan_scenario(study), energy_scenario(study), match_scenario(study)


def test_every_site_has_one_location_and_one_temperature_regime(kip):
    """A unit in two parts of the study sits at one place; temperatures, economics and prices agree."""
    study, plan, concepts, matches = kip
    at = {}
    for part, units in (
        ("plan sources", [(s.id, s.lon, s.lat) for s in plan.sources.inline]),
        ("plan consumers", [(c.id, c.lon, c.lat) for c in plan.consumers.inline]),
        ("match sources", [(s.id, s.lon, s.lat) for s in matches.sources]),
        ("match sinks", [(s.id, s.lon, s.lat) for s in matches.sinks]),
    ):
        for uid, lon, lat in units:
            assert study.lonlat(uid) == (lon, lat), (part, uid)
            at.setdefault(uid, set()).add((lon, lat))
    assert all(len(places) == 1 for places in at.values())
    assert {"boliden_acid_heat", "town_dh"} <= set(at)  # in the plan and the matching both
    # the electrolyser's waste heat stands at the electrolyser site
    assert study.lonlat("electrolyser_heat") == study.lonlat("kip_h2_electrolyser")
    # one temperature regime: the plan's return and ground are the concepts' and the matching sinks' own
    t = study.temperatures
    assert plan.temperatures.return_c == concepts.network.return_c == t.return_c
    assert {s.t_return_c for s in matches.sinks} == {t.return_c}
    assert plan.temperatures.ground_c == concepts.network.ground_c == matches.plan.ground_c == t.ground_c
    assert concepts.network.supply == t.supply_curve and concepts.network.approach_k == t.approach_k
    assert matches.settings.approach_k == t.approach_k
    # a source's water on the network: its temperature less the approach (105 °C preset − 5 K)
    acid = next(s for s in plan.sources.inline if s.id == "boliden_acid_heat")
    assert acid.t_supply_c == pytest.approx(105 - t.approach_k)
    # every consumer's minimum supply is the study's, in the plan and as the matching sink's need
    need = {c.id: c.min_supply_c for c in plan.consumers.inline}
    assert all(need[s.id] == s.t_c for s in matches.sinks)
    # one discount rate and lifetime
    e = study.economics
    assert concepts.economics.discount_rate == matches.settings.discount_rate == e.discount_rate
    assert concepts.economics.lifetime_a == matches.settings.lifetime_a == plan.economics.lifetime_a == e.lifetime_a
    # the concepts' demand is the network sink's, and the plan's year trades at the study's prices
    sink = study.unit(study.network.sink)
    assert concepts.demand.annual_mwh == sink.annual_demand_mwh and concepts.network.sink == sink.id
    assert plan.operation.heat_price_eur_per_mwh == study.trade.heat_price_eur_per_mwh
    assert plan.operation.operator == study.trade.operator


def test_profiled_consumers_draw_their_profile_everywhere(kip):
    """A consumer with a profile draws its column of the year's site profiles in the plan and in the matching."""
    import pandas as pd

    study, plan, _, matches = kip
    profiles = pd.read_csv(study.year.site_profiles, comment="#")
    annual = {c.id: c.annual_demand_mwh for c in plan.consumers.inline}
    for c in study.consumers:
        if c.profile:
            assert annual[c.id] == pytest.approx(profiles[c.id].clip(lower=0).sum() / 1000)
    sinks = {s.id: s for s in matches.sinks}
    assert sinks["keliber"].profile.column == "keliber" and sinks["port"].profile is None
    assert "kip_h2_electrolyser" not in sinks  # sink: false, a prosumer
    # the town's connection: its draw never exceeds the connection's design load
    assert profiles.town_dh.max() <= study.unit("town_dh").peak_load_kw + 1e-6


def test_every_command_reads_the_study(tmp_path):
    """heatmap plan and heatmap matches run on the study file itself (heatmap concepts: tests/test_concepts.py)."""
    plan_out, match_out = tmp_path / "plan", tmp_path / "matches"
    result = run_cli("plan", STUDY, "--out", plan_out)
    assert result.exit_code == 0, result.output
    summary = json.loads((plan_out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "ok" and "Kokkola Industrial Park" in json.dumps(summary["scenario"])
    result = run_cli("matches", STUDY, "--out", match_out)
    assert result.exit_code == 0, result.output
    matched = json.loads((match_out / "summary.json").read_text(encoding="utf-8"))
    assert matched["plan"]["status"] == "ok"
    # the chosen pairs' planned network connects the same sites from the same places as the park network
    import geopandas as gpd

    a = gpd.read_file(plan_out / "plan.gpkg", layer="consumers").set_index("consumer_id")
    b = gpd.read_file(match_out / "network" / "plan.gpkg", layer="consumers").set_index("consumer_id")
    common = sorted(set(a.index) & set(b.index))
    assert common == ["keliber", "port", "town_dh", "umicore"]
    assert (a.loc[common].geometry.distance(b.loc[common].geometry) < 0.01).all()


def _small_study(tmp_path, change=None) -> dict:
    """A second study, built here: two sources, three consumers, lon/lat only, the KIP year's files."""
    data = {
        "kind": "study",
        "name": "Small park",
        "year": {
            "year": 2023,
            "outdoor_temperature": {"csv": str(KIP_DATA / "kokkola_temperature_synthetic.csv"), "column": "t_out_c"},
            "electricity_price": 70.0,
            "electricity_co2_t_per_mwh": 0.05,
        },
        "temperatures": {
            "supply_curve": {"max_c": 95, "min_c": 80, "outdoor_at_max_c": -25, "outdoor_at_min_c": 5},
            "return_c": 50,
            "ground_c": 6,
            "approach_k": 4,
        },
        "economics": {"discount_rate": 0.04, "lifetime_a": 25},
        "trade": {"operator": "Utility", "heat_price_eur_per_mwh": 60, "feed_in_price_eur_per_mwh": 15},
        "sources": [
            {
                "id": "flue",
                "lon": 24.000,
                "lat": 61.500,
                "preset": "flue_gas",
                "capacity_kw": 3000,
                "company": "Mill",
                "network": True,
            },
            {
                "id": "cooling",
                "at": "flue",
                "preset": "process_cooling_water",
                "capacity_kw": 1500,
                "heat_pump": {"capacity_kw": 1500},
            },
        ],
        "consumers": [
            {"id": "school", "lon": 24.010, "lat": 61.502, "annual_demand_mwh": 1500, "network": True},
            {"id": "hall", "lon": 24.006, "lat": 61.496, "annual_demand_mwh": 900, "network": True},
            {
                "id": "town",
                "lon": 24.020,
                "lat": 61.505,
                "annual_demand_mwh": 6000,
                "peak_load_kw": 2500,
                "network": True,
                "company": "Utility",
            },
        ],
        "boilers": [
            {"id": "gas", "at": "flue", "fuel": "natural_gas", "capacity_kw": 8000, "efficiency": 0.92, "network": True}
        ],
        "network": {
            "sink": "town",
            "heat_loss_coefficient_w_per_k": 2000,
            "streets": {"source": "none", "max_service_length_m": 50},
            "links": {"site_to_site": True, "site_link_max_length_m": 3000},
            "network": {"simultaneity": "none", "supply_areas": "shared"},
        },
        "concepts": [{"name": "Flue gas", "sources": ["flue"], "boilers": ["gas"]}],
        "matching": {"detour_factor": 1.2},
    }
    if change is not None:
        change(data)
    return data


def _write(tmp_path, data) -> "Path":  # noqa: F821
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_second_study_runs_every_command(tmp_path):
    path = _write(tmp_path, _small_study(tmp_path))
    assert is_study(path)
    study = read_study(path)
    assert study.lonlat("cooling") == study.lonlat("flue")
    for command in ("plan", "concepts", "matches"):
        out = tmp_path / command
        result = run_cli(command, path, "--out", out)
        assert result.exit_code == 0, (command, result.output)
    plan = json.loads((tmp_path / "plan" / "summary.json").read_text(encoding="utf-8"))
    assert plan["status"] == "ok"
    concepts = json.loads((tmp_path / "concepts" / "summary.json").read_text(encoding="utf-8"))
    assert concepts["network"]["sink"] == "town"
    # flue gas (150 °C preset) heats the water to 150 − 4 K, at most the curve's highest 95 °C
    src = {s["id"]: s for s in plan_scenario(study).sources.model_dump()["inline"]}
    assert src["flue"]["t_supply_c"] == 95
    matches = json.loads((tmp_path / "matches" / "summary.json").read_text(encoding="utf-8"))
    assert {r["source_id"] for r in matches["ranking"]} == {"flue", "cooling"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["sources"][1].update(at="nowhere"), "cooling: at 'nowhere' names no other unit"),
        (lambda d: d["sources"][1].update(at="cooling"), "cooling: at 'cooling' names no other unit"),
        (lambda d: d["sources"][0].update(plant="Mill"), "give one location: plant, both lon and lat, or at"),
        (lambda d: d["consumers"][0].pop("lon"), "give one location"),
        (lambda d: d["consumers"][1].update(id="school"), "every unit needs its own id; repeated: school"),
        (lambda d: d["network"].update(sink="hall2"), "network.sink 'hall2' must be a consumer of the study"),
        (lambda d: d.pop("trade"), "a study with a network needs trade"),
        (lambda d: d["consumers"][0].update(profile=True), "consumers with profile: true need year.site_profiles"),
        (lambda d: d["temperatures"].update(return_c=85), "return_c (85 °C) must be below supply_curve.min_c"),
        (lambda d: d["economics"].update(interest_rate=0.03), "'interest_rate' is called 'discount_rate'"),
        (lambda d: d["sources"][0].update(plant="Nowhere plant", lon=None, lat=None), "plants_csv"),
    ],
)
def test_a_bad_study_exits_2_naming_the_key(tmp_path, change, message):
    def changed(d):
        change(d)
        for unit in d["sources"] + d["consumers"]:
            for k in [k for k, v in unit.items() if v is None]:
                unit.pop(k)

    path = _write(tmp_path, _small_study(tmp_path, changed))
    for command in ("plan", "concepts", "matches"):
        result = run_cli(command, path, "--out", tmp_path / "out")
        assert result.exit_code == 2, (command, result.output)
        assert message in result.output, (command, result.output)
        assert str(path) in result.output and "Traceback" not in result.output
        assert not (tmp_path / "out").exists()


def test_a_part_the_study_lacks_is_named(tmp_path):
    data = _small_study(tmp_path)
    data.pop("concepts")
    path = _write(tmp_path, data)
    result = run_cli("concepts", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "the study has no concepts" in result.output
    with pytest.raises(ScenarioError, match="has no network section"):
        data.pop("network")
        plan_scenario(read_study(_write(tmp_path, data)))


# --- one hour, one answer: the network's simulated hours and the concepts' dispatch agree -------------------------


def _plan_and_concepts(study):
    from heatmap.energy.concepts import run_concepts
    from heatmap.plan import plan_from_scenario

    plan = plan_from_scenario(plan_scenario(study))
    return plan, run_concepts(energy_scenario(study), plan=plan)


def _assert_one_answer(study, plan, concepts):
    """Every simulated hour gives each linked source one heat; no source gives more than it has in any hour."""
    import numpy as np

    from heatmap.energy.concept_network import hour_agreement
    from heatmap.network.operation import own_share

    assert plan.ok, plan.violations
    rows = hour_agreement(concepts.network, concepts.links, concepts.results)
    simulated_hours = {h.hour.name for h in plan.operation.hours}
    assert concepts.links and {r["hour"] for r in rows} == simulated_hours
    t_return = plan.scenario.temperatures.return_c
    for h in plan.operation.hours:
        src = h.sources.set_index(h.sources.source_id.astype(str))
        i = concepts.year.index.get_loc(h.hour.time)
        for sid, link in concepts.links.items():
            # the simulated own heat by hand: the heat pandapipes has the source deliver × its own share at the hour
            t_own = plan.sources.set_index("source_id").t_supply_c[sid]
            by_hand = src.q_kw[sid] * float(own_share(t_own, h.hour.t_supply_target_c, t_return))
            assert src.q_own_kw[sid] == pytest.approx(by_hand, rel=1e-9)
            for r in concepts.results:
                if sid in r.dispatch.heat_kw.columns:
                    dispatched = r.dispatch.heat_kw[sid].iloc[i] + link.others_kw[i]
                    assert dispatched == pytest.approx(src.q_own_kw[sid], abs=max(50.0, 0.01 * src.q_own_kw[sid]))
    presets = {s.id: s for s in concepts.sources}
    for r in concepts.results:
        for sid in r.dispatch.heat_kw.columns.intersection(list(presets)):
            s = presets[sid]
            has = s.capacity_kw * s.availability
            taken = concepts.links[sid].others_kw if sid in concepts.links else np.zeros(len(has))
            heat = r.dispatch.heat_kw[sid].to_numpy()
            share = r.dispatch.producers[[p.name for p in r.dispatch.producers].index(sid)].excess_share
            # summed over all its sinks (the study and the plan's other consumers), never more than it has
            assert (heat * share + taken).max() <= has.max() + 1e-6
            assert np.all(heat * share + taken <= has + 1e-6)


def test_kip_network_and_dispatch_give_one_answer_per_hour(kip):
    study = kip[0]
    plan, concepts = _plan_and_concepts(study)
    _assert_one_answer(study, plan, concepts)
    # the coldest hour is one of them: the acid heat preheats there (the curve's 109.5 °C over its 100 °C water)
    coldest = next(h for h in plan.operation.hours if "highest" in h.hour.name)
    assert str(coldest.hour.time) == "2023-01-26 05:00:00" and coldest.hour.t_supply_target_c > 100
    acid = coldest.sources.set_index("source_id").loc["boliden_acid_heat"]
    assert 0 < acid.q_boost_kw < acid.q_kw


def test_a_second_study_gives_one_answer_per_hour(tmp_path):
    study = read_study(_write(tmp_path, _small_study(tmp_path)))
    plan, concepts = _plan_and_concepts(study)
    _assert_one_answer(study, plan, concepts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_small_studies_give_one_answer_per_hour(tmp_path, seed):
    """Random small studies (capacities, demands, places, curve): the same agreements hold in each."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def change(d):
        d["sources"][0]["capacity_kw"] = float(rng.uniform(1500, 6000))
        d["boilers"][0]["capacity_kw"] = 9000.0
        for c in d["consumers"]:
            c["annual_demand_mwh"] = float(rng.uniform(300, 4000))
            c["lon"] = 24.0 + float(rng.uniform(0.003, 0.02))
            c["lat"] = 61.5 + float(rng.uniform(-0.006, 0.006))
        c = d["temperatures"]["supply_curve"]
        c["max_c"] = float(rng.uniform(90, 110))
        c["min_c"] = float(rng.uniform(75, 85))

    study = read_study(_write(tmp_path, _small_study(tmp_path, change)))
    plan, concepts = _plan_and_concepts(study)
    _assert_one_answer(study, plan, concepts)


def test_heatmap_study_writes_every_part_in_one_folder(kip_study_out):
    """heatmap study: the concepts on the planned network, the network and the matches, one atomic output."""
    out, output = kip_study_out
    concepts = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    network = json.loads((out / "network" / "summary.json").read_text(encoding="utf-8"))
    matches = json.loads((out / "matches" / "summary.json").read_text(encoding="utf-8"))
    assert network["status"] == "ok" and matches["plan"]["status"] == "ok"
    # the concepts ran on the network written beside them, and its hours agree with their dispatch
    assert concepts["network"]["route_length_m"] == pytest.approx(network["figures"]["route_length_m"])
    assert concepts["network"]["capex_eur"] == pytest.approx(network["figures"]["capex_eur"])
    rows = concepts["network"]["hour_agreement"]
    assert rows and max(abs(r["difference_kw"]) for r in rows) <= 50
    assert {"comparison.csv", "map.html", "matches", "network"} <= {p.name for p in out.iterdir()}
    marker = json.loads((out / ".heatmap-output").read_text(encoding="utf-8"))
    assert {"matches", "network", "summary.json"} <= set(marker["files"])
    assert (out / "matches" / "matches.gpkg").is_file() and (out / "network" / "plan.gpkg").is_file()
    assert "One hour, one answer" in output and "Matches" in output
    # the network's report draws its year: the load-duration curve beside the network drawing
    report = (out / "network" / "report.html").read_text(encoding="utf-8")
    assert report.count('src="data:image/png;base64,') == 2 and "Load-duration curve" in report
    for key, mwh in network["operation"]["totals_mwh_per_a"].items():
        assert f"{mwh:,.0f}</td>" in report, key


def test_heatmap_study_refuses_a_scenario_that_is_no_study(tmp_path):
    scenario = settings.data_dir / "scenarios" / "helsinki_centre.yaml"
    result = run_cli("study", scenario, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "not a study" in result.output and "heatmap plan" in result.output
    assert not (tmp_path / "out").exists()


def test_a_source_is_paid_for_its_own_heat_not_its_boosters(kip):
    """Under the curve the acid heat is boosted in cold hours: Boliden sells its own heat, the operator the lift."""
    from heatmap.plan import plan_from_scenario

    study, plan_scn, _, _ = kip
    plan = plan_from_scenario(plan_scn)
    op = plan.operation
    delivered = op.hourly.source_kw
    own = delivered * op.own_share.reindex(columns=delivered.columns).fillna(1.0)
    boost_mwh = float((delivered - own).to_numpy().sum() / 1000)
    assert boost_mwh > 10  # the cold hours above the acid heat's 100 °C
    assert op.totals["boosted_by_sources_mwh"] == pytest.approx(boost_mwh, rel=1e-9)
    trade = op.trade.set_index("company")
    assert trade.sold_mwh["Boliden"] == pytest.approx(own.boliden_acid_heat.sum() / 1000, rel=1e-9)
    assert trade.received_eur["Boliden"] == pytest.approx(10 * trade.sold_mwh["Boliden"], rel=1e-9)
    backup = own.park_backup_boiler.sum() / 1000
    assert trade.sold_mwh["Kokkolan Energia"] == pytest.approx(backup + boost_mwh, rel=1e-9)
    assert trade.net_eur.sum() == pytest.approx(0.0, abs=1e-6)

"""The plan's report for a city board (heatmap.maps.report): what it says agrees with the summary, it holds no link
outside itself, and it prints on A4 in Chromium with no table cut or wider than the page."""

import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from conftest import assert_offline

ARTEFACTS = Path(__file__).parent / "artefacts" / "report"


@pytest.fixture(scope="module")
def written(bundled_outputs):
    html = (bundled_outputs / "report.html").read_text(encoding="utf-8")
    return html, json.loads((bundled_outputs / "summary.json").read_text(encoding="utf-8")), bundled_outputs


def html_text(text: str) -> str:
    """Text as Jinja2 escapes it in the page."""
    import html

    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


def test_the_report_states_the_summary_s_figures_exclusions_and_every_assumption(written):
    html, s, out = written
    f = s["figures"]
    n = s["counts"]
    # connected of every building given, as the map says (not of those the plan considered: the rest are left out)
    assert f"{n['consumers_connected']:,d} of {n['consumers_given']:,d}" in html
    assert n["consumers_given"] > n["consumers"]
    assert f"{f['capex_eur'] / 1e6:,.2f} M€" in html and f"{f['lcoh_eur_per_mwh']:,.1f} €/MWh" in html
    assert f"{f['npv_eur'] / 1e6:,.2f} M€" in html and f"{f['heat_delivered_mwh_per_a']:,.0f} MWh/a" in html
    # every building left out, by why (the plan's left_out layer), adding up to the summary's exclusions
    left = gpd.read_file(out / "plan.gpkg", layer="left_out")
    for why, rows in left.groupby("why"):
        assert html_text(why) in html and f">{len(rows):,d}<" in html
    assert len(left) == sum(len(ids) for ids in s["excluded_consumers"].values())
    # the service pipes that run through another building, counted and named (the consumers layer marks the same)
    through = s["service_through_building"]
    cons = gpd.read_file(out / "plan.gpkg", layer="consumers")
    marked = cons[cons.connected & cons.service_through_building].consumer_id
    assert set(marked) <= set(through["ids"]) and 0 < len(through["ids"]) <= len(marked) + s["counts"]["sources"]
    assert f"{len(through['ids'])} service pipes run through another building" in html
    assert all(i in html for i in through["ids"][:10]) and f"within {through['detour_m']:.0f} m more" in html
    for a in s["assumptions"]:  # every assumption with where it comes from
        assert f"<td>{a['key']}</td>" in html
    # the heat-density map's settings are not a plan's: left out of its assumptions (and so of the appendix)
    assert not [a for a in s["assumptions"] if a["key"].startswith("density.")] and "density.cell_size_m" not in html
    for group in s["economics"]["price_origins"].values():  # the prices the money rests on
        for p in group:
            assert f"<td>{p['key']}</td>" in html
    # pipe length by DN: the rows add up to the route
    rows = re.findall(r"<td>DN(\d+)</td><td class=\"n\">([\d,]+)</td>", html)
    assert {int(dn) for dn, _ in rows} == {int(k.removeprefix("DN")) for k in s["route_length_by_dn_m"]}
    assert sum(float(m.replace(",", "")) for _, m in rows) == pytest.approx(f["route_length_m"], abs=len(rows))


def test_the_report_holds_no_link_outside_itself(written):
    html, _, _ = written
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html)
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert html.count('src="data:image/png;base64,') == 1


A4_CONTENT_MM = (210 - 13 - 13, 297 - 14 - 16)
"""The text area of the reports' A4 page (``@page`` margins of templates/_base.html.j2), mm."""
PX_PER_MM = 96 / 25.4


def assert_prints_on_a4(browser, path: Path, name: str, pages: tuple[int, int]) -> int:
    """Print a report in Chromium: nothing wider than the page, no row or figure taller than a page or split over
    two, the images sharp, nothing fetched; the PDF's page count within ``pages``. Return the page count."""
    if browser is None:
        pytest.fail("the report test needs Debian's Chromium and playwright (see tests/conftest.py)")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 794, "height": 1123})  # A4 at 96 dpi
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.emulate_media(media="print")
    # no table, figure or image wider than the page's text column
    widths = page.evaluate(
        """() => { const body = document.body.getBoundingClientRect();
                   return [...document.querySelectorAll('table, figure, img')].map(e => {
                     const r = e.getBoundingClientRect(); return [e.tagName, r.left - body.left, body.right - r.right,
                     e.scrollWidth - e.clientWidth, r.width]; }); }"""
    )
    assert widths and all(left >= -0.5 and right >= -0.5 and overflow <= 0 for _, left, right, overflow, _ in widths)
    assert max(w for *_, w in widths) <= A4_CONTENT_MM[0] * PX_PER_MM + 0.5
    sharp = page.evaluate("() => [...document.querySelectorAll('img')].map(i => i.naturalWidth / i.clientWidth)")
    assert min(sharp, default=2.0) >= 1.5, sharp  # at least 1.5 image pixels a CSS pixel: sharp in print
    # a row or a figure is never split over two pages (each fits on one, and is kept whole); a table's header
    # repeats on each page it spans
    styles = page.evaluate(
        """() => [[...document.querySelectorAll('tr, figure')].map(e => getComputedStyle(e).breakInside),
                  [...document.querySelectorAll('thead')].map(e => getComputedStyle(e).display),
                  Math.max(...[...document.querySelectorAll('tr, figure')].map(
                    e => e.getBoundingClientRect().height))]"""
    )
    assert set(styles[0]) == {"avoid"} and set(styles[1]) == {"table-header-group"}
    assert styles[2] < A4_CONTENT_MM[1] * PX_PER_MM, styles[2]
    pdf = page.pdf(format="A4", print_background=True)
    (ARTEFACTS / f"{name}.pdf").write_bytes(pdf)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
    n = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages[0] <= n <= pages[1], n
    assert_offline(requests)
    context.close()
    return n


def test_the_report_prints_on_a4_with_every_table_whole(browser, bundled_outputs):
    assert_prints_on_a4(browser, bundled_outputs / "report.html", "helsinki_report", (2, 20))
    print(f"report artefacts in {ARTEFACTS}")


# --- the reports of heatmap concepts / study, matches and demand -------------------------------------------------


def _formatted(value, fmt: str) -> str:
    """A number as the reports show it ("–" where there is none)."""
    if value is None or isinstance(value, bool) or (isinstance(value, float) and value != value):
        return "–"
    return format(value, fmt)


def _row_cells(html: str, label: str) -> list[str]:
    """The number cells of every table row headed ``label`` (a table of several concepts' groups: all of them)."""
    rows = re.findall(r"<tr><td>" + re.escape(html_text(label)) + r"</td>(.*?)</tr>", html, re.S)
    assert rows, label
    return [cell for row in rows for cell in re.findall(r'<td class="n">(.*?)</td>', row)]


def _png_uri(path: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _readme_block(folder: Path, relative: str) -> str:
    """The README.txt entry of one file: its line and its description."""
    blocks = (folder / "README.txt").read_text(encoding="utf-8").split("\n\n")
    block = next(b for b in blocks if b.splitlines()[0].split(" (", 1)[0] == relative)
    return " ".join(block.split())


def test_the_study_report_states_its_summaries(kip_study_out):
    """The concepts side by side, each unit, the plots, the network and the matches: as the summaries hold them."""
    from conftest import KIP_STUDY

    from heatmap.energy.concepts import unit_colours, unit_labels
    from heatmap.maps.report import CONCEPT_ROWS, IMPACT_ROWS, MAX_PAIRS
    from heatmap.study import energy_scenario, read_study

    out, _ = kip_study_out
    html = (out / "report.html").read_text(encoding="utf-8")
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    net = json.loads((out / "network" / "summary.json").read_text(encoding="utf-8"))
    matches = json.loads((out / "matches" / "summary.json").read_text(encoding="utf-8"))
    names = [row["concept"] for row in s["comparison"]]
    assert len(names) == 5
    # every figure of the concepts' table is the comparison's (comparison.csv), and the impact's against the reference
    for key, label, fmt in CONCEPT_ROWS:
        assert _row_cells(html, label) == [_formatted(row[key], fmt) for row in s["comparison"]], label
    impact = {row["concept"]: row for row in s["impact"]}
    for key, label, fmt in IMPACT_ROWS:
        expected = [_formatted(impact[n][key], fmt) if n in impact else "reference" for n in names]
        assert _row_cells(html, label) == expected, label
    # each unit in its colour of the plots and the map, with its heat per concept
    scn = energy_scenario(read_study(KIP_STUDY))
    colours, labels = unit_colours(scn), unit_labels(scn)
    for c in s["concepts"]:
        for u in c["figures"]["units"]:
            swatch = (
                f'<span class="swatch" style="background: {colours[u["unit"]]}"></span>{html_text(labels[u["unit"]])}'
            )
            assert swatch in html, u["unit"]
    # the plots written beside it, inline: the overview, each concept's dispatch and duration curve
    assert _png_uri(out / "overview.png") in html
    for path in sorted(out.glob("dispatch_*.png")) + sorted(out.glob("duration_*.png")):
        assert _png_uri(path) in html, path.name
    # the planned network's sections, from its own summary: key figures, pipes by DN, its year
    f = net["figures"]
    assert f"{f['capex_eur'] / 1e6:,.2f} M€" in html and f"{f['npv_eur'] / 1e6:,.2f} M€" in html
    assert f"{f['lcoh_eur_per_mwh']:,.1f} €/MWh" in html and f"{f['heat_delivered_mwh_per_a']:,.0f} MWh/a" in html
    rows = re.findall(r"<td>DN(\d+)</td><td class=\"n\">([\d,]+)</td>", html)
    assert {int(dn) for dn, _ in rows} == {int(k.removeprefix("DN")) for k in net["route_length_by_dn_m"]}
    assert sum(float(m.replace(",", "")) for _, m in rows) == pytest.approx(f["route_length_m"], abs=len(rows))
    for key, mwh in net["operation"]["totals_mwh_per_a"].items():
        assert f"{mwh:,.0f}</td>" in html, key
    # images: the overview, two per concept, the network drawing and its load-duration curve
    assert html.count('src="data:image/png;base64,') == 1 + 2 * len(names) + 2
    # the matches' ranking, rank by rank
    ranked = re.findall(r'<tr><td class="n">(\d+)</td>.*?<td class="n">([\d,.–]+)</td></tr>', html, re.S)
    shown = matches["ranking"][:MAX_PAIRS]
    assert [(int(r), c) for r, c in ranked] == [(r["rank"], _formatted(r["eur_per_mwh"], ",.1f")) for r in shown]
    # every assumption of the study and of its network, with its origin
    for key, a in s["assumptions"].items():
        assert f"<tr><td>{html_text(key)}</td>" in html and f"<td>{a['origin']}</td>" in html, key
    for a in net["assumptions"]:
        assert f"<tr><td>{html_text(a['key'])}</td>" in html, a["key"]
    # README.txt says what each report is
    assert "concept study for a city board" in _readme_block(out, "report.html")
    assert "the plan for a city board" in _readme_block(out, "network/report.html")
    assert "the matching for a city board" in _readme_block(out, "matches/report.html")


def test_the_concepts_report_without_matches(concepts_out):
    html = (concepts_out / "report.html").read_text(encoding="utf-8")
    s = json.loads((concepts_out / "summary.json").read_text(encoding="utf-8"))
    assert "Which heat to which user" not in html and "The planned network" in html
    cost = [_formatted(row["cost_of_heat_eur_per_mwh"], ",.1f") for row in s["comparison"]]
    assert _row_cells(html, "Cost of heat (€/MWh delivered)") == cost
    assert "concept study for a city board" in _readme_block(concepts_out, "report.html")


def test_the_matches_report_states_its_summary(matches_out):
    from heatmap.maps.report import MAX_PAIRS

    html = (matches_out / "report.html").read_text(encoding="utf-8")
    s = json.loads((matches_out / "summary.json").read_text(encoding="utf-8"))
    for label, value in (("Pairs judged", s["pairs"]), ("Pairs that can work", s["feasible_pairs"])):
        assert f'<tr><td>{label}</td><td class="n">{value:,d}</td></tr>' in html
    ranked = re.findall(r'<tr><td class="n">(\d+)</td>.*?<td class="n">([\d,.–]+)</td></tr>', html, re.S)
    shown = s["ranking"][:MAX_PAIRS]
    assert shown and [(int(r), c) for r, c in ranked] == [
        (r["rank"], _formatted(r["eur_per_mwh"], ",.1f")) for r in shown
    ]
    # the pairs left out, counted by reason, add up to the summary's
    counts = re.findall(r'<tr><td>[^<]*</td><td class="n">(\d+)</td><td class="ids">', html)
    assert sum(int(n) for n in counts) == len(s["infeasible"]) == s["pairs"] - s["feasible_pairs"]
    for key in s["assumptions"]:
        assert f"<tr><td>{html_text(key)}</td><td>" in html, key
    if "plan" in s:
        assert f"{s['plan']['route_length_m'] / 1000:,.2f} km" in html
    assert "the matching for a city board" in _readme_block(matches_out, "report.html")
    assert html.count("<script") == 0 and not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html)
    assert html.count('src="data:image/png;base64,') == 1  # the pairs drawn


def test_the_demand_report_states_its_summary_and_the_map_s_classes(bundled_demand):
    out = bundled_demand
    html = (out / "report.html").read_text(encoding="utf-8")
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    b = s["buildings"]
    assert f"{s['annual_demand_gwh']:,.1f} GWh/a" in html
    assert f"{b['heated']:,d} of {b['buildings_read']:,d}" in html
    assert f"{s['potential_areas']['count']:,d}: {s['potential_areas']['annual_demand_gwh']:,.1f} GWh/a" in html
    for reason, n in b["left_out"].items():
        if n:
            assert f"{html_text(b['left_out_reasons'][reason])}<div" in html and f">{n:,d}</td>" in html
    # the classes, those of the web map, with how many cells, buildings and areas fall in each
    legend = (out / "map.html").read_text(encoding="utf-8")  # its legend's HTML sits in a script, as JSON
    legend = legend.replace("\\u0026", "&").replace("\\u003c", "<").replace("\\u003e", ">")
    tables = re.findall(r'<table class="keep">.*?<th class="n"[^>]*>(\w+)</th>(.*?)</table>', html, re.S)
    found = {}
    for noun, body in tables:
        classes = re.findall(r'</span>([^<]+)</td><td class="n">([\d,]+)</td>', body)
        assert classes and all(label in legend for label, _ in classes)  # both escaped as HTML
        found[noun] = sum(int(n.replace(",", "")) for _, n in classes)
    assert found == {
        "Cells": s["raster"]["cells_with_demand"],
        "Buildings": b["heated"],
        "Areas": s["potential_areas"]["count"],
    }
    for a in s["assumptions"]:
        assert f"<tr><td>{html_text(a['key'])}</td>" in html, a["key"]
    assert html.count('src="data:image/png;base64,') == 1
    assert "the demand map for a city board" in _readme_block(out, "report.html")


@pytest.mark.parametrize(
    ("fixture", "report", "pages"),
    [
        ("kip_study_out", "report.html", (10, 40)),
        ("kip_study_out", "matches/report.html", (1, 10)),
        ("matches_out", "report.html", (1, 10)),
        ("bundled_demand", "report.html", (2, 10)),
    ],
)
def test_every_report_prints_on_a4_with_every_table_whole(browser, request, fixture, report, pages):
    folder = request.getfixturevalue(fixture)
    folder = folder[0] if isinstance(folder, tuple) else folder
    name = f"{fixture}_{report.replace('/', '_').removesuffix('.html')}"
    n = assert_prints_on_a4(browser, folder / report, name, pages)
    print(f"{report} of {fixture}: {n} A4 pages")

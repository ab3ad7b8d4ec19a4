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
    assert f"{n['consumers_connected']:,d} of {n['consumers']:,d}" in html
    assert f"{f['capex_eur'] / 1e6:,.2f} M€" in html and f"{f['lcoh_eur_per_mwh']:,.1f} €/MWh" in html
    assert f"{f['npv_eur'] / 1e6:,.2f} M€" in html and f"{f['heat_delivered_mwh_per_a']:,.0f} MWh/a" in html
    # every building left out, by why (the plan's left_out layer), adding up to the summary's exclusions
    left = gpd.read_file(out / "plan.gpkg", layer="left_out")
    for why, rows in left.groupby("why"):
        assert html_text(why) in html and f">{len(rows):,d}<" in html
    assert len(left) == sum(len(ids) for ids in s["excluded_consumers"].values())
    for a in s["assumptions"]:  # every assumption with where it comes from
        assert f"<td>{a['key']}</td>" in html
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


def test_the_report_prints_on_a4_with_every_table_whole(browser, bundled_outputs):
    if browser is None:
        pytest.fail("the report test needs Debian's Chromium and playwright (see tests/conftest.py)")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 794, "height": 1123})  # A4 at 96 dpi
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((bundled_outputs / "report.html").resolve().as_uri(), wait_until="load")
    page.emulate_media(media="print")
    # no table, figure or image wider than the page's text column
    widths = page.evaluate(
        """() => { const body = document.body.getBoundingClientRect();
                   return [...document.querySelectorAll('table, figure, img')].map(e => {
                     const r = e.getBoundingClientRect(); return [e.tagName, r.left - body.left, body.right - r.right,
                     e.scrollWidth - e.clientWidth]; }); }"""
    )
    assert widths and all(left >= -0.5 and right >= -0.5 and overflow <= 0 for _, left, right, overflow in widths)
    assert page.evaluate("() => document.querySelector('img').naturalWidth") > 1000  # sharp in print
    # a row or the drawing is never split over two pages; a table's header repeats on each page it spans
    styles = page.evaluate(
        """() => [[...document.querySelectorAll('tr, figure')].map(e => getComputedStyle(e).breakInside),
                  [...document.querySelectorAll('thead')].map(e => getComputedStyle(e).display)]"""
    )
    assert set(styles[0]) == {"avoid"} and set(styles[1]) == {"table-header-group"}
    pdf = page.pdf(format="A4", print_background=True)
    (ARTEFACTS / "helsinki_report.pdf").write_bytes(pdf)
    page.screenshot(path=str(ARTEFACTS / "helsinki_report.png"), full_page=True)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 2 <= pages <= 20, pages
    assert_offline(requests)
    context.close()
    print(f"report artefacts in {ARTEFACTS}")

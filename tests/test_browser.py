"""The HTML report and the leaderboard site in a real browser (headless Chromium via selenium).

Needs Debian's chromium and chromium-driver (.ci/run installs them) and selenium (the test
extra). Outside CI the tests skip when the browser is missing; in CI (CI=true) they fail.
Screenshots are kept in $CALOBENCH_TEST_ARTIFACTS (default build/test-artifacts/).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import calobench
from calobench.selftest.distortions import energy_scale

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False
MISSING = None if CHROMIUM and DRIVER and HAVE_SELENIUM else "chromium, chromium-driver or selenium is not installed"
if MISSING and os.environ.get("CI") == "true":
    raise RuntimeError(f"browser tests: {MISSING} (.ci/run must install them)")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

ARTIFACTS = Path(os.environ.get("CALOBENCH_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1100"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _open(driver, path: Path, shot: str):
    driver.get(path.resolve().as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / shot))
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)")
    assert broken == [], broken


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    ref = calobench.load("stcf11x11")
    a, b = ref.slice(0, 1500), ref.slice(1500, 3000)
    gen = energy_scale(1.05)(a, np.random.default_rng(0))
    out = tmp_path_factory.mktemp("report")
    result = calobench.compare(gen, b, dataset="stcf11x11", metrics=["hist", "resolution"], progress=False,
                               report_dir=out)
    return result, out / "report.html"


def test_report_renders_and_shows_the_shift_inside_the_range(browser, report_page):
    result, page = report_page
    _open(browser, page, "report-stcf11x11-x1.05.png")
    headline = browser.find_elements("css selector", "table#headline tr")
    assert 5 <= len(headline) - 1 <= 25
    folded = browser.execute_script(
        "return Array.from(document.querySelectorAll('details.stage table tr')).length")
    shown = len(headline) - 1 + folded - len(browser.find_elements("css selector", "details.stage"))
    assert shown == len(result.metrics)  # every metric appears once: headline or its stage's section
    raw = browser.find_element("css selector", "figure[data-feature='etot_einc']").get_attribute("data-hist")
    hist = json.loads(raw)
    edges, gen, ref = np.array(hist["edges"]), np.array(hist["generated"]), np.array(hist["reference"])
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert np.argmax(gen) < len(gen) - 1  # a peak, not an edge spike
    assert gen[-1] < 0.5 * gen.max()
    assert centres[np.argmax(gen)] / centres[np.argmax(ref)] == pytest.approx(1.05, abs=0.02)
    captions = [e.text for e in browser.find_elements("css selector", "figcaption")]
    assert "e11x11" not in captions  # a constant feature gets no panel


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from calobench.report.site import write_site

    out = tmp_path_factory.mktemp("site") / "site"
    write_site(out, datasets=["stcf11x11", "calochallenge-2"],
               user_dir=tmp_path_factory.mktemp("empty-user-board"))
    return out


def test_site_tables_sort_and_link(browser, site):
    from calobench.leaderboard import table

    _open(browser, site / "index.html", "site-index.png")
    assert len(browser.find_elements("css selector", "li a")) == 2
    _open(browser, site / "stcf11x11.html", "site-stcf11x11.png")
    rows = browser.find_elements("css selector", "table#ranked tbody tr")
    frame = table("stcf11x11")
    assert len(rows) == len(frame) > 1
    header = [th for th in browser.find_elements("css selector", "table#ranked th") if th.text == "params"][0]

    def params() -> list[int]:
        column = header.get_property("cellIndex")
        return [int(r.find_elements("tag name", "td")[column].get_attribute("data-v"))
                for r in browser.find_elements("css selector", "table#ranked tbody tr")]

    header.click()
    assert params() == sorted(frame["parameters"])
    header.click()
    assert params() == sorted(frame["parameters"], reverse=True)
    link = browser.find_elements("css selector", "table#ranked tbody tr td a")[0]
    link.click()
    assert browser.find_elements("css selector", "table#metrics tr")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_site_marks_published_rows(browser, site):
    _open(browser, site / "calochallenge-2.html", "site-calochallenge-2.png")
    published = browser.find_elements("css selector", "table#published tbody tr")
    assert len(published) > 5
    assert "not on calobench's reference" in browser.page_source
